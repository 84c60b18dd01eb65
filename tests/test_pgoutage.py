"""PostgreSQL out of reach while a run goes (studio/pghistory.py; issue 17), against the test
session's real server: the module's database refuses connections and its sessions are ended
(``ALLOW_CONNECTIONS false``, ``pg_terminate_backend``), then is let back.

Back soon enough, the run's end is recorded (failed, saying why) and the job is free. Back too
late, the run stops beating: the scheduler's check, in another process, records it interrupted
once the server is back, and the job is free, while the worker's process still lives."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import psycopg
import pytest

from studio import pghistory
from studio.runhistory import EndNotRecorded
from studio.runs import run_job
from studio.stores import open_history
from tests.dbservers import empty_database, store_sql
from tests.helpers import ROOT, products_job, setup, wait_for

GONE = "the worker running it stopped before the run ended"


@pytest.fixture
def pg(module_database, postgres_server, monkeypatch, store) -> str:
    empty_database(module_database)
    monkeypatch.setenv("STUDIO_DATABASE_URL", module_database)
    monkeypatch.setattr(pghistory, "HEARTBEAT_EVERY", 0.2)
    yield module_database
    _reachable(postgres_server, module_database, True)


def _reachable(server, url: str, allow: bool) -> None:
    name = url.rpartition("/")[2]
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid != pg_backend_pid()",
                (name,),
            )


def _heartbeat_of(url: str, run_id: str):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT heartbeat FROM runs WHERE id = %s", (run_id,)).fetchone()[0]


def _rows_of(store, run_id: str) -> int:
    """The run's rows in its entity's table (none when the table was never made)."""
    if not store_sql(store.home, "SELECT 1 FROM pg_tables WHERE tablename = 'products'"):
        return 0
    return store_sql(store.home, f"SELECT count(*) FROM products WHERE _run_id = '{run_id}'")[0][0]


def _slow_job(store, sandbox):
    """Products, 5 pages of 20, each taking half a second."""
    setup(store, sandbox)
    return products_job(store, "Slow products", 0.5, schedule={"type": "manual"})


def _run_until_cut(store, sandbox, postgres_server, url) -> tuple[str, dict, threading.Thread]:
    """Start the slow job in a thread; once it has read a page, cut the database off."""
    job = _slow_job(store, sandbox)
    history = open_history(store.home)
    outcome: dict = {}

    def go():
        try:
            outcome["run"] = run_job(store, job.id)
        except Exception as e:
            outcome["error"] = e

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    running = wait_for(
        lambda: [r for r in history.list(job_id=job.id) if r.records > 0],
        30,
        "the run to read a page",
    )
    _reachable(postgres_server, url, False)
    return running[0].id, outcome, thread


def test_an_end_recorded_once_the_server_is_back(pg, store, sandbox, postgres_server):
    run_id, outcome, thread = _run_until_cut(store, sandbox, postgres_server, pg)
    thread.join(3)
    assert thread.is_alive()  # its end is being tried again
    _reachable(postgres_server, pg, True)
    thread.join(60)
    assert not thread.is_alive() and "error" not in outcome, outcome
    history = open_history(store.home)
    run = history.get(run_id)
    assert run.status == "failed", run
    assert run.error.startswith("the connection to PostgreSQL (STUDIO_DATABASE_URL) was lost")
    assert _rows_of(store, run_id) == 0
    assert run_id not in pghistory._heartbeat(pg).ids
    job = run.job_id
    assert history.start_run(job, run.job_name, "manual").status == "running"  # the job is free


def test_an_end_never_recorded_stops_the_heartbeat(pg, store, sandbox, postgres_server):
    pghistory.END_RETRY_FOR, before = 2.0, pghistory.END_RETRY_FOR
    try:
        run_id, outcome, thread = _run_until_cut(store, sandbox, postgres_server, pg)
        thread.join(60)
    finally:
        pghistory.END_RETRY_FOR = before
    assert isinstance(outcome.get("error"), EndNotRecorded), outcome
    assert "could not be recorded" in str(outcome["error"])
    assert run_id not in pghistory._heartbeat(pg).ids  # this process lives, and stops beating
    _reachable(postgres_server, pg, True)
    history = open_history(store.home)
    run = wait_for(lambda: history.get(run_id), 30, "the server to answer again", 0.2)
    assert run.status == "running"  # what the run could not record
    beat = _heartbeat_of(pg, run_id)
    time.sleep(5 * pghistory.HEARTBEAT_EVERY)
    assert _heartbeat_of(pg, run_id) == beat  # no beat since the server came back
    # The scheduler's check, in its own process, with a heartbeat timeout of 2 seconds.
    code = f"""
        import time
        from pathlib import Path
        from studio.stores import open_history
        history = open_history(Path("{store.home}"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            count = history.mark_interrupted("{GONE}", others=True)
            if count:
                break
            time.sleep(0.2)
        print(count)
    """
    env = os.environ | {"STUDIO_HEARTBEAT_TIMEOUT": "2", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == ["1"], done.stderr
    run = history.get(run_id)
    assert (run.status, run.error) == ("interrupted", GONE)
    assert _rows_of(store, run_id) == 0  # nothing of it is visible
    assert history.start_run(run.job_id, run.job_name, "manual").status == "running"
