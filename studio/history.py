"""Run history: one SQLite row per run, appended by the runner, read by the studio.

A run is recorded as ``running`` when it starts and updated when it ends, so a crash leaves a
trace (the runner marks such runs ``interrupted`` when it starts again). ``last_success`` gives
the start of the job's last successful run: ``{last_success_at}`` for incremental imports.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from studio.private import private_dir, private_file

DB_FILE = "runs.sqlite"
HEARTBEAT_FILE = "runner.json"  # written by the runner daemon every few seconds
STATUSES = ("queued", "running", "success", "partial", "failed", "skipped", "interrupted")


@dataclass
class Run:
    id: str
    job_id: str
    job_name: str
    trigger: str  # schedule, manual, api, catch-up
    status: str = "running"
    started_at: str = ""
    finished_at: str = ""
    slot: str = ""
    requests: int = 0
    pages: int = 0
    records: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    files: int = 0
    error: str = ""
    folder: str = ""
    outputs: list[str] = field(default_factory=list)
    owner: str = ""  # host:pid of the process that runs it

    def as_dict(self) -> dict:
        return asdict(self)


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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunHistory:
    def __init__(self, home: Path):
        self.home = home
        private_dir(home)
        self.path = private_file(home / DB_FILE)  # 0600, and so are its -wal and -shm
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, job_id TEXT, job_name TEXT,"
                " trigger TEXT, status TEXT, started_at TEXT, finished_at TEXT, slot TEXT,"
                " requests INTEGER, pages INTEGER, records INTEGER, rows_written INTEGER,"
                " rows_rejected INTEGER, files INTEGER, error TEXT, folder TEXT, outputs TEXT)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS runs_job ON runs (job_id, started_at)")
            if "owner" not in {row[1] for row in db.execute("PRAGMA table_info(runs)")}:
                db.execute("ALTER TABLE runs ADD COLUMN owner TEXT DEFAULT ''")

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def start(self, job_id: str, job_name: str, trigger: str, slot: str = "") -> Run:
        run = Run(
            id=uuid.uuid4().hex[:12],
            job_id=job_id,
            job_name=job_name,
            trigger=trigger,
            started_at=now_iso(),
            slot=slot,
            owner=OWNER,
        )
        run.folder = str(self.home / "runs" / run.id)
        self.save(run)
        return run

    def save(self, run: Run) -> None:
        data = run.as_dict() | {"outputs": json.dumps(run.outputs)}
        with self._db() as db:
            db.execute(
                f"INSERT OR REPLACE INTO runs ({', '.join(data)}) VALUES "
                f"({', '.join('?' for _ in data)})",
                list(data.values()),
            )

    def _runs(self, where: str = "", args: tuple = (), limit: int = 200) -> list[Run]:
        with self._db() as db:
            cursor = db.execute(
                f"SELECT * FROM runs {where} ORDER BY started_at DESC, rowid DESC LIMIT ?",
                (*args, limit),
            )
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, r, strict=True)) for r in cursor]
        return [Run(**(r | {"outputs": json.loads(r["outputs"] or "[]")})) for r in rows]

    def get(self, run_id: str) -> Run | None:
        found = self._runs("WHERE id = ?", (run_id,), 1)
        return found[0] if found else None

    def list(
        self, job_id: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[Run]:
        clauses, args = [], []
        if job_id:
            clauses.append("job_id = ?")
            args.append(job_id)
        if status:
            clauses.append("status = ?")
            args.append(status)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._runs(where, tuple(args), limit)

    def last_success(self, job_id: str) -> str:
        """When the job's last successful (or partial) run started; "" if it never had one."""
        found = self._runs("WHERE job_id = ? AND status IN ('success', 'partial')", (job_id,), 1)
        return found[0].started_at if found else ""

    def mark_interrupted(self, reason: str, *, only_mine: bool = False) -> int:
        """Runs left ``running`` or ``queued`` by a process that is gone are interrupted;
        returns how many. A run whose process still lives on this host (a CLI ``run``, the
        studio's "Run now") is left alone; ``only_mine``: this process's runs only."""
        count = 0
        for run in self._runs("WHERE status IN ('running', 'queued')", (), 100_000):
            mine = run.owner == OWNER
            if only_mine and not mine:
                continue
            if not only_mine and not mine and _alive(run.owner):
                continue
            run.status, run.error, run.finished_at = "interrupted", reason, now_iso()
            self.save(run)
            count += 1
        return count

    def purge(self, days: int) -> int:
        """Forget runs older than ``days`` (their output folders go too)."""
        import shutil

        cutoff = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        old = self._runs("WHERE started_at < ?", (cutoff,), 100_000)
        for run in old:
            shutil.rmtree(run.folder, ignore_errors=True)
        with self._db() as db:
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
    files = [Path(p) for p in run.outputs if Path(p).is_file()]
    if data_only:
        files = [
            f
            for f in files
            if f.name != "run.log" and not (f.name == "rejects.csv" and not run.rows_rejected)
        ]
    return files


def run_archive(run: Run, *, data_only: bool = False) -> tuple[str, bytes, str]:
    """One download for a run's output: the file itself when there is one, a ZIP when there
    are several (file name, content, MIME type)."""
    import io
    import zipfile

    files = run_files(run, data_only=data_only)
    if len(files) == 1:
        return files[0].name, files[0].read_bytes(), "text/csv"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for f in files:
            archive.write(f, f.name)
    return f"run-{run.id}.zip", buffer.getvalue(), "application/zip"


def duration_seconds(run: Run) -> float | None:
    if not run.started_at or not run.finished_at:
        return None
    return (
        datetime.fromisoformat(run.finished_at) - datetime.fromisoformat(run.started_at)
    ).total_seconds()
