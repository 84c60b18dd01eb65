"""The REST control API over a real uvicorn server on 127.0.0.1, with the runner's queue."""

from __future__ import annotations

import io
import zipfile

import pytest
import requests

from studio.config.store import ConfigStore
from studio.rowstore import read_rows
from tests.helpers import ROOT, point_demo_at, wait_for
from tests.servers import Api


def finished(api, pid: str, timeout: float = 60) -> dict:
    """The status of run ``pid`` once it has ended (``SyncState`` 2 is still running)."""

    def ended():
        status = api.get(f"/v1/jobs/demo-suppliers/status/{pid}").json()
        return status if status["SyncState"] != 2 else None

    return wait_for(ended, timeout, f"run {pid} to end", interval=0.1)


@pytest.fixture(scope="module")
def env(tmp_path_factory, sandbox_server):
    from studio.config.files import EXAMPLES, import_configs
    from studio.http import TOKENS

    sandbox_server.state.reset()  # whatever faults earlier tests left
    TOKENS._tokens.clear()
    home = tmp_path_factory.mktemp("api-home")
    store = ConfigStore(home)
    import_configs(store, EXAMPLES)
    point_demo_at(store, sandbox_server.url)
    api = Api(store)
    yield api, store
    api.stop()


def test_every_call_needs_a_token(env):
    api, _ = env
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        r = requests.get(f"{api.url}/v1/imports", headers=headers, timeout=10)
        assert r.status_code == 401
        assert r.json() == {"error": "a valid 'Authorization: Bearer <token>' header is required"}
    assert api.get("/v1/imports").status_code == 200


def test_imports_crud_clone_audit_patch_dependencies(env):
    api, store = env
    new = {
        "kind": "api",
        "name": "API suppliers",
        "connection_id": "Demo sandbox",
        "entity": "Suppliers",
        "external_key": "api-suppliers",
        "calls": [{"path": "/suppliers"}],
        "content_finder": "$.suppliers",
        "mapping": [
            {"extract": "$.supplierId", "generate": "external_id"},
            {"extract": "$.companyName", "generate": "name"},
        ],
    }
    r = api.post("/v1/imports", json=new)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["connection_id"] == store.get("connections", "Demo sandbox").id
    assert api.post("/v1/imports", json=new).status_code == 409
    bad = api.post(
        "/v1/imports", json=new | {"name": "x", "external_key": "", "content_finder": "$.a["}
    )
    assert bad.status_code == 422
    assert bad.json()["error"].startswith("Content finder (JSONPath): JSONPath '$.a[': ends")
    for ref in (created["id"], "api suppliers", "api-suppliers"):
        assert api.get(f"/v1/imports/{ref}").json()["name"] == "API suppliers"
    assert api.get("/v1/imports/nope").json() == {
        "error": "No import called 'nope' (id, name or external key)"
    }
    put = api.put(f"/v1/imports/{created['id']}", json=created | {"name": "API suppliers 2"})
    assert put.status_code == 200 and put.json()["name"] == "API suppliers 2"
    patch = api.patch(
        f"/v1/imports/{created['id']}",
        json={"debugUntil": "2099-01-01T00:00:00Z", "assistantMetadata": {"a": 1}},
    )
    assert patch.status_code == 204
    got = api.get(f"/v1/imports/{created['id']}").json()
    assert got["debugUntil"].startswith("2099-01-01") and got["assistantMetadata"] == {"a": 1}
    refused = api.patch(f"/v1/imports/{created['id']}", json={"name": "x"})
    assert refused.status_code == 422 and refused.json()["error"].startswith("name: only")
    clone = api.post(f"/v1/imports/{created['id']}/clone")
    assert clone.status_code == 201 and clone.json()["name"] == "Copy of API suppliers 2"
    audit = api.get(f"/v1/imports/{created['id']}/audit").json()
    assert [e["action"] for e in audit][:2] == ["update", "update"] and audit[0]["source"] == "api"
    deps = api.get(f"/v1/imports/{created['id']}/dependencies").json()
    assert deps["entity"] == "Suppliers" and deps["connection"]["name"] == "Demo sandbox"
    assert {"id": clone.json()["id"], "name": "Copy of API suppliers 2"} in deps[
        "imports_sharing_connection"
    ]
    assert deps["connection"]["auth"]["client_secret"] == "••••••"
    store.create(
        "connections",
        {"kind": "file_server", "name": "Some SFTP", "host": "h", "username": "u", "password": "p"},
        source="cli",
    )
    wrong = api.put(
        f"/v1/imports/{created['id']}/replaceConnection", json={"connection": "Some SFTP"}
    )
    assert wrong.status_code == 422 and "needs a API one" in wrong.json()["error"]
    assert api.delete(f"/v1/imports/{clone.json()['id']}").status_code == 204
    assert api.get(f"/v1/imports/{clone.json()['id']}").status_code == 404


def test_connections_crud_masks_secrets_and_refuses_deleting_a_used_one(env):
    api, store = env
    conns = api.get("/v1/connections").json()
    demo = next(c for c in conns if c["name"] == "Demo sandbox")
    assert demo["auth"]["client_secret"] == "••••••"
    r = api.put(f"/v1/connections/{demo['id']}", json=demo | {"timeout": 12})
    assert r.status_code == 200 and r.json()["timeout"] == 12
    assert store.get("connections", demo["id"], reveal=True).auth.client_secret == "demo-secret"
    used = api.delete(f"/v1/connections/{demo['id']}")
    assert used.status_code == 409 and "is used by job" in used.json()["error"]
    new = api.post("/v1/connections", json={"kind": "api", "name": "Temp", "base_url": "nope"})
    assert new.status_code == 422
    assert new.json()["error"] == "Base URL: must start with http:// or https://"


def test_invoke_with_data_maps_and_writes_each_record(env):
    api, store = env
    r = api.post(
        "/v1/imports/Demo suppliers/invoke",
        json={
            "data": [
                {"supplierId": "X1", "companyName": "Pushed Inc", "email": "a@b.c"},
                {"companyName": "No id"},
            ],
            "settings": {},
        },
    )
    assert r.status_code == 200
    assert r.json() == [
        {
            "statusCode": 200,
            "_json": {"external_id": "X1", "name": "Pushed Inc", "email": "a@b.c", "country": None},
        },
        {
            "statusCode": 422,
            "errors": [{"field": "external_id", "message": "$.supplierId: is required but empty"}],
        },
    ]
    rows, _ = read_rows(store.home, "Suppliers", where="X1")
    assert rows[0]["name"] == "Pushed Inc"
    plain = api.post(
        "/v1/imports/Demo suppliers/invoke", json=[{"supplierId": "X2", "companyName": "Two"}]
    )
    assert plain.json()[0]["statusCode"] == 200


def test_start_poll_download_and_invoke_without_data(env):
    api, _store = env
    pid = api.post("/v1/jobs/demo-suppliers/start").json()["processId"]
    status = finished(api, pid)
    assert (status["SyncState"], status["status"], status["rows_written"]) == (1, "success", 4)
    single = api.get(f"/v1/jobs/Demo suppliers/download/{pid}")
    assert single.status_code == 200 and single.text.startswith("external_id,name,email")
    assert "rows.csv" in single.headers["content-disposition"]
    run = api.post("/v1/imports/Demo products (page numbers)/invoke").json()
    assert run["status"] == "success" and run["rows_written"] == 95
    assert api.get(f"/v1/jobs/demo-suppliers/status/{run['id']}").status_code == 404


def test_download_is_a_zip_when_there_are_several_files_and_409_while_running(env):
    api, store = env
    store.modify(
        "jobs",
        "Demo suppliers",
        lambda j: {
            **j.model_dump(mode="json"),
            "mapping": [
                *j.model_dump(mode="json")["mapping"][:2],
                {"extract": "$.email", "generate": "phone", "type": "integer"},
            ],
        },
        source="cli",
    )
    pid = api.post("/v1/jobs/demo-suppliers/start").json()["processId"]
    finished(api, pid)
    zipped = api.get(f"/v1/jobs/demo-suppliers/download/{pid}")
    assert zipped.headers["content-type"] == "application/zip"
    assert sorted(zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()) == [
        "rejects.csv",
        "rows.csv",
    ]
    # A slow job: while it runs, download says 409, and a second start is queued once.
    store.modify(
        "jobs",
        "Demo suppliers",
        lambda j: {
            **j.model_dump(mode="json"),
            "calls": [{"path": "/suppliers", "query": [{"name": "slow", "value": "1"}]}],
            "mapping": j.model_dump(mode="json")["mapping"][:2],
        },
        source="cli",
    )
    first = api.post("/v1/jobs/demo-suppliers/start").json()["processId"]
    second = api.post("/v1/jobs/demo-suppliers/start").json()["processId"]
    third = api.post("/v1/jobs/demo-suppliers/start").json()["processId"]
    assert first != second and second == third  # one run, one queued behind it
    assert api.get(f"/v1/jobs/demo-suppliers/download/{first}").status_code == 409
    for pid in (first, second):
        finished(api, pid)
    runs = [api.get(f"/v1/jobs/demo-suppliers/status/{p}").json() for p in (first, second)]
    assert [r["status"] for r in runs] == ["success", "success"]
    assert runs[0]["finished_at"] <= runs[1]["started_at"]  # never at once


def test_synchronous_datafeed_and_its_timeout(env):
    api, store = env
    store.modify(
        "jobs",
        "Demo suppliers",
        lambda j: {**j.model_dump(mode="json"), "calls": [{"path": "/suppliers"}]},
        source="cli",
    )
    feed = api.get("/v1/datafeed/synchron/demo-suppliers")
    assert feed.status_code == 200 and feed.text.splitlines()[0].startswith("external_id,name")
    assert api.get("/v1/datafeed/synchron/nope").status_code == 404
    quick = Api(store, timeout=0.3)
    try:
        store.modify(
            "jobs",
            "Demo suppliers",
            lambda j: {
                **j.model_dump(mode="json"),
                "calls": [{"path": "/suppliers", "query": [{"name": "slow", "value": "1"}]}],
            },
            source="cli",
        )
        late = quick.get("/v1/datafeed/synchron/demo-suppliers")
        assert late.status_code == 202  # still running: where to poll
        assert "did not finish within 0.3 s" in late.json()["message"]
    finally:
        # the job is its until the slow run ends
        wait_for(lambda: not quick.daemon.running, 60, "the slow run to end", interval=0.1)
        quick.stop()


def test_debug_until_keeps_a_masked_trace_of_every_exchange(env):
    api, store = env
    store.modify(
        "jobs",
        "Demo suppliers",
        lambda j: {
            **j.model_dump(mode="json"),
            "calls": [{"path": "/suppliers"}],
            "mapping": j.model_dump(mode="json")["mapping"][:2],
        },
        source="cli",
    )
    assert (
        api.patch(
            "/v1/imports/demo-suppliers", json={"debugUntil": "2099-01-01T00:00:00Z"}
        ).status_code
        == 204
    )
    pid = api.post("/v1/jobs/demo-suppliers/start").json()["processId"]
    finished(api, pid)
    archive = zipfile.ZipFile(
        io.BytesIO(api.get(f"/v1/jobs/demo-suppliers/download/{pid}").content)
    )
    assert sorted(archive.namelist()) == ["rows.csv", "trace.jsonl"]
    trace = archive.read("trace.jsonl").decode()
    assert '"request_headers"' in trace and '"body_excerpt"' in trace
    assert "demo-secret" not in trace and '"Authorization": "••••••"' in trace
    api.patch("/v1/imports/demo-suppliers", json={"debugUntil": None})


def test_the_documented_example_script_works(env):
    import os
    import subprocess
    import sys

    api, _store = env
    token = api.session.headers["Authorization"].removeprefix("Bearer ")
    out = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "api_example.py")],
        env={**os.environ, "API_URL": f"{api.url}/v1", "API_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "status success - 4 rows" in out.stdout
    assert "rows.csv" in out.stdout


def test_options_lists_the_methods_and_a_missing_kind_is_named(env):
    api, _ = env
    one = requests.options(f"{api.url}/v1/imports/anything", timeout=10)
    assert one.status_code == 204
    assert one.headers["Allow"] == "DELETE, GET, OPTIONS, PATCH, PUT"
    assert requests.options(f"{api.url}/v1/imports", timeout=10).headers["Allow"] == (
        "GET, OPTIONS, POST"
    )
    wrong = api.post("/v1/imports/anything")
    assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]
    kindless = api.post("/v1/imports", json={"name": "No kind"})
    assert kindless.status_code == 422
    assert kindless.json()["error"] == "kind: is required (api or file)"
    document = requests.get(f"{api.url}/openapi.json", timeout=10).json()
    create = document["paths"]["/v1/imports"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Import"
    }
    assert {"201", "401", "409", "422"} <= set(create["responses"])
    assert create["security"] == [{"HTTPBearer": []}]
