"""Fixtures only: every test gets its own STUDIO_HOME, so no test sees another's configs; the
servers (tests/servers.py, tests/hostile.py) start once per session. Helpers are in
tests/helpers.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit import config as streamlit_config

from runner.processes import Processes
from studio.config.store import ConfigStore
from tests.helpers import CHROMIUM, FLAGS, ROOT, server_folder, wait_http
from tests.servers import (
    FtpServer,
    OidcProvider,
    Sandbox,
    SshServer,
    Vsftpd,
    free_port,
    need,
)

# AppTest runs the pages in this process: they see the studio as ``up`` starts it by default, on
# 127.0.0.1 (with no users, open as on a laptop; the access tests add users to their home).
streamlit_config.set_option("server.address", "127.0.0.1")


@pytest.fixture(autouse=True)
def worker_processes(monkeypatch):
    """The worker processes of every daemon a test makes are stopped when it ends: a daemon
    keeps them for its life, which a test's daemon would otherwise extend to the session's."""
    made = []
    init = Processes.__init__

    def tracked(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Processes, "__init__", tracked)
    yield
    for processes in made:
        processes.kill()


@pytest.fixture(autouse=True)
def main_module():
    """AppTest leaves the page it ran as ``sys.modules["__main__"]``, which a process spawned
    afterwards (the daemon's worker processes) would import again as it starts, running the
    page there. The daemon itself runs as ``python -m runner``, a ``__main__`` spawn skips."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("STUDIO_HOME", str(path))
    monkeypatch.delenv("STUDIO_SECRET_KEY", raising=False)
    return path


@pytest.fixture
def store(home) -> ConfigStore:
    return ConfigStore(home)


@pytest.fixture
def umask_022():
    """The common default umask, under which a file made with no mode is world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="session")
def sandbox_server():
    server = Sandbox()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """The session's sandbox, reset to its defaults (and tokens cleared) for each test."""
    from studio.http import TOKENS

    sandbox_server.state.reset()
    TOKENS._tokens.clear()
    return sandbox_server


# --- file servers: pyftpdlib and vsftpd for FTP and FTPS, OpenSSH's sshd for SFTP ---------------


def _server_fixture(factory):
    @pytest.fixture(scope="session")
    def fixture(tmp_path_factory):
        server = factory(tmp_path_factory)
        yield server
        server.stop()

    return fixture


ftp_server = _server_fixture(lambda t: FtpServer(t.mktemp("ftp") / "root"))
ftps_server = _server_fixture(lambda t: FtpServer(t.mktemp("ftps") / "root", tls=True))
ftp_list_server = _server_fixture(lambda t: FtpServer(t.mktemp("ftpl") / "root", listing="list"))
ftp_dos_server = _server_fixture(lambda t: FtpServer(t.mktemp("ftpd") / "root", listing="dos"))
ftp_nlst_server = _server_fixture(lambda t: FtpServer(t.mktemp("ftpn") / "root", listing="nlst"))
vsftpd_server = _server_fixture(lambda t: Vsftpd(t.mktemp("vsftpd")))
vsftpd_tls_server = _server_fixture(lambda t: Vsftpd(t.mktemp("vsftpds"), tls="explicit"))
vsftpd_implicit_server = _server_fixture(lambda t: Vsftpd(t.mktemp("vsftpdi"), tls="implicit"))
ssh_server = _server_fixture(lambda t: SshServer(t.mktemp("sshd")))

# Every file test runs against each of these: pyftpdlib with MLSD, without it (Unix LIST),
# with an IIS-style LIST and with NLST only; vsftpd plain and requiring TLS; OpenSSH's sshd.
FILE_SERVERS = {
    "ftp": ("ftp", "ftp_server"),
    "ftps": ("ftps", "ftps_server"),
    "ftp-list": ("ftp", "ftp_list_server"),
    "ftp-dos": ("ftp", "ftp_dos_server"),
    "ftp-nlst": ("ftp", "ftp_nlst_server"),
    "vsftpd": ("ftp", "vsftpd_server"),
    "vsftpd-ftps": ("ftps", "vsftpd_tls_server"),
    "sftp": ("sftp", "ssh_server"),
}


@pytest.fixture(params=list(FILE_SERVERS))
def server(request, home):
    """(connection, local folder) for a fresh folder on one of the file servers."""
    protocol, fixture = FILE_SERVERS[request.param]
    return server_folder(request.getfixturevalue(fixture), protocol)


@pytest.fixture(scope="session")
def oidc_provider():
    """The issuer URL (``http://127.0.0.1:PORT``) of a real OpenID Connect provider, once per
    session; ``ISSUER + "/.well-known/openid-configuration"`` is Streamlit's
    ``server_metadata_url``. tests/oidc.py signs a browser in through it."""
    provider = OidcProvider()
    wait_http(f"{provider.issuer}/.well-known/openid-configuration")
    yield provider.issuer
    provider.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """Debian's redis-server on a free port, in memory only, once per session."""
    from tests.dbservers import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL cluster of the session's own (initdb, as the postgres user under root)."""
    from tests.dbservers import PostgresServer

    server = PostgresServer()
    yield server
    from studio.pg import close_pools

    close_pools()
    server.stop()


@pytest.fixture(scope="module")
def module_database(request, postgres_server) -> str:
    """A PostgreSQL database of the test module's own (made once per module): its URL."""
    return postgres_server.database("m_" + request.module.__name__.rpartition(".")[2])


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, monkeypatch) -> str:
    """The stores a test runs against, once each: SQLite files in its home (the default), then
    PostgreSQL (``STUDIO_DATABASE_URL``: the module's database, emptied before each test)."""
    if request.param == "sqlite":
        monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
        return "sqlite"
    from tests.dbservers import empty_database

    url = request.getfixturevalue("module_database")
    empty_database(url)
    monkeypatch.setenv("STUDIO_DATABASE_URL", url)
    return "postgresql"


@pytest.fixture(scope="session")
def hostile_server():
    from tests.hostile import HostileServer

    server = HostileServer()
    yield server
    server.stop()


@pytest.fixture
def hostile(hostile_server):
    """The hostile API (tests/hostile.py), with what it captured cleared for each test."""
    hostile_server.reset()
    return hostile_server


@pytest.fixture(scope="session")
def studio(tmp_path_factory):
    """``python -m runner up`` on a fresh home, once for the session."""
    home = tmp_path_factory.mktemp("studio-home")
    port, sandbox_port = free_port(), free_port()
    env = {**os.environ, "STUDIO_HOME": str(home), "PYTHONPATH": str(ROOT)}
    log = open(tmp_path_factory.mktemp("logs") / "up.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "up",
            "--port",
            str(port),
            "--sandbox-port",
            str(sandbox_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/_stcore/health")
        wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats")
        yield url, Path(home), f"http://127.0.0.1:{sandbox_port}"
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0, "runner up did not stop cleanly on SIGTERM"
        log.close()


@pytest.fixture(scope="session")
def browser():
    need(f"Chromium ({CHROMIUM})", Path(CHROMIUM).exists(), "apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()
