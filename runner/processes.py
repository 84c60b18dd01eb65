"""The embedded daemon's worker processes (issue 17): its runs go to a pool of processes so that
two big runs use two cores. Nearly all of a run's work holds the interpreter's lock (parsing,
mapping, CSV, binding): two runs in threads of one process take as long as one after the other,
two in two processes about 1.3x one run (docs/benchmarks.md, "Two runs at once").

A process runs what a Celery worker runs: a run message (``studio.runs.run_message``), the job's
snapshot with its secrets sealed, for a run the daemon claimed as ``queued``; the process's claim
makes it ``running`` under its own PID, which the run history's liveness checks see. So the
daemon keeps the scheduling, the claims and the queue, and a process needs nothing but the home.

The pool is Pebble's ``ProcessPool`` rather than the standard library's ``ProcessPoolExecutor``:
there, one process that dies (killed, out of memory) breaks the whole pool and every run in it,
and a run cannot be stopped from outside. Pebble fails only the dead process's run
(``ProcessExpired``) and starts another process, and stops a run that outlives its timeout
(the run's own check, at each request and page, cannot stop a run stuck in a call). Its
processes are spawned (the daemon has threads, so fork is unsafe), started with the pool at a
run and kept while runs come, so a run does not pay for starting an interpreter and importing
the studio (~0.3 s); each takes ~60 MB idle, given back after ``IDLE_FOR`` without a run.

What a process must not do is outlive the daemon or die with the terminal's Ctrl-C: it ignores
SIGINT, and SIGTERM while it runs a run (a service manager sends SIGTERM to the whole group; the
daemon decides, after its grace period, what to stop; an idle process exits at once), and exits
when its parent is gone (a daemon killed by SIGKILL), so that its run, left ``running`` under a
dead PID, is recorded interrupted by the daemon's next check.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from pebble import ProcessExpired, ProcessPool

from studio.runhistory import AlreadyRunning, EndNotRecorded, NotQueued

Expired = ProcessExpired  # the run's process died
TIMEOUT_MARGIN = 60.0  # seconds past a run's timeout before its process is stopped from outside
IDLE_FOR = 600.0  # seconds without a run after which the processes are stopped


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)  # the daemon is gone: its runs are recorded interrupted by the next one


_busy = threading.Event()  # set while this process runs a run


def _on_sigterm(_signum, _frame) -> None:
    if not _busy.is_set():
        os._exit(0)


def _start(parent: int) -> None:
    """Each process, as it starts: the signals and the parent watch above, and the imports a
    run needs, done before its first run instead of during it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    import studio.runs  # noqa: F401


def outcome(e: Exception) -> dict:
    """What a run that raised ``e`` came to, as plain data: the log line's event and reason."""
    if isinstance(e, AlreadyRunning):  # recorded skipped by the claim
        return {"outcome": "skipped", "reason": str(e)}
    if isinstance(e, NotQueued):  # ended while it waited (the runner stopping): left as it is
        return {"outcome": "dropped", "reason": str(e)}
    if isinstance(e, EndNotRecorded):  # the database out of reach: interrupted once it is back
        return {"outcome": "run-end-not-recorded", "reason": str(e)}
    return {"outcome": "run-error", "error": str(e) or type(e).__name__}


def run_in_process(message: dict, home: str) -> dict:
    """A run message run in this process: what happened, as plain data. Every exception is
    turned into data here, because one the daemon could not unpickle (an exception class whose
    constructor takes other arguments) would break the whole pool."""
    from studio.runs import run_message

    _busy.set()
    try:
        run = run_message(message, Path(home))
    except Exception as e:  # the history out of reach before the run started…
        return outcome(e)
    finally:
        _busy.clear()
    return {
        "outcome": "run-end",
        "status": run.status,
        "records": run.records,
        "rows": run.rows_written,
        "rejected": run.rows_rejected,
        "error": run.error or None,
    }


class Processes:
    """The daemon's pool of worker processes, started with its first run and stopped once idle
    for ``IDLE_FOR`` (``release_if_idle``): a daemon whose jobs run hourly does not keep its
    processes' memory between them, and one busy all day pays the start-up once."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()
        self._runs = 0  # runs sent and not ended
        self._idle_since = time.monotonic()

    def submit(self, message: dict, home: Path, timeout: float | None = None) -> Future:
        """Run ``message`` in a process: a future of ``run_in_process``'s answer; of
        ``Expired`` when its process died; of ``TimeoutError`` when the run went on
        ``TIMEOUT_MARGIN`` seconds past ``timeout`` and its process was stopped."""
        limit = timeout + TIMEOUT_MARGIN if timeout else None
        with self._lock:
            self._runs += 1
        try:
            future = self.start().schedule(run_in_process, args=(message, str(home)), timeout=limit)
        except BaseException:
            self._ended(None)
            raise
        future.add_done_callback(self._ended)
        return future

    def _ended(self, _future) -> None:
        with self._lock:
            self._runs -= 1
            if not self._runs:
                self._idle_since = time.monotonic()

    def release_if_idle(self, idle_for: float = 0.0) -> bool:
        """Stop the processes if no run has been in them for ``idle_for`` seconds (the
        daemon's check, with ``IDLE_FOR``); the next run starts new ones. Whether it did."""
        with self._lock:  # taken out of use in the same step as the check: a run sent
            idle = self._pool is not None and not self._runs  # next starts a new pool
            if not idle or time.monotonic() - self._idle_since < idle_for:
                return False
            pool, self._pool = self._pool, None
        _stop(pool)
        return True

    def start(self) -> ProcessPool:
        """The pool, started now if it is not (its processes then import the studio, in the
        background): a daemon's first run does it, a benchmark before its clock starts."""
        with self._lock:
            if self._pool is None or not self._pool.active:
                self._pool = ProcessPool(
                    max_workers=self.workers,
                    initializer=_start,
                    initargs=(os.getpid(),),
                    context=multiprocessing.get_context("spawn"),
                )
            return self._pool

    def kill(self) -> None:
        """Stop every process now, idle or in the middle of its run (the grace period is over,
        or the daemon is dropped): their runs are then recorded interrupted, with nothing left
        writing. SIGKILL, since one in a run ignores SIGTERM (Pebble's stop would wait 3 s)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            _stop(pool)


def _stop(pool: ProcessPool) -> None:
    pool.stop()  # first, so that it starts no process in place of those killed
    for process in pool_processes(pool):
        process.kill()
    pool.join(10)


def pool_processes(pool: ProcessPool) -> list:
    """The pool's processes: Pebble keeps them in its worker manager and has no public way to
    kill them (Python 3.14's ``ProcessPoolExecutor.kill_workers`` does)."""
    manager = getattr(getattr(pool, "_pool_manager", None), "worker_manager", None)
    return list(getattr(manager, "workers", {}).values())
