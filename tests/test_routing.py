"""Queues per connection (routing): a connection's Worker queue sends its jobs' runs to the
workers consuming that queue, and only to them; priority steps hold within a named queue; a run
that waits in a queue no worker consumes is interrupted, the sentence naming the queue.

Against a real Redis and real workers (``python -m runner worker --pool solo``): one consuming
the default queue ``studio``, one consuming only ``onprem``, on one home (the SQLite history; the
routing does not depend on the store, which tests/test_worker.py covers with PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from runner.daemon import Daemon
from studio import broker
from studio.config.store import ConfigStore
from studio.errors import ConfigError
from studio.runs import Snapshot, enqueue, start_in_background
from studio.stores import open_history
from tests.helpers import ROOT, bulk_suppliers_job, pid_of, products_job, setup, wait_for
from tests.test_worker import Worker, ended


def partner(store: ConfigStore, name: str, queue: str):
    """A copy of the demo connection (the sandbox, OAuth 2.0) whose runs go to ``queue``."""
    demo = store.get("connections", "Demo sandbox", reveal=True)
    data = demo.model_dump(exclude={"id", "created_at", "updated_at"})
    return store.create("connections", {**data, "name": name, "run_queue": queue}, source="cli")


# --- without workers: the names and the routing --------------------------------------------------


@pytest.mark.parametrize(
    "name, problem",
    [
        ("studio:3", "'studio:3' holds ':', which names a queue's priority steps"),
        ("onprem:6", "give the queue's name alone, e.g. onprem"),
        ("on prem", "must be letters, digits and - _ . only"),
        ("_kombu.binding.studio", "starting with a letter or a digit"),
        ("unacked", "'unacked' is a name Redis keeps for Celery's own bookkeeping"),
        ("q" * 65, "is 65 characters long: at most 64"),
    ],
)
def test_a_worker_queue_that_is_not_a_safe_name_is_refused_saying_why(store, name, problem):
    for data in (
        {"kind": "api", "name": "Partner", "base_url": "https://partner.example"},
        {"kind": "file_server", "name": "Partner FTP", "host": "ftp.example", "username": "u"},
    ):
        with pytest.raises(ConfigError) as refused:
            store.create("connections", {**data, "run_queue": name}, source="cli")
        [message] = refused.value.messages
        assert message.startswith("Worker queue: ") and problem in message
    assert store.list("connections") == []


def test_a_safe_name_is_kept_and_empty_is_the_default_queue(store):
    conn = store.create(
        "connections",
        {
            "kind": "api",
            "name": "Partner",
            "base_url": "https://p.example",
            "run_queue": " a-b_c.1 ",
        },
        source="cli",
    )
    assert conn.run_queue == "a-b_c.1"
    other = store.create(
        "connections",
        {"kind": "api", "name": "Plain", "base_url": "https://q.example"},
        source="cli",
    )
    assert other.run_queue == ""


def test_the_source_connection_routes_a_run_not_its_destination(store, sandbox):
    """An API job goes to its connection's queue, a file job to its file server's; a CSV
    destination on another queue's server does not move either."""
    api_job = setup(store, sandbox)
    message = {"snapshot": Snapshot.of(store, api_job.id)._asdict()}
    assert broker.route(message) == "studio"  # the demo connection names none
    partner(store, "Partner API", "partner")
    store.create(
        "connections",
        {"kind": "file_server", "name": "FTP", "protocol": "ftp", "host": "ftp.example",
         "username": "u", "run_queue": "onprem"},
        source="cli",
    )  # fmt: skip
    destination = {"enabled": True, "connection_id": "FTP", "folder": "out"}
    api_job = store.modify(
        "jobs",
        api_job.id,
        lambda j: (
            j.model_copy(update={"connection_id": "Partner API"}).model_dump()
            | {"destination": destination}
        ),
        source="cli",
    )
    file_job = store.create("jobs", bulk_suppliers_job(), source="cli")
    routed = {
        job.name: broker.route({"snapshot": Snapshot.of(store, job.id)._asdict()})
        for job in (api_job, file_job)
    }
    assert routed == {api_job.name: "partner", file_job.name: "onprem"}
    assert broker.job_queue(store, api_job.id) == "partner"
    assert broker.job_queue(store, "no such job") == ""


def test_priority_steps_hold_within_a_named_queue(store, sandbox, redis_server, monkeypatch):
    """Redis lists per step of the named queue, as of ``studio``: ``onprem`` for Run now and
    the API, ``onprem:3`` for the schedule, ``onprem:6`` for catch-ups."""
    import redis

    url = redis_server.url.rpartition("/")[0] + "/9"
    client = redis.Redis.from_url(url)
    client.flushdb()
    monkeypatch.setenv("STUDIO_BROKER_URL", url)
    snapshot = {"connection": {"run_queue": "onprem"}}
    for trigger in ("catch-up", "schedule", "manual", "api"):
        broker.send({"v": 1, "run_id": trigger, "snapshot": snapshot}, trigger)
    lengths = {q.decode(): client.llen(q) for q in client.keys("*") if b"kombu" not in q}
    assert lengths == {"onprem": 2, "onprem:3": 1, "onprem:6": 1}
    client.flushdb()


def test_a_worker_refuses_queues_that_are_not_queue_names(tmp_path):
    env = {**os.environ, "STUDIO_HOME": str(tmp_path), "STUDIO_BROKER_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run(
        [sys.executable, "-m", "runner", "worker", "--queues", "studio,onprem:3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--queues: 'onprem:3' holds ':'" in done.stderr


# --- real workers --------------------------------------------------------------------------------


class Site:
    """A home on a Redis database of its own, with a worker on ``studio`` and one on
    ``onprem`` (started again by the tests that need it stopped)."""

    def __init__(self, home, env, logs):
        self.home, self.env, self.logs = home, env, logs
        self.studio = Worker(env, logs / "studio.log")
        self.onprem = self.start_onprem("onprem.log")

    def start_onprem(self, log: str) -> Worker:
        self.onprem = Worker(self.env, self.logs / log, "--queues", "onprem")
        return self.onprem

    def stop(self) -> None:
        for worker in (self.studio, self.onprem):
            worker.stop()


@pytest.fixture(scope="module")
def site(redis_server, sandbox_server, tmp_path_factory):
    import redis

    base = tmp_path_factory.mktemp("routing")
    url = redis_server.url.rpartition("/")[0] + "/8"
    redis.Redis.from_url(url).flushdb()
    env = {
        **os.environ,
        "STUDIO_HOME": str(base / "home"),
        "STUDIO_BROKER_URL": url,
        "STUDIO_SECRET_KEY": Fernet.generate_key().decode(),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("STUDIO_DATABASE_URL", None)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("STUDIO_HOME", "STUDIO_BROKER_URL", "STUDIO_SECRET_KEY"):
            mp.setenv(name, env[name])
        mp.delenv("STUDIO_DATABASE_URL", raising=False)
        store = ConfigStore(base / "home")
        setup(store, sandbox_server)
        store.delete("jobs", "Suppliers every minute", source="cli")
        partner(store, "Partner sandbox", "onprem")
        partner(store, "Unreached sandbox", "nowhere")
    site = Site(base / "home", env, base)
    yield site
    site.stop()


@pytest.fixture
def home_store(site, sandbox, monkeypatch) -> ConfigStore:
    for name in ("STUDIO_HOME", "STUDIO_BROKER_URL", "STUDIO_SECRET_KEY"):
        monkeypatch.setenv(name, site.env[name])
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    return ConfigStore(site.home)


def received(worker: Worker) -> list[str]:
    """The runs ``worker`` took, in the order it took them (its ``run-received`` lines)."""
    lines = [json.loads(x) for x in worker.log.read_text().splitlines() if x.startswith("{")]
    return [x["run"] for x in lines if x.get("event") == "run-received"]


def test_a_run_goes_to_the_worker_consuming_its_connections_queue(site, home_store):
    store = home_store
    onprem = products_job(store, "Partner products", connection_id="Partner sandbox")
    plain = products_job(store, "Plain products")
    runs = {job.name: start_in_background(store, job.id).id for job in (onprem, plain)}
    done = {name: ended(store, run_id) for name, run_id in runs.items()}
    assert {r.status for r in done.values()} == {"success"}
    assert pid_of(done["Partner products"]) == site.onprem.pid
    assert pid_of(done["Plain products"]) == site.studio.pid
    assert runs["Partner products"] not in received(site.studio)


def test_runs_wait_in_their_queue_and_go_by_priority_there(site, home_store):
    """With the ``onprem`` worker stopped, the runs of its queue wait, the ``studio`` worker
    idle beside them; a worker started on ``onprem`` takes the Run now first, then the
    scheduled run, then the catch-up, though they were sent the other way round."""
    import redis

    store = home_store
    site.onprem.stop()
    jobs = [
        products_job(store, f"Partner {t}", connection_id="Partner sandbox")
        for t in ("catch-up", "schedule", "manual")
    ]
    runs = [enqueue(store, job.id, trigger=job.name.split()[1]).id for job in jobs]
    client = redis.Redis.from_url(site.env["STUDIO_BROKER_URL"])
    lists = ("onprem", "onprem:3", "onprem:6")
    wait_for(lambda: [client.llen(q) for q in lists] == [1, 1, 1], 10, "the runs in onprem")
    # The studio worker, idle, takes a run of its queue and leaves those of onprem alone.
    plain = ended(store, start_in_background(store, products_job(store, "Plain again").id).id)
    assert (plain.status, pid_of(plain)) == ("success", site.studio.pid)
    history = open_history(store.home)
    assert [history.get(r).status for r in runs] == ["queued"] * 3
    assert [client.llen(q) for q in lists] == [1, 1, 1]
    worker = site.start_onprem("onprem-again.log")
    done = [ended(store, run_id) for run_id in runs]
    assert [(r.status, pid_of(r)) for r in done] == [("success", worker.pid)] * 3
    assert received(worker) == runs[::-1]  # manual, schedule, catch-up
    assert not set(runs) & set(received(site.studio))


def test_a_run_no_worker_takes_from_its_queue_is_interrupted_naming_the_queue(site, home_store):
    store = home_store
    job = products_job(store, "Unreached products", connection_id="Unreached sandbox")
    run = enqueue(store, job.id)
    daemon = Daemon(store)
    assert daemon.distributed
    history = open_history(store.home)
    daemon.check_workers()  # sent a moment ago: left alone
    assert history.get(run.id).status == "queued"
    run = history.get(run.id)
    run.started_at = (datetime.now(UTC) - timedelta(minutes=61)).isoformat(timespec="seconds")
    history.save(run)  # as if queued an hour ago (the job's run timeout is 60 minutes)
    daemon.check_workers()
    stale = history.get(run.id)
    assert (stale.status, stale.error) == (
        "interrupted",
        "no worker took it from queue 'nowhere' within 61 minutes",
    )
    import redis

    client = redis.Redis.from_url(site.env["STUDIO_BROKER_URL"])
    assert client.llen("nowhere") == 1  # no worker consumes it: the message is still there
