""" "Test connection": can we log in and reach the server? One sentence either way.

For an API: fetch a token where there is one, then call the base URL. Any answer other than
401/403 means the server is reachable and accepts the credentials (many APIs answer 404 at their
root); what failed is named: DNS, refused, TLS, timeout, the token endpoint's 4xx with its body.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.errors import StudioError
from studio.http import HttpClient, HttpError
from studio.models import ApiConnection, FileServerConnection


@dataclass
class Check:
    ok: bool
    message: str
    exchanges: list[dict] = field(default_factory=list)


def check_connection(conn: ApiConnection | FileServerConnection) -> Check:
    if isinstance(conn, FileServerConnection):
        return Check(False, "Testing file server connections arrives with FTP/SFTP support")
    exchanges: list[dict] = []
    with HttpClient(
        conn, retries=1, retry_after_max=2.0, on_exchange=lambda e: exchanges.append(e.as_dict())
    ) as client:
        try:
            response = client.request("Test", "GET", conn.base_url, fail=False)
        except (HttpError, StudioError) as e:
            return Check(False, f"{conn.name}: {str(e).removeprefix('Test: ')}", exchanges)
    status = response.status
    if status in (401, 403):
        excerpt = response.content[:200].decode("utf-8", "replace").strip()
        return Check(
            False,
            f"{conn.name}: the API refused the credentials ({status} "
            f"{response.reason}: {client.mask(excerpt)})",
            exchanges,
        )
    if status >= 500:
        return Check(False, f"{conn.name}: the API answered {status} {response.reason}", exchanges)
    how = "" if status < 400 else f" (the base URL itself answers {status} {response.reason})"
    auth = " and the token endpoint issued a token" if conn.auth.type == "oauth2" else ""
    return Check(
        True, f"{conn.name}: connected{auth}; {conn.base_url} is reachable{how}", exchanges
    )
