"""SFTP through paramiko, with host keys pinned on first use in ``STUDIO_HOME/known_hosts``.

Every later connection checks the pinned key, and a changed key is refused with both
fingerprints. Reads are prefetched (paramiko requests the next blocks while the parser works).
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from studio.config.connections import FileServerConnection
from studio.config.jsonfile import file_lock
from studio.files import Entry, FileClient, FileServerError, network_failure, relative
from studio.private import private_dir, private_file


class _PinOnFirstUse:
    """paramiko's policy for an unknown host: remember its key (trust on first use)."""

    def __init__(self, known_hosts: Path):
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        lock = file_lock(self.known_hosts.with_suffix(".lock"))
        with lock, open(self.known_hosts, "a", encoding="utf-8") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def _load_key(text: str):
    import paramiko

    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        with contextlib.suppress(paramiko.SSHException, ValueError):
            return cls.from_private_key(io.StringIO(text))
    raise FileServerError(
        "Private key (SFTP): not an OpenSSH or PEM private key paramiko reads "
        "(Ed25519, ECDSA or RSA, without a passphrase)"
    )


class SftpClient(FileClient):
    def __init__(self, conn: FileServerConnection, known_hosts: Path, timeout: float = 30.0):
        import paramiko

        super().__init__(conn)
        where = f"{conn.host}:{conn.port}"
        self.ssh = paramiko.SSHClient()
        private_file(private_dir(known_hosts.parent) / known_hosts.name)  # 0600 in a 0700 home
        self.ssh.load_host_keys(str(known_hosts))
        self.ssh.set_missing_host_key_policy(_PinOnFirstUse(known_hosts))
        pkey = _load_key(conn.private_key) if conn.private_key else None
        try:
            self.ssh.connect(
                conn.host,
                conn.port,
                username=conn.username,
                password=conn.password or None,
                pkey=pkey,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                allow_agent=False,
                look_for_keys=False,
            )
            self.sftp = self.ssh.open_sftp()
        except paramiko.BadHostKeyException as e:
            raise FileServerError(
                f"The host key of {where} changed: it was {_fingerprint(e.expected_key)}, it is "
                f"now {_fingerprint(e.key)}. If the server was re-keyed on purpose, remove its "
                f"line from {known_hosts}; otherwise something is impersonating it"
            ) from None
        except paramiko.AuthenticationException:
            raise FileServerError(
                f"Login to {where} failed: the server refused user {conn.username!r} with "
                f"{'this private key' if pkey else 'this password'}"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise FileServerError(network_failure("connect to", conn, e)) from None

    def _wrap(self, action: str, path: str, fn, *args):
        try:
            return fn(*args)
        except FileNotFoundError:
            raise FileServerError(
                f"{action} {self.conn.protocol}://{self.conn.host}:"
                f"{self.conn.port}{path}: not found"
            ) from None
        except PermissionError:
            raise FileServerError(f"{action} {path}: permission denied") from None
        except OSError as e:
            raise FileServerError(f"{action} {path} failed: {e}") from None

    def list(self, folder: str = "") -> list[Entry]:
        full = self.path(folder)
        where = self.where(folder)
        attrs = self._wrap(
            "List", full, lambda: list(self.capped(self.sftp.listdir_iter(full), where))
        )
        return sorted(
            (
                Entry(
                    a.filename,
                    relative(self.root, posixpath.join(full, a.filename)),
                    stat.S_ISDIR(a.st_mode or 0),
                    a.st_size,
                    datetime.fromtimestamp(a.st_mtime, UTC) if a.st_mtime else None,
                )
                for a in attrs
            ),
            key=lambda e: e.name,
        )

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[IO[bytes]]:
        full = self.path(path)
        handle = self._wrap("Read", full, self.sftp.open, full, "rb")
        handle.prefetch()
        try:
            yield handle
        finally:
            handle.close()

    def _put(self, stream: IO[bytes], full: str) -> None:
        self._wrap("Upload", full, self.sftp.putfo, stream, full)

    def _rename(self, src: str, dst: str) -> None:
        self._wrap(f"Move {src} to", dst, self.sftp.posix_rename, src, dst)

    def _mkdir(self, full: str) -> None:
        self._wrap("Make folder", full, self.sftp.mkdir, full)

    def _delete(self, full: str) -> None:
        self._wrap("Delete", full, self.sftp.remove, full)

    def _exists(self, full: str) -> bool:
        try:
            self.sftp.stat(full)
            return True
        except FileNotFoundError:
            return False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sftp.close()
        self.ssh.close()


def _fingerprint(key) -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
