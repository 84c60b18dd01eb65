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
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from studio.access import acting_name
from studio.errors import Conflict, NotFound, StudioError
from studio.private import private_dir, private_file
from studio.rowstore import staging_path

DB_FILE = "runs.sqlite"
HEARTBEAT_FILE = "runner.json"  # written by the runner daemon every few seconds
STATUSES = ("queued", "running", "success", "partial", "failed", "skipped", "interrupted")


@dataclass
class Run:
    id: str
    job_id: str
    job_name: str
    trigger: str  # schedule, manual, api, catch-up
    started_by: str = ""  # the user who started it; "" for the schedule, the CLI, older runs
    status: str = "running"
    started_at: str = ""
    finished_at: str = ""
    slot: str = ""
    requests: int = 0
    attempts: int = 0  # every try of those requests: transport retries count too
    pages: int = 0
    records: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    discarded: int = 0  # records a discard_if_empty field dropped: neither rows nor rejects
    child_rows: int = 0  # rows of the job's child entities (studio.children), apart from rows
    files: int = 0
    error: str = ""
    folder: str = ""
    outputs: list[str] = field(default_factory=list)
    owner: str = ""  # host:pid of the process that runs it
    config_version: str = ""  # when the job and its connection it ran were saved (a snapshot's)

    def as_dict(self) -> dict:
        return asdict(self)


_COLUMNS = [f.name for f in fields(Run)]
# What a run counts as it goes: saved while it runs, so that its record shows them live.
COUNTS = (
    "requests",
    "attempts",
    "pages",
    "records",
    "rows_written",
    "rows_rejected",
    "discarded",
    "child_rows",
    "files",
)
_HOLDING = ("queued", "running")  # a claimed run keeps its job while in one of these


class AlreadyRunning(Conflict):
    """The job is claimed by another run (the REST API answers 409)."""


class SlotTaken(Conflict):
    """A scheduled slot of the job was already recorded: it never runs twice."""


class NotQueued(Conflict):
    """A run recorded earlier that can no longer be made to run: it ended while it waited
    (the scheduler's check recorded it interrupted: its sender gone, or no worker took it in
    time), or another process runs it (a message delivered twice). Its record is left as is."""


class EndNotRecorded(StudioError):
    """A run ended but the history could not record it (PostgreSQL out of reach for longer
    than ``pghistory.END_RETRY_FOR``): the run is left to the scheduler's check."""


OWNER = f"{socket.gethostname()}:{os.getpid()}"


def _alive(owner: str) -> bool:
    """Whether the process ``host:pid`` still runs (only knowable on this host)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def refusal(run: Run, stored: tuple | None) -> str | None:
    """Why the recorded ``run`` cannot be made to run by this process, given its record now
    (``stored``: status, claimed, owner, error; None when not recorded yet): None when it is
    new, still ``queued``, or ``running`` under this process's claim (Run now claims before
    its thread runs the run); else the sentence ``NotQueued`` says."""
    if stored is None:
        return None
    status, claimed, owner, error = stored
    if status == "queued" or (status == "running" and claimed and owner == OWNER):
        return None
    if status == "running":
        return f"run {run.id} is already running in another process ({owner})"
    return f"run {run.id} is no longer queued: it is {status}" + (f" ({error})" if error else "")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunHistory:
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
    def _tx(self, timeout: float = 60) -> Iterator[sqlite3.Connection]:
        """One transaction holding the write lock from its first statement (``BEGIN
        IMMEDIATE``): what it reads cannot change before it writes, in any process."""
        db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
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

    def new(
        self,
        job_id: str,
        job_name: str,
        trigger: str,
        slot: str = "",
        started_by: str | None = None,
    ) -> Run:
        """A run not yet recorded; ``started_by`` None: the acting user (``acting_name``)."""
        run = Run(
            id=uuid.uuid4().hex[:12],
            job_id=job_id,
            job_name=job_name,
            trigger=trigger,
            started_by=acting_name() if started_by is None else started_by,
            started_at=now_iso(),
            slot=slot,
            owner=OWNER,
        )
        run.folder = str(self.home / "runs" / run.id)
        return run

    def start(
        self,
        job_id: str,
        job_name: str,
        trigger: str,
        slot: str = "",
        *,
        started_by: str | None = None,
    ) -> Run:
        """Record a run (``running``) without claiming its job: for what ``start_run`` does not
        start, such as a skipped or queued slot or records pushed to the REST API. A ``slot``
        is claimed: recording one twice raises ``SlotTaken``."""
        run = self.new(job_id, job_name, trigger, slot, started_by)
        with self._tx() as db:
            self._put(db, run)
        return run

    def start_run(
        self,
        job_id: str,
        job_name: str,
        trigger: str,
        *,
        slot: str = "",
        run: Run | None = None,
        status: str = "running",
        started_by: str | None = None,
    ) -> Run:
        """Claim the job for a run, or refuse: the one way every caller starts a run.

        ``run`` is a run recorded earlier (queued by the daemon) or claimed already (by the
        studio before its thread runs it); otherwise a new one is recorded. ``status``
        "queued" claims the job for a run waiting for a worker. ``started_by``: see ``new`` (a
        ``run`` given keeps its own). The job's current holder
        blocks the claim while its process lives; a holder whose process is gone is recorded
        as interrupted and the claim goes ahead, so a crash never blocks a job for good.

        A refused run is recorded as ``skipped`` with the reason (the history says someone
        tried), then ``AlreadyRunning`` is raised with the same sentence.

        The claim of a ``run`` recorded earlier is conditional, decided under the write lock:
        it goes ahead only while the run is still ``queued`` (or already ``running`` under
        this process's claim). A run interrupted meanwhile (the scheduler's check, just as a
        worker took its message) or taken by another process raises ``NotQueued`` and keeps
        its record: it is never turned back to ``running``."""
        run = run or self.new(job_id, job_name, trigger, slot, started_by)
        refused = None
        with self._tx() as db:
            stored = db.execute(
                "SELECT status, claimed, owner, error FROM runs WHERE id = ?", (run.id,)
            ).fetchone()
            if lost := refusal(run, stored):
                raise NotQueued(lost)  # nothing written: the transaction is rolled back
            holder = self._select(db, "WHERE job_id = ? AND claimed = 1", (job_id,))
            if holder and holder[0].id != run.id:
                if _alive(holder[0].owner):
                    h = holder[0]
                    started = h.started_at.replace("T", " ").replace("+00:00", " UTC")
                    refused = (
                        f"job {job_name!r} is already running "
                        f"(run {h.id}, started {started}, by {h.trigger})"
                    )
                else:
                    self._interrupt(db, holder[0], "its process ended before the run did")
            if refused:
                run.status, run.error, run.finished_at = "skipped", refused, now_iso()
                self._put(db, run)
            else:
                run.status, run.started_at, run.owner = status, now_iso(), OWNER
                self._put(db, run, claimed=True)
        if refused:
            raise AlreadyRunning(refused)
        return run

    def _put(self, db: sqlite3.Connection, run: Run, *, claimed: bool = False) -> None:
        """Insert or update ``run``. A run leaving ``queued``/``running`` gives its job back;
        ``claimed`` takes it (the unique index refuses a second holder). A run inserted with
        a slot takes the slot, once per job (updates leave it: rows recorded before slots
        were claimed may share one)."""
        data = run.as_dict() | {"outputs": json.dumps(run.outputs), "slot_claim": run.slot or None}
        if claimed:
            data["claimed"] = 1
        keep = "excluded.claimed" if claimed else "claimed"
        fixed = ("id", "claimed", "slot_claim")
        updates = ", ".join(f"{c} = excluded.{c}" for c in data if c not in fixed)
        try:
            db.execute(
                f"INSERT INTO runs ({', '.join(data)}) VALUES ({', '.join('?' for _ in data)}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}, "
                f"claimed = {keep} AND excluded.status IN {_HOLDING}",
                list(data.values()),
            )
        except sqlite3.IntegrityError:
            where = "WHERE job_id = ? AND slot_claim = ? AND id != ?"
            taken = self._select(db, where, (run.job_id, run.slot, run.id)) if run.slot else []
            if not taken:
                raise
            raise SlotTaken(
                f"the slot {run.slot} of job {run.job_name!r} was already taken by run "
                f"{taken[0].id}: a slot runs once"
            ) from None

    def save(self, run: Run) -> None:
        with self._tx() as db:
            self._put(db, run)

    def save_counts(self, run_id: str, counts: dict[str, int]) -> bool:
        """Record a running run's counts so far (``COUNTS``), and nothing else: a run that is
        no longer ``running`` (interrupted by a stopping runner meanwhile) keeps its record.

        Best effort, for people watching: when another process holds the history's write
        lock for more than a second, this save is skipped (returns False) rather than slow
        the run; the next one, or the run's end, records the counts."""
        sets = ", ".join(f"{c} = ?" for c in counts)
        try:
            with self._tx(timeout=1.0) as db:
                db.execute(
                    f"UPDATE runs SET {sets} WHERE id = ? AND status = 'running'",
                    (*counts.values(), run_id),
                )
        except sqlite3.OperationalError:  # "database is locked"
            return False
        return True

    def end_if_queued(self, run_id: str, status: str, reason: str) -> bool:
        """Record the run ended (``status``: interrupted, failed) with ``reason`` only if it
        is still ``queued``, in one transaction: a run a worker took meanwhile keeps running
        (the scheduler's check of runs no worker took). Whether it was recorded."""
        with self._tx() as db:
            found = self._select(db, "WHERE id = ? AND status = 'queued'", (run_id,))
            if found:
                self._interrupt(db, found[0], reason, status)
        return bool(found)

    def _interrupt(
        self, db: sqlite3.Connection, run: Run, reason: str, status: str = "interrupted"
    ) -> None:
        """Record ``run`` as interrupted and delete the scratch file of its unfinished rows."""
        run.status, run.error, run.finished_at = status, reason, now_iso()
        self._put(db, run)
        staging_path(self.home, run.id).unlink(missing_ok=True)

    def _select(
        self, db: sqlite3.Connection, where: str, args: tuple = (), limit: int = 1
    ) -> list[Run]:
        cursor = db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM runs {where} "
            "ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (*args, limit),
        )
        rows = [dict(zip(_COLUMNS, r, strict=True)) for r in cursor]
        return [Run(**(r | {"outputs": json.loads(r["outputs"] or "[]")})) for r in rows]

    def _runs(self, where: str = "", args: tuple = (), limit: int = 200) -> list[Run]:
        db = self._db()
        try:
            return self._select(db, where, args, limit)
        finally:
            db.close()

    def get(self, run_id: str) -> Run | None:
        found = self._runs("WHERE id = ?", (run_id,), 1)
        return found[0] if found else None

    def find(self, ref: str) -> Run:
        """The run whose id is ``ref``, or starts with it (as a person types a long id)."""
        ref = ref.strip().lower()
        found = self._runs("WHERE id = ?", (ref,), 1) if ref else []
        if not found and len(ref) >= 4 and ref.isalnum():
            found = self._runs("WHERE id LIKE ?", (f"{ref}%",), 2)
        if len(found) != 1:
            what = "more than one run" if found else "no run"
            raise NotFound(f"There is {what} whose id starts with {ref!r}")
        return found[0]

    def list(
        self,
        job_id: str | None = None,
        status: str | None = None,
        limit: int = 200,
        *,
        job_name: str | None = None,
    ) -> list[Run]:
        """The latest runs first; ``job_name`` finds the runs of a job that was deleted."""
        clauses, args = [], []
        if job_id:
            clauses.append("job_id = ?")
            args.append(job_id)
        if job_name:
            clauses.append("job_name = ? COLLATE NOCASE")
            args.append(job_name)
        if status:
            clauses.append("status = ?")
            args.append(status)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._runs(where, tuple(args), limit)

    def last_success(self, job_id: str) -> str:
        """When the job's last successful (or partial) run started; "" if it never had one."""
        found = self._runs("WHERE job_id = ? AND status IN ('success', 'partial')", (job_id,), 1)
        return found[0].started_at if found else ""

    def mark_interrupted(
        self, reason: str, *, only_mine: bool = False, others: bool = False
    ) -> int:
        """Runs left ``running`` or ``queued`` by a process that is gone are interrupted;
        returns how many. A run whose process still lives on this host (a CLI ``run``, the
        studio's "Run now") is left alone; ``only_mine``: this process's runs only; ``others``:
        other processes' only (this one lives: a scheduler's runs waiting for a worker).

        An interrupted run's scratch file of unfinished rows is deleted, and (unless
        ``only_mine``) so is any scratch file left by a run that is no longer running."""
        count = 0
        with self._tx() as db:
            for run in self._select(db, f"WHERE status IN {_HOLDING}", (), 100_000):
                mine = run.owner == OWNER
                if (only_mine and not mine) or (others and mine):
                    continue
                if not only_mine and not mine and _alive(run.owner):
                    continue
                self._interrupt(db, run, reason)
                count += 1
            if not only_mine:
                self._sweep_staging(db)
        return count

    def _sweep_staging(self, db: sqlite3.Connection) -> None:
        """Delete the scratch files of runs that are not running (abandoned by a runner that
        stopped with runs still going: its threads were cut off before they cleaned up)."""
        live = {r.id for r in self._select(db, f"WHERE status IN {_HOLDING}", (), 100_000)}
        for path in (self.home / "runs").glob(staging_path(self.home, "*").name):
            if path.name.split(".")[1] not in live:
                path.unlink(missing_ok=True)

    def purge(self, days: int) -> int:
        """Forget runs older than ``days`` (their output folders go too)."""
        import shutil

        cutoff = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        old = self._runs("WHERE started_at < ?", (cutoff,), 100_000)
        for run in old:
            shutil.rmtree(run.folder, ignore_errors=True)
        with self._tx() as db:
            db.execute("DELETE FROM runs WHERE started_at < ?", (cutoff,))
        return len(old)


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
    if run.status in _HOLDING:
        raise Conflict(f"Run {run.id} is still {run.status}; download it when done")
    files = run_files(run, data_only=True)
    if not files:
        raise NotFound(f"Run {run.id} left no file")
    return files


def run_archive(run: Run, *, data_only: bool = False) -> tuple[str, bytes, str]:
    """One download for a run's output: the file itself when there is one, a ZIP when there
    are several (file name, content, MIME type)."""
    name, mime, content = archive_of(run, data_only=data_only)
    return name, content(), mime


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
