"""SFTP (studio/sftp.py) against OpenSSH's sshd on 127.0.0.1: the host key is pinned on first
use and a changed one is refused."""

from __future__ import annotations

import pytest

from studio.config.kinds import CONNECTIONS
from studio.files import FileServerError, connect


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
