"""A run's files (rows.csv, rejects.csv, run.log, trace.jsonl) in PostgreSQL, as n8n's
"database" mode keeps binary data: for runners on several machines, whose local folders the
studio, the CLI and the REST API cannot read.

A run writes its files to a local scratch folder while it goes (appending to a file is what a
run does best, and a live run's log is read there); when it ends, the history saves its record
and its files in one transaction (``PgHistory.save``): chunks of ``bytea`` of 1 MiB, streamed
with ``COPY``, never a whole file in memory. The scratch files are then deleted.

The diagnostic files (``LIVE``: run.log and the debug trace) also reach the database while the
run goes, as Airflow uploads remote task logs: at every heartbeat (``mirror``, called by the
heartbeat thread of ``pghistory``) the bytes they gained since the last one are appended, whole
lines only, at most ``BEAT_MAX`` per file and beat, the run's row locked so that its end and a
beat never write a file at once. A run killed with its worker, or on a machine that died, is
recorded interrupted by the scheduler's check; its log and trace are then what the last beat
copied: what it did until at most a heartbeat before it died. Its end, when it has one, appends
the rest only, so a log crosses the network once. Data files (rows.csv, rejects.csv, downloaded
files) are stored at the end only: an interrupted run has none, as its rows were never
committed either. The caps on what a trace holds of each exchange (``http.EXCERPT``) are the
file's own, and so the copy's.

Why the database rather than an S3-compatible store: it is one service fewer to install, run,
secure and back up (the stores are in PostgreSQL already), and a run's files are committed with
its record, so a run recorded as ended always has its files and a purged run takes them with
it (``ON DELETE CASCADE``); an object store would need its own clean-up and could disagree with
the history after a crash. Run files are modest (a run's CSV of rows, its log) and read rarely;
were they to grow to many gigabytes, an object store behind the same functions would do.

Readers get local paths, as from a SQLite home: the Runs page reads the log's last lines and
the rejects with pandas, ``runner runs`` copies files, the REST API sends them with
``FileResponse`` (in 64 KiB reads) or a ZIP made as it is sent. ``stored_files`` copies a run's
files (streamed, chunk by chunk) into a cache under the home (``cache_folder``), and reads
them from there while they are whole. Why a cache rather than streaming every read from the
database: the Runs page redraws every second while a run goes and would fetch the whole log
each time, and a download streamed from the database would hold a pooled connection for as
long as a slow client takes. The cache is bounded: after each fetch, copies not read for
``CACHE_AGE`` go, then the least recently read until it holds ``CACHE_MAX`` bytes; a copy read
in the last ``IN_USE`` seconds stays (a reader may be sending it), so the cache exceeds its
cap only by what is being read. Nothing is written to a run's own folder (a running run's
files are there) nor to the system's temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from studio import pg
from studio.private import FILE_MODE, private_dir

CHUNK = 1 << 20  # bytes per row of run_file_chunks (at most)
LIVE = ("run.log", "trace.jsonl")  # what a running run's heartbeat copies as it grows
BEAT_MAX = 4 * CHUNK  # bytes of one file one heartbeat copies at most; the rest at the next
CACHE_MAX = int(os.environ.get("STUDIO_RUN_FILES_CACHE_MB") or 512) << 20  # bytes
CACHE_AGE = 24 * 3600.0  # seconds a copy nobody read is kept
IN_USE = 600.0  # seconds: a copy read this recently is never evicted (it may be being sent)


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
    them, for the caller to delete once it commits. A file stored before is replaced, but a
    diagnostic file the heartbeat copied in part (``mirror``) gets the rest appended."""
    paths = [Path(p) for p in outputs if Path(p).is_file()]
    sizes = _sizes(cur, run_id)
    for position, path in enumerate(paths):
        size, done = path.stat().st_size, sizes.get(path.name)
        if path.name in LIVE and done is not None and done <= size:
            cur.execute(
                "UPDATE run_files SET position = %s WHERE run_id = %s AND name = %s",
                (position, run_id, path.name),
            )
            _append(cur, run_id, path, done, size - done)
            continue
        cur.execute("DELETE FROM run_files WHERE run_id = %s AND name = %s", (run_id, path.name))
        _new_file(cur, run_id, path.name, position)
        _append(cur, run_id, path, 0, size)
    return paths


def _append(cur, run_id: str, path: Path, start: int, count: int) -> None:
    """Append ``count`` bytes of ``path`` from ``start`` to its stored file, in chunks of
    ``CHUNK`` streamed with ``COPY``."""
    if count <= 0:
        return
    seq = cur.execute(
        "SELECT COALESCE(max(seq) + 1, 0) FROM run_file_chunks WHERE run_id = %s AND name = %s",
        (run_id, path.name),
    ).fetchone()[0]
    sql = "COPY run_file_chunks (run_id, name, seq, data) FROM STDIN (FORMAT BINARY)"
    left = count
    with open(path, "rb") as f, cur.copy(sql) as copy:
        copy.set_types(["text", "text", "int4", "bytea"])
        f.seek(start)
        while left > 0 and (block := f.read(min(CHUNK, left))):
            copy.write_row((run_id, path.name, seq, block))
            seq, left = seq + 1, left - len(block)
    cur.execute(
        "UPDATE run_files SET size = size + %s WHERE run_id = %s AND name = %s",
        (count - left, run_id, path.name),
    )


def mirror(url: str, run_ids: list[str], owner: str, timeout: float = 5.0) -> None:
    """Append to the database what the log and trace of this process's running runs gained
    since the last call: whole lines, at most ``BEAT_MAX`` bytes per file (a longer line goes
    in parts). One transaction per run, holding its row: a run whose end is being recorded
    holds it, and is skipped (``SKIP LOCKED``), since its end stores the rest. ``timeout``:
    seconds to wait for a connection (the heartbeat's next beat must not wait long)."""
    for run_id in run_ids:
        with (
            pg.pool(url).connection(timeout=timeout) as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            cur.execute("SET LOCAL lock_timeout = '1s'")
            found = cur.execute(
                "SELECT folder FROM runs WHERE id = %s AND owner = %s AND status = 'running'"
                " FOR NO KEY UPDATE SKIP LOCKED",
                (run_id, owner),
            ).fetchone()
            if found and found[0]:
                _mirror_run(cur, run_id, Path(found[0]))


def _sizes(cur, run_id: str) -> dict[str, int]:
    """The run's stored files and how many bytes of each are stored so far."""
    return dict(cur.execute("SELECT name, size FROM run_files WHERE run_id = %s", (run_id,)))


def _new_file(cur, run_id: str, name: str, position: int) -> None:
    cur.execute(
        "INSERT INTO run_files (run_id, name, position, size) VALUES (%s, %s, %s, 0)",
        (run_id, name, position),
    )


def _mirror_run(cur, run_id: str, folder: Path) -> None:
    sizes = _sizes(cur, run_id)
    for position, name in enumerate(LIVE, start=1000):  # the end gives each its place
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError:
            continue
        done = sizes.get(name, 0)
        if size <= done:
            continue
        with open(path, "rb") as f:
            f.seek(done)
            new = f.read(min(size - done, BEAT_MAX))
        lines = new.rfind(b"\n") + 1
        count = lines or (len(new) if len(new) == BEAT_MAX else 0)
        if not count:
            continue  # a line being written: the next beat copies it whole
        if name not in sizes:
            _new_file(cur, run_id, name, position)
        _append(cur, run_id, path, done, count)


def remove_local(paths: list[Path]) -> None:
    """The scratch files, once stored; their folder too when nothing else is left in it."""
    for path in paths:
        path.unlink(missing_ok=True)
    for folder in {p.parent for p in paths}:
        with contextlib.suppress(OSError):
            folder.rmdir()


def cache_folder() -> Path:
    """Where this machine's readers keep copies of stored files: under the home, 0700."""
    from studio.config.store import studio_home

    return studio_home() / "cache" / "run-files"


def _fetch(conn, run_id: str, name: str, target: Path) -> None:
    """Copy a stored file to ``target``, a chunk at a time, replacing it at once when done (so
    two processes fetching it together never see half a file)."""
    part = target.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        private_dir(target.parent)  # again: another process's sweep removes empty folders
        opener = lambda p, f: os.open(p, f, FILE_MODE)  # noqa: E731
        with open(part, "wb", opener=opener) as out, conn.cursor() as cur:
            sql = "SELECT data FROM run_file_chunks WHERE run_id = %s AND name = %s ORDER BY seq"
            for (data,) in cur.stream(sql, (run_id, name)):
                out.write(data)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def sweep(root: Path, keep: set[Path] = frozenset()) -> None:
    """Keep the cache bounded: copies not read for ``CACHE_AGE`` go (and a killed reader's
    ``.part`` files), then the least recently read while it holds more than ``CACHE_MAX``;
    ``keep`` (what the caller is about to read) and copies read within ``IN_USE`` stay."""
    now, found = time.time(), []
    for path in root.glob("*/*"):
        with contextlib.suppress(OSError):
            found.append((path.stat().st_mtime, path.stat().st_size, path))
    total = sum(size for _, size, _ in found)
    for read, size, path in sorted(found, key=lambda f: f[0]):
        if path in keep or now - read < IN_USE:
            continue
        if now - read > CACHE_AGE or total > CACHE_MAX:
            path.unlink(missing_ok=True)
            total -= size
    for folder in root.iterdir():
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty


def stored_files(run, url: str | None = None) -> list[Path]:
    """The run's files as local paths. A run going on on this machine: its own folder's (the
    Runs page and ``runner runs log`` read its log there). Else those stored in the database,
    copied into the cache when missing there (or not whole, or grown since: a log the
    heartbeat copies); none stored: the files its record names that are here."""
    here = [Path(p) for p in run.outputs if Path(p).is_file()]
    if run.status in ("queued", "running") and run.folder and Path(run.folder, "run.log").is_file():
        return here
    with pg.pool(url).connection() as conn:
        stored = conn.execute(
            "SELECT name, size FROM run_files WHERE run_id = %s ORDER BY position", (run.id,)
        ).fetchall()
        if not stored:
            return here
        root = private_dir(cache_folder())
        folder = private_dir(root / run.id)
        files, fetched = [], False
        for name, size in stored:
            target = folder / name
            try:
                whole = target.stat().st_size == size
            except OSError:
                whole = False
            if whole:
                with contextlib.suppress(OSError):
                    os.utime(target)  # read now: the last to be evicted
            else:
                _fetch(conn, run.id, name, target)
                fetched = True
            files.append(target)
    if fetched:
        sweep(root, set(files))
    return files
