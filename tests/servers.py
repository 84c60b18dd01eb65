"""The real servers the tests run against, all on 127.0.0.1: the demo sandbox and the REST API
(uvicorn), pyftpdlib for FTP and FTPS, Debian's vsftpd, OpenSSH's sshd, an OpenID Connect
provider (oidc-provider-mock) for single sign-on; and the certificates they serve. The hostile
API is in tests/hostile.py; the fixtures that start these once per session are in
tests/conftest.py. Every wait for a server to come up has a deadline."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.helpers import FTP_PASSWORD, FTP_USER, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(what: str, present: bool, how: str) -> None:
    """A test that needs a server which is missing fails in CI and is skipped elsewhere."""
    if not present:
        message = f"{what} is missing: {how}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _serve_uvicorn(app, port: int, what: str, **config):
    """``app`` served by uvicorn on 127.0.0.1:``port`` in a thread, once it has started."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, f"{what} to start", interval=0.02)
    return server, thread


def _wait_listening(port: int, process: subprocess.Popen, log: Path, what: str) -> None:
    """Until ``process`` accepts connections on ``port``; its log if it ends or is late."""

    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{what} did not start: " + log.read_text())
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, 10, f"{what} to listen on port {port}")
    except AssertionError:
        raise RuntimeError(f"{what} did not start: " + log.read_text()) from None


# --- HTTP: the demo sandbox and the REST API ---------------------------------------------------


class Sandbox:
    """The demo sandbox API served by uvicorn on 127.0.0.1, once per test session."""

    def __init__(self) -> None:
        from runner.sandbox import SandboxState, create_app

        self.state = SandboxState()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server, self.thread = _serve_uvicorn(
            create_app(self.state), self.port, "the sandbox", lifespan="off"
        )

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


class Api:
    """The runner's REST API over uvicorn on 127.0.0.1, with its own daemon (the run queue) on
    ``store``, and a session that sends a valid API token."""

    def __init__(self, store, timeout: float = 3600.0):
        import requests

        from runner.api import create_app
        from runner.daemon import Daemon
        from studio.apitokens import create_token

        self.daemon = Daemon(store)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(store, self.daemon, synchron_timeout=timeout)
        self.server, self.thread = _serve_uvicorn(app, self.port, "the REST API")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {create_token(store, f'test {self.port}')}"

    def __getattr__(self, method):
        return lambda path, **kw: self.session.request(
            method.upper(), self.url + path, timeout=60, **kw
        )

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# --- certificates ------------------------------------------------------------------------------


def _certificate(key, hashes, ca: bool):
    """A certificate for 127.0.0.1 signed by ``key``, valid from yesterday to the day after."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    builder = (
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
    )
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    return builder.sign(key, hashes.SHA256())


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made here, for the FTPS server."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(key, hashes, ca=False)
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


def rsa_cert(folder: Path) -> tuple[Path, Path]:
    """An RSA certificate for 127.0.0.1 (vsftpd 3.0 reads RSA keys only)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _certificate(key, hashes, ca=True)
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


# --- file servers: pyftpdlib and vsftpd for FTP and FTPS, OpenSSH's sshd for SFTP ---------------


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

    user = FTP_USER

    def __init__(self, root: Path, tls: bool = False, listing: str = "mlsd"):
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


class Vsftpd:
    """Debian's vsftpd with its own config and port on 127.0.0.1, chrooted to ``root``.

    ``tls``: None (plain FTP), "explicit" (``force_local_logins_ssl``: a plain login is
    refused) or "implicit" (TLS from the first byte). vsftpd logs in local system users only,
    through PAM (``pam_shells``: the user needs a shell listed in /etc/shells), so the test
    session makes one, idempotently, as root; default ACLs on ``root`` let that user read, move
    and delete what the tests write there as root."""

    USER = "studioftp"
    user = USER

    def __init__(self, folder: Path, tls: str | None = None):
        import shutil

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
        _wait_listening(self.port, self.process, folder / "vsftpd.out", "vsftpd")

    @classmethod
    def ensure_user(cls) -> None:
        import pwd

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


def _ssh_keypair(path: Path) -> tuple[str, str]:
    """A new Ed25519 key written to ``path`` (0600): (private key, public key line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

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
    path.write_text(private)
    path.chmod(0o600)
    return private, public


class SshServer:
    """OpenSSH's sshd with its own config, host key and port; the test logs in as this user
    with a key made here (password logins are refused, as for a user without a password)."""

    def __init__(self, folder: Path):
        import getpass
        import shutil

        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        need("OpenSSH's sshd", Path(sshd).exists(), "apt-get install openssh-server")
        folder.mkdir(parents=True, exist_ok=True)
        self.root = folder / "files"
        self.root.mkdir()
        Path("/run/sshd").mkdir(exist_ok=True)
        _ssh_keypair(folder / "host_key")
        self.client_key, public = _ssh_keypair(folder / "client_key")
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
        _wait_listening(self.port, self.process, folder / "sshd.log", "sshd")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


# --- OpenID Connect: a real provider for single sign-on -----------------------------------------


class OidcProvider:
    """``oidc-provider-mock`` (PyPI) on 127.0.0.1 in a thread: a real OpenID Connect provider
    (Authlib's server side: discovery, authorize, token, userinfo, signed ID tokens). It takes
    any client id and secret, and its authorize page asks only for a subject: the claims of a
    subject are set beforehand with ``PUT /users/<sub>`` (tests/oidc.py does both)."""

    def __init__(self) -> None:
        import oidc_provider_mock
        import werkzeug.serving

        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.server = werkzeug.serving.make_server(
            "127.0.0.1", self.port, oidc_provider_mock.app(), threaded=True
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
