"""A run's files (rows.csv, rejects.csv, run.log, trace.jsonl) in PostgreSQL, as n8n's
"database" mode keeps binary data: for runners on several machines, whose local folders the
studio, the CLI and the REST API cannot read.

A run writes its files to a local scratch folder while it goes (appending to a file is what a
run does best, and a live run's log is read there); when it ends, the history saves its record
and its files in one transaction (``PgHistory.save``): chunks of ``bytea`` of 1 MiB, streamed
with ``COPY``, never a whole file in memory. The scratch files are then deleted.

Why the database rather than an S3-compatible store: it is one service fewer to install, run,
secure and back up (the stores are in PostgreSQL already), and a run's files are committed with
its record, so a run recorded as ended always has its files and a purged run takes them with
it (``ON DELETE CASCADE``); an object store would need its own clean-up and could disagree with
the history after a crash. Run files are modest (a run's CSV of rows, its log) and read rarely;
were they to grow to many gigabytes, an object store behind the same three functions would do.

Readers get local paths, as from a SQLite home, so the Runs page, ``runner runs`` and the REST
API need no change: ``stored_files`` copies a run's files (streamed, chunk by chunk) into the
run's folder when this machine can make it, else into a private folder of this process, once,
and lists them from there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from studio import pg
from studio.private import FILE_MODE, private_dir

CHUNK = 1 << 20  # bytes per row of run_file_chunks
_cache: list[Path] = []  # this process's private folder for runs whose folder it cannot make


def make_schema(conn) -> None:
    """The files' tables (after the history's ``runs``, which they reference)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS run_files (run_id text REFERENCES runs (id) ON DELETE CASCADE,"
        " name text, position int NOT NULL, size bigint NOT NULL, PRIMARY KEY (run_id, name))"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS run_file_chunks (run_id text, name text, seq int,"
        " data bytea NOT NULL, PRIMARY KEY (run_id, name, seq), FOREIGN KEY (run_id, name)"
        " REFERENCES run_files (run_id, name) ON DELETE CASCADE)"
    )


def store(cur, run_id: str, outputs: list[str]) -> list[Path]:
    """Store the run's files that are on this machine, in the caller's transaction; returns
    them, for the caller to delete once it commits. A file stored before is replaced."""
    paths = [Path(p) for p in outputs if Path(p).is_file()]
    for position, path in enumerate(paths):
        cur.execute("DELETE FROM run_files WHERE run_id = %s AND name = %s", (run_id, path.name))
        cur.execute(
            "INSERT INTO run_files (run_id, name, position, size) VALUES (%s, %s, %s, %s)",
            (run_id, path.name, position, path.stat().st_size),
        )
        sql = "COPY run_file_chunks (run_id, name, seq, data) FROM STDIN (FORMAT BINARY)"
        with open(path, "rb") as f, cur.copy(sql) as copy:
            copy.set_types(["text", "text", "int4", "bytea"])
            for seq, block in enumerate(iter(lambda: f.read(CHUNK), b"")):
                copy.write_row((run_id, path.name, seq, block))
    return paths


def remove_local(paths: list[Path]) -> None:
    """The scratch files, once stored; their folder too when nothing else is left in it."""
    for path in paths:
        path.unlink(missing_ok=True)
    for folder in {p.parent for p in paths}:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _folder(run) -> Path:
    """Where this process keeps a copy of the run's files: the run's own folder when this
    machine can make it (``runner runs log`` and the Runs page look there), else a private
    folder of this process."""
    if run.folder:
        with contextlib.suppress(OSError):
            return private_dir(Path(run.folder))
    if not _cache:
        _cache.append(Path(tempfile.mkdtemp(prefix="studio-run-files-")))  # 0700
    return private_dir(_cache[0] / run.id)


def _fetch(conn, run_id: str, name: str, target: Path) -> None:
    """Copy a stored file to ``target``, a chunk at a time, replacing it at once when done (so
    two processes fetching it together never see half a file)."""
    part = target.with_name(f".{name}.{os.getpid()}.part")
    try:
        opener = lambda p, f: os.open(p, f, FILE_MODE)  # noqa: E731
        with open(part, "wb", opener=opener) as out, conn.cursor() as cur:
            sql = "SELECT data FROM run_file_chunks WHERE run_id = %s AND name = %s ORDER BY seq"
            for (data,) in cur.stream(sql, (run_id, name)):
                out.write(data)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def stored_files(run, url: str | None = None) -> list[Path]:
    """The run's files as local paths: those stored in the database, copied here when missing
    (or not whole); a run not ended yet has none stored, and its own folder's are given."""
    with pg.pool(url).connection() as conn:
        stored = conn.execute(
            "SELECT name, size FROM run_files WHERE run_id = %s ORDER BY position", (run.id,)
        ).fetchall()
        if not stored:
            return [Path(p) for p in run.outputs if Path(p).is_file()]
        folder = _folder(run)
        files = []
        for name, size in stored:
            target = folder / name
            if not (target.is_file() and target.stat().st_size == size):
                _fetch(conn, run.id, name, target)
            files.append(target)
        return files
