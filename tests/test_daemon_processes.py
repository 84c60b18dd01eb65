"""The embedded daemon's runs in worker processes (``runner.processes``): two runs at once in two
processes, a worker process killed mid-run, and a stop whose grace period ends mid-run."""

from __future__ import annotations

import os
import signal

from runner.daemon import Daemon
from studio.apitokens import create_token
from studio.rowstore import read_rows, staging_path
from studio.runhistory import RunHistory
from tests.helpers import pid_of, products_job, serve, setup, wait_for
from tests.servers import free_port

MANUAL = {"type": "manual"}


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def running(history, ids: list[str]) -> list:
    return [r for r in map(history.get, ids) if r.status == "running"]


def test_two_runs_go_to_two_processes_at_once(store, sandbox):
    setup(store, sandbox)
    first, second = (
        products_job(store, "Products A", 0.2, schedule=MANUAL),
        products_job(store, "Products B", 0.2, schedule=MANUAL),
    )
    daemon = Daemon(store, workers=2)
    history = RunHistory(store.home)
    try:
        ids = [daemon.submit(j.id, j.name, "manual", None)[1] for j in (first, second)]
        both = wait_for(
            lambda: len(found := running(history, ids)) == 2 and found,
            30,
            "both runs to run at once",
        )
        pids = {pid_of(r) for r in both}
        assert len(pids) == 2 and os.getpid() not in pids  # two processes, neither this one
        wait_for(lambda: not daemon.running, 120, "the runs to end")
        ended = [history.get(i) for i in ids]
        assert [r.status for r in ended] == ["success", "success"], [r.error for r in ended]
        assert all(r.records > 20 for r in ended)
    finally:
        daemon.processes.kill()


def test_a_worker_process_killed_mid_run_is_recorded_and_the_next_run_gets_a_new_one(
    store, sandbox
):
    job = setup(store, sandbox)
    slow = products_job(store, "Slow products", 1, schedule=MANUAL)
    beside = products_job(store, "Products beside it", 0.2, schedule=MANUAL)
    daemon = Daemon(store, workers=2)
    history = RunHistory(store.home)
    try:
        _what, run_id = daemon.submit(slow.id, slow.name, "manual", None)
        _what, beside_id = daemon.submit(beside.id, beside.name, "manual", None)
        started = wait_for(
            lambda: (r := history.get(run_id)).status == "running" and r.records > 0 and r,
            60,
            "the run to read its first page",
        )
        os.kill(pid_of(started), signal.SIGKILL)  # as the kernel's out-of-memory killer does
        wait_for(lambda: not daemon.running, 60, "the daemon to see the runs end")
        run = history.get(run_id)
        assert run.status == "interrupted"
        assert "worker process running it died" in run.error
        assert not staging_path(store.home, run_id).exists()  # its uncommitted rows are gone
        assert history.get(beside_id).status == "success"  # the other run went on
        _what, next_id = daemon.submit(job.id, job.name, "manual", None)
        wait_for(lambda: not daemon.running, 60, "the next run to end")
        after = history.get(next_id)
        assert after.status == "success", after.error
        assert pid_of(after) != pid_of(started)  # a new process
    finally:
        daemon.processes.kill()


def test_a_stop_whose_grace_period_ends_stops_the_run_and_records_it(store, sandbox, home):
    setup(store, sandbox)
    slow = products_job(store, "Slow products", 1, schedule=MANUAL)
    token = create_token(store, "processes test")
    port = free_port()
    daemon = serve(home, port, "--grace", "1")
    history = RunHistory(home)
    try:
        started = wait_for(lambda: _start(port, token, slow.id), 30, "the REST API to start it")
        run = wait_for(
            lambda: (r := history.get(started)).status == "running" and r.records > 0 and r,
            60,
            "the run to read its first page",
        )
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, out
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert '"event": "interrupted", "count": 1' in out
    ended = history.get(started)
    assert (ended.status, ended.error) == (
        "interrupted",
        "the runner was stopped (grace period over)",
    )
    assert wait_for(lambda: gone(pid_of(run)), 10, "the worker process to be gone")
    assert read_rows(home, "Products")[1] == 0


def _start(port: int, token: str, job_id: str) -> str | None:
    import requests

    try:
        r = requests.post(
            f"http://127.0.0.1:{port}/v1/jobs/{job_id}/start",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
    except requests.ConnectionError:
        return None
    return r.json()["processId"] if r.status_code in (200, 201) else None


def test_a_run_stuck_past_its_timeout_is_stopped_from_outside(store, sandbox, monkeypatch):
    """A run waiting inside one request (its own timeout check runs between requests) is
    stopped by the pool once past its timeout and the margin; the other runs go on."""
    import runner.processes

    job = setup(store, sandbox)
    stuck = products_job(store, "Stuck products", 12, schedule=MANUAL)  # a page answered after 12 s
    monkeypatch.setattr(runner.processes, "TIMEOUT_MARGIN", 1.0)
    daemon = Daemon(store, workers=2)
    daemon._timeout = lambda job_id: 1.0 if job_id == stuck.id else 60.0
    history = RunHistory(store.home)
    try:
        _what, stuck_id = daemon.submit(stuck.id, stuck.name, "manual", None)
        _what, other_id = daemon.submit(job.id, job.name, "manual", None)
        wait_for(lambda: not daemon.running, 30, "the stuck run to be stopped")
        ended = history.get(stuck_id)
        assert ended.status == "failed"
        assert ended.error == (
            "stopped: the run took longer than its timeout of 1 s (its process was stopped)"
        )
        assert history.get(other_id).status == "success"
    finally:
        daemon.processes.kill()


def test_idle_processes_are_stopped_and_the_next_run_starts_new_ones(store, sandbox):
    job = setup(store, sandbox)
    daemon = Daemon(store, workers=2)
    history = RunHistory(store.home)
    _what, first = daemon.submit(job.id, job.name, "manual", None)
    wait_for(lambda: not daemon.running, 60, "the first run to end")
    assert not daemon.processes.release_if_idle(600)  # idle for less than that: kept
    pid = pid_of(history.get(first))
    assert daemon.processes.release_if_idle(0)
    assert wait_for(lambda: gone(pid), 10, "the idle process to be stopped")
    _what, second = daemon.submit(job.id, job.name, "manual", None)
    wait_for(lambda: not daemon.running, 60, "the second run to end")
    assert history.get(second).status == "success"
    assert pid_of(history.get(second)) != pid
