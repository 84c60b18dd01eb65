"""Plain helpers the tests share: configs as a form sends them, separate processes on a home,
waiting for an event with a deadline, the demo's configs against this session's sandbox, and
what several test files do (run a chain, run the CLI, open a page).

The servers are in ``tests/servers.py`` and the fixtures in ``tests/conftest.py``; no test file
imports another test file."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from studio.config.jobs import ApiJob
from studio.config.kinds import CONNECTIONS
from studio.config.store import ConfigStore
from studio.engine import Chain, Limits
from studio.http import HttpClient

ROOT = Path(__file__).resolve().parent.parent

FTP_USER, FTP_PASSWORD = "demo", "ftp-secret-pw"

T = TypeVar("T")


# --- waiting ---------------------------------------------------------------------------------


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy, and return that; fail naming
    ``what`` after ``timeout`` seconds. Tests wait for an event this way, never a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# --- configs as a form sends them --------------------------------------------------------------


def api_connection(name: str = "Shop API", **overrides) -> dict:
    """A valid API connection with OAuth 2.0 and a secret header, as a form would send it."""
    data = {
        "kind": "api",
        "name": name,
        "base_url": "https://api.example.com/v1",
        "auth": {
            "type": "oauth2",
            "token_url": "https://api.example.com/oauth/token",
            "client_id": "studio-client",
            "client_secret": "client-secret-value-42",
        },
        "headers": [{"name": "X-Api-Key", "value": "header-secret-value-7"}],
    }
    data.update(overrides)
    return data


def sftp_connection(name: str = "Supplier SFTP", **overrides) -> dict:
    data = {
        "kind": "file_server",
        "name": name,
        "protocol": "sftp",
        "host": "files.example.com",
        "username": "importer",
        "password": "sftp-password-value-9",
    }
    data.update(overrides)
    return data


def server_folder(srv, protocol: str, **overrides):
    """A connection to a fresh folder of ``srv`` (a server of tests/servers.py), and that
    folder on the local disk."""
    folder = f"t{uuid.uuid4().hex[:8]}"
    local = srv.root / folder
    local.mkdir()
    if protocol == "sftp":
        data = {"username": srv.user, "private_key": srv.client_key, "root": str(local)}
    else:
        data = {
            "username": srv.user,
            "password": FTP_PASSWORD,
            "root": f"/{folder}",
            "verify_tls": False,
        }
    data = {
        "kind": "file_server",
        "name": protocol.upper(),
        "protocol": protocol,
        "host": "127.0.0.1",
        "port": srv.port,
        **data,
        **overrides,
    }
    return CONNECTIONS.validate_config(data), local


def ftp_connection(ftp_server, root: str) -> dict:
    """A connection named "FTP" to ``root`` on the session's pyftpdlib server."""
    return {
        "kind": "file_server",
        "name": "FTP",
        "protocol": "ftp",
        "host": "127.0.0.1",
        "port": ftp_server.port,
        "username": FTP_USER,
        "password": FTP_PASSWORD,
        "root": root,
    }


# --- separate processes ------------------------------------------------------------------------


def run_python(code: str, home: Path, **kwargs) -> subprocess.Popen:
    """Start a separate Python process on the same store (the studio, CLI and runner are)."""
    env = {**os.environ, "STUDIO_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, **kwargs)


def runner(*args: str, home) -> subprocess.CompletedProcess:
    """``python -m runner …`` as a user runs it, on ``home`` (and on the test's PostgreSQL when
    it runs against one: ``STUDIO_DATABASE_URL``)."""
    env = {"STUDIO_HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    if os.environ.get("STUDIO_DATABASE_URL"):
        env["STUDIO_DATABASE_URL"] = os.environ["STUDIO_DATABASE_URL"]
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def serve(home, api_port: int, *options: str) -> subprocess.Popen:
    """``python -m runner serve`` (the daemon and the REST API) on ``home``, logging JSON."""
    env = {**os.environ, "STUDIO_HOME": str(home), "PYTHONPATH": str(ROOT)}
    command = ["serve", "--json-logs", "--api-port", str(api_port), *options]
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


# --- the demo configs against this session's sandbox -------------------------------------------


@contextlib.contextmanager
def serving_studio(home: Path, log_folder: Path, port: int | None = None):
    """The studio (``app.py``) on ``home``, started with ``runner up``'s own command on
    127.0.0.1 and ``port`` (a free one if None), its secrets from ``home/secrets.toml`` too:
    its URL."""
    from runner.up import studio_command
    from tests.servers import free_port

    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "STUDIO_HOME": str(home), "PYTHONPATH": str(ROOT)}
    with open(log_folder / "streamlit.log", "w") as log:
        process = subprocess.Popen(
            studio_command("127.0.0.1", port, home),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(f"{url}/_stcore/health")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=20)


def point_demo_at(store: ConfigStore, sandbox_url: str) -> None:
    """The demo connection points at port 8765; point it at this session's sandbox instead."""
    store.modify(
        "connections",
        "Demo sandbox",
        lambda c: c.model_copy(
            update={
                "base_url": f"{sandbox_url}/api",
                "auth": c.auth.model_copy(update={"token_url": f"{sandbox_url}/oauth/token"}),
            }
        ),
        source="cli",
    )


PRODUCTS = "Demo products (page numbers)"


def demo(store: ConfigStore, sandbox) -> ConfigStore:
    """The demo configs in ``store``, pointed at the session's sandbox."""
    from studio.config.files import EXAMPLES, import_configs

    import_configs(store, EXAMPLES)
    point_demo_at(store, sandbox.url)
    return store


def reject_every_product(store: ConfigStore) -> None:
    """Map each price into a datetime field: every record becomes a reject."""
    store.modify(
        "jobs",
        PRODUCTS,
        lambda j: j.model_copy(
            update={
                "mapping": [
                    *j.mapping[:3],
                    j.mapping[3].model_copy(
                        update={
                            "extract": "$.price.amount",
                            "generate": "created_at",
                            "type": "datetime",
                        }
                    ),
                ]
            }
        ),
        source="cli",
    )


def slow_products(store: ConfigStore, seconds: float) -> None:
    """Each page of the products job takes ``seconds`` (the sandbox's ``?slow=``)."""
    store.modify(
        "jobs",
        PRODUCTS,
        lambda j: j.model_copy(
            update={"calls": [j.calls[0].model_copy(update={"path": f"/products?slow={seconds}"})]}
        ),
        source="cli",
    )


def products_job(store: ConfigStore, name: str, slow: float = 0.0, page_size: int = 20, **job):
    """A job of the sandbox's 95 products on the demo connection, ``page_size`` a page, each
    page ``slow`` seconds late (the sandbox's ``?slow=``), every minute unless ``job`` says."""
    query = [{"name": "slow", "value": str(slow)}] if slow else []
    return store.create(
        "jobs",
        {
            "kind": "api",
            "name": name,
            "connection_id": "Demo sandbox",
            "entity": "Products",
            "schedule": {"type": "minutes", "every": 1},
            "calls": [
                {
                    "path": "/products",
                    "query": query,
                    "behavior": {"type": "pagination", "page_size": page_size},
                }
            ],
            "content_finder": "$.items",
            "mapping": [
                {"extract": "$.id", "generate": "external_id"},
                {"extract": "$.title", "generate": "name"},
                {"extract": "$.category.code", "generate": "classification_category_id"},
            ],
            **job,
        },
        source="cli",
    )


def pid_of(run) -> int:
    """The PID of the process that claimed ``run`` (its owner, ``host:pid``)."""
    return int(run.owner.rpartition(":")[2])


def bulk_suppliers_job(**overrides) -> dict:
    """ "Suppliers files": the ``;``-separated CSV files of the connection "FTP"'s ``in``
    folder into Suppliers, each moved to ``done`` once imported."""
    return {
        "kind": "file",
        "name": "Suppliers files",
        "connection_id": "FTP",
        "entity": "Suppliers",
        "source": {"mode": "bulk", "inbound": "in", "outbound": "done"},
        "csv": {"delimiter": ";"},
        "mapping": [
            {"extract": "id", "generate": "external_id"},
            {"extract": "company", "generate": "name"},
        ],
        **overrides,
    }


SUPPLIERS = {
    "kind": "api",
    "connection_id": "Demo sandbox",
    "entity": "Suppliers",
    "schedule": {"type": "minutes", "every": 1},
    "content_finder": "$.suppliers",
    "mapping": [
        {"extract": "$.supplierId", "generate": "external_id"},
        {"extract": "$.companyName", "generate": "name"},
    ],
}


def setup(store: ConfigStore, sandbox, **job):
    """The demo connection on the sandbox and one job, "Suppliers every minute" (the demo jobs
    are deleted: their schedules would interfere)."""
    from studio.config.files import EXAMPLES, import_configs

    import_configs(store, EXAMPLES)
    for name in [j.name for j in store.list("jobs")]:
        store.delete("jobs", name, source="cli")
    point_demo_at(store, sandbox.url)
    return store.create(
        "jobs",
        {"name": "Suppliers every minute", "calls": [{"path": "/suppliers"}], **SUPPLIERS, **job},
        source="cli",
    )


def watch(history, run_id: str, until, timeout: float = 60):
    """Poll the history for the run until ``until(run)``; the run as last seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = history.get(run_id)
        if run and until(run):
            return run
        time.sleep(0.05)
    return history.get(run_id)


# --- the engine against the sandbox ------------------------------------------------------------

PRODUCT_MAPPING = [
    {"extract": "$.id", "generate": "external_id"},
    {"extract": "$.title", "generate": "name"},
    {"extract": "$.category.code", "generate": "classification_category_id"},
    {"extract": "$.price.amount", "generate": "price_amount_as_text"},
]


def oauth(sandbox, **extra) -> dict:
    """The sandbox's OAuth 2.0 client credentials, with ``extra`` settings."""
    return {
        "type": "oauth2",
        "token_url": f"{sandbox.url}/oauth/token",
        "client_id": "demo-client",
        "client_secret": "demo-secret",
        **extra,
    }


def conn_for(sandbox, **overrides):
    """An API connection named "Sandbox" to the sandbox's API, with OAuth 2.0."""
    data = {
        "kind": "api",
        "name": "Sandbox",
        "base_url": f"{sandbox.url}/api",
        "auth": oauth(sandbox),
    }
    data.update(overrides)
    return CONNECTIONS.validate_config(data)


def job_for(calls, finder="$.items", entity="Products", mapping=None) -> ApiJob:
    mapping = (
        mapping
        if mapping is not None
        else [m for m in PRODUCT_MAPPING if m["generate"] != "price_amount_as_text"]
    )
    return ApiJob(
        name="Test job",
        connection_id="c",
        entity=entity,
        calls=calls,
        content_finder=finder,
        mapping=mapping,
    )


def supplier_job(query=()) -> ApiJob:
    return job_for(
        [{"path": "/suppliers", "query": list(query)}],
        finder="$.suppliers",
        entity="Suppliers",
        mapping=[
            {"extract": "$.supplierId", "generate": "external_id"},
            {"extract": "$.companyName", "generate": "name"},
        ],
    )


def run_chain(job, conn, up_to_call=None, **limits) -> tuple[list, list, list[str]]:
    """A real run (no preview limits unless given): records, exchanges, events' messages."""
    exchanges, messages = [], []

    def on_event(e):
        if e["kind"] in ("log", "stop"):
            messages.append(e["message"])

    with HttpClient(conn, retries=3, backoff=0.01, on_exchange=lambda x: exchanges.append(x)) as c:
        chain = Chain(job, conn, c, Limits(**limits), on_event=on_event)
        records = [r for batch in chain.batches(up_to_call) for r in batch]
    return records, exchanges, messages


def ids(records) -> list[str]:
    return [r["id"] for r in records]


# --- pages and the home's modes ----------------------------------------------------------------


def page(path: str):
    """The studio through Streamlit's AppTest, on the page at ``path`` ("" is the Overview)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    if path:
        at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def modes(home: Path) -> dict[str, int]:
    """Every folder and file under ``home`` (and itself), relative name → permission bits."""
    import stat

    found = {".": stat.S_IMODE(home.stat().st_mode)}
    for path in home.rglob("*"):
        found[str(path.relative_to(home))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(home: Path) -> None:
    exposed = {
        name: oct(mode)
        for name, mode in modes(home).items()
        if mode != (0o700 if (home / name).is_dir() else 0o600)
    }
    assert not exposed, f"readable by others or not 0700/0600: {exposed}"


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTPUT = ROOT / "test-output"


def wait_http(url: str, timeout: float = 60) -> None:
    """Until ``url`` answers 200, for ``timeout`` seconds at most."""

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for(answers, timeout, f"{url} to answer 200", interval=0.3)
