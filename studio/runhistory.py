"""Run history: one SQLite row per run, appended by the runner, read by the studio.

A run is recorded as ``running`` when it starts and updated when it ends, so a crash leaves a
trace (the runner marks such runs ``interrupted`` when it starts again). ``last_success`` gives
the start of the job's last successful run: ``{last_success_at}`` for incremental imports.

The history is also where a job is claimed, so that the rule "a job never runs twice at once"
holds whoever starts it (the daemon, ``runner run``, the studio's Run now, the REST API) and
from whichever process: ``start_run`` takes the job under SQLite's write lock, and a unique
index allows one claimed run per job. A scheduled slot is claimed the same way, once per job.

A run records who started it (``started_by``): a user's name given by the caller, or else the
one ``studio.access.acting`` holds (the signed-in user of a page, the token's user of a REST
call); "" for the schedule and the CLI, whose ``trigger`` already says how it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from studio.errors import Conflict, NotFound
from studio.historybase import COLUMNS, HOLDING, HistoryBase, Run, alive_here, run_of, upsert_of

# The names the studio has always imported from here, now shared with pghistory.
from studio.historybase import COUNTS as COUNTS
from studio.historybase import OWNER as OWNER
from studio.historybase import STATUSES as STATUSES
from studio.historybase import AlreadyRunning as AlreadyRunning
from studio.historybase import EndNotRecorded as EndNotRecorded
from studio.historybase import NoLongerRunning as NoLongerRunning
from studio.historybase import NotQueued as NotQueued
from studio.historybase import Progress as Progress
from studio.historybase import SlotTaken as SlotTaken
from studio.historybase import now_iso as now_iso
from studio.private import private_dir, private_file
from studio.rowstore import staging_path

DB_FILE = "runs.sqlite"
HEARTBEAT_FILE = "runner.json"  # written by the runner daemon every few seconds
_SELECT = ", ".join(COLUMNS)


class RunHistory(HistoryBase):
    """The run history in ``STUDIO_HOME/runs.sqlite`` (``stores.RunStore``): the claim is
    decided under SQLite's write lock, and a holder lives while its PID does (this host)."""

    def __init__(self, home: Path):
        self.home = home
        private_dir(home)
        self.path = private_file(home / DB_FILE)  # 0600, and so are its -wal and -shm
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, job_id TEXT, job_name TEXT,"
                " trigger TEXT, status TEXT, started_at TEXT, finished_at TEXT, slot TEXT,"
                " requests INTEGER, pages INTEGER, records INTEGER, rows_written INTEGER,"
                " rows_rejected INTEGER, files INTEGER, error TEXT, folder TEXT, outputs TEXT)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS runs_job ON runs (job_id, started_at)")
            have = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            # Claims live in columns of their own, which rows recorded before them leave
            # empty: those may hold what the indexes forbid (two runs of one slot, or two
            # runs left "running" by crashes), and the indexes must still be creatable.
            for column, kind in [
                ("owner", "TEXT DEFAULT ''"),
                ("claimed", "INTEGER DEFAULT 0"),  # 1 while the run holds its job
                ("slot_claim", "TEXT"),  # the slot, for runs recorded by the scheduler
                ("attempts", "INTEGER DEFAULT 0"),  # 0: recorded before attempts were counted
                ("discarded", "INTEGER DEFAULT 0"),  # 0: recorded before discards were counted
                ("child_rows", "INTEGER DEFAULT 0"),  # 0: no children, or recorded before them
                ("started_by", "TEXT DEFAULT ''"),  # '': no user, or recorded before users
                ("config_version", "TEXT DEFAULT ''"),  # '': recorded before snapshots
            ]:
                if column not in have:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
            db.execute(
                "CREATE UNIQUE INDEX IF NOT EXISTS runs_claimed ON runs (job_id) WHERE claimed = 1"
            )
            db.execute(
                "CREATE UNIQUE INDEX IF NOT EXISTS runs_slot ON runs (job_id, slot_claim)"
                " WHERE slot_claim IS NOT NULL"
            )

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    @contextlib.contextmanager
    def _tx(self, timeout: float | None = None) -> Iterator[sqlite3.Connection]:
        """One transaction holding the write lock from its first statement (``BEGIN
        IMMEDIATE``): what it reads cannot change before it writes, in any process."""
        wait = 60 if timeout is None else timeout
        db = sqlite3.connect(self.path, timeout=wait, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            db.close()

    def _claim_state(self, db: sqlite3.Connection, job_id: str, run_id: str) -> tuple | None:
        """The run's claim; the transaction's write lock already serves claims one by one."""
        return db.execute(
            "SELECT status, claimed, owner, error FROM runs WHERE id = ?", (run_id,)
        ).fetchone()

    def _put(
        self,
        db: sqlite3.Connection,
        run: Run,
        *,
        claimed: bool = False,
        if_running: bool = False,
    ) -> bool:
        """Insert or update ``run`` (``historybase.upsert_of``). A run inserted with a slot
        takes the slot, once per job (updates leave it: rows recorded before slots were
        claimed may share one)."""
        data, sets = upsert_of(run, claimed)
        only = " WHERE runs.status = 'running'" if if_running else ""
        try:
            cursor = db.execute(
                f"INSERT INTO runs ({', '.join(data)}) VALUES ({', '.join('?' for _ in data)}) "
                f"ON CONFLICT (id) DO UPDATE SET {sets}{only}",
                list(data.values()),
            )
        except sqlite3.IntegrityError:
            if taken := self._slot_taken(db, run):
                raise taken from None
            raise
        return cursor.rowcount > 0

    def save(self, run: Run, *, if_running: bool = False) -> bool:
        """Record ``run``; ``if_running``: only while its record is still ``running`` (the
        end of a run, which must not overwrite an interruption recorded meanwhile). Whether
        it was recorded."""
        with self._tx() as db:
            return self._put(db, run, if_running=if_running)

    def _update_counts(self, run_id: str, sets: str, values: tuple) -> int | None:
        try:
            with self._tx(timeout=1.0) as db:
                return db.execute(
                    f"UPDATE runs SET {sets} WHERE id = ? AND status = 'running'",
                    (*values, run_id),
                ).rowcount
        except sqlite3.OperationalError:  # "database is locked"
            return None

    def _interrupt(
        self, db: sqlite3.Connection, run: Run, reason: str, status: str = "interrupted"
    ) -> None:
        """Record ``run`` as interrupted and delete the scratch file of its unfinished rows."""
        super()._interrupt(db, run, reason, status)
        staging_path(self.home, run.id).unlink(missing_ok=True)

    def _select(
        self,
        db: sqlite3.Connection,
        where: str,
        args: tuple = (),
        limit: int = 1,
        *,
        alive: bool = False,
        lock: bool = False,  # the transaction's write lock holds every row already
    ) -> list:
        cursor = db.execute(
            f"SELECT {_SELECT} FROM runs {where} ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (*args, limit),
        )
        runs = [run_of(row) for row in cursor]
        return [(r, alive_here(r.owner)) for r in runs] if alive else runs

    def _runs(self, where: str = "", args: tuple = (), limit: int = 200) -> list[Run]:
        db = self._db()
        try:
            return self._select(db, where, args, limit)
        finally:
            db.close()

    def _interrupted(self, db: sqlite3.Connection, only_mine: bool) -> None:
        """An interrupted run's scratch file of unfinished rows is deleted (``_interrupt``),
        and (unless ``only_mine``) so is any scratch file left by a run that is no longer
        running: abandoned by a runner that stopped with runs still going, its threads cut
        off before they cleaned up."""
        if only_mine:
            return
        live = {r.id for r in self._select(db, f"WHERE status IN {HOLDING}", (), 100_000)}
        for path in (self.home / "runs").glob(staging_path(self.home, "*").name):
            if path.name.split(".")[1] not in live:
                path.unlink(missing_ok=True)


def runner_status(home: Path, stale: float = 15.0) -> dict:
    """Whether the runner is up, from its heartbeat: {"up": bool, "last_seen": …, …}."""
    try:
        data = json.loads((home / HEARTBEAT_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return {"up": False, "last_seen": None}
    seen = datetime.fromisoformat(data["last_seen"])
    return data | {"up": (datetime.now(UTC) - seen).total_seconds() < stale}


def run_files(run: Run, *, data_only: bool = False) -> list[Path]:
    """The files a run left that still exist: rows, rejects, log, debug trace. ``data_only``:
    what the run produced (rows, and rejects or a trace when there are any), not its log."""
    if os.environ.get("STUDIO_DATABASE_URL"):  # ended runs' files are in PostgreSQL (pgfiles)
        from studio.pgfiles import stored_files

        files = stored_files(run)
    else:
        files = [Path(p) for p in run.outputs if Path(p).is_file()]
    if data_only:
        files = [
            f
            for f in files
            if f.name != "run.log" and not (f.name == "rejects.csv" and not run.rows_rejected)
        ]
    return files


def data_files(run: Run) -> list[Path]:
    """What a download of the run gives (``run_files(data_only=True)``): refused while the run
    goes on, since its files are not complete, and when it left none."""
    if run.status in HOLDING:
        raise Conflict(f"Run {run.id} is still {run.status}; download it when done")
    files = run_files(run, data_only=True)
    if not files:
        raise NotFound(f"Run {run.id} left no file")
    return files


def archive_of(run: Run, *, data_only: bool = False) -> tuple[str, str, Callable[[], bytes]]:
    """The download's name and MIME type now, and its content when asked (``content()``): a
    page that redraws every second names the file without zipping it each time."""
    files = run_files(run, data_only=data_only)
    if len(files) == 1:
        return files[0].name, "text/csv", files[0].read_bytes

    def zipped() -> bytes:
        import io
        import zipfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for f in files:
                archive.write(f, f.name)
        return buffer.getvalue()

    return f"run-{run.id}.zip", "application/zip", zipped


def plural(count: int, noun: str, nouns: str = "") -> str:
    """ "1 record", "2,500 records": the one way the studio and the CLI count things
    (``nouns`` for a plural that is not ``noun`` + "s")."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def requests_text(run: Run) -> str:
    """ "6 requests", or "1 request, 6 attempts" when transport retries tried some again (runs
    recorded before attempts were counted have none, and say the requests only)."""
    text = plural(run.requests, "request")
    return text + (f", {plural(run.attempts, 'attempt')}" if run.attempts > run.requests else "")


def counts_text(run: Run) -> str:
    """A run's counts in one line, as the CLI and the Runs page say them. ``files`` are the
    source files a file job read, not the files the run wrote; discarded records and the rows of
    child entities are said only when there are some, as most jobs have none."""
    parts = [
        plural(run.records, "record"),
        f"{plural(run.rows_written, 'row')} written",
        f"{run.rows_rejected:,} rejected",
        *([f"{run.discarded:,} discarded"] if run.discarded else []),
        *([f"{plural(run.child_rows, 'child row')} written"] if run.child_rows else []),
        requests_text(run),
        plural(run.pages, "page"),
    ]
    if run.files:
        parts.append(f"{plural(run.files, 'file')} read")
    return ", ".join(parts)


def duration_seconds(run: Run, now: datetime | None = None) -> float | None:
    """How long the run took; with ``now``, how long a run still going has taken so far (a
    table of runs then has no empty cell)."""
    end = run.finished_at or (now.isoformat() if now else "")
    if not run.started_at or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(run.started_at)).total_seconds()


def ended_text(run: Run) -> str:
    """How a run ended, in one sentence for a notice: "Run of 'X' finished: success, 2,500
    rows", or "Run of 'X' failed: <error>"."""
    if run.status == "failed":
        return f"Run of {run.job_name!r} failed: {run.error or 'no reason recorded'}"
    text = f"Run of {run.job_name!r} finished: {run.status}, {plural(run.rows_written, 'row')}"
    if run.rows_rejected:
        text += f", {run.rows_rejected:,} rejected"
    return text + (f" ({run.error})" if run.error else "")
