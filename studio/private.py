"""``STUDIO_HOME`` holds secrets and imported data: its folders are 0700, its files 0600.

The mode is given when a folder or file is created (``mkdir``/``os.open`` with a mode, which the
umask can only narrow), so a umask of 022 leaves nothing readable by others. The process's umask
is never changed instead: it is shared by every thread, and the studio and the runner create
files from several threads at once.

SQLite creates a database's ``-wal`` and ``-shm`` files with the database file's own mode, so a
database is created here first (an empty file is a valid database) and its companions follow.
The key and salt files are made the same way, race-free between processes.

A folder or file that already exists keeps its mode: a home made before this rule (or by hand)
is tightened with ``chmod -R go= "$STUDIO_HOME"``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TextIO

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` as a folder; the folders it makes (``path`` and missing parents) are 0700."""
    if not path.is_dir():
        if path.parent != path:
            private_dir(path.parent)
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            path.mkdir(mode=DIR_MODE)
    return path


def private_file(path: Path, content: bytes = b"") -> Path:
    """``path`` as a file, made 0600 holding ``content`` if it is new; an existing one is left
    as it is.

    The file is written (fsynced) under a temporary name and hard-linked into place, so two
    processes making it at once agree on one file (the loser's link fails and it keeps the
    winner's), and ``path`` itself is never opened here: closing a descriptor of a SQLite
    database drops every POSIX lock the process's connections hold on it, and another process
    may then take the database for unused and delete its WAL under them."""
    if path.exists():
        return path
    private_dir(path.parent)
    # A name of its own per attempt: threads of one process may race here too.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink()
    return path


def open_private(path: Path, newline: str | None = None) -> TextIO:
    """``path`` opened to write UTF-8 text, created 0600 if it is new."""
    return open(
        path, "w", encoding="utf-8", newline=newline, opener=lambda p, f: os.open(p, f, FILE_MODE)
    )
