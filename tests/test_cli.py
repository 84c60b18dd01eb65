"""``python -m runner``, run as a user runs it: a separate process on the same store."""

from __future__ import annotations

import json

import pytest

from runner.docsgen import generated_docs
from studio.config.store import ConfigStore
from tests.helpers import (
    api_connection,
    point_demo_at,
    runner,
    server_folder,
    sftp_connection,
)


def test_help_lists_the_subcommands(home):
    out = runner("--help", home=home)
    assert out.returncode == 0
    for command in ("up", "connections", "export", "import", "docs"):
        assert f"    {command}" in out.stdout


def test_connections_list_show_status_delete_and_audit(home):
    store = ConfigStore(home)
    store.create("connections", api_connection(), source="studio")
    store.create("connections", sftp_connection(), source="studio")
    listing = runner("connections", "list", home=home)
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "TARGET", "AUTH", "STATUS", "UPDATED"]
    assert (
        "Shop API" in lines[1]
        and "OAuth 2.0" in lines[1]
        and "https://api.example.com/v1" in lines[1]
    )
    assert "sftp://files.example.com:22/" in lines[2]
    shown = runner("connections", "show", "shop api", home=home)
    assert json.loads(shown.stdout)["auth"]["client_secret"] == "••••••"
    assert "client-secret-value-42" not in shown.stdout + listing.stdout
    assert runner("connections", "disable", "Shop API", home=home).stdout.strip() == (
        "connection 'Shop API' is disabled"
    )
    assert store.get("connections", "Shop API").status == "disabled"
    audit = runner("connections", "audit", "Shop API", home=home).stdout
    assert "disable  'Shop API' by cli" in audit and "status: 'active' → 'disabled'" in audit
    assert runner("connections", "delete", "supplier sftp", home=home).returncode == 0
    assert [c.name for c in store.list("connections")] == ["Shop API"]


def test_errors_are_one_readable_line_and_exit_2(home):
    out = runner("connections", "show", "missing", home=home)
    assert (out.returncode, out.stderr) == (2, "error: No connection called 'missing'\n")
    assert out.stdout == ""


def test_export_then_import_dry_run(home, tmp_path):
    ConfigStore(home).create("connections", api_connection(), source="studio")
    out = runner("export", str(tmp_path / "x"), home=home)
    assert out.stdout == f"exported 1 config(s) to {tmp_path / 'x'}\n"
    other = tmp_path / "other"
    # The export masked the secrets, so a new store cannot take it: the dry run says so.
    dry = runner("import", str(tmp_path / "x"), "--dry-run", home=other)
    assert dry.returncode == 1
    assert dry.stdout.startswith("(dry run) error     connection 'Shop API'")
    assert "Client secret, Header value still masked and nothing stored to keep" in dry.stdout
    assert not (other / "configs.json").exists()
    # Into the store it came from, the masked file is a no-op.
    again = runner("import", str(tmp_path / "x"), home=home)
    assert (again.returncode, again.stdout) == (0, "unchanged connection 'Shop API'\n")
    secrets = runner("export", str(tmp_path / "y"), "--include-secrets", home=home)
    assert "secrets in clear" in secrets.stderr
    dry = runner("import", str(tmp_path / "y"), "--dry-run", home=other)
    assert dry.stdout == "(dry run) create    connection 'Shop API'\n"
    assert not (other / "configs.json").exists()


def test_committed_docs_are_up_to_date():
    """Fails when the config model or the CLI changed and `python -m runner docs` was not run."""
    for path, text in generated_docs().items():
        assert path.exists(), f"{path} is missing; run `python -m runner docs`"
        assert path.read_text("utf-8") == text, f"{path} is stale; run `python -m runner docs`"


def test_test_connection_and_preview_against_the_sandbox(home, sandbox):
    from studio.config.files import EXAMPLES, import_configs

    store = ConfigStore(home)
    import_configs(store, EXAMPLES)
    point_demo_at(store, sandbox.url)
    ok = runner("test-connection", "demo sandbox", home=home)
    assert (ok.returncode, ok.stdout) == (
        0,
        (
            f"Demo sandbox: connected and the token endpoint issued a token; {sandbox.url}/api is "
            "reachable\n"
        ),
    )
    out = runner("preview", "Demo suppliers", home=home)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("token      POST   200") and "/oauth/token" in lines[0]
    assert lines[1].startswith("Call 1 (Suppliers) GET    200") and lines[1].endswith("/suppliers")
    assert lines[-1].startswith("4 records, 4 rows, 0 rejects in ")
    trace = json.loads(
        runner(
            "preview", "Demo products (page numbers)", "--pages", "2", "--json", home=home
        ).stdout
    )
    assert len(trace["records"]) == 40
    assert trace["stopped"] == ["Call 1 (Products): stopped after 2 pages: preview limit"]
    assert "demo-secret" not in json.dumps(trace)
    store.modify(
        "connections",
        "Demo sandbox",
        lambda c: c.model_copy(
            update={"auth": c.auth.model_copy(update={"client_secret": "wrong"})}
        ),
        source="cli",
    )
    bad = runner("test-connection", "demo sandbox", home=home)
    assert bad.returncode == 1 and "answered 401 Unauthorized" in bad.stderr
    failed = runner("preview", "Demo suppliers", home=home)
    assert failed.returncode == 1 and failed.stderr.startswith("error: the token endpoint")


@pytest.mark.parametrize("fixture", ["ftp_server", "vsftpd_server"])
def test_test_connection_and_preview_of_a_file_job(home, request, fixture):
    srv = request.getfixturevalue(fixture)
    conn, folder = server_folder(srv, "ftp", name="Files")
    (folder / "in").mkdir(parents=True, exist_ok=True)
    (folder / "in" / "s.csv").write_text("id;company\nS1;Acme\n")
    store = ConfigStore(home)
    store.create("connections", conn.model_dump(), source="cli")
    store.create(
        "jobs",
        {
            "kind": "file",
            "name": "Suppliers CSV",
            "connection_id": "Files",
            "entity": "Suppliers",
            "source": {"mode": "path", "path": "in/s.csv"},
            "csv": {"delimiter": ";"},
            "mapping": [
                {"extract": "id", "generate": "external_id"},
                {"extract": "company", "generate": "name"},
            ],
        },
        source="cli",
    )
    ok = runner("test-connection", "files", home=home)
    assert (ok.returncode, ok.stdout.strip()) == (
        0,
        f"Files: logged in to ftp://127.0.0.1:{srv.port}{conn.root}; the root folder holds "
        "1 folder and 0 files",
    )
    out = runner("preview", "Suppliers CSV", home=home)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("1 record, 1 row, 0 rejects in ")
    store.modify(
        "connections", "Files", lambda c: c.model_copy(update={"password": "bad"}), source="cli"
    )
    bad = runner("test-connection", "files", home=home)
    assert bad.returncode == 1
    assert bad.stderr.startswith(f"Files: Login to 127.0.0.1:{srv.port} failed")


def test_next_runs(home, sandbox):
    from studio.config.files import EXAMPLES, import_configs

    import_configs(ConfigStore(home), EXAMPLES)
    out = runner("next-runs", "Demo offers (export, poll and download)", "-n", "3", home=home)
    lines = out.stdout.splitlines()
    assert lines[0] == (
        "Demo offers (export, poll and download): on the last weekday of every month at 06:00 UTC"
    )
    assert len(lines) == 4 and all(line.endswith("06:00 UTC") for line in lines[1:])
    assert lines[1][:3] in ("Mon", "Tue", "Wed", "Thu", "Fri")


def test_run_a_job_and_a_run_that_times_out(home, sandbox):
    from studio.config.files import EXAMPLES, import_configs

    store = ConfigStore(home)
    import_configs(store, EXAMPLES)
    point_demo_at(store, sandbox.url)
    out = runner("run", "Demo suppliers", home=home)
    assert out.returncode == 0, out.stderr
    assert "of 'Demo suppliers': success: 4 records, 4 rows written, 0 rejected" in out.stdout
    store.modify(
        "jobs",
        "Demo suppliers",
        lambda j: j.model_copy(
            update={"calls": [j.calls[0].model_copy(update={"path": "/suppliers?slow=1"})]}
        ),
        source="cli",
    )
    slow = runner("run", "Demo suppliers", "--timeout", "0.5", "--json", home=home)
    assert slow.returncode == 1
    run = json.loads(slow.stdout)
    assert run["status"] == "failed"
    assert run["error"] == "stopped: the run took longer than its timeout of 0.5 s"


def test_api_tokens_are_shown_once_and_stored_as_a_hash(home):
    made = runner("api-token", "create", "erp", home=home)
    token = made.stdout.strip()
    assert made.returncode == 0 and token.startswith("cs_") and len(token) > 40
    assert token not in (home / "configs.json").read_text()
    from studio.apitokens import verify

    assert verify(ConfigStore(home), token).name == "erp"  # no user: an admin named "erp"
    listed = runner("api-token", "list", home=home).stdout
    assert "erp" in listed and token[:7] + "…" in listed and token not in listed
    assert runner("api-token", "revoke", "erp", home=home).returncode == 0
    assert verify(ConfigStore(home), token) is None


def test_up_points_the_demo_connections_at_its_sandbox_unless_someone_moved_them(home):
    from runner.up import point_demo_at_sandbox, studio_command
    from studio.config.files import seed_examples

    store = ConfigStore(home)
    seed_examples(store)
    mine = api_connection("Mine", base_url="http://127.0.0.1:8765/api")
    store.create("connections", mine, source="studio")
    assert point_demo_at_sandbox(store, 8765) == []  # the default port: nothing to do
    # Another port: the demo connection follows, its secret kept; the analyst's own does not.
    assert point_demo_at_sandbox(store, 9123) == ["Demo sandbox"]
    demo = store.get("connections", "Demo sandbox", reveal=True)
    assert (demo.base_url, demo.auth.token_url, demo.auth.client_secret) == (
        "http://127.0.0.1:9123/api",
        "http://127.0.0.1:9123/oauth/token",
        "demo-secret",
    )
    assert store.audit("connections", demo.id)[0]["source"] == "runner"
    assert store.get("connections", "Mine").base_url == "http://127.0.0.1:8765/api"
    assert store.get("connections", "Demo SFTP").port == 2222
    # The next ``up`` moves it again (``up`` set that address), back to the default too.
    assert point_demo_at_sandbox(store, 9123) == []
    assert point_demo_at_sandbox(store, 8765) == ["Demo sandbox"]
    # Once an analyst points it somewhere, even at another local port, it stays there.
    store.modify(
        "connections",
        "Demo sandbox",
        lambda c: c.model_copy(update={"base_url": "http://127.0.0.1:7000/api"}),
        source="studio",
    )
    assert point_demo_at_sandbox(store, 9123) == []
    assert store.get("connections", "Demo sandbox").base_url == "http://127.0.0.1:7000/api"
    # Streamlit is started without its file watcher (it walked .venv and data/).
    command = studio_command("127.0.0.1", 8501, home)
    assert command[command.index("--server.fileWatcherType") + 1] == "none"
