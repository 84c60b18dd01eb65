"""One interface over FTP, FTPS and SFTP (studio/files.py), for real: every test runs against
each file server on 127.0.0.1 (pyftpdlib's listings, vsftpd plain and FTPS, OpenSSH's sshd);
paths are kept under the connection's root. What is only FTP's or SFTP's is in test_ftp.py and
test_sftp.py."""

from __future__ import annotations

import io
import os
import time

import pytest

from studio.config.kinds import CONNECTIONS
from studio.files import FileServerError, connect, resolve


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


def test_job_paths_and_roots_are_checked_at_save():
    from studio.config.jobs import FileSource

    assert FileSource(mode="path", path="/inbound/x.csv").path == "/inbound/x.csv"
    with pytest.raises(ValueError, match=r"'\.\.' would leave the connection's root folder"):
        FileSource(mode="path", path="../x.csv")
    with pytest.raises(ValueError, match=r"root\n.*must not contain '\.\.'"):
        CONNECTIONS.validate_config(
            {"kind": "file_server", "name": "x", "host": "h", "username": "u", "root": "../.."}
        )


def test_a_listing_is_capped(server, home):
    """A folder (or a server) that lists without end fails the listing, on every server."""
    conn, local = server
    for n in range(6):
        (local / f"f{n}.csv").write_text("x\n")
    with connect(conn, home) as client:
        assert len(client.list()) == 6
        client.max_entries = 5
        with pytest.raises(FileServerError, match=r"^List .*: more than 5 entries; give a folder"):
            client.list()
