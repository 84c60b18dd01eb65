"""A TinyDB storage that several processes can share: atomic writes under one file lock.

TinyDB alone is not process-safe: its ``JSONStorage`` truncates and rewrites the file in place
(a reader can see half a file, a crash can leave one) and its tables cache ids in memory. Here a
write goes to a temporary file that is fsynced and ``os.replace``d over the old one, so a reader
sees either the old file or the new one, never a mix; and the store opens a fresh ``TinyDB`` for
every operation under ``file_lock`` so no cache outlives the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tinydb.storages import Storage

from studio.errors import StudioError


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes and threads (``flock`` on a fresh descriptor).

    Each acquisition opens its own descriptor, so two threads of one process (two studio
    sessions) exclude each other too. The kernel drops the lock when a holder dies, even by
    SIGKILL, so a crashed writer never blocks the others.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def render(data: dict) -> str:
    """One document per line: diffable and readable like indented JSON, but written by the
    C encoder (``indent`` falls back to the pure-Python one, several times slower)."""
    tables = []
    for table, docs in data.items():
        rows = ",\n".join(
            f"  {json.dumps(doc_id)}: {json.dumps(doc, ensure_ascii=False, sort_keys=True)}"
            for doc_id, doc in docs.items()
        )
        tables.append(f" {json.dumps(table)}: {{\n{rows}\n }}")
    return "{\n" + ",\n".join(tables) + "\n}\n"


class AtomicJSONStorage(Storage):
    """TinyDB's three-method storage interface over a JSON file replaced atomically."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def read(self) -> dict | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise StudioError(
                f"The config file {self.path} is not valid JSON (line {e.lineno}, column "
                f"{e.colno}: {e.msg}); restore it from an export or fix it by hand"
            ) from None

    def write(self, data: dict) -> None:
        directory = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(render(data))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        # Make the rename itself durable: a power cut must not bring the old file back.
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def sweep(self) -> None:
        """Remove temporary files left by writers killed mid-write (call under the lock)."""
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()

    def close(self) -> None:
        pass
