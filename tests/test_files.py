"""File servers for real: pyftpdlib (FTP, FTPS with a certificate made here) and OpenSSH's sshd
(SFTP), all on 127.0.0.1. One set of tests runs against each protocol."""

from __future__ import annotations

import io
import os
import re
import time

import pytest

from studio.config.kinds import CONNECTIONS
from studio.files import FileServerError, connect, resolve
from tests.helpers import server_folder


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


@pytest.mark.parametrize(
    ("fixture", "mode"),
    [
        ("ftps_server", "explicit"),
        ("vsftpd_tls_server", "explicit"),
        ("vsftpd_implicit_server", "implicit"),
    ],
)
def test_ftps_trusts_a_ca_or_a_pinned_fingerprint(request, home, fixture, mode):
    srv = request.getfixturevalue(fixture)
    cert = (
        srv.root.parent / ("vsftpd-cert.pem" if "vsftpd" in fixture else "cert.pem")
    ).read_text()
    conn, local = server_folder(srv, "ftps", verify_tls=True, ftps_mode=mode)
    (local / "a.csv").write_text("x\n")
    with pytest.raises(FileServerError) as refused:
        connect(conn, home)
    message = str(refused.value)
    assert message.startswith(
        f"TLS with 127.0.0.1:{srv.port} failed: the server's certificate is not trusted: "
        "self-signed certificate (its SHA-256 fingerprint is "
    )
    fingerprint = re.search(r"fingerprint is ([0-9A-F:]{95})", message).group(1)
    for trusted in (
        {"ca_certificate": cert},
        {"tls_fingerprint": fingerprint},
        {"tls_fingerprint": fingerprint.replace(":", "").lower()},
    ):
        good, _ = server_folder(
            srv, "ftps", verify_tls=True, ftps_mode=mode, root=conn.root, **trusted
        )
        with connect(good, home) as client:
            assert [e.name for e in client.list()] == ["a.csv"]
            with client.open("a.csv") as stream:  # a data connection too
                assert stream.read() == b"x\n"
    other = "AA:" * 31 + "AA"
    pinned, _ = server_folder(srv, "ftps", ftps_mode=mode, tls_fingerprint=other)
    with pytest.raises(FileServerError, match=f"has the fingerprint {fingerprint}, not the pinned"):
        connect(pinned, home)


@pytest.mark.parametrize("fixture", ["ftps_server", "vsftpd_tls_server"])
def test_a_plain_login_to_a_server_that_requires_tls_says_so(request, home, fixture):
    conn, _ = server_folder(request.getfixturevalue(fixture), "ftp")
    with pytest.raises(FileServerError, match="the server requires TLS: choose FTPS"):
        connect(conn, home)


def test_explicit_ftps_against_an_implicit_server_and_back(
    vsftpd_implicit_server, ftp_server, home
):
    implicit_as_explicit, _ = server_folder(vsftpd_implicit_server, "ftps")
    with pytest.raises(FileServerError, match="implicit"):
        connect(implicit_as_explicit, home, timeout=1)
    plain_as_ftps, _ = server_folder(ftp_server, "ftps")
    with pytest.raises(FileServerError, match="does not offer TLS: AUTH TLS was answered"):
        connect(plain_as_ftps, home)


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


def test_a_missing_folder_is_not_an_empty_one(server, home):
    """vsftpd lists a missing folder as empty: the client must not take that for "no files"."""
    conn, local = server
    (local / "empty").mkdir()
    (local / "a.csv").write_text("x\n")
    with connect(conn, home) as client:
        assert client.list("empty") == []
        with pytest.raises(FileServerError, match=r"missing.*not found"):
            client.list("missing")
        assert client.exists("empty") and client.exists("a.csv")
        assert not client.exists("missing") and not client.exists("empty/a.csv")


def test_listing_times_are_exact_where_the_order_matters(server, home):
    conn, local = server
    (local / "in").mkdir()
    for name, age in [("new.csv", 10), ("old.csv", 40)]:
        (local / "in" / name).write_text("x\n")
        stamp = time.time() - age
        os.utime(local / "in" / name, (stamp, stamp))
    with connect(conn, home) as client:
        entries = {e.name: e for e in client.list("in")}
        for e in entries.values():
            exact = e.modified if e.precise else client.modified(e.path)
            assert abs(exact.timestamp() - (local / e.path).stat().st_mtime) < 1.5


def test_absolute_paths_inside_the_root_are_accepted(server, home):
    conn, local = server
    (local / "in").mkdir()
    (local / "in" / "a.csv").write_text("x\n")
    root = conn.root.rstrip("/")
    with connect(conn, home) as client:
        assert [e.name for e in client.list(f"{root}/in")] == ["a.csv"]
        with pytest.raises(FileServerError, match=f"is outside the root folder {root}$"):
            client.list("/elsewhere")


def test_a_folder_the_user_cannot_write_names_the_command_and_the_answer(vsftpd_server, home):
    import subprocess

    conn, local = server_folder(vsftpd_server, "ftp")
    (local / "locked").mkdir()
    subprocess.run(["setfacl", "-m", "u:studioftp:rx", local / "locked"], check=True)
    with connect(conn, home) as client, pytest.raises(FileServerError) as failed:
        client.makedirs("locked/sub")
    assert str(failed.value) == (
        f"MKD ftp://127.0.0.1:{vsftpd_server.port}{conn.root}/locked/sub failed: check that "
        f"user 'studioftp' may write to {conn.root}/locked (the server answered "
        "'550 Create directory operation failed.')"
    )


def test_parse_list_reads_unix_and_ms_dos_listings():
    from datetime import UTC, datetime

    from studio.ftp import parse_list

    unix = parse_list(
        [
            "total 12",
            "drwxr-xr-x    2 ftp      ftp          4096 Jan 02  2024 in box",
            "-rw-r--r--    1 1000     1000        12345 Mar 14 09:26 a b.csv",
            "lrwxrwxrwx    1 ftp      ftp             5 Jan 02  2024 latest -> a.csv",
        ]
    )
    assert [(n, d, s) for n, d, s, _ in unix] == [
        ("in box", True, 4096),
        ("a b.csv", False, 12345),
        ("latest", False, 5),
    ]
    assert unix[0][3] == datetime(2024, 1, 2, tzinfo=UTC)
    dos = parse_list(
        [
            "11-20-26  04:50PM       <DIR>          Archive 2026",
            "11-21-26  09:05AM              1048576 PRODUCTS.CSV",
        ]
    )
    assert dos == [
        ("Archive 2026", True, None, datetime(2026, 11, 20, 16, 50, tzinfo=UTC)),
        ("PRODUCTS.CSV", False, 1048576, datetime(2026, 11, 21, 9, 5, tzinfo=UTC)),
    ]
    with pytest.raises(FileServerError, match="neither Unix ls -l nor MS-DOS/IIS"):
        parse_list(["+i8388621.29609,m824255902,/,\tdev"])


def test_job_paths_and_roots_are_checked_at_save():
    from studio.config.jobs import FileSource

    assert FileSource(mode="path", path="/inbound/x.csv").path == "/inbound/x.csv"
    with pytest.raises(ValueError, match=r"'\.\.' would leave the connection's root folder"):
        FileSource(mode="path", path="../x.csv")
    with pytest.raises(ValueError, match=r"root\n.*must not contain '\.\.'"):
        CONNECTIONS.validate_config(
            {"kind": "file_server", "name": "x", "host": "h", "username": "u", "root": "../.."}
        )
