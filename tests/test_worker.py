"""Distributed mode (issue 17): runs as Celery tasks over a real Redis, run by two real workers
(``python -m runner worker`` subprocesses, started once per module and backend), sent by the
daemon's schedule, the studio's Run now, the REST API and ``runner run --queue``.

Against the SQLite history of a home the workers share (one machine), then PostgreSQL
(``STUDIO_DATABASE_URL``, a heartbeat timeout of a few seconds). The workers run ``--pool solo``:
the run goes on in the worker's own process, so that SIGKILL of it is a worker killed mid-run
(with prefork, the run would be in a child the kill leaves behind)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from runner.daemon import Daemon
from studio.config.store import ConfigStore
from studio.runhistory import AlreadyRunning
from studio.runs import start_in_background
from studio.stores import open_history
from tests.dbservers import store_sql
from tests.helpers import ROOT, pid_of, products_job, setup, wait_for
from tests.servers import Api

HEARTBEAT = 3  # seconds without a heartbeat after which a PostgreSQL run's worker is gone
LIVE = ("queued", "running")


class Worker:
    """``python -m runner worker --pool solo`` with its log in a file; ``ready`` once Celery
    consumes. ``options``: more of the command's (``--queues onprem``)."""

    def __init__(self, env: dict, log: Path, *options: str):
        self.log = log
        command = [sys.executable, "-m", "runner", "worker", "--pool", "solo", "--loglevel", "info"]
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                [*command, *options],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.ready, 60, f"the worker of {log.name} to be ready", interval=0.2)

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        return " ready." in self.log.read_text()

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


class Cluster:
    def __init__(self, home: Path, env: dict, logs: Path):
        self.home, self.env, self.logs = home, env, logs
        self.workers = [Worker(env, logs / f"worker{i}.log") for i in range(2)]
        self.started = 2

    def start_worker(self) -> Worker:
        self.started += 1
        worker = Worker(self.env, self.logs / f"worker{self.started}.log")
        self.workers.append(worker)
        return worker

    def alive(self) -> list[Worker]:
        return [w for w in self.workers if w.process.poll() is None]

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cluster(request, redis_server, sandbox_server, tmp_path_factory):
    """Two workers on a home of the module's own, with a Redis database and a secret key of
    their own; the demo connection points at the session's sandbox."""
    import redis

    base = tmp_path_factory.mktemp(f"cluster-{request.param}")
    broker = redis_server.url.rpartition("/")[0] + ("/5" if request.param == "sqlite" else "/6")
    redis.Redis.from_url(broker).flushdb()
    env = {
        **os.environ,
        "STUDIO_HOME": str(base / "home"),
        "STUDIO_BROKER_URL": broker,
        "STUDIO_SECRET_KEY": Fernet.generate_key().decode(),
        "STUDIO_HEARTBEAT_TIMEOUT": str(HEARTBEAT),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("STUDIO_DATABASE_URL", None)
    if request.param == "postgresql":
        from tests.dbservers import empty_database

        env["STUDIO_DATABASE_URL"] = request.getfixturevalue("module_database")
        empty_database(env["STUDIO_DATABASE_URL"])
    with pytest.MonkeyPatch.context() as mp:  # the demo configs, in the module's home
        for name in ("STUDIO_HOME", "STUDIO_BROKER_URL", "STUDIO_SECRET_KEY"):
            mp.setenv(name, env[name])
        if request.param == "postgresql":
            mp.setenv("STUDIO_DATABASE_URL", env["STUDIO_DATABASE_URL"])
        else:
            mp.delenv("STUDIO_DATABASE_URL", raising=False)
        store = ConfigStore(base / "home")
        setup(store, sandbox_server)
        store.delete("jobs", "Suppliers every minute", source="cli")
    cluster = Cluster(base / "home", env, base)
    yield cluster
    cluster.stop()


@pytest.fixture
def store(cluster, sandbox, monkeypatch) -> ConfigStore:
    """The cluster's store, with this process set as the studio and the daemon are."""
    for name in ("STUDIO_HOME", "STUDIO_BROKER_URL", "STUDIO_SECRET_KEY"):
        monkeypatch.setenv(name, cluster.env[name])
    if "STUDIO_DATABASE_URL" in cluster.env:
        from studio import pghistory

        monkeypatch.setenv("STUDIO_DATABASE_URL", cluster.env["STUDIO_DATABASE_URL"])
        monkeypatch.setattr(  # as STUDIO_HEARTBEAT_TIMEOUT makes it in the workers
            pghistory, "_ALIVE", f"heartbeat > clock_timestamp() - interval '{HEARTBEAT} seconds'"
        )
    else:
        monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    store = ConfigStore(cluster.home)
    yield store
    for job in store.list("jobs"):  # the next test's daemon schedules its own jobs only
        store.set_status("jobs", job.id, "disabled", source="cli")


def ended(store: ConfigStore, run_id: str, timeout: float = 60):
    history = open_history(store.home)
    return wait_for(
        lambda: (r := history.get(run_id)) and r.status not in LIVE and r,
        timeout,
        f"run {run_id} to end",
        interval=0.1,
    )


def rows_of(store: ConfigStore, run_id: str) -> int:
    return store_sql(store.home, f"SELECT count(*) FROM products WHERE _run_id = '{run_id}'")[0][0]


def test_the_daemon_sends_due_runs_to_the_workers(cluster, store):
    job = products_job(store, "Scheduled products")
    clock = [job.created_at + timedelta(seconds=61)]
    daemon = Daemon(store, clock=lambda: clock[0])
    assert daemon.distributed
    daemon.tick()
    [sent] = daemon.running.values()
    assert open_history(store.home).get(sent).status in LIVE
    run = ended(store, sent)
    assert (run.status, run.trigger, run.rows_written) == ("success", "schedule", 95)
    assert pid_of(run) in {w.pid for w in cluster.workers}  # a worker ran it, not the daemon
    assert run.config_version.startswith(f"job {job.updated_at.isoformat()}, connection ")
    assert rows_of(store, run.id) == 95
    assert Path(run.folder).parent == cluster.home / "runs"
    daemon.tick()  # the daemon sees the run ended: the job is free for its next slot
    assert not daemon.running


def test_run_now_the_rest_api_and_run_queue_send_runs_to_the_workers(cluster, store):
    job = products_job(store, "Products on demand")
    run = start_in_background(store, job.id, started_by="ana")  # the studio's Run now
    assert run.status == "queued"
    run = ended(store, run.id)
    assert (run.status, run.trigger, run.started_by) == ("success", "manual", "ana")
    assert pid_of(run) in {w.pid for w in cluster.workers}
    api = Api(store)
    try:
        answer = api.post(f"/v1/jobs/{job.id}/start")
        assert answer.status_code == 200, answer.text
        run = ended(store, answer.json()["processId"])
        assert (run.status, run.trigger) == ("success", "api")
        assert pid_of(run) in {w.pid for w in cluster.workers}
    finally:
        api.stop()
    done = subprocess.run(
        [sys.executable, "-m", "runner", "run", "--queue", "--json", job.name],
        cwd=ROOT,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert (printed["status"], printed["rows_written"]) == ("success", 95)
    assert pid_of(open_history(store.home).get(printed["id"])) in {w.pid for w in cluster.workers}


def test_a_job_runs_on_one_worker_at_a_time(cluster, store):
    job = products_job(store, "Slow products", slow=0.3)
    other = products_job(store, "Other slow products", slow=0.3)
    first = start_in_background(store, job.id)
    with pytest.raises(AlreadyRunning):  # queued or running on a worker, it holds the job
        start_in_background(store, job.id)
    second = start_in_background(store, other.id)
    first, second = ended(store, first.id), ended(store, second.id)
    assert (first.status, second.status) == ("success", "success")
    assert pid_of(first) != pid_of(second)  # at once, on the two workers
    history = open_history(store.home)
    [skipped] = [r for r in history.list(job_id=job.id) if r.status == "skipped"]
    assert "is already running" in skipped.error

    # The daemon's rule holds across workers: a slot due while the job runs on a worker is
    # queued once, and sent when that run has ended.
    clock = [job.created_at + timedelta(seconds=61)]
    daemon = Daemon(store, clock=lambda: clock[0])
    daemon.tick()
    clock[0] += timedelta(minutes=1)
    daemon.tick()
    assert job.id in daemon.queued

    def idle() -> bool:
        daemon.tick()
        return not daemon.running and not daemon.queued

    wait_for(idle, 60, "the queued run to be sent and to end", interval=0.2)
    runs = sorted(history.list(job_id=job.id), key=lambda r: (r.started_at, r.finished_at))
    runs = [r for r in runs if r.status != "skipped"]
    assert [(r.trigger, r.status) for r in runs] == [("manual", "success")] + [
        ("schedule", "success")
    ] * 2
    for before, after in pairwise(runs):
        assert before.finished_at <= after.started_at  # one after the other, never together

    # A message delivered again (or sent for a run no longer queued) runs nothing.
    from studio.broker import send

    send({"v": 1, "run_id": runs[-1].id, "job_id": job.id}, "manual")
    wait_for(
        lambda: any(f'"event": "dropped", "run": "{runs[-1].id}"' in w.log.read_text()
                    for w in cluster.workers),
        30,
        "a worker to drop the message",
    )  # fmt: skip
    assert len(history.list(job_id=job.id)) == 4


def test_a_worker_killed_mid_run_and_a_worker_restarted(cluster, store):
    """SIGKILL of the worker running a run: the run is recorded interrupted once the worker is
    found gone (SQLite: its PID; PostgreSQL: no heartbeat for HEARTBEAT seconds), none of its
    rows is visible, the next slot runs on the other worker; a worker started again takes new
    runs."""
    job = products_job(store, "Products killed mid-run", slow=1.0)
    clock = [job.created_at + timedelta(seconds=61)]
    daemon = Daemon(store, clock=lambda: clock[0])
    daemon.tick()
    [run_id] = daemon.running.values()
    history = open_history(store.home)
    wait_for(
        lambda: (r := history.get(run_id)).status == "running" and r.records > 0,
        30,
        "the run to read its first page on a worker",
    )
    [victim] = [w for w in cluster.workers if w.pid == pid_of(history.get(run_id))]
    [survivor] = [w for w in cluster.alive() if w is not victim]
    victim.stop(signal.SIGKILL)

    def interrupted():
        daemon.check_workers()  # what the daemon does every --check-every seconds
        return history.get(run_id).status == "interrupted"

    wait_for(interrupted, HEARTBEAT * 5, "the killed worker's run to be interrupted", 0.5)
    assert history.get(run_id).error == "the worker running it stopped before the run ended"
    assert rows_of(store, run_id) == 0  # nothing of it is visible

    before = history.get(run_id).config_version
    fast = store.modify(
        "jobs",
        job.id,
        lambda j: j.model_copy(
            update={"calls": [c.model_copy(update={"query": []}) for c in j.calls]}
        ),
        source="cli",
    )
    clock[0] += timedelta(minutes=1)
    daemon.tick()  # the run ended (interrupted): the next slot goes out, as the job is now
    [next_id] = daemon.running.values()
    assert next_id != run_id
    run = ended(store, next_id)
    assert (run.status, run.rows_written, pid_of(run)) == ("success", 95, survivor.pid)
    assert run.config_version != before
    assert run.config_version.startswith(f"job {fast.updated_at.isoformat()}, ")

    restarted = cluster.start_worker()
    survivor.stop()  # SIGTERM: Celery's warm shutdown, with no run going on
    run = ended(store, start_in_background(store, job.id).id)
    assert (run.status, pid_of(run)) == ("success", restarted.pid)  # the module's last test
