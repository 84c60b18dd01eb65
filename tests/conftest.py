"""Shared fixtures: every test gets its own STUDIO_HOME, so no test sees another's configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from studio.config.store import ConfigStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("STUDIO_HOME", str(path))
    monkeypatch.delenv("STUDIO_SECRET_KEY", raising=False)
    return path


@pytest.fixture
def store(home) -> ConfigStore:
    return ConfigStore(home)


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


def run_python(code: str, home: Path, **kwargs):
    """Start a separate Python process on the same store (the studio, CLI and runner are)."""
    import subprocess

    env = {**os.environ, "STUDIO_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, **kwargs)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sandbox:
    """The demo sandbox API served by uvicorn on 127.0.0.1, once per test session."""

    def __init__(self) -> None:
        import threading
        import time

        import uvicorn

        from runner.sandbox import SandboxState, create_app

        self.state = SandboxState()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(self.state),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.02)

    def settings(self, **values) -> None:
        import requests

        requests.post(f"{self.url}/_sandbox/settings", json=values, timeout=5).raise_for_status()

    def fault(
        self, path: str, status: int, times: int = 1, retry_after: str | None = None, body: str = ""
    ) -> None:
        self.settings(
            fault={
                "path": path,
                "status": status,
                "times": times,
                "retry_after": retry_after,
                "body": body,
            }
        )

    def hits(self, path: str) -> int:
        import requests

        return requests.get(f"{self.url}/_sandbox/stats", timeout=5).json()["hits"].get(path, 0)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


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


# --- file servers: pyftpdlib for FTP and FTPS, OpenSSH's sshd for SFTP ---------------------------

FTP_USER, FTP_PASSWORD = "demo", "ftp-secret-pw"


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made here, for the FTPS server."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _dos_listing_fs():
    """pyftpdlib's file system answering LIST in the MS-DOS format of IIS."""
    import stat
    import time

    from pyftpdlib.filesystems import AbstractedFS

    class DosFS(AbstractedFS):
        def format_list(self, basedir, listing, ignore_err=True):
            for name in listing:
                st = self.lstat(os.path.join(basedir, name))
                stamp = time.strftime("%m-%d-%y  %I:%M%p", time.gmtime(st.st_mtime))
                size = "<DIR>" if stat.S_ISDIR(st.st_mode) else str(st.st_size)
                yield f"{stamp} {size:>20} {name}\r\n".encode(self.cmd_channel.encoding)

    return DosFS


class FtpServer:
    """pyftpdlib on 127.0.0.1 in a thread; ``tls`` makes it explicit FTPS (TLS required).

    ``listing`` takes commands away, as older servers do: "mlsd" (all of them), "list" (no
    MLSD/MLST: Unix ``ls -l`` lines), "dos" (no MLSD, LIST in the MS-DOS/IIS format), "nlst"
    (no MLSD and no LIST: names only)."""

    def __init__(self, root: Path, tls: bool = False, listing: str = "mlsd"):
        import threading

        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
        from pyftpdlib.servers import ThreadedFTPServer

        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        authorizer = DummyAuthorizer()
        authorizer.add_user(FTP_USER, FTP_PASSWORD, str(root), perm="elradfmwMT")
        base = TLS_FTPHandler if tls else FTPHandler
        attrs = {"authorizer": authorizer, "banner": "test ftpd", "auth_failed_timeout": 0.1}
        if listing != "mlsd":
            gone = {"MLSD", "MLST"} | ({"LIST"} if listing == "nlst" else set())
            attrs["proto_cmds"] = {k: v for k, v in base.proto_cmds.items() if k not in gone}
        if listing == "dos":
            attrs["abstracted_fs"] = _dos_listing_fs()
        if tls:
            cert, key = self_signed_cert(root.parent)
            attrs |= {
                "certfile": str(cert),
                "keyfile": str(key),
                "tls_control_required": True,
                "tls_data_required": True,
            }
        handler = type("Handler", (base,), attrs)
        self.server = ThreadedFTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"timeout": 0.2}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.close_all()


def need(what: str, present: bool, how: str) -> None:
    """A test that needs a server which is missing fails in CI and is skipped elsewhere."""
    if not present:
        message = f"{what} is missing: {how}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class Vsftpd:
    """Debian's vsftpd with its own config and port on 127.0.0.1, chrooted to ``root``.

    ``tls``: None (plain FTP), "explicit" (``force_local_logins_ssl``: a plain login is
    refused) or "implicit" (TLS from the first byte). vsftpd logs in local system users only,
    through PAM (``pam_shells``: the user needs a shell listed in /etc/shells), so the test
    session makes one, idempotently, as root; default ACLs on ``root`` let that user read, move
    and delete what the tests write there as root."""

    USER = "studioftp"

    def __init__(self, folder: Path, tls: str | None = None):
        import shutil
        import subprocess
        import time

        binary = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
        need("Debian's vsftpd", Path(binary).exists(), "apt-get install vsftpd acl")
        need("setfacl", bool(shutil.which("setfacl")), "apt-get install acl")
        need("root (vsftpd logs in system users)", os.geteuid() == 0, "run the tests as root")
        self.ensure_user()
        folder.mkdir(parents=True, exist_ok=True)
        self.root = folder / "root"
        self.root.mkdir()
        subprocess.run(
            ["setfacl", "-m", f"u:{self.USER}:rwx", "-d", "-m", f"u:{self.USER}:rwx", self.root],
            check=True,
        )
        # and let it through the folders above (pytest's are private to root)
        parents = [p for p in self.root.parents if p != Path("/")]
        subprocess.run(["setfacl", "-m", f"u:{self.USER}:x", *parents], check=True)
        self.port = free_port()
        lines = [
            "listen=YES",
            "listen_ipv6=NO",
            "listen_address=127.0.0.1",
            f"listen_port={self.port}",
            "background=NO",
            "anonymous_enable=NO",
            "local_enable=YES",
            "write_enable=YES",
            "local_umask=022",
            "chroot_local_user=YES",
            "allow_writeable_chroot=YES",
            f"local_root={self.root}",
            "pasv_enable=YES",
            "secure_chroot_dir=/var/run/vsftpd/empty",
            "pam_service_name=vsftpd",
            "seccomp_sandbox=NO",
            "xferlog_enable=NO",
            "delay_failed_login=0",
            f"vsftpd_log_file={folder / 'vsftpd.log'}",
        ]
        if tls:
            cert, key = rsa_cert(folder)
            self.cert = cert
            lines += [
                "ssl_enable=YES",
                "force_local_logins_ssl=YES",
                "force_local_data_ssl=YES",
                f"rsa_cert_file={cert}",
                f"rsa_private_key_file={key}",
                f"implicit_ssl={'YES' if tls == 'implicit' else 'NO'}",
            ]
        Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)
        config = folder / "vsftpd.conf"
        config.write_text("\n".join(lines) + "\n")
        self.log = open(folder / "vsftpd.out", "w")  # noqa: SIM115 - open while vsftpd runs
        self.process = subprocess.Popen(
            [binary, str(config)], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while True:
            with socket_module().socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("vsftpd did not start: " + (folder / "vsftpd.out").read_text())
            time.sleep(0.05)

    @classmethod
    def ensure_user(cls) -> None:
        import pwd
        import subprocess

        home = Path("/var/lib") / cls.USER
        home.mkdir(parents=True, exist_ok=True)
        try:
            pwd.getpwnam(cls.USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--shell", "/bin/bash", "--home-dir", str(home), cls.USER],
                check=True,
            )
        subprocess.run(["chpasswd"], input=f"{cls.USER}:{FTP_PASSWORD}\n", text=True, check=True)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


def rsa_cert(folder: Path) -> tuple[Path, Path]:
    """An RSA certificate for 127.0.0.1 (vsftpd 3.0 reads RSA keys only)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "vsftpd-cert.pem", folder / "vsftpd-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class SshServer:
    """OpenSSH's sshd with its own config, host key and port; the test logs in as this user
    with a key made here (password logins are refused, as for a user without a password)."""

    def __init__(self, folder: Path):
        import getpass
        import shutil
        import subprocess
        import time

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        need("OpenSSH's sshd", Path(sshd).exists(), "apt-get install openssh-server")
        folder.mkdir(parents=True, exist_ok=True)
        self.root = folder / "files"
        self.root.mkdir()
        Path("/run/sshd").mkdir(exist_ok=True)

        def keypair(name: str) -> tuple[str, str]:
            key = ed25519.Ed25519PrivateKey.generate()
            private = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            ).decode()
            public = (
                key.public_key()
                .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
                .decode()
            )
            (folder / name).write_text(private)
            (folder / name).chmod(0o600)
            return private, public

        keypair("host_key")
        self.client_key, public = keypair("client_key")
        (folder / "authorized_keys").write_text(public + "\n")
        self.user = getpass.getuser()
        self.port = free_port()
        config = folder / "sshd_config"
        config.write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {folder / "host_key"}
PidFile {folder / "sshd.pid"}
AuthorizedKeysFile {folder / "authorized_keys"}
PermitRootLogin yes
StrictModes no
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel ERROR
""")
        self.log = open(folder / "sshd.log", "w")  # noqa: SIM115 - open while sshd runs
        self.process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stderr=self.log)
        deadline = time.monotonic() + 10
        while True:
            with socket_module().socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sshd did not start: " + (folder / "sshd.log").read_text())
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


def socket_module():
    import socket

    return socket


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory):
    server = FtpServer(tmp_path_factory.mktemp("ftp") / "root")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ftps_server(tmp_path_factory):
    server = FtpServer(tmp_path_factory.mktemp("ftps") / "root", tls=True)
    yield server
    server.stop()


def _server_fixture(factory):
    @pytest.fixture(scope="session")
    def fixture(tmp_path_factory):
        server = factory(tmp_path_factory)
        yield server
        server.stop()

    return fixture


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


def server_folder(srv, protocol: str, **overrides):
    """A connection to a fresh folder of ``srv``, and that folder on the local disk."""
    import uuid

    folder = f"t{uuid.uuid4().hex[:8]}"
    local = srv.root / folder
    local.mkdir()
    if protocol == "sftp":
        data = {
            "username": srv.user,
            "private_key": srv.client_key,
            "root": str(local),
        }
    else:
        vsftpd = isinstance(srv, Vsftpd)
        data = {
            "username": Vsftpd.USER if vsftpd else FTP_USER,
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
    return _connection(data), local


def _connection(data: dict):
    from studio.config.kinds import CONNECTIONS

    return CONNECTIONS.validate_config(data)


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
