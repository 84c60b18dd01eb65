"""The run history (studio/runhistory.py): runs kept for the configured days, runs of processes
that are gone marked interrupted, and counts saved while a run goes. What goes through
``open_history`` runs against SQLite and PostgreSQL (the ``backend`` fixture); PostgreSQL's
heartbeats are tested in tests/test_pgstores.py."""

from __future__ import annotations

import pytest

from studio.runhistory import RunHistory, run_files
from studio.runs import run_job
from studio.stores import open_history
from tests.helpers import demo


@pytest.mark.usefixtures("backend")
def test_history_keeps_the_configured_days(store, sandbox):
    demo(store, sandbox)
    history = open_history(store.home)
    run = run_job(store, "Demo suppliers")
    old = history.get(run.id)
    old.started_at = "2020-01-01T00:00:00+00:00"
    history.save(old)
    recent = run_job(store, "Demo suppliers")
    assert history.purge(days=30) == 1
    assert [r.id for r in history.list()] == [recent.id]
    assert not run_files(run) and [f.name for f in run_files(recent)] == [
        "rows.csv",
        "rejects.csv",
        "run.log",
    ]


def test_only_runs_of_processes_that_are_gone_are_marked_interrupted(store):
    import subprocess
    import sys

    from studio.runhistory import OWNER

    history = RunHistory(store.home)
    mine = history.start("j1", "mine", "manual")
    assert mine.owner == OWNER
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = OWNER.rpartition(":")[0]
    other = history.start("j2", "another process, running", "manual")
    other.owner = f"{host}:{alive.pid}"
    history.save(other)
    gone = history.start("j3", "a process that died", "manual")
    gone.owner = f"{host}:{dead.pid}"
    history.save(gone)
    try:
        assert history.mark_interrupted("restart") == 2  # ours (we restart) and the dead one
        assert history.get(other.id).status == "running"
        assert history.get(gone.id).status == "interrupted"
        assert history.get(mine.id).status == "interrupted"
    finally:
        alive.kill()


@pytest.mark.usefixtures("backend")
def test_counts_saved_while_running_never_revive_an_ended_run(store):
    history = open_history(store.home)
    run = history.start_run("job-1", "Job", "manual")
    assert history.save_counts(run.id, {"requests": 3, "attempts": 4, "records": 10})
    seen = history.get(run.id)
    assert (seen.status, seen.requests, seen.attempts, seen.records) == ("running", 3, 4, 10)
    history.mark_interrupted("the runner stopped", only_mine=True)
    history.save_counts(run.id, {"requests": 5, "attempts": 5, "records": 20})
    ended = history.get(run.id)
    assert (ended.status, ended.requests, ended.records) == ("interrupted", 3, 10)
