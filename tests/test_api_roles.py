"""Roles on the REST API (issue 16): a token acts for a user with that user's role now, can
expire, and a viewer's token changes nothing (403). The audit trail and the run history record
the token's user. Against a real uvicorn server, the real store, and ``runner`` subprocesses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from studio.access import Who
from studio.apitokens import create_token, parse_expiry, verify
from studio.config.store import ConfigStore
from studio.errors import ConfigError
from studio.runhistory import RunHistory
from studio.users import add_user, set_role
from tests.helpers import point_demo_at, runner, wait_for
from tests.servers import Api

PASSWORD = "a long enough password"


# --- tokens and users -----------------------------------------------------------------------


def test_a_token_acts_for_its_user_with_the_role_they_have_now(store):
    add_user(store, "boss", PASSWORD, "admin")  # the last admin's role cannot change
    add_user(store, "ana", PASSWORD, "viewer", "ana@example.com")
    token = create_token(store, "ana's script", user="ANA")  # stored as the user spells it
    assert store.get("api_tokens", "ana's script").user == "ana"
    assert verify(store, token) == Who("ana", "viewer", "token", "ana@example.com")
    set_role(store, "ana", "editor")
    assert verify(store, token).role == "editor"  # at the next call, not the next token
    store.set_status("users", "ana", "disabled", source="cli")
    assert verify(store, token) is None
    store.set_status("users", "ana", "active", source="cli")
    assert verify(store, token).name == "ana"
    store.set_status("api_tokens", "ana's script", "disabled", source="cli")
    assert verify(store, token) is None
    store.set_status("api_tokens", "ana's script", "active", source="cli")
    store.delete("users", "ana", source="cli")
    assert verify(store, token) is None
    add_user(store, "ana", PASSWORD, "admin")  # another person given the name later
    assert verify(store, token) is None
    assert verify(store, "") is None and verify(store, "cs_nope") is None


def test_a_token_without_a_user_is_an_admin_named_after_it(store):
    token = create_token(store, "erp")  # as before tokens had users
    assert verify(store, token) == Who("erp", "admin", "token")


def test_a_token_expires(store):
    add_user(store, "ana", PASSWORD, "editor")
    token = create_token(store, "t", user="ana", expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert verify(store, token).name == "ana"
    past = datetime.now(UTC) - timedelta(seconds=1)
    store.modify(
        "api_tokens", "t", lambda t: t.model_copy(update={"expires_at": past}), source="cli"
    )
    assert verify(store, token) is None
    with pytest.raises(ConfigError, match="is already past"):
        create_token(store, "u", user="ana", expires_at=past)


def test_a_token_for_no_such_user_is_refused_in_one_sentence(store):
    with pytest.raises(ConfigError) as e:
        create_token(store, "t", user="nobody")
    assert e.value.messages == [
        "User: there is no user called 'nobody' (runner users add nobody makes one)"
    ]
    assert store.list("api_tokens") == []


def test_expiries_people_write():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_expiry("30d", now) == datetime(2026, 5, 31, 12, 0, tzinfo=UTC)
    assert parse_expiry("12h", now) == datetime(2026, 5, 2, 0, 0, tzinfo=UTC)
    assert parse_expiry("2027-01-31", now) == datetime(2027, 1, 31, tzinfo=UTC)
    assert parse_expiry("2027-01-31T08:00+02:00", now).utcoffset() == timedelta(hours=2)
    with pytest.raises(ConfigError, match="'soon' is not 30d, 12h, 90m, a date"):
        parse_expiry("soon", now)


# --- the REST API -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory, sandbox_server):
    from studio.config.files import EXAMPLES, import_configs
    from studio.http import TOKENS

    sandbox_server.state.reset()
    TOKENS._tokens.clear()
    store = ConfigStore(tmp_path_factory.mktemp("roles-home"))
    import_configs(store, EXAMPLES)
    point_demo_at(store, sandbox_server.url)
    api = Api(store)
    sessions = {}
    for name, role in (("vera", "viewer"), ("ed", "editor"), ("root", "admin")):
        add_user(store, name, PASSWORD, role)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {create_token(store, name, user=name)}"
        sessions[name] = session
    yield api, store, sessions
    api.stop()


def call(session, api, method: str, path: str, **kw) -> requests.Response:
    return session.request(method, api.url + path, timeout=60, **kw)


def test_a_viewer_reads_everything_and_changes_nothing(env):
    api, store, s = env
    vera = s["vera"]
    for path in ("/v1/imports", "/v1/connections", "/v1/entities", "/v1/imports/demo-suppliers"):
        assert call(vera, api, "GET", path).status_code == 200, path
    before = len(store.audit())
    refused = [
        ("POST", "/v1/imports", {"kind": "api", "name": "x"}),
        ("PUT", "/v1/imports/demo-suppliers", {}),
        ("PATCH", "/v1/imports/demo-suppliers", {"debugUntil": None}),
        ("DELETE", "/v1/imports/demo-suppliers", None),
        ("POST", "/v1/imports/demo-suppliers/clone", None),
        ("POST", "/v1/imports/demo-suppliers/invoke", None),
        ("POST", "/v1/imports/demo-suppliers/invoke", {"data": [{"supplierId": "V"}]}),
        ("PUT", "/v1/imports/demo-suppliers/replaceConnection", {"connection": "x"}),
        ("POST", "/v1/connections", {"kind": "api", "name": "x"}),
        ("PUT", "/v1/connections/Demo sandbox", {}),
        ("DELETE", "/v1/connections/Demo sandbox", None),
        ("POST", "/v1/entities", {"name": "x"}),
        ("PUT", "/v1/entities/Products", {}),
        ("DELETE", "/v1/entities/Products", None),
        ("POST", "/v1/entities/Products/fields", {"name": "x"}),
        ("POST", "/v1/jobs/demo-suppliers/start", None),
        ("GET", "/v1/datafeed/synchron/demo-suppliers", None),
    ]
    for method, path, body in refused:
        r = call(vera, api, method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
        needs = "an admin" if method == "DELETE" and "connections" in path else "an editor"
        assert r.json() == {
            "error": f"vera is a viewer: to call {method} {path} needs {needs} or above"
        }
    assert len(store.audit()) == before  # nothing changed
    assert RunHistory(store.home).list(job_name="Demo suppliers") == []  # nothing ran


def test_changes_through_the_api_are_audited_under_the_tokens_user(env):
    api, store, s = env
    new = {"kind": "api", "name": "Temp API", "base_url": "https://api.example.com"}
    made = call(s["ed"], api, "POST", "/v1/connections", json=new)  # an async endpoint
    assert made.status_code == 201, made.text
    job = call(s["ed"], api, "POST", "/v1/imports/demo-suppliers/clone")  # a sync one: threads
    assert job.status_code == 201
    gone = call(s["ed"], api, "DELETE", f"/v1/imports/{job.json()['id']}")
    assert gone.status_code == 204
    refused = call(s["ed"], api, "DELETE", "/v1/connections/Temp API")
    assert refused.status_code == 403
    assert refused.json()["error"] == (
        "ed is an editor: to call DELETE /v1/connections/Temp API needs an admin or above"
    )
    assert call(s["root"], api, "DELETE", "/v1/connections/Temp API").status_code == 204
    trail = [(e["action"], e["name"], e["user"]) for e in store.audit()[:4]]
    assert trail == [
        ("delete", "Temp API", "root"),
        ("delete", "Copy of Demo suppliers", "ed"),
        ("create", "Copy of Demo suppliers", "ed"),
        ("create", "Temp API", "ed"),
    ]
    printed = runner("connections", "audit", "Temp API", home=store.home).stdout
    assert "delete   'Temp API' by api (root)" in printed
    assert "create   'Temp API' by api (ed)" in printed
    audit = call(s["vera"], api, "GET", "/v1/imports/demo-suppliers/audit").json()
    assert all("user" in e for e in audit)
    # a token with no user (made before users) acts as an admin named after it
    legacy = api.post("/v1/connections", json=new | {"name": "Legacy"})
    assert legacy.status_code == 201
    assert store.audit()[0]["user"] == f"test {api.port}"  # the name tests.servers.Api gives
    assert api.delete("/v1/connections/Legacy").status_code == 204


def test_runs_started_through_the_api_record_who_started_them(env):
    api, store, s = env
    pid = call(s["ed"], api, "POST", "/v1/jobs/demo-suppliers/start").json()["processId"]

    def ended():
        status = call(s["vera"], api, "GET", f"/v1/jobs/demo-suppliers/status/{pid}").json()
        return status if status["SyncState"] != 2 else None

    status = wait_for(ended, 60, f"run {pid} to end", interval=0.1)
    assert (status["status"], status["started_by"]) == ("success", "ed")
    history = RunHistory(store.home)
    assert history.get(pid).started_by == "ed"
    run = call(s["root"], api, "POST", "/v1/imports/demo-suppliers/invoke").json()
    assert (run["status"], run["started_by"]) == ("success", "root")
    pushed = call(
        s["ed"],
        api,
        "POST",
        "/v1/imports/demo-suppliers/invoke",
        json={"data": [{"supplierId": "R1", "companyName": "Roles Inc"}]},
    )
    assert pushed.json()[0]["statusCode"] == 200
    latest = history.list(job_name="Demo suppliers", limit=1)[0]
    assert (latest.trigger, latest.started_by) == ("api", "ed")  # in asyncio.to_thread


def test_a_role_changed_or_a_user_removed_counts_at_the_next_call(env):
    api, store, _ = env
    add_user(store, "tmp", PASSWORD, "editor")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {create_token(store, 'tmp', user='tmp')}"
    new = {"kind": "api", "name": "Tmp conn", "base_url": "https://api.example.com"}
    assert call(session, api, "POST", "/v1/connections", json=new).status_code == 201
    set_role(store, "tmp", "viewer")
    assert call(session, api, "PUT", "/v1/connections/Tmp conn", json=new).status_code == 403
    assert call(session, api, "GET", "/v1/connections/Tmp conn").status_code == 200
    store.delete("users", "tmp", source="cli")
    gone = call(session, api, "GET", "/v1/connections")
    assert gone.status_code == 401 and gone.headers["WWW-Authenticate"] == "Bearer"
    store.delete("connections", "Tmp conn", source="cli")


def test_an_expired_token_is_401(env):
    api, store, _ = env
    token = create_token(
        store, "short", user="ed", expires_at=datetime.now(UTC) + timedelta(hours=1)
    )
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{api.url}/v1/imports", headers=headers, timeout=10).status_code == 200
    past = datetime.now(UTC) - timedelta(seconds=1)
    store.modify(
        "api_tokens", "short", lambda t: t.model_copy(update={"expires_at": past}), source="cli"
    )
    late = requests.get(f"{api.url}/v1/imports", headers=headers, timeout=10)
    assert late.status_code == 401
    assert late.json() == {"error": "a valid 'Authorization: Bearer <token>' header is required"}


def test_the_document_says_which_operations_need_which_role(env):
    api, _, _ = env
    paths = requests.get(f"{api.url}/openapi.json", timeout=10).json()["paths"]
    create = paths["/v1/imports"]["post"]
    assert "403" in create["responses"] and "Needs an editor's token" in create["description"]
    assert create["responses"]["403"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    delete = paths["/v1/connections/{ref}"]["delete"]
    assert "403" in delete["responses"] and "Needs an admin's token." in delete["description"]
    assert "403" in paths["/v1/datafeed/synchron/{external_key}"]["get"]["responses"]
    for read in (paths["/v1/imports"]["get"], paths["/v1/jobs/{ref}/status/{process_id}"]["get"]):
        assert "403" not in read["responses"] and "401" in read["responses"]


# --- the CLI ----------------------------------------------------------------------------------


def test_runner_api_token_for_a_user_with_an_expiry(home):
    store = ConfigStore(home)
    made = runner("api-token", "create", "erp", home=home)  # no users yet: as on a laptop
    assert made.returncode == 0 and "acts as an admin (no user)" in made.stderr
    add_user(store, "ana", PASSWORD, "viewer")
    refused = runner("api-token", "create", "other", home=home)
    assert (refused.returncode, refused.stderr) == (
        2,
        "error: --user: give the user the token acts for (its role is theirs); "
        "runner users list shows them\n",
    )
    nobody = runner("api-token", "create", "x", "--user", "bob", home=home)
    assert nobody.stderr == (
        "error: User: there is no user called 'bob' (runner users add bob makes one)\n"
    )
    bad = runner("api-token", "create", "x", "--user", "ana", "--expires", "soon", home=home)
    assert bad.returncode == 2 and bad.stderr.startswith("error: Expires: 'soon' is not 30d")
    made = runner("api-token", "create", "ana-30", "--user", "ana", "--expires", "30d", home=home)
    assert made.returncode == 0, made.stderr
    assert "acts for 'ana', expires " in made.stderr
    assert verify(store, made.stdout.strip()).role == "viewer"
    store.modify(
        "api_tokens",
        "erp",
        lambda t: t.model_copy(update={"expires_at": datetime.now(UTC) - timedelta(days=1)}),
        source="cli",
    )
    listed = json.loads(runner("api-token", "list", "--json", home=home).stdout)
    by_name = {t["name"]: t for t in listed}
    assert (by_name["erp"]["user"], by_name["erp"]["role"], by_name["erp"]["expired"]) == (
        "",
        "admin",
        True,
    )
    ana = by_name["ana-30"]
    assert (ana["user"], ana["role"], ana["expired"]) == ("ana", "viewer", False)
    in_30_days = datetime.fromisoformat(ana["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < in_30_days <= timedelta(days=30)
    assert all("hash" not in t for t in listed)
    table = runner("api-token", "list", home=home).stdout.splitlines()
    assert table[0].split() == [
        *("NAME", "PREFIX", "USER", "ROLE", "EXPIRES", "EXPIRED", "STATUS", "CREATED")
    ]
    erp = next(line for line in table if line.startswith("erp "))
    assert "(none: admin)" in erp and " yes " in erp
    store.delete("users", "ana", source="cli")
    gone = next(
        line
        for line in runner("api-token", "list", home=home).stdout.splitlines()
        if line.startswith("ana-30")
    )
    assert "none (user gone or disabled)" in gone
    text = (home / "configs.json").read_text()
    assert made.stdout.strip() not in text


# --- who started a run ------------------------------------------------------------------------


def test_a_run_records_who_started_it(store, sandbox):
    from studio.access import acting
    from studio.runs import run_job, start_in_background
    from tests.helpers import demo, watch

    demo(store, sandbox)
    history = RunHistory(store.home)
    assert run_job(store, "Demo suppliers").started_by == ""  # the CLI's way: no one acting
    token = acting.set(Who("ana", "editor"))
    try:
        assert run_job(store, "Demo suppliers").started_by == "ana"  # the acting user
        assert run_job(store, "Demo suppliers", started_by="").started_by == ""  # explicit
        pressed = start_in_background(store, "Demo suppliers", started_by="bo")
    finally:
        acting.reset(token)
    ended = watch(history, pressed.id, lambda r: r.status not in ("queued", "running"))
    assert (ended.status, ended.started_by) == ("success", "bo")
    cli = runner("run", "Demo suppliers", "--json", home=store.home)
    assert json.loads(cli.stdout)["started_by"] == ""  # the trigger says "manual" already
    table = runner("runs", "list", home=store.home).stdout.splitlines()
    column = table[0].index(" BY ") + 1
    by = {line.split()[0]: line[column : column + 4].strip() for line in table[1:]}
    assert by[pressed.id] == "bo" and by[json.loads(cli.stdout)["id"]] == ""
    shown = runner("runs", "show", pressed.id, home=store.home).stdout
    assert "  started by:    bo\n" in shown
