"""The conditional claim (studio/runhistory.py, pghistory.py; issue 17): a worker makes a queued
run ``running`` only while it is still queued and claimed. A run the scheduler's check interrupts
just as a worker picks it up stays interrupted, the worker does not run it and says why, and the
job is free; a run a worker took first is left running by the check. Against SQLite and
PostgreSQL (the ``backend`` fixture)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from runner.daemon import Daemon
from studio import broker, runs
from studio.runhistory import NotQueued
from studio.runs import enqueue, run_message, start_in_background
from studio.stores import open_history
from tests.helpers import setup, wait_for

GONE = "the worker running it stopped before the run ended"


@pytest.fixture
def sent(monkeypatch, backend) -> list[dict]:
    """Distributed mode with the messages kept here instead of Redis."""
    messages: list[dict] = []
    monkeypatch.setenv("STUDIO_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(broker, "send", lambda message, trigger: messages.append(message))
    return messages


def _orphan(backend: str, history, run_id: str) -> None:
    """As if the run's sender (the studio, ``runner run --queue``) had died a minute ago: the
    scheduler's check would interrupt it."""
    if backend == "sqlite":
        run = history.get(run_id)
        run.owner = "a-machine-gone:1"  # not this host: its process is taken for gone
        history.save(run)
        return
    with psycopg.connect(history.url, autocommit=True) as conn:
        conn.execute(
            "UPDATE runs SET owner = 'a-machine-gone:1', heartbeat = now() - interval '1 minute'"
            " WHERE id = %s",
            (run_id,),
        )


def test_a_run_interrupted_as_a_worker_takes_it_is_not_run(
    store, sandbox, sent, backend, monkeypatch
):
    job = setup(store, sandbox)
    history = open_history(store.home)
    run = enqueue(store, job.id)
    _orphan(backend, history, run.id)
    opened = runs.Snapshot.opened

    def swept_meanwhile(self, *a, **kw):  # between the worker's read and its claim
        assert history.mark_interrupted(GONE, others=True) == 1
        return opened(self, *a, **kw)

    monkeypatch.setattr(runs.Snapshot, "opened", swept_meanwhile)
    with pytest.raises(NotQueued, match=f"run {run.id} is no longer queued: it is interrupted"):
        run_message(sent[0], store.home)
    kept = history.get(run.id)
    assert (kept.status, kept.error, kept.rows_written) == ("interrupted", GONE, 0)
    monkeypatch.setattr(runs.Snapshot, "opened", opened)
    assert enqueue(store, job.id).status == "queued"  # the job is free
    with pytest.raises(NotQueued, match="no longer queued: it is interrupted"):
        run_message(sent[0], store.home)  # the message again: still nothing


def test_a_queued_run_is_claimed_once(store, sandbox, sent):
    """A message delivered to two workers: the second finds the run running elsewhere; the
    scheduler's check of runs no worker took leaves a running run alone."""
    job = setup(store, sandbox)
    history = open_history(store.home)
    run = enqueue(store, job.id)
    seen = history.get(run.id)  # what a second worker read before the first one claimed
    claimed = history.start_run(job.id, job.name, "manual", run=history.get(run.id))
    assert claimed.status == "running"
    claimed.owner = "another-worker:7"
    history.save(claimed)
    with pytest.raises(NotQueued, match="already running in another process"):
        history.start_run(job.id, job.name, "manual", run=seen)
    assert not history.end_if_queued(run.id, "interrupted", "no worker took it")
    assert history.get(run.id).status == "running"
    claimed.status = "success"
    history.save(claimed)
    assert history.get(run.id).status == "success"


@pytest.mark.parametrize("sweep", ["worker gone", "no worker took it"])
def test_the_check_and_a_worker_racing_for_a_queued_run(store, sandbox, sent, backend, sweep):
    """The two at once, many times: either the check interrupts the run and the worker's claim
    is refused, or the worker claims it and the check leaves it; never both."""
    job = setup(store, sandbox)
    history = open_history(store.home)
    for _ in range(12):
        run = enqueue(store, job.id)
        _orphan(backend, history, run.id)
        seen = history.get(run.id)  # the worker read the message's run
        barrier, result = threading.Barrier(2), {}

        def claim(seen=seen, barrier=barrier, result=result):
            barrier.wait()
            try:
                result["claimed"] = history.start_run(job.id, job.name, "manual", run=seen)
            except NotQueued as e:
                result["refused"] = str(e)

        def check(run_id=run.id, barrier=barrier, result=result):
            barrier.wait()
            if sweep == "worker gone":
                result["swept"] = history.mark_interrupted(GONE, others=True)
            else:
                result["swept"] = int(history.end_if_queued(run_id, "interrupted", "late"))

        threads = [threading.Thread(target=claim), threading.Thread(target=check)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        final = history.get(run.id)
        if "claimed" in result:
            assert (final.status, result["swept"]) == ("running", 0)
            final.status, final.finished_at = "success", datetime.now(UTC).isoformat()
            history.save(final)  # the run ends: the job is free for the next round
        else:
            assert (final.status, result["swept"]) == ("interrupted", 1)
            assert "no longer queued: it is interrupted" in result["refused"]
    assert history.list(job_id=job.id, status="queued") == []
    assert history.list(job_id=job.id, status="running") == []


def test_the_daemons_check_leaves_the_runs_it_queued_behind_another(store, sandbox, sent):
    """A run queued behind the job's run on a worker (``on_overlap`` queue) waits for that run,
    not for a worker: the check of runs no worker took leaves it, however long it waits."""
    job = setup(store, sandbox)
    history = open_history(store.home)
    daemon = Daemon(store)
    assert daemon.submit(job.id, job.name, "schedule", None)[0] == "started"
    first = history.get(daemon.running[job.id])
    history.start_run(job.id, job.name, "schedule", run=first)  # a worker took it
    what, behind = daemon.submit(job.id, job.name, "schedule", None)
    assert what == "queued"
    late = (datetime.now(UTC) - timedelta(minutes=61)).isoformat(timespec="seconds")
    for run_id in (first.id, behind):
        aged = history.get(run_id)
        aged.started_at = late
        history.save(aged)
    daemon.check_workers()
    assert (history.get(first.id).status, history.get(behind).status) == ("running", "queued")


def test_run_now_in_this_process_still_claims_once(store, sandbox, monkeypatch, backend):
    """The embedded default: Run now claims the job as running, then its thread runs it (the
    claim of a run this process holds already goes ahead)."""
    monkeypatch.delenv("STUDIO_BROKER_URL", raising=False)
    job = setup(store, sandbox)
    run = start_in_background(store, job.id)
    history = open_history(store.home)
    wait_for(lambda: history.get(run.id).status == "success", 30, "the run")
