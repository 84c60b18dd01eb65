"""File servers: one small interface over FTP, FTPS (explicit TLS) and SFTP.

A job only ever lists a folder, streams a file, uploads, renames, makes a folder or deletes, so
``FileClient`` has those and nothing else; ``connect`` picks the implementation. Every path is
taken relative to the connection's root folder and checked before it reaches the server
(``resolve``): ``..`` that climbs out of the root, absolute paths outside it and NUL bytes are
refused. SFTP host keys are pinned on first use in ``STUDIO_HOME/known_hosts`` and checked on
every later connection. Uploads go to a temporary name and are renamed when complete.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import posixpath
import socket
import ssl
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from studio.errors import StudioError
from studio.models import FileServerConnection
from studio.storage import file_lock


class FileServerError(StudioError):
    """A file server operation that failed; the message names the step and the path."""


@dataclass(frozen=True)
class Entry:
    name: str
    path: str  # relative to the connection's root
    is_dir: bool
    size: int | None = None
    modified: datetime | None = None


def resolve(root: str, path: str) -> str:
    """The server path for ``path`` under ``root``; refuses anything that would leave it."""
    if "\x00" in path:
        raise FileServerError(f"Path {path!r}: NUL bytes are not allowed")
    root = posixpath.normpath("/" + root.strip("/")) if root.strip("/") else "/"
    if path.startswith("/"):
        full = posixpath.normpath(path)
    else:
        parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
        depth = 0
        for p in parts:
            depth += -1 if p == ".." else 1
            if depth < 0:
                raise FileServerError(f"Path {path!r}: '..' would leave the root folder {root}")
        full = posixpath.normpath(posixpath.join(root, *parts)) if parts else root
    if full != root and not full.startswith(root.rstrip("/") + "/"):
        raise FileServerError(f"Path {path!r} is outside the root folder {root}")
    return full


def relative(root: str, full: str) -> str:
    root = posixpath.normpath("/" + root.strip("/")) if root.strip("/") else "/"
    return posixpath.relpath(full, root) if full != root else ""


class FileClient:
    """What a job needs from a file server. Paths are relative to the connection's root."""

    def __init__(self, conn: FileServerConnection):
        self.conn = conn
        self.root = conn.root or "/"

    def path(self, rel: str) -> str:
        return resolve(self.root, rel)

    def where(self, rel: str) -> str:
        return f"{self.conn.protocol}://{self.conn.host}:{self.conn.port}{self.path(rel)}"

    # Implemented by each protocol.
    def list(self, folder: str = "") -> list[Entry]:
        raise NotImplementedError

    def open(self, path: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        raise NotImplementedError

    def _put(self, stream: IO[bytes], full: str) -> None:
        raise NotImplementedError

    def _rename(self, src: str, dst: str) -> None:
        raise NotImplementedError

    def _mkdir(self, full: str) -> None:
        raise NotImplementedError

    def _delete(self, full: str) -> None:
        raise NotImplementedError

    def _exists(self, full: str) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        pass

    # Shared behaviour.
    def exists(self, path: str) -> bool:
        return self._exists(self.path(path))

    def rename(self, src: str, dst: str) -> None:
        self._rename(self.path(src), self.path(dst))

    def delete(self, path: str) -> None:
        self._delete(self.path(path))

    def makedirs(self, folder: str) -> None:
        """Make ``folder`` and its parents; existing ones are fine."""
        full = self.path(folder)
        parts = [p for p in full.split("/") if p]
        current = ""
        for part in parts:
            current += "/" + part
            if not self._exists(current):
                self._mkdir(current)

    def upload(self, stream: IO[bytes], path: str) -> None:
        """Write to a temporary name in the same folder, then rename: a reader never sees a
        half-written file."""
        full = self.path(path)
        folder, name = posixpath.split(full)
        tmp = posixpath.join(folder, f".{name}.part")
        self._put(stream, tmp)
        if self._exists(full):
            self._delete(full)
        self._rename(tmp, full)

    def __enter__(self) -> FileClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- FTP and FTPS --------------------------------------------------------------------------------


def _ftp_error(action: str, where: str, e: Exception) -> FileServerError:
    text = str(e).strip()
    code = text[:3]
    if code == "530":
        return FileServerError(f"Login to {where} failed: wrong user name or password ({text})")
    if code in ("550", "553"):
        return FileServerError(f"{action} {where}: not found or permission denied ({text})")
    return FileServerError(f"{action} {where} failed: {text}")


class FtpClient(FileClient):
    def __init__(self, conn: FileServerConnection, timeout: float = 30.0):
        super().__init__(conn)
        where = f"{conn.host}:{conn.port}"
        step = "connect to"
        try:
            if conn.protocol == "ftps":
                context = ssl.create_default_context()
                if not conn.verify_tls:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                self.ftp: ftplib.FTP = ftplib.FTP_TLS(context=context, timeout=timeout)
            else:
                self.ftp = ftplib.FTP(timeout=timeout)
            self.ftp.connect(conn.host, conn.port)
            if isinstance(self.ftp, ftplib.FTP_TLS):
                step = "start TLS with"
                self.ftp.auth()
            step = "log in to"
            self.ftp.login(conn.username, conn.password)
            if isinstance(self.ftp, ftplib.FTP_TLS):
                self.ftp.prot_p()  # encrypt the data connections too
            self.ftp.set_pasv(conn.passive)
        except ftplib.error_perm as e:
            raise _ftp_error("Log in to", where, e) from None
        except ssl.SSLError as e:
            raise FileServerError(f"TLS with {where} failed: {e.reason or e}") from None
        except (OSError, EOFError, ftplib.Error) as e:
            raise FileServerError(_network_failure(step, conn, e)) from None

    def list(self, folder: str = "") -> list[Entry]:
        full = self.path(folder)
        try:
            facts = list(self.ftp.mlsd(full, facts=["type", "size", "modify"]))
        except ftplib.error_perm as e:
            raise _ftp_error("List", self.where(folder), e) from None
        out = []
        for name, f in facts:
            if f.get("type") in ("cdir", "pdir") or name in (".", ".."):
                continue
            modified = None
            if f.get("modify"):
                modified = datetime.strptime(f["modify"][:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            out.append(
                Entry(
                    name,
                    relative(self.root, posixpath.join(full, name)),
                    f.get("type") == "dir",
                    int(f["size"]) if f.get("size") else None,
                    modified,
                )
            )
        return sorted(out, key=lambda e: e.name)

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[IO[bytes]]:
        full = self.path(path)
        self.ftp.voidcmd("TYPE I")
        try:
            conn = self.ftp.transfercmd(f"RETR {full}")
        except ftplib.error_perm as e:
            raise _ftp_error("Read", self.where(path), e) from None
        stream = conn.makefile("rb")
        try:
            yield stream
        finally:
            stream.close()
            with contextlib.suppress(OSError):
                if isinstance(conn, ssl.SSLSocket):
                    conn.unwrap()
            conn.close()
            with contextlib.suppress(ftplib.Error, OSError):
                self.ftp.voidresp()

    def _put(self, stream: IO[bytes], full: str) -> None:
        try:
            self.ftp.storbinary(f"STOR {full}", stream)
        except ftplib.error_perm as e:
            raise _ftp_error("Upload", full, e) from None

    def _rename(self, src: str, dst: str) -> None:
        try:
            self.ftp.rename(src, dst)
        except ftplib.error_perm as e:
            raise _ftp_error(f"Move {src} to", dst, e) from None

    def _mkdir(self, full: str) -> None:
        try:
            self.ftp.mkd(full)
        except ftplib.error_perm as e:
            raise _ftp_error("Make folder", full, e) from None

    def _delete(self, full: str) -> None:
        try:
            self.ftp.delete(full)
        except ftplib.error_perm as e:
            raise _ftp_error("Delete", full, e) from None

    def _exists(self, full: str) -> bool:
        parent, name = posixpath.split(full.rstrip("/"))
        if not name:
            return True
        try:
            return any(n == name for n, _f in self.ftp.mlsd(parent or "/", facts=["type"]))
        except ftplib.error_perm:
            return False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ftp.quit()
        with contextlib.suppress(Exception):
            self.ftp.close()


# --- SFTP --------------------------------------------------------------------------------------


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
        known_hosts.parent.mkdir(parents=True, exist_ok=True)
        known_hosts.touch(exist_ok=True)
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
            raise FileServerError(_network_failure("connect to", conn, e)) from None

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
        attrs = self._wrap("List", full, self.sftp.listdir_attr, full)
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


def _network_failure(step: str, conn: FileServerConnection, e: Exception) -> str:
    """Which step failed, in one sentence: resolve, connect, TLS, time out."""
    where = f"{conn.host}:{conn.port}"
    if isinstance(e, socket.gaierror):
        return f"Cannot resolve the host name {conn.host!r} (DNS)"
    causes = list(getattr(e, "errors", {}).values())  # paramiko: one error per address tried
    if isinstance(e, ConnectionRefusedError) or any(
        isinstance(c, ConnectionRefusedError) for c in causes
    ):
        return f"{where} refused the connection (is the server running and the port right?)"
    if isinstance(e, TimeoutError | socket.timeout):
        return f"{where} did not answer in time (timeout) while trying to {step} it"
    if isinstance(e, ssl.SSLError):
        return f"TLS with {where} failed: {e.reason or e}"
    return f"Could not {step} {where}: {e or type(e).__name__}"


def connect(conn: FileServerConnection, home: Path, timeout: float = 30.0) -> FileClient:
    """An open client for ``conn``; host keys are pinned in ``home/known_hosts``."""
    try:
        socket.getaddrinfo(conn.host, conn.port)
    except socket.gaierror:
        raise FileServerError(f"Cannot resolve the host name {conn.host!r} (DNS)") from None
    if conn.protocol == "sftp":
        return SftpClient(conn, home / "known_hosts", timeout)
    return FtpClient(conn, timeout)
