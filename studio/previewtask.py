"""A test of a job being built, running in a thread of its own: the studio shows its pages,
records and elapsed time while it runs and can cancel it, and the analyst can go on typing
(a Streamlit script that waited for the test would be interrupted by the next keystroke).

Cancel is cooperative, as the run's timeout is: the test checks it at every request, page and
log line, and ends with what it found so far and a sentence saying it was cancelled. A request
already sent is not cut short: Cancel takes effect when it answers or times out (the
connection's timeout, retries included).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from studio.config.connections import ApiConnection, FileServerConnection
from studio.config.jobs import ApiJob, FileJob
from studio.engine import Event, Trace
from studio.errors import StudioError
from studio.runhistory import plural
from studio.runs import preview_job


@dataclass
class Progress:
    requests: int = 0
    pages: int = 0
    records: int = 0
    elapsed: float = 0.0
    last: str = ""  # the last request, as "GET https://…/products?page=3 → 200"

    def text(self) -> str:
        return (
            f"{plural(self.pages, 'page')} · {plural(self.records, 'record')} · "
            f"{plural(self.requests, 'request')} · {self.elapsed:.1f} s"
        )


class PreviewTask:
    """``preview_job`` in a daemon thread, with its progress so far and a way to stop it."""

    def __init__(
        self,
        job: ApiJob | FileJob,
        conn: ApiConnection | FileServerConnection,
        home: Path,
        **limits,
    ):
        self.up_to_call = limits.get("up_to_call")
        self.progress = Progress()
        self.trace: Trace | None = None
        self._cancelled = threading.Event()
        self._stopped_here = False
        self._started = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, args=(job, conn, home), kwargs=limits, daemon=True
        )
        self._thread.start()

    def _run(self, job, conn, home, **limits) -> None:
        try:
            self.trace = preview_job(job, conn, home, on_event=self._event, **limits)
        except Exception as e:  # a bug must end the test with its message, not hang the panel
            self.trace = Trace(error=f"the test failed unexpectedly: {e}")
        if self._stopped_here and self.trace.error:  # cancelled is a stop, as a limit is
            self.trace.stopped.append(self.trace.error)
            self.trace.error = None

    def _event(self, event: Event) -> None:
        p = self.progress
        kind = event["kind"]
        if kind == "exchange":
            ex = event["exchange"]
            p.requests += 1
            p.last = f"{ex.method} {ex.url} → {ex.status or ex.error}"
        elif kind == "page":
            p.pages += 1
            p.records += event.get("records") or 0
        if self._cancelled.is_set():
            self._stopped_here = True  # this error, not another one, is the cancel
            raise StudioError(
                f"cancelled: the test was stopped after {plural(p.requests, 'request')}"
            )

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wait(self, seconds: float) -> bool:
        """Whether the test has ended, waiting ``seconds`` at most."""
        self._thread.join(seconds)
        self.progress.elapsed = time.monotonic() - self._started
        return not self._thread.is_alive()
