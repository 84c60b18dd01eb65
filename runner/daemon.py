"""``python -m runner serve``: run the active jobs on their schedules.

The loop is the ``schedule`` library's: a tick every second looks at the jobs in the store and
runs those that are due, a heartbeat every few seconds says the runner is alive. The daemon keeps
little state of its own: due times come from each job's schedule, its fixed anchor (the job's
creation) and the slot of its last scheduled run in the run history, so a restart neither shifts
nor skips a run, and jobs created, edited, disabled or deleted are seen at the next tick.

One daemon serves a home: it holds an ``flock`` on ``STUDIO_HOME/runner.lock`` for its life,
and a second one refuses to start, naming the first one's PID. Even so, each slot is claimed in
the run history, where a unique index lets it be recorded once per job.

Runs go to a pool of worker processes (``runner.processes``: two big runs use two cores, where
threads share one interpreter lock), each watched by a thread of the daemon that does the run's
bookkeeping when it ends. A job never runs twice at once: a slot that comes while it
runs is queued once (to run right after) or skipped, per the job's setting, and the history says
which; a run started elsewhere (``runner run``, the studio's Run now) holds the job in the run
history, and a slot that comes meanwhile is recorded as skipped, with that run named. On SIGTERM
or SIGINT the daemon takes no new runs, waits for the running ones up to a grace period, records
the rest as interrupted and exits 0; on start, and every ``check_every`` seconds, it records as
interrupted the runs whose process is gone (a crash left them "running").

With ``STUDIO_BROKER_URL`` set (distributed mode, docs/scale-out.md) the daemon stays the one
scheduler, but sends each run to the Celery workers (``studio.runs.enqueue``) instead of its
pool; the same overlap rules hold, by the run history: a job's run ends when its record does.
The check also records the runs no worker took in time, and the daemon leaves the runs it sent
to the workers when it stops.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import schedule as scheduler

from runner.processes import IDLE_FOR, Expired, Processes, outcome
from studio.broker import broker_url, job_queue
from studio.config.jobs import RunSettings
from studio.config.schedules import Schedule, due, next_runs
from studio.config.store import ConfigStore
from studio.errors import Conflict, StudioError
from studio.private import FILE_MODE, open_private
from studio.runhistory import HEARTBEAT_FILE, now_iso
from studio.runs import enqueue, queue_run
from studio.stores import open_history

LATE = timedelta(minutes=2)  # a slot older than this when found was missed: a catch-up
LOCK_FILE = "runner.lock"  # held by the daemon serving the home, with its PID inside
_UNKNOWN = object()


def hold_home(home: Path) -> int:
    """Take the home for this daemon, for the life of the process (the kernel drops the lock
    when it dies, even by SIGKILL); returns the descriptor to keep open. Another daemon
    holding it makes this raise, naming that daemon's PID (as it wrote it in the file)."""
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        who = f"PID {holder}" if holder.isdigit() else "its PID unknown"
        raise StudioError(
            f"another runner ({who}) already serves {home}: one runner per STUDIO_HOME; "
            "stop that one first"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


class Scheduled(NamedTuple):
    """What the daemon keeps of a job between store changes: little, for thousands of jobs."""

    id: str
    name: str
    schedule: Schedule
    anchor: datetime
    run: RunSettings


class Daemon:
    def __init__(
        self,
        store: ConfigStore,
        *,
        workers: int = 4,
        json_logs: bool = False,
        grace: float = 30.0,
        keep_days: int = 30,
        clock=lambda: datetime.now(UTC),
        check_every: float = 10.0,
    ):
        self.store = store
        self.history = open_history(store.home)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run")
        self.processes = Processes(workers)  # the runs themselves, each watched by a thread
        self.distributed = bool(broker_url())  # runs go to Celery workers, not the pool
        self.check_every = check_every
        self.json_logs = json_logs
        self.grace = grace
        self.clock = clock
        self.running: dict[str, str] = {}  # job id: its run's id
        self.queued: dict[str, tuple[datetime | None, str]] = {}
        self.last_slot: dict[str, datetime] = {}
        self.stopping = threading.Event()
        self.started_at = now_iso()
        self.lock = threading.Lock()
        self._jobs: list[Scheduled] = []
        self._next: dict[str, datetime | None] = {}
        self._version: tuple[int, int] | None = None
        self.keep_days = keep_days
        self._home_lock: int | None = None

    def hold_home(self) -> None:
        """Refuse to serve a home another daemon serves (see ``hold_home``); once is enough."""
        if self._home_lock is None:
            self._home_lock = hold_home(self.store.home)

    # --- logging and heartbeat ------------------------------------------------------------------

    def log(self, event: str, **data) -> None:
        """One line per event on stdout; JSON when asked. Messages are already masked."""
        if self.json_logs:
            line = json.dumps(
                {"at": now_iso(), "event": event, **data}, ensure_ascii=False, default=str
            )
        else:
            line = f"{now_iso()} {event} " + " ".join(f"{k}={v}" for k, v in data.items())
        print(line, flush=True)

    def heartbeat(self) -> None:
        """``STUDIO_HOME/runner.json``, replaced atomically: the studio reads whether the runner
        is up, since when, and what it runs."""
        data = {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "last_seen": now_iso(),
            "running": sorted(self.running),
            "queued": sorted(self.queued),
        }
        path = self.store.home / HEARTBEAT_FILE
        tmp = path.with_suffix(".tmp")
        with open_private(tmp) as f:
            f.write(json.dumps(data))
        os.replace(tmp, path)

    # --- scheduling -------------------------------------------------------------------------------

    def _last_slot(self, job_id: str) -> datetime | None:
        if job_id not in self.last_slot:
            for run in self.history.list(job_id=job_id, limit=50):
                if run.slot:
                    self.last_slot[job_id] = datetime.fromisoformat(run.slot)
                    break
        return self.last_slot.get(job_id)

    def tick(self) -> None:
        """Submit every active job whose slot has come.

        Each job's next run time is computed once (and again after it runs, or when the store
        changes), so a tick over thousands of jobs is a comparison each, not a schedule each."""
        if self.stopping.is_set():
            return
        if self.distributed:
            try:
                self.reap()
            except Exception as e:  # the history out of reach: said, and tried at the next tick
                self.log("history-error", error=str(e))
        now = self.clock()
        version = self.store.version()
        if version != self._version:  # reload only when the store changed
            try:
                self._jobs = [
                    Scheduled(j.id, j.name, j.schedule, j.anchor, j.run)
                    for j in self.store.list("jobs", reveal=False)
                    if j.status == "active" and j.schedule.type != "manual" and j.anchor
                ]
                self._version = version
                self._next.clear()
            except Exception as e:  # an unreadable store must not stop the runner: say it, retry
                self.log("store-error", error=str(e))
                return
        for job in self._jobs:
            upcoming = self._next.get(job.id, _UNKNOWN)
            if upcoming is _UNKNOWN:
                after = self._last_slot(job.id) or job.anchor
                upcoming = next(iter(next_runs(job.schedule, job.anchor, after, 1)), None)
                self._next[job.id] = upcoming
            if upcoming is None or now < upcoming:
                continue
            slot = due(
                job.schedule,
                job.anchor,
                self._last_slot(job.id),
                now,
                catch_up=job.run.catch_up,
                tolerance=LATE,
            )
            self._next[job.id] = next(iter(next_runs(job.schedule, job.anchor, now, 1)), None)
            if slot is None:
                continue
            self.last_slot[job.id] = slot
            trigger = "catch-up" if now - slot > LATE else "schedule"
            try:
                self.submit(job.id, job.name, trigger, slot, job.run.on_overlap)
            except Conflict as e:  # held by a run started elsewhere, or the slot was taken
                self.log("skipped", job=job.name, slot=slot, reason=str(e))
            except Exception as e:  # distributed: Redis or PostgreSQL down; the next slot tries
                if not self.distributed:  # the embedded default, as it always was
                    raise
                self.log("run-error", job=job.name, slot=slot, error=str(e))

    def submit(
        self,
        job_id: str,
        name: str,
        trigger: str,
        slot: datetime | None,
        on_overlap: str = "queue",
        started_by: str = "",
    ) -> tuple[str, str | None]:
        """Start a run, or queue or skip it when the job is running: (what happened, run id).
        ``started_by``: the user recorded as starting it (the REST API's caller); "" for the
        schedule. A start that joins a run queued already leaves that run's starter.

        The run is recorded at once (queued, and holding the job), so a caller of the REST API
        gets its id. Raises ``AlreadyRunning`` when a run started elsewhere holds the job (it
        is recorded as skipped), ``SlotTaken`` when the slot was recorded already."""
        stamp = slot.isoformat() if slot else ""
        with self.lock:
            if job_id in self.running:
                if on_overlap == "skip":
                    run = self.history.start(job_id, name, trigger, stamp, started_by=started_by)
                    run.status, run.finished_at = "skipped", now_iso()
                    run.error = "the previous run was still running (skip)"
                    self.history.save(run)
                    self.log("skipped", job=name, slot=slot)
                    return "skipped", None
                if job_id in self.queued:  # queued once, not once per trigger
                    return "queued", self.queued[job_id][1]
                run = self.history.start(job_id, name, trigger, stamp, started_by=started_by)
                run.status = "queued"
                self.history.save(run)
                self.queued[job_id] = (slot, run.id)
                self.log("queued", job=name, slot=slot, run=run.id)
                return "queued", run.id
            if self.distributed:  # claimed (queued) and sent; a worker makes it running
                run = enqueue(self.store, job_id, trigger=trigger, slot=slot, started_by=started_by)
                self.running[job_id] = run.id
                self.log("enqueued", job=name, trigger=trigger, slot=slot, run=run.id)
                return "started", run.id
            run = self.history.start_run(
                job_id, name, trigger, slot=stamp, status="queued", started_by=started_by
            )
            self.running[job_id] = run.id
            self.pool.submit(self._run, job_id, name, trigger, slot, run.id)
            return "started", run.id

    def _run(
        self, job_id: str, name: str, trigger: str, slot: datetime | None, run_id: str
    ) -> None:
        """A run, in a thread of the pool: the run goes to a worker process and this thread
        waits for its end, then logs it and starts the run queued behind it, if any."""
        try:
            self.log("run-start", job=name, trigger=trigger, slot=slot, run=run_id)
            done = self._in_process(job_id, trigger, slot, run_id)
            event = done.pop("outcome")
            self.log(event, job=name, run=run_id, **done)
            if event == "run-error":  # a job deleted meanwhile, a broken config, the history…
                self.history.end_if_held(run_id, "failed", done["error"])
        except Exception as e:  # the history out of reach: said; the run is left to the next
            self.log("history-error", job=name, run=run_id, error=str(e))  # start's sweep
        finally:
            with self.lock:
                self.running.pop(job_id, None)
                waiting = self.queued.pop(job_id, None)
                if waiting and not self.stopping.is_set():
                    next_slot, next_id = waiting
                    self.running[job_id] = next_id
                    next_trigger = "schedule" if next_slot else trigger
                    self.pool.submit(self._run, job_id, name, next_trigger, next_slot, next_id)

    def _in_process(self, job_id: str, trigger: str, slot: datetime | None, run_id: str) -> dict:
        """Run the queued run ``run_id`` in a worker process: ``processes.run_in_process``'s
        answer. Its message (the job's snapshot) is made now, as it starts, so that a run
        queued behind another runs the job as it is then; making it claims the run again."""
        try:
            _claimed, message = queue_run(
                self.store, job_id, trigger=trigger, slot=slot, run=self.history.get(run_id)
            )
        except Exception as e:  # the job deleted meanwhile, its connection gone…
            return outcome(e)
        timeout = self._timeout(job_id)
        try:
            return self.processes.submit(message, self.store.home, timeout).result()
        except Expired:  # its process died (killed, out of memory) or the grace period ended
            return self._lost(run_id, self._died())
        except TimeoutError:  # stuck past its timeout where its own check could not see it
            reason = f"stopped: the run took longer than its timeout of {timeout:g} s"
            return self._lost(run_id, reason + " (its process was stopped)", "failed")

    def _died(self) -> str:
        if self.stopping.is_set():
            return "the runner was stopped (grace period over)"
        return "the worker process running it died (killed, or out of memory?)"

    def _lost(self, run_id: str, reason: str, status: str = "interrupted") -> dict:
        """Record a run whose process ended before it did, by its id (the check would find a
        dead PID soon, but PostgreSQL's history only once the heartbeat times out); its
        scratch file of unfinished rows goes with it."""
        self.history.end_if_held(run_id, status, reason)
        return {"outcome": "run-end", "status": status, "error": reason}

    # --- distributed mode: the runs the workers have ------------------------------------------

    def reap(self) -> None:
        """Forget the runs sent to the workers that ended, and send the run queued behind each
        (``on_overlap`` queue). One read of the history per tick, whatever the number of runs."""
        with self.lock:
            sent = {job_id: run_id for job_id, run_id in self.running.items()}
        if not sent:
            return
        held = {
            r.id for s in ("queued", "running") for r in self.history.list(status=s, limit=100_000)
        }
        for job_id, run_id in sent.items():
            if run_id not in held:
                self._ended(job_id, run_id)

    def _ended(self, job_id: str, run_id: str) -> None:
        run = self.history.get(run_id)
        if run:
            self.log(
                "run-end",
                job=run.job_name,
                run=run_id,
                status=run.status,
                rows=run.rows_written,
                error=run.error or None,
            )
        with self.lock:
            self.running.pop(job_id, None)
            waiting = self.queued.pop(job_id, None)
            if not waiting or self.stopping.is_set():
                return
            queued = self.history.get(waiting[1])
            try:
                sent = enqueue(
                    self.store, job_id, trigger=queued.trigger, slot=waiting[0], run=queued
                )
            except Exception as e:  # started elsewhere meanwhile (recorded skipped), deleted…
                self.log("run-error", job=queued.job_name, run=queued.id, error=str(e))
                if queued.status == "queued":
                    queued.status, queued.error, queued.finished_at = "failed", str(e), now_iso()
                    self.history.save(queued)
                return
            self.running[job_id] = sent.id
            self.log("enqueued", job=sent.job_name, trigger=sent.trigger, run=sent.id)

    def check_workers(self) -> None:
        """Record as interrupted the runs whose process is gone (a worker killed mid-run, or a
        worker process a killed daemon left, which exits as it sees its parent gone: no PID on
        this host for the SQLite history, no heartbeat for PostgreSQL's); in distributed mode
        also the runs no worker took within their job's run timeout (a message Redis lost,
        restarted without persistence, or a queue no worker consumes): else they would hold
        their jobs for good.

        Each is interrupted only if still so in the same transaction (``end_if_queued``, the
        claim's conditions): a run a worker takes at that moment is either interrupted first,
        and the worker drops it, or taken first, and left running. The runs queued here behind
        a job's run (``on_overlap`` queue) wait for that run, not for a worker: left alone."""
        count = self.history.mark_interrupted(  # not this daemon's runs waiting for a worker
            "the worker running it stopped before the run ended", others=True
        )
        if not self.distributed:  # the runs queued here wait for a thread of the pool
            if count:
                self.log("interrupted-runs-recorded", count=count)
            return
        now = datetime.now(UTC)
        with self.lock:
            behind = {run_id for _slot, run_id in self.queued.values()}
        for run in self.history.list(status="queued", limit=100_000):
            waited = (now - datetime.fromisoformat(run.started_at)).total_seconds()
            if run.id in behind or waited < 60 or waited < self._timeout(run.job_id):
                continue
            queue = job_queue(self.store, run.job_id)  # a queue no worker consumes, said
            took = f"no worker took it from queue {queue!r}" if queue else "no worker took it"
            reason = f"{took} within {waited / 60:.0f} minutes"
            count += self.history.end_if_queued(run.id, "interrupted", reason)
        if count:
            self.log("interrupted-runs-recorded", count=count)

    def _checked(self) -> None:
        try:
            self.check_workers()
        except Exception as e:  # the history out of reach: said, and tried at the next check
            self.log("history-error", error=str(e))

    def release(self) -> None:
        """Stop the worker processes once idle for ``IDLE_FOR``: their memory back between
        runs far apart."""
        if self.processes.release_if_idle(IDLE_FOR):
            self.log("worker-processes-stopped", idle_for_seconds=IDLE_FOR)

    def _timeout(self, job_id: str) -> float:
        try:
            return self.store.get("jobs", job_id).run.timeout_minutes * 60.0
        except StudioError:  # deleted meanwhile
            return 0.0

    def purge(self) -> None:
        """Forget runs (and their files) older than ``keep_days``."""
        removed = self.history.purge(self.keep_days)
        if removed:
            self.log("history-purged", runs=removed, older_than_days=self.keep_days)

    # --- the loop ------------------------------------------------------------------------------

    def serve(self) -> int:
        self.hold_home()
        interrupted = self.history.mark_interrupted("the runner stopped before the run ended")
        if interrupted:
            self.log("interrupted-runs-recorded", count=interrupted)
        self.log("runner-start", pid=os.getpid(), home=str(self.store.home))
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        jobs = scheduler.Scheduler()
        jobs.every(1).seconds.do(self.tick)
        jobs.every(5).seconds.do(self.heartbeat)
        jobs.every(1).hours.do(self.purge)
        jobs.every(self.check_every).seconds.do(self._checked)
        jobs.every(60).seconds.do(self.release)
        self.purge()
        self.heartbeat()
        self.tick()
        while not self.stopping.is_set():
            jobs.run_pending()
            self.stopping.wait(max(0.05, min(1.0, jobs.idle_seconds or 1.0)))
        return self.shutdown()

    def shutdown(self) -> int:
        self.log("runner-stop", running=len(self.running), queued=len(self.queued))
        with self.lock:  # queued runs will not start now: say so in the history
            for _slot, run_id in self.queued.values():
                run = self.history.get(run_id)
                if run and run.status == "queued":
                    run.status, run.finished_at = "interrupted", now_iso()
                    run.error = "the runner stopped before the run could start"
                    self.history.save(run)
            self.queued.clear()
        if self.distributed:  # the runs sent are the workers': they go on without the daemon
            self.running.clear()
        deadline = time.monotonic() + self.grace
        while self.running and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.running:  # the processes stop mid-run, then their runs are recorded so
            left = list(self.running.values())
            self.processes.kill()
            for run_id in left:  # unless the thread waiting for it recorded it first
                self.history.end_if_held(run_id, "interrupted", self._died())
            self.log("interrupted", count=len(left))
        (self.store.home / HEARTBEAT_FILE).unlink(missing_ok=True)
        sys.stdout.flush()
        os._exit(0)  # the threads watching the processes are abandoned: the runs were recorded
