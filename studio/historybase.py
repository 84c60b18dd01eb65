"""What the two run histories share (``runhistory.RunHistory``, SQLite; ``pghistory.PgHistory``,
PostgreSQL): the ``Run`` record and how a row becomes one, the errors of a claim, and the logic
that does not depend on the database: recording a new run, the claim's decision, finding and
listing runs, interrupting the runs whose process is gone, purging old ones.

Each store keeps what is its own: its SQL dialect (``_MARK``, ``_NAME_IS``, ``_CLAIMED``), its
connections and transactions (``_tx``), how it locks a claim (``_claim_state``), how it reads
rows and whether their process lives (``_select``), and how it writes a run (``_put``,
``save``, ``_update_counts``). So a rule about runs is written once and both stores keep it.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import shutil
import socket
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from studio.access import acting_name
from studio.errors import Conflict, NotFound, StudioError

STATUSES = ("queued", "running", "success", "partial", "failed", "skipped", "interrupted")
HOLDING = ("queued", "running")  # a claimed run keeps its job while in one of these
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
OWNER = f"{socket.gethostname()}:{os.getpid()}"


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


COLUMNS = [f.name for f in fields(Run)]  # the columns a run is read from, in this order


def run_of(row: Sequence) -> Run:
    """The run a row of ``COLUMNS`` holds (its outputs are kept as a JSON list)."""
    data = dict(zip(COLUMNS, row, strict=True))
    return Run(**(data | {"outputs": json.loads(data["outputs"] or "[]")}))


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


class NoLongerRunning(Exception):
    """A run that is still going found its record no longer ``running``: the scheduler's check
    or a stopping runner recorded it interrupted meanwhile (its heartbeat stopped while
    PostgreSQL was out of reach, or the runner's grace period ran out). The run stops, drops
    its uncommitted rows and leaves that record as it is.

    Not a ``StudioError``: a unit of work that fails on its own (a file of a bulk import)
    catches those and goes on with the next one, whereas this ends the whole run."""

    @classmethod
    def of(cls, run_id: str, recorded: Run | None) -> NoLongerRunning:
        """The stop of run ``run_id``, saying what its record is now (``recorded``)."""
        said = f"it is {recorded.status}" if recorded else "it is not in the run history"
        said += f" ({recorded.error})" if recorded and recorded.error else ""
        return cls(
            f"run {run_id} is no longer running: {said}; it stopped and dropped the rows it had "
            "not committed"
        )


class Progress(enum.Enum):
    """What ``save_counts`` did with a running run's counts."""

    SAVED = "saved"
    SKIPPED = "skipped"  # the history was busy (or out of reach): the next save records them
    ENDED = "ended"  # the run is no longer running: nothing saved, and the run must stop


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def alive_here(owner: str) -> bool:
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


def upsert_of(run: Run, claimed: bool) -> tuple[dict, str]:
    """The row that records ``run`` and the ``SET`` of its ``ON CONFLICT (id) DO UPDATE``: a
    run leaving ``queued``/``running`` gives its job back; ``claimed`` takes it (the unique
    index refuses a second holder). Its id, claim and slot claim are kept on update."""
    data = run.as_dict() | {
        "outputs": json.dumps(run.outputs),
        "slot_claim": run.slot or None,
        "claimed": claimed,
    }
    keep = "excluded.claimed" if claimed else "runs.claimed"
    sets = [f"{c} = excluded.{c}" for c in data if c not in ("id", "claimed", "slot_claim")]
    return data, f"{', '.join(sets)}, claimed = {keep} AND excluded.status IN {HOLDING}"


class HistoryBase:
    """The store-independent half of a run history (``stores.RunStore``); the module's
    docstring says what each store adds."""

    home: Path
    _MARK = "?"  # the driver's parameter mark
    _NAME_IS = "job_name = ? COLLATE NOCASE"  # a job's name, in any case
    _CLAIMED = "claimed = 1"  # a run that holds its job
    _GONE = "its process ended before the run did"  # why its gone holder is interrupted

    # --- what each store provides ------------------------------------------------------------

    def _tx(self, timeout: float | None = None) -> contextlib.AbstractContextManager[Any]:
        """One transaction, under the lock that keeps what it reads from changing."""
        raise NotImplementedError

    def _put(self, h: Any, run: Run, *, claimed: bool = False, if_running: bool = False) -> bool:
        """Insert or update ``run`` (``upsert_of``); whether it was written (``if_running``:
        a recorded run is updated only while its record is ``running``)."""
        raise NotImplementedError

    def _claim_state(self, h: Any, job_id: str, run_id: str) -> tuple | None:
        """The claim of ``run_id`` as recorded (status, claimed, owner, error), read under
        the lock that serves two claims of ``job_id`` one after the other."""
        raise NotImplementedError

    def _select(
        self, h: Any, where: str, args: tuple = (), limit: int = 1, *, alive=False, lock=False
    ) -> list:
        """Runs, the latest first; ``alive``: (run, whether its process lives) pairs;
        ``lock``: held until the transaction ends."""
        raise NotImplementedError

    def _runs(self, where: str = "", args: tuple = (), limit: int = 200) -> list[Run]:
        """``_select`` outside a transaction."""
        raise NotImplementedError

    def _update_counts(self, run_id: str, sets: str, values: tuple) -> int | None:
        """Set ``sets`` of ``run_id`` while it is ``running``: how many runs were updated, or
        None when the history did not answer within a second."""
        raise NotImplementedError

    # --- the shared logic -----------------------------------------------------------------------

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
        with self._tx() as h:
            self._put(h, run)
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
        ``run`` given keeps its own). The job's current holder blocks the claim while its
        process lives (its PID with SQLite, its heartbeat with PostgreSQL); a holder whose
        process is gone is recorded as interrupted and the claim goes ahead, so a crash never
        blocks a job for good.

        A refused run is recorded as ``skipped`` with the reason (the history says someone
        tried), then ``AlreadyRunning`` is raised with the same sentence.

        The claim of a ``run`` recorded earlier is conditional, decided under the claim's lock
        (``_claim_state``): it goes ahead only while the run is still ``queued`` (or already
        ``running`` under this process's claim). A run interrupted meanwhile (the scheduler's
        check, just as a worker took its message) or taken by another process raises
        ``NotQueued`` and keeps its record: it is never turned back to ``running``."""
        run = run or self.new(job_id, job_name, trigger, slot, started_by)
        refused = None
        with self._tx() as h:
            if lost := refusal(run, self._claim_state(h, job_id, run.id)):
                raise NotQueued(lost)  # nothing written: the transaction is rolled back
            where = f"WHERE job_id = {self._MARK} AND {self._CLAIMED}"
            held = self._select(h, where, (job_id,), alive=True)
            if held and held[0][0].id != run.id:
                holder, alive = held[0]
                if alive:
                    started = holder.started_at.replace("T", " ").replace("+00:00", " UTC")
                    refused = (
                        f"job {job_name!r} is already running "
                        f"(run {holder.id}, started {started}, by {holder.trigger})"
                    )
                else:
                    self._interrupt(h, holder, self._GONE)
            if refused:
                run.status, run.error, run.finished_at = "skipped", refused, now_iso()
                self._put(h, run)
            else:
                run.status, run.started_at, run.owner = status, now_iso(), OWNER
                self._put(h, run, claimed=True)
        if refused:
            raise AlreadyRunning(refused)
        return run

    def _slot_taken(self, h: Any, run: Run) -> SlotTaken | None:
        """What the unique index of slots refused, said: the run that took ``run``'s slot
        already; None when the index refused something else."""
        m = self._MARK
        where = f"WHERE job_id = {m} AND slot_claim = {m} AND id != {m}"
        taken = self._select(h, where, (run.job_id, run.slot, run.id)) if run.slot else []
        if not taken:
            return None
        return SlotTaken(
            f"the slot {run.slot} of job {run.job_name!r} was already taken by run "
            f"{taken[0].id}: a slot runs once"
        )

    def save_counts(self, run_id: str, counts: dict[str, int]) -> Progress:
        """Record a running run's counts so far (``COUNTS``), and nothing else: a run that is
        no longer ``running`` (interrupted meanwhile, by the scheduler's check or a stopping
        runner) keeps its record, and ``Progress.ENDED`` tells the run to stop.

        Best effort, for people watching: when the history is busy (another process holds
        its lock, or the run's row) or out of reach for more than a second, this save is
        skipped (``Progress.SKIPPED``) rather than slow the run; the next one, or the run's
        end, records the counts."""
        sets = ", ".join(f"{c} = {self._MARK}" for c in counts)
        updated = self._update_counts(run_id, sets, tuple(counts.values()))
        if updated is None:
            return Progress.SKIPPED
        return Progress.SAVED if updated else Progress.ENDED

    def end_if_queued(self, run_id: str, status: str, reason: str) -> bool:
        """Record the run ended (``status``: interrupted, failed) with ``reason`` only if it
        is still ``queued``, in one transaction (its row locked, as a worker's claim locks
        it): a run a worker took meanwhile keeps running (the scheduler's check of runs no
        worker took). Whether it was recorded."""
        return self._end_if(run_id, status, reason, "status = 'queued'")

    def end_if_held(self, run_id: str, status: str, reason: str) -> bool:
        """Record the run ended with ``reason`` only if it is still ``queued`` or ``running``,
        in one transaction: a run whose process was stopped or died (the daemon's), which
        nothing else records; one that ended meanwhile keeps its end. Whether it was
        recorded."""
        return self._end_if(run_id, status, reason, f"status IN {HOLDING}")

    def _end_if(self, run_id: str, status: str, reason: str, condition: str) -> bool:
        with self._tx() as h:
            where = f"WHERE id = {self._MARK} AND {condition}"
            found = self._select(h, where, (run_id,), lock=True)
            if found:
                self._interrupt(h, found[0], reason, status)
        return bool(found)

    def _interrupt(self, h: Any, run: Run, reason: str, status: str = "interrupted") -> None:
        """Record ``run`` as ended (interrupted) with ``reason``."""
        run.status, run.error, run.finished_at = status, reason, now_iso()
        self._put(h, run)

    def get(self, run_id: str) -> Run | None:
        found = self._runs(f"WHERE id = {self._MARK}", (run_id,), 1)
        return found[0] if found else None

    def find(self, ref: str) -> Run:
        """The run whose id is ``ref``, or starts with it (as a person types a long id)."""
        ref = ref.strip().lower()
        found = self._runs(f"WHERE id = {self._MARK}", (ref,), 1) if ref else []
        if not found and len(ref) >= 4 and ref.isalnum():
            found = self._runs(f"WHERE id LIKE {self._MARK}", (f"{ref}%",), 2)
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
        """The latest runs first; ``job_name`` (in any case) finds the runs of a job that was
        deleted."""
        m = self._MARK
        clauses, args = [], []
        if job_id:
            clauses.append(f"job_id = {m}")
            args.append(job_id)
        if job_name:
            clauses.append(self._NAME_IS)
            args.append(job_name)
        if status:
            clauses.append(f"status = {m}")
            args.append(status)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._runs(where, tuple(args), limit)

    def last_success(self, job_id: str) -> str:
        """When the job's last successful (or partial) run started; "" if it never had one."""
        where = f"WHERE job_id = {self._MARK} AND status IN ('success', 'partial')"
        found = self._runs(where, (job_id,), 1)
        return found[0].started_at if found else ""

    def mark_interrupted(
        self, reason: str, *, only_mine: bool = False, others: bool = False
    ) -> int:
        """Runs left ``running`` or ``queued`` by a process that is gone are interrupted;
        returns how many. A run whose process still lives (a CLI ``run``, the studio's "Run
        now"; with PostgreSQL, on any machine) is left alone; ``only_mine``: this process's
        runs only; ``others``: other processes' only (this one lives: a scheduler's runs
        waiting for a worker). A run still going that is interrupted stops at its next save
        of counts (``NoLongerRunning``)."""
        count = 0
        with self._tx() as h:
            where = f"WHERE status IN {HOLDING}"
            for run, alive in self._select(h, where, (), 100_000, alive=True, lock=True):
                mine = run.owner == OWNER
                if (only_mine and not mine) or (others and mine):
                    continue
                if not only_mine and not mine and alive:
                    continue
                self._interrupt(h, run, reason)
                count += 1
            self._interrupted(h, only_mine)
        return count

    def _interrupted(self, h: Any, only_mine: bool) -> None:
        """What a store does once ``mark_interrupted`` has interrupted the runs (nothing)."""

    def purge(self, days: int) -> int:
        """Forget runs older than ``days``: their records (with PostgreSQL, their stored
        files go with them) and their output folders on this machine."""
        cutoff = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        where = f"WHERE started_at < {self._MARK}"
        old = self._runs(where, (cutoff,), 100_000)
        for run in old:
            shutil.rmtree(run.folder, ignore_errors=True)
        with self._tx() as h:
            h.execute(f"DELETE FROM runs {where}", (cutoff,))
        return len(old)
