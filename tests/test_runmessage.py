"""The run message of distributed mode (issue 17) without workers: a snapshot with the secrets
sealed, opened with the same key on another home, refused with another; a message for a run no
longer queued runs nothing (``NotQueued``); Redis down fails the run and frees the job; and the
embedded default, with STUDIO_BROKER_URL unset, is what it was."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from runner.daemon import Daemon
from studio import broker
from studio.config.store import ConfigStore
from studio.errors import StudioError
from studio.runhistory import NotQueued
from studio.runs import Snapshot, enqueue, run_message, start_in_background
from studio.stores import open_history
from tests.helpers import setup, wait_for
from tests.servers import Api, free_port


def secret_of(conn) -> str:
    return conn.auth.client_secret


def test_a_snapshot_carries_the_secrets_sealed_and_opens_with_the_same_key(
    tmp_path, monkeypatch, sandbox
):
    monkeypatch.setenv("STUDIO_SECRET_KEY", "a passphrase shared by the machines")
    store = ConfigStore(tmp_path / "control")
    job = setup(store, sandbox)
    clear = secret_of(store.get("connections", job.connection_id, reveal=True))
    snapshot = Snapshot.of(store, job.id)
    text = json.dumps(snapshot._asdict())
    assert clear and clear not in text and "enc:v1:" in text
    assert snapshot.salt == (store.home / "secret.salt").read_text().strip()
    assert snapshot.version == (
        f"job {job.updated_at.isoformat()}, connection "
        f"{store.get('connections', job.connection_id).updated_at.isoformat()}"
    )
    # A worker's home has no config store, and a salt of its own: the snapshot's is used.
    opened = Snapshot(**json.loads(text)).opened(tmp_path / "worker")
    assert (opened.job.name, secret_of(opened.conn)) == (job.name, clear)
    assert not (tmp_path / "worker" / "configs.json").exists()
    monkeypatch.setenv("STUDIO_SECRET_KEY", "another passphrase")
    with pytest.raises(StudioError, match="cannot be decrypted"):
        snapshot.opened(tmp_path / "worker")


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """Distributed mode with the messages kept here instead of Redis."""
    messages: list[dict] = []
    monkeypatch.setenv("STUDIO_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(broker, "send", lambda message, trigger: messages.append(message))
    return messages


def test_a_message_runs_its_queued_run_once(store, sandbox, sent, tmp_path):
    job = setup(store, sandbox)
    run = start_in_background(store, job.id, started_by="ana")  # Run now, distributed
    assert run.status == "queued"
    [message] = sent
    assert (message["run_id"], message["job_id"], message["started_by"]) == (run.id, job.id, "ana")
    done = run_message(json.loads(json.dumps(message)), store.home)  # as a worker gets it
    assert (done.id, done.status, done.rows_written) == (run.id, "success", 4)
    assert done.config_version == message["snapshot"]["version"]
    with pytest.raises(NotQueued, match="no longer queued: it is success"):
        run_message(message, store.home)  # delivered again: nothing runs
    assert [r.status for r in open_history(store.home).list(job_id=job.id)] == ["success"]


def test_a_worker_with_another_key_fails_the_run_and_frees_the_job(
    store, sandbox, sent, monkeypatch
):
    job = setup(store, sandbox)
    run = enqueue(store, job.id)
    monkeypatch.setenv("STUDIO_SECRET_KEY", "not the key the secrets were sealed with")
    done = run_message(sent[0], store.home)
    assert done.status == "failed" and "cannot be decrypted" in done.error
    monkeypatch.delenv("STUDIO_SECRET_KEY")
    assert enqueue(store, job.id).status == "queued"  # the job was given back
    assert open_history(store.home).get(run.id).status == "failed"


def test_redis_down_fails_the_run_says_so_and_frees_the_job(store, sandbox, monkeypatch, capsys):
    job = setup(store, sandbox)
    monkeypatch.setenv("STUDIO_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StudioError, match="could not be queued: Redis"):
        start_in_background(store, job.id)
    [run] = open_history(store.home).list(job_id=job.id)
    assert run.status == "failed" and "could not be queued" in run.error
    daemon = Daemon(store, clock=lambda: job.created_at + timedelta(seconds=61))
    daemon.tick()  # the scheduler says so and goes on
    assert "run-error" in capsys.readouterr().out
    api = Api(store)
    try:
        answer = api.post(f"/v1/jobs/{job.id}/start")
        assert answer.status_code == 503 and "could not be queued" in answer.json()["error"]
    finally:
        api.stop()
    assert [r.status for r in open_history(store.home).list(job_id=job.id)] == ["failed"] * 3


def test_runs_people_wait_for_go_before_scheduled_ones(store, sandbox, redis_server, monkeypatch):
    """Redis lists per priority step: ``studio`` for Run now and the API, ``studio:3`` for the
    schedule, ``studio:6`` for catch-ups; a worker takes from the first that is not empty."""
    import redis

    url = redis_server.url.rpartition("/")[0] + "/7"
    client = redis.Redis.from_url(url)
    client.flushdb()
    monkeypatch.setenv("STUDIO_BROKER_URL", url)
    for trigger in ("catch-up", "schedule", "manual", "api"):
        broker.send({"v": 1, "run_id": trigger}, trigger)
    lengths = {q.decode(): client.llen(q) for q in client.keys("studio*")}
    assert lengths == {"studio": 2, "studio:3": 1, "studio:6": 1}
    client.flushdb()


def test_without_a_broker_runs_stay_in_this_process(store, sandbox, monkeypatch):
    monkeypatch.delenv("STUDIO_BROKER_URL", raising=False)
    job = setup(store, sandbox)
    assert not Daemon(store).distributed
    run = start_in_background(store, job.id)
    assert run.status == "running"  # claimed for this process's thread, not queued
    history = open_history(store.home)
    wait_for(lambda: history.get(run.id).status == "success", 30, "the run")
    monkeypatch.setenv("STUDIO_BROKER_URL", "amqp://guest@localhost//")
    with pytest.raises(StudioError, match="STUDIO_BROKER_URL must be a redis:// URL"):
        broker.broker_url()


def test_a_run_no_worker_takes_within_its_timeout_frees_its_job(store, sandbox, sent):
    """A message Redis lost (restarted without persistence) must not hold its job for good."""
    job = setup(store, sandbox)
    history = open_history(store.home)
    run = enqueue(store, job.id)
    daemon = Daemon(store)
    daemon.check_workers()  # queued a moment ago, by a live process: left alone
    assert history.get(run.id).status == "queued"
    run.started_at = (datetime.now(UTC) - timedelta(minutes=61)).isoformat(timespec="seconds")
    history.save(run)  # as if queued an hour ago (the job's run timeout is 60 minutes)
    daemon.check_workers()
    stale = history.get(run.id)
    assert (stale.status, stale.error) == (
        "interrupted",
        "no worker took it from queue 'studio' within 61 minutes",
    )
    assert enqueue(store, job.id).status == "queued"  # the job is free
    with pytest.raises(NotQueued, match="no longer queued: it is interrupted"):
        run_message(sent[0], store.home)  # the lost message, if it comes: nothing
