"""The runner daemon: in-process with a fake clock for the scheduling rules, and as a real
process (`python -m runner serve`) killed mid-run and restarted."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

from runner.daemon import Daemon
from studio.apitokens import create_token
from studio.config.schedules import Schedule
from studio.rowstore import read_rows
from studio.runhistory import RunHistory, runner_status
from tests.helpers import products_job, serve, setup, wait_for
from tests.servers import free_port


def wait_idle(daemon: Daemon, timeout: float = 30) -> None:
    wait_for(lambda: not daemon.running, timeout, "the daemon's runs to end")
    assert not daemon.running


def test_due_runs_catch_up_once_and_follow_edits(store, sandbox):
    job = setup(store, sandbox)
    clock = [job.created_at + timedelta(seconds=61)]
    daemon = Daemon(store, clock=lambda: clock[0])
    daemon.tick()
    wait_idle(daemon)
    runs = RunHistory(store.home).list(job_id=job.id)
    assert [(r.trigger, r.status) for r in runs] == [("schedule", "success")]
    daemon.tick()  # the same minute again: nothing
    assert not daemon.running

    def every(schedule: dict):
        return lambda j: j.model_copy(update={"schedule": Schedule.model_validate(schedule)})

    store.modify("jobs", job.id, every({"type": "hourly", "every": 1}), source="cli")
    clock[0] += timedelta(hours=3, minutes=30)  # down for hours: one catch-up run, not three
    daemon.tick()
    wait_idle(daemon)
    daemon.tick()
    wait_idle(daemon)
    assert [r.trigger for r in RunHistory(store.home).list(job_id=job.id)] == [
        "catch-up",
        "schedule",
    ]
    # A restarted daemon knows the last slot from the history: nothing due.
    fresh = Daemon(store, clock=lambda: clock[0])
    fresh.tick()
    assert not fresh.running
    store.modify("jobs", job.id, every({"type": "minutes", "every": 1}), source="cli")
    # Disabled: not run. Without catch-up: a missed slot waits for the next one.
    store.set_status("jobs", job.id, "disabled", source="cli")
    clock[0] += timedelta(minutes=5)
    fresh.tick()
    assert not fresh.running
    store.set_status("jobs", job.id, "active", source="cli")
    store.modify(
        "jobs",
        job.id,
        lambda j: j.model_copy(update={"run": j.run.model_copy(update={"catch_up": False})}),
        source="cli",
    )
    clock[0] += timedelta(minutes=5, seconds=30)
    fresh.tick()
    assert fresh.running  # the latest slot is only 30 s old: on time, not a catch-up
    wait_idle(fresh)


def test_a_job_never_runs_twice_at_once(store, sandbox):
    job = setup(
        store,
        sandbox,
        calls=[{"path": "/suppliers", "query": [{"name": "slow", "value": "1"}]}],
        run={"on_overlap": "skip"},
    )
    clock = [job.created_at + timedelta(seconds=61)]
    daemon = Daemon(store, clock=lambda: clock[0])
    daemon.tick()
    assert job.id in daemon.running
    clock[0] += timedelta(minutes=1)
    daemon.tick()  # due again while running: skipped, and said so
    wait_idle(daemon)
    runs = RunHistory(store.home).list(job_id=job.id)
    assert sorted(r.status for r in runs) == ["skipped", "success"]
    assert [r.error for r in runs if r.status == "skipped"] == [
        "the previous run was still running (skip)"
    ]
    store.modify(
        "jobs",
        job.id,
        lambda j: j.model_copy(update={"run": j.run.model_copy(update={"on_overlap": "queue"})}),
        source="cli",
    )
    clock[0] += timedelta(minutes=1)
    daemon.tick()
    clock[0] += timedelta(minutes=1)
    daemon.tick()  # queued once, to run right after
    daemon.tick()
    assert job.id in daemon.queued
    wait_idle(daemon, timeout=20)
    history = RunHistory(store.home)

    def all_ended() -> bool:  # the queued run goes to the pool as the first one ends
        unfinished = [r for r in history.list(job_id=job.id) if r.status in ("queued", "running")]
        return not daemon.running and not unfinished

    wait_for(all_ended, 20, "the queued run to end")
    wait_idle(daemon, timeout=20)
    assert sorted(r.status for r in RunHistory(store.home).list(job_id=job.id)) == [
        "skipped",
        "success",
        "success",
        "success",
    ]


def _get(url: str, token: str):
    import requests

    try:
        r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    except requests.ConnectionError:
        return None
    return r.json() if r.status_code == 200 else None


def test_the_daemon_as_a_process_killed_mid_run_and_restarted(store, sandbox, home):
    """Real `python -m runner serve`: a slow job (five pages of two seconds) is picked up
    without a restart, runs at its slot, is killed with SIGKILL mid-run; the restarted daemon
    records the run as interrupted, and no row of it was written."""
    setup(store, sandbox)
    store.delete("jobs", "Suppliers every minute", source="cli")
    api_port = free_port()
    daemon = serve(home, api_port)
    try:
        wait_for(lambda: runner_status(home)["up"], 30, "the heartbeat")
        # every 5 minutes, pages 2 s late, counting from 10 minutes before this minute: this
        # minute's slot is due at once, and the next one only after the test
        this_minute = datetime.now(UTC).replace(second=0, microsecond=0)
        anchor = (this_minute - timedelta(minutes=10)).isoformat()
        every_5 = {"type": "minutes", "every": 5, "anchor": anchor}
        job = products_job(store, "Slow products", 2, schedule=every_5)
        history = RunHistory(home)
        [started] = wait_for(
            lambda: [r for r in history.list(job_id=job.id) if r.status == "running"],
            75,
            "the scheduled run to start",
        )
        wait_for(  # a page or two in: the run has saved the records it read so far
            lambda: history.get(started.id).records > 0, 30, "the run to read its first page"
        )
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert [r.status for r in RunHistory(home).list(job_id=job.id)] == ["running"]
    store.set_status("jobs", job.id, "disabled", source="cli")  # no next minute's run meanwhile
    restarted = serve(home, api_port)
    try:
        wait_for(
            lambda: RunHistory(home).list(job_id=job.id)[0].status == "interrupted",
            30,
            "the interrupted run to be recorded",
        )
        assert read_rows(home, "Products")[1] == 0  # nothing half-written
        # The same process serves the REST API.
        token = create_token(store, "daemon test")
        listed = wait_for(
            lambda: _get(f"http://127.0.0.1:{api_port}/v1/imports", token), 20, "the REST API"
        )
        assert [j["name"] for j in listed] == ["Slow products"]
        restarted.send_signal(signal.SIGTERM)
        out, _ = restarted.communicate(timeout=60)
        assert restarted.returncode == 0
        assert '"event": "interrupted-runs-recorded", "count": 1' in out
        assert not runner_status(home)["up"]
    finally:
        if restarted.poll() is None:
            restarted.kill()


def test_interval_slots_count_from_the_schedules_anchor(store, sandbox):
    """An imported job keeps its days: its schedule's anchor, which the studio's next runs
    count from, is what the daemon counts from too, not the job's creation here."""
    job = setup(store, sandbox)
    every_two_hours = {"type": "hourly", "every": 2, "anchor": job.created_at - timedelta(hours=1)}
    store.modify(
        "jobs",
        job.id,
        lambda j: j.model_copy(update={"schedule": Schedule.model_validate(every_two_hours)}),
        source="cli",
    )
    daemon = Daemon(store, clock=lambda: job.created_at + timedelta(minutes=61))
    daemon.tick()  # the anchor's slots: an hour before the creation, then an hour after it
    wait_idle(daemon)
    runs = RunHistory(store.home).list(job_id=job.id)
    assert [(r.trigger, r.status) for r in runs] == [("schedule", "success")]
    slot = job.created_at.replace(second=0, microsecond=0) + timedelta(hours=1)
    assert datetime.fromisoformat(runs[0].slot) == slot


def test_a_stored_job_that_no_longer_validates_does_not_stop_the_runner(store, sandbox, capsys):
    job = setup(store, sandbox)
    with store._db(write=True) as db:  # as if entities.json had gained a required field
        db.table("jobs", cache_size=0).update({"entity": "Widgets"}, doc_ids=[1])
    daemon = Daemon(store, clock=lambda: job.created_at + timedelta(seconds=61))
    daemon.tick()
    assert not daemon.running
    out = capsys.readouterr().out
    assert "store-error" in out and "is no longer valid" in out
