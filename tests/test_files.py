"""File servers for real: pyftpdlib (FTP, FTPS with a certificate made here) and OpenSSH's sshd
(SFTP), all on 127.0.0.1. One set of tests runs against each protocol."""

from __future__ import annotations

import io

import pytest

from studio.files import FileServerError, connect, resolve
from studio.kinds import CONNECTIONS
from tests.conftest import FTP_PASSWORD, FTP_USER


def test_list_read_upload_move_mkdir_delete(server, home):
    conn, local = server
    (local / "in").mkdir()
    (local / "in" / "a.csv").write_bytes(b"id;name\n1;Lamp\n")
    with connect(conn, home) as client:
        assert [(e.name, e.is_dir) for e in client.list()] == [("in", True)]
        [entry] = client.list("in")
        assert (entry.name, entry.path, entry.size, entry.is_dir) == (
            "a.csv",
            "in/a.csv",
            15,
            False,
        )
        assert entry.modified is not None
        with client.open("in/a.csv") as stream:
            assert stream.read() == b"id;name\n1;Lamp\n"
        client.makedirs("out/2026/11")
        client.upload(io.BytesIO(b"x" * 100_000), "out/2026/11/b.csv")
        client.rename("in/a.csv", "out/a.csv")
        assert client.exists("out/a.csv") and not client.exists("in/a.csv")
        client.delete("out/a.csv")
        assert [e.name for e in client.list("out/2026/11")] == ["b.csv"]  # no .part left
    assert (local / "out/2026/11/b.csv").read_bytes() == b"x" * 100_000


def test_paths_cannot_leave_the_root(server, home):
    conn, _local = server
    with connect(conn, home) as client:
        for bad, message in [
            ("../secret", "'..' would leave the root folder"),
            ("in/../../x", "'..' would leave the root folder"),
            ("/etc/passwd", "is outside the root folder"),
            ("a\x00b", "NUL bytes are not allowed"),
        ]:
            with pytest.raises(FileServerError, match=message.replace("(", r"\(")):
                client.list(bad)
        with pytest.raises(FileServerError, match="not found"), client.open("missing.csv") as f:
            f.read()


def test_resolve():
    assert resolve("/data", "in/a.csv") == "/data/in/a.csv"
    assert resolve("/data", "in/../out/./a.csv") == "/data/out/a.csv"
    assert resolve("/", "a") == "/a"
    assert resolve("/data", "/data/in") == "/data/in"
    assert resolve("data/", "") == "/data"


def test_wrong_password_names_the_login_step(server, home):
    conn, _ = server
    bad = conn.model_copy(update={"password": "wrong", "private_key": ""})
    with pytest.raises(FileServerError, match=r"^Login to 127\.0\.0\.1:\d+ failed"):
        connect(bad, home)


def test_a_changed_sftp_host_key_is_refused(ssh_server, home):
    conn = CONNECTIONS.validate_config(
        {
            "kind": "file_server",
            "name": "SFTP",
            "protocol": "sftp",
            "host": "127.0.0.1",
            "port": ssh_server.port,
            "username": ssh_server.user,
            "private_key": ssh_server.client_key,
            "root": str(ssh_server.root),
        }
    )
    connect(conn, home).close()  # pinned on first use
    pinned = (home / "known_hosts").read_text()
    assert pinned.startswith(f"[127.0.0.1]:{ssh_server.port} ssh-ed25519 ")
    connect(conn, home).close()  # and accepted after
    import paramiko

    other = paramiko.RSAKey.generate(1024)
    (home / "known_hosts").write_text(
        f"[127.0.0.1]:{ssh_server.port} ssh-rsa {other.get_base64()}\n"
    )
    with pytest.raises(FileServerError, match=r"The host key of 127\.0\.0\.1:\d+ changed"):
        connect(conn, home)


def test_ftps_checks_the_certificate_unless_told_not_to(ftps_server, home):
    conn = CONNECTIONS.validate_config(
        {
            "kind": "file_server",
            "name": "FTPS",
            "protocol": "ftps",
            "host": "127.0.0.1",
            "port": ftps_server.port,
            "username": FTP_USER,
            "password": FTP_PASSWORD,
        }
    )
    with pytest.raises(
        FileServerError, match=r"TLS with 127\.0\.0\.1:\d+ failed: CERTIFICATE_VERIFY"
    ):
        connect(conn, home)
    plain = conn.model_copy(update={"protocol": "ftp"})
    with pytest.raises(FileServerError):  # the server requires TLS
        connect(plain, home).list()


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("127.0.0.1", 9, "127.0.0.1:9 refused the connection"),
        ("nonexistent-host.invalid", 21, "Cannot resolve the host name 'nonexistent-host.invalid'"),
    ],
)
def test_unreachable_servers(home, host, port, message):
    for protocol in ("ftp", "sftp"):
        conn = CONNECTIONS.validate_config(
            {
                "kind": "file_server",
                "name": "x",
                "protocol": protocol,
                "host": host,
                "port": port,
                "username": "u",
                "password": "p",
            }
        )
        with pytest.raises(FileServerError, match=message):
            connect(conn, home, timeout=5)


def test_test_connection_for_file_servers(server, home):
    from studio.connectivity import check_connection

    conn, local = server
    (local / "in").mkdir()
    (local / "a.csv").write_text("x\n")
    check = check_connection(conn, home)
    assert check.ok, check.message
    assert check.message.endswith("the root folder holds 1 folder(s) and 1 file(s)")
    bad = check_connection(conn.model_copy(update={"password": "nope", "private_key": ""}), home)
    assert not bad.ok and bad.message.startswith(f"{conn.name}: Login to 127.0.0.1:")
