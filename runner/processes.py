"""The embedded daemon's worker processes (issue 17): its runs go to a pool of processes so that
two big runs use two cores. Nearly all of a run's work holds the interpreter's lock (parsing,
mapping, CSV, binding): two runs in threads of one process take as long as one after the other,
two in two processes about 1.3x one run (docs/benchmarks.md, "Two runs at once").

A process runs what a Celery worker runs: a run message (``studio.runs.run_message``), the job's
snapshot with its secrets sealed, for a run the daemon claimed as ``queued``; the process's claim
makes it ``running`` under its own PID, which the run history's liveness checks see. So the
daemon keeps the scheduling, the claims and the queue, and a process needs nothing but the home.

The pool is the standard library's ``ProcessPoolExecutor`` (no task queue to run: the daemon is
the queue) with the spawn start method (the daemon has threads, so fork is unsafe), kept for the
daemon's life so a run does not pay for starting an interpreter and importing the studio (~0.3
s). A process is started when a run finds none idle, up to the daemon's ``workers``.

What a process must not do is outlive the daemon or die with the terminal's Ctrl-C: it ignores
SIGINT and SIGTERM (a service manager sends SIGTERM to the whole group; the daemon decides, after
its grace period, what to stop) and exits when its parent is gone (a daemon killed by SIGKILL),
so that its run, left ``running`` under a dead PID, is recorded interrupted by the next daemon.
A process that dies (killed, out of memory) breaks the pool: every run in it ends with
``Broken``, and the next run gets a new pool.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

Broken = BrokenProcessPool


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)  # the daemon is gone: its runs are recorded interrupted by the next one


def _start(parent: int) -> None:
    """Each process, as it starts: the signals and the parent watch above, and the imports a
    run needs, done before its first run instead of during it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    import studio.runs  # noqa: F401


def outcome(e: Exception) -> dict:
    """What a run that raised ``e`` came to, as plain data: the log line's event and reason."""
    from studio.runhistory import AlreadyRunning, EndNotRecorded, NotQueued

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

    try:
        run = run_message(message, Path(home))
    except Exception as e:  # the history out of reach before the run started…
        return outcome(e)
    return {
        "outcome": "run-end",
        "status": run.status,
        "records": run.records,
        "rows": run.rows_written,
        "rejected": run.rows_rejected,
        "error": run.error or None,
    }


class Processes:
    """The daemon's pool of worker processes, made again when a dead process broke it."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, message: dict, home: Path) -> Future:
        """Run ``message`` in a process: a future of ``run_in_process``'s answer, or of
        ``Broken`` when a process of the pool died meanwhile."""
        with self._lock:
            for _attempt in range(2):
                if self._pool is None:
                    self._pool = ProcessPoolExecutor(
                        max_workers=self.workers,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_start,
                        initargs=(os.getpid(),),
                    )
                try:
                    return self._pool.submit(run_in_process, message, str(home))
                except Broken:  # a process died since the last run: a new pool
                    self._pool.shutdown(wait=False)
                    self._pool = None
            raise Broken("the runner's worker processes could not be started")

    def kill(self) -> None:
        """Stop every process now, in the middle of its run (the grace period is over): their
        runs are then recorded interrupted, with nothing left writing. Python 3.14 has
        ``kill_workers``; before it, the pool's processes are only in ``_processes``."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            process.kill()
        for process in processes:
            process.join(5)
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Let the processes end once idle (a daemon made and dropped, as the tests do)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
