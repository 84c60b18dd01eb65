"""FTP and FTPS (studio/ftp.py) against pyftpdlib and Debian's vsftpd on 127.0.0.1: TLS
trusted through a CA or a pinned fingerprint, explicit and implicit FTPS, a server that requires
TLS, a folder the user may not write, and the LIST formats of Unix and IIS."""

from __future__ import annotations

import re

import pytest

from studio.files import FileServerError, connect
from tests.helpers import server_folder


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
