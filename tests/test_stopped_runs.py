"""A run recorded ``interrupted`` while it still goes (studio/runs.py, studio/historybase.py):
the scheduler's check interrupted it while PostgreSQL was out of reach longer than the heartbeat
timeout, or a stopping runner after its grace period. The run finds out at its next save of
counts (or just before it commits its rows) and stops: its rows are not committed, and its end
does not overwrite "interrupted". Against SQLite and PostgreSQL (the ``backend`` fixture), with
the demo sandbox's products job slowed down (five pages, each half a second)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from studio import runs
from studio.historybase import Progress
from studio.runs import run_job
from studio.stores import open_history, open_rows
from tests.helpers import PRODUCTS, demo, slow_products, wait_for

pytestmark = pytest.mark.usefixtures("backend")
REASON = "the runner stopped before the run ended"


def _in_thread(store, **kw) -> tuple[dict, threading.Thread]:
    outcome: dict = {}

    def go():
        try:
            outcome["run"] = run_job(store, PRODUCTS, **kw)
        except Exception as e:  # the test says what it was
            outcome["error"] = e

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return outcome, thread


def _logged(run) -> str:
    return (Path(run.folder) / "run.log").read_text("utf-8")


def test_a_run_interrupted_while_it_goes_stops_and_stays_interrupted(store, sandbox, monkeypatch):
    monkeypatch.setattr(runs, "SAVE_EVERY", 0.1)
    demo(store, sandbox)
    slow_products(store, 0.5)
    history = open_history(store.home)
    outcome, thread = _in_thread(store)
    going = wait_for(
        lambda: [r for r in history.list(status="running") if r.records > 0], 30, "a page read"
    )[0]
    assert history.mark_interrupted(REASON, only_mine=True) == 1

    thread.join(30)
    assert not thread.is_alive() and "error" not in outcome
    run = history.get(going.id)
    assert (run.status, run.error) == ("interrupted", REASON)  # not overwritten by its end
    assert (outcome["run"].status, outcome["run"].error) == ("interrupted", REASON)
    assert open_rows(store.home).count("Products") == 0  # none of its rows committed
    log = _logged(run)
    assert log.count('"kind": "page"') < 5  # it stopped early, not after its five pages
    assert f"run {run.id} is no longer running: it is interrupted ({REASON})" in log
    assert "dropped the rows it had not committed" in log


def test_a_run_interrupted_just_before_its_commit_commits_nothing(store, sandbox, monkeypatch):
    """No count is saved while it runs (``SAVE_EVERY`` longer than the run): the check just
    before the rows are committed finds the run interrupted."""
    monkeypatch.setattr(runs, "SAVE_EVERY", 3600)
    demo(store, sandbox)
    history = open_history(store.home)
    pages = []

    def on_event(e):
        if e["kind"] == "page":
            pages.append(e)
            if len(pages) == 5:  # the last page read: what is left is the commit
                assert history.mark_interrupted(REASON, only_mine=True) == 1

    outcome, thread = _in_thread(store, on_event=on_event)
    thread.join(30)
    assert not thread.is_alive() and "error" not in outcome
    assert len(pages) == 5
    run = history.get(outcome["run"].id)
    assert (run.status, run.error, run.rows_written) == ("interrupted", REASON, 0)
    assert open_rows(store.home).count("Products") == 0
    assert "dropped the rows it had not committed" in _logged(run)


def test_the_end_of_a_run_is_recorded_only_while_it_runs(store, backend):
    history = open_history(store.home)
    run = history.start_run("job-1", "Job", "manual")
    run.status = "success"
    assert history.save(run, if_running=True)
    assert history.get(run.id).status == "success"

    other = history.start_run("job-2", "Job 2", "manual")
    history.mark_interrupted(REASON, only_mine=True)
    other.status, other.rows_written = "success", 100
    assert not history.save(other, if_running=True)
    kept = history.get(other.id)
    assert (kept.status, kept.error, kept.rows_written) == ("interrupted", REASON, 0)
    assert history.start_run("job-2", "Job 2", "manual").status == "running"  # the job is free


def test_counts_say_saved_skipped_or_ended(store, backend):
    """Skipped (the history busy: the next save records them) is not ended (the run stops)."""
    history = open_history(store.home)
    run = history.start_run("job-1", "Job", "manual")
    assert history.save_counts(run.id, {"records": 10}) is Progress.SAVED
    if backend == "sqlite":
        other = sqlite3.connect(store.home / "runs.sqlite", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's write lock
    else:
        import os

        other = psycopg.connect(os.environ["STUDIO_DATABASE_URL"])
        other.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (run.id,))
    try:
        assert history.save_counts(run.id, {"records": 20}) is Progress.SKIPPED
    finally:
        other.rollback() if backend != "sqlite" else other.execute("ROLLBACK")
        other.close()
    assert history.get(run.id).records == 10
    history.mark_interrupted(REASON, only_mine=True)
    assert history.save_counts(run.id, {"records": 30}) is Progress.ENDED
    assert history.get(run.id).records == 10


def test_a_run_is_ended_from_outside_only_while_it_is_held(store, backend):
    """The daemon records the run of a worker process that died or was stopped: queued or
    running, it is ended with the reason; ended already, it keeps its own end."""
    history = open_history(store.home)
    queued = history.start_run("job-1", "Job", "manual", status="queued")
    assert history.end_if_held(queued.id, "interrupted", "its process died")
    running = history.start_run("job-1", "Job", "manual")
    assert history.end_if_held(running.id, "failed", "stopped past its timeout")
    assert (history.get(running.id).status, history.get(running.id).error) == (
        "failed",
        "stopped past its timeout",
    )
    assert not history.end_if_held(running.id, "interrupted", "too late")
    assert history.get(queued.id).status == "interrupted"
    assert history.get(running.id).error == "stopped past its timeout"
