"""File servers: one small interface over FTP, FTPS and SFTP (``studio.ftp``, ``studio.sftp``).

A job only ever lists a folder, streams a file, uploads, renames, makes a folder or deletes, so
``FileClient`` has those and nothing else; ``connect`` picks the implementation. Every path is
taken relative to the connection's root folder, or as an absolute server path that must lie
inside it, and is checked before it reaches the server (``resolve``): ``..`` that climbs out of
the root, absolute paths outside it and NUL bytes are refused, naming the real root. Uploads go
to a temporary name and are renamed when complete.
"""

from __future__ import annotations

import contextlib
import posixpath
import socket
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TypeVar

from studio.config.connections import FileServerConnection
from studio.errors import StudioError

T = TypeVar("T")


class FileServerError(StudioError):
    """A file server operation that failed; the message names the step and the path."""


@dataclass(frozen=True)
class Entry:
    name: str
    path: str  # relative to the connection's root
    is_dir: bool
    size: int | None = None
    modified: datetime | None = None
    # False when the listing gave the time to the minute or the day only (FTP's LIST).
    precise: bool = True


def normal_root(root: str) -> str:
    return posixpath.normpath("/" + root.strip("/")) if root.strip("/") else "/"


def resolve(root: str, path: str, *, name: str = "") -> str:
    """The server path for ``path`` under ``root``; refuses anything that would leave it.
    Messages name the root (or ``name``, when the caller knows better)."""
    if "\x00" in path:
        raise FileServerError(f"Path {path!r}: NUL bytes are not allowed")
    root = normal_root(root)
    name = name or f"the root folder {root}"
    path = path.replace("\\", "/")
    if path.startswith("/"):
        full = posixpath.normpath(path)
    else:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        depth = 0
        for p in parts:
            depth += -1 if p == ".." else 1
            if depth < 0:
                raise FileServerError(f"Path {path!r}: '..' would leave {name}")
        full = posixpath.normpath(posixpath.join(root, *parts)) if parts else root
    if full != root and not full.startswith(root.rstrip("/") + "/"):
        raise FileServerError(f"Path {path!r} is outside {name}")
    return full


def check_job_path(path: str) -> str:
    """What can be checked of a job's path without knowing its connection's root: no NUL byte,
    no ``..`` climbing out of a relative path. An absolute path is checked against the real root
    when the job runs."""
    resolve("/", path, name="the connection's root folder")
    return path


def relative(root: str, full: str) -> str:
    root = normal_root(root)
    return posixpath.relpath(full, root) if full != root else ""


MAX_ENTRIES = 100_000  # entries of one folder listing: a server cannot list forever


class FileClient:
    """What a job needs from a file server. Paths are relative to the connection's root."""

    max_entries = MAX_ENTRIES

    def __init__(self, conn: FileServerConnection):
        self.conn = conn
        self.root = conn.root or "/"

    def capped(self, entries: Iterable[T], where: str) -> Iterator[T]:
        """``entries`` of a listing, refused beyond ``max_entries``: a folder (or a server)
        that lists without end fails the listing instead of filling memory."""
        for n, entry in enumerate(entries, 1):
            if n > self.max_entries:
                raise self.too_many(where)
            yield entry

    def too_many(self, where: str) -> FileServerError:
        return FileServerError(
            f"List {where}: more than {self.max_entries:,} entries; give a folder that holds "
            "fewer files (move the imported ones to an outbound folder)"
        )

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

    def modified(self, path: str) -> datetime | None:
        """The exact modification time of a file, where the listing gave only minutes or days."""
        return None

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
        """Make ``folder`` and its parents below the root; existing ones are fine."""
        full = self.path(folder)
        root = normal_root(self.root)
        current = root.rstrip("/")
        for part in [p for p in full[len(current) :].split("/") if p]:
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


def network_failure(step: str, conn: FileServerConnection, e: Exception) -> str:
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
        from studio.sftp import SftpClient

        return SftpClient(conn, home / "known_hosts", timeout)
    from studio.ftp import FtpClient

    return FtpClient(conn, timeout)
