"""A test of a job being built runs in a thread: its progress is readable while it runs, and
Cancel stops it at its next request with what it found so far. Against the demo sandbox."""

from __future__ import annotations

import time

from studio.previewtask import PreviewTask
from tests.helpers import conn_for, job_for, wait_for

PAGED = {"type": "pagination", "page_size": 10, "total_pages_path": "$.total_pages"}


def test_a_test_reports_its_progress_and_its_trace(sandbox, home):
    job = job_for([{"path": "/products", "behavior": PAGED}])
    task = PreviewTask(job, conn_for(sandbox), home, max_pages=3, max_records=1000)
    assert task.wait(30)
    trace = task.trace
    assert trace.error is None and len(trace.records) == 30
    progress = task.progress
    assert (progress.pages, progress.records) == (3, 30)
    assert progress.requests == len(trace.exchanges) >= 3  # and the token request
    assert progress.text().startswith("3 pages · 30 records · ")
    assert "/api/products" in progress.last and progress.last.endswith("→ 200")


def test_cancel_stops_a_slow_test_with_what_it_found(sandbox, home):
    slow = {"path": "/products", "query": [{"name": "slow", "value": "0.4"}], "behavior": PAGED}
    task = PreviewTask(job_for([slow]), conn_for(sandbox), home, max_pages=10, max_records=1000)
    assert not task.wait(0.1)
    wait_for(lambda: task.progress.pages >= 2, 20, "two pages")
    started = time.monotonic()
    task.cancel()
    assert task.wait(10), "a cancelled test must end at its next request"
    assert time.monotonic() - started < 2
    trace = task.trace
    assert trace.error is None  # cancelled is a stop, not a failure
    assert trace.stopped[-1].startswith("cancelled: the test was stopped after ")
    assert 20 <= len(trace.records) < 100
    assert task.progress.pages < 10


def test_a_test_that_breaks_ends_with_its_message(home, sandbox):
    conn = conn_for(sandbox, base_url="http://127.0.0.1:9/api", auth={"type": "none"})
    task = PreviewTask(job_for([{"path": "/products"}]), conn, home)
    assert task.wait(30)
    assert "refused the connection" in task.trace.error
