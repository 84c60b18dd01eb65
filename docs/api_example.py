"""Using the REST control API as another system would: plain `requests`, nothing of ours.

    python -m runner api-token create my-erp        # prints the token once
    API_TOKEN=cs_... python docs/api_example.py

Creates an import, starts it, polls its status and downloads its rows, then deletes it.
"""

import os
import sys
import time

import requests

BASE = os.environ.get("API_URL", "http://127.0.0.1:8780/v1")
session = requests.Session()
session.headers["Authorization"] = f"Bearer {os.environ['API_TOKEN']}"


def check(response: requests.Response) -> requests.Response:
    if response.status_code >= 400:
        sys.exit(
            f"{response.request.method} {response.url}: {response.status_code} "
            f"{response.json().get('error')}"
        )
    return response


# 1. Create an import from the demo sandbox's suppliers.
created = check(
    session.post(
        f"{BASE}/imports",
        json={
            "kind": "api",
            "name": "ERP suppliers (example)",
            "connection_id": "Demo sandbox",
            "entity": "Suppliers",
            "external_key": "erp-suppliers-example",
            "calls": [{"path": "/suppliers"}],
            "content_finder": "$.suppliers",
            "mapping": [
                {"extract": "$.supplierId", "generate": "external_id"},
                {"extract": "$.companyName", "generate": "name"},
                {"extract": "$.country", "generate": "country"},
            ],
        },
    )
).json()
print("created import", created["id"])

# 2. Start it: a process id comes back at once.
process = check(session.post(f"{BASE}/jobs/{created['id']}/start")).json()["processId"]

# 3. Poll: SyncState 2 while it runs, 1 when it succeeded, 3 on error.
while True:
    status = check(session.get(f"{BASE}/jobs/{created['id']}/status/{process}")).json()
    if status["SyncState"] != 2:
        break
    time.sleep(2)
print("status", status["status"], "-", status["rows_written"], "rows")

# 4. Download the result: the file itself, or a ZIP when there are several.
result = check(session.get(f"{BASE}/jobs/{created['id']}/download/{process}"))
print(result.headers["content-disposition"])
print(result.text[:300])

# The synchronous variant in one call (it waits, up to an hour by default):
# session.get(f"{BASE}/datafeed/synchron/erp-suppliers-example")

check(session.delete(f"{BASE}/imports/{created['id']}"))
