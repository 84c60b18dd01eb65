"""Hostile values in run files, one runner per home, a slot run once, a job run once at a time
whoever starts it, and no scratch file left by a killed run: all against real processes."""

from __future__ import annotations

import csv
import io
import signal
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from runner.daemon import Daemon
from studio.rowstore import read_rows, staging_path
from studio.runhistory import RunHistory
from tests.helpers import (
    ROOT,
    assert_private,
    ftp_connection,
    page,
    run_python,
    runner,
    serve,
    setup,
    wait_for,
)
from tests.servers import Api, free_port

HOSTILE = ['=HYPERLINK("http://evil.example/x","click")', "@SUM(A1:A9)", "+cmd|' /C calc'!A0"]


def test_run_files_are_neutralised_but_the_store_and_destination_keep_values(
    store, sandbox, ftp_server
):
    """rows.csv (and so the REST and Runs page downloads) quote what a spreadsheet would run;
    the entity store keeps the values, and so does a destination that asks for them as is."""
    from studio.runhistory import archive_of

    root = ftp_server.root / "hostile"
    (root / "in").mkdir(parents=True, exist_ok=True)
    lines = [["id", "company", "country"]]
    lines += [[f"S{i}", value, "-5"] for i, value in enumerate(HOSTILE)]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    (root / "in" / "suppliers.csv").write_text(buffer.getvalue())
    store.create("connections", ftp_connection(ftp_server, "/hostile"), source="cli")
    job = store.create(
        "jobs",
        {
            "kind": "file",
            "name": "Hostile suppliers",
            "connection_id": "FTP",
            "entity": "Suppliers",
            "source": {"mode": "path", "path": "in/suppliers.csv"},
            "mapping": [
                {"extract": "id", "generate": "external_id"},
                {"extract": "company", "generate": "name"},
                {"extract": "country", "generate": "country"},
            ],
            "destination": {
                "enabled": True,
                "connection_id": "FTP",
                "folder": "out",
                "file_name": "suppliers.csv",
                "neutralize_formulas": False,
            },
        },
        source="cli",
    )
    out = runner("run", "Hostile suppliers", home=store.home)
    assert out.returncode == 0, out.stderr
    run = RunHistory(store.home).list(job_id=job.id)[0]
    assert run.status == "success" and run.rows_written == 3

    def csv_rows(text: str) -> list[list[str]]:
        return list(csv.reader(io.StringIO(text)))[1:]

    quoted = [[f"S{i}", "'" + value, "-5"] for i, value in enumerate(HOSTILE)]
    assert csv_rows(Path(run.folder, "rows.csv").read_text()) == quoted  # a number stays
    _name, _mime, content = archive_of(run)  # what the Runs page downloads: rows, rejects, log
    with zipfile.ZipFile(io.BytesIO(content())) as archive:
        assert csv_rows(archive.read("rows.csv").decode()) == quoted
    api = Api(store)
    try:
        download = api.get(f"/v1/jobs/{job.id}/download/{run.id}")
        assert download.status_code == 200 and csv_rows(download.text) == quoted
    finally:
        api.stop()

    rows, _total = read_rows(store.home, "Suppliers")
    assert sorted(r["name"] for r in rows) == sorted(HOSTILE)  # data is data
    delivered = csv_rows((root / "out" / "suppliers.csv").read_text())
    assert [r[1] for r in delivered] == HOSTILE  # the destination asked for values as they are
    assert not list(Path(run.folder).glob(".*"))  # no pending or raw file left


# --- one runner per home; a slot once ---------------------------------------------------------


@pytest.mark.usefixtures("umask_022")
def test_a_second_runner_on_the_same_home_refuses_to_start(store, sandbox, home):
    setup(store, sandbox, status="disabled")
    first = serve(home, free_port())
    try:
        wait_for(lambda: (home / "runner.json").exists(), 30, "the first runner's heartbeat")
        assert_private(home)  # runner.lock and runner.json too
        second = serve(home, free_port())
        try:
            out, _ = second.communicate(timeout=60)
        finally:
            if second.poll() is None:
                second.kill()
        assert second.returncode == 2
        assert f"another runner (PID {first.pid}) already serves {home}" in out
        assert first.poll() is None  # the first one serves on
        # `up` says so before it starts anything, rather than as a child's last words
        up = runner("up", "--no-demo", "--port", str(free_port()), home=home)
        assert up.returncode == 2
        assert up.stderr.startswith(f"error: another runner (PID {first.pid}) already serves")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    again = serve(home, free_port())  # the lock went with the first one
    try:
        wait_for(lambda: again.poll() is None and (home / "runner.json").exists(), 30, "a start")
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)
    assert again.returncode == 0


def test_a_slot_is_recorded_once_whichever_processes_record_it(home):
    """Four processes record the same slot of a job at once: one gets it."""
    go = home / "go"
    code = f"""
import os, time
from pathlib import Path
from studio.runhistory import RunHistory, SlotTaken
history = RunHistory(Path(os.environ["STUDIO_HOME"]))
deadline = time.monotonic() + 60
while not Path({str(go)!r}).exists():
    if time.monotonic() > deadline:
        raise SystemExit("no go within 60 s")
    time.sleep(0.01)
try:
    print("ran", history.start("job-1", "Job", "schedule", "2026-01-01T02:33:00+00:00").id)
except SlotTaken as e:
    print("refused", e)
"""
    RunHistory(home)
    procs = [run_python(code, home, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    go.touch()
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert sorted(o.split()[0] for o in outs) == ["ran", "refused", "refused", "refused"]
    assert len(RunHistory(home).list(job_id="job-1")) == 1
    assert "the slot 2026-01-01T02:33:00+00:00 of job 'Job' was already taken" in "".join(outs)


def test_a_daemon_with_a_stale_view_does_not_run_a_slot_another_ran(store, sandbox, capsys):
    job = setup(store, sandbox)
    history = RunHistory(store.home)
    first_slot = job.created_at + timedelta(minutes=1)
    earlier = history.start(job.id, job.name, "schedule", first_slot.isoformat())
    earlier.status = "success"
    history.save(earlier)
    clock = [first_slot + timedelta(minutes=1, seconds=1)]
    stale = Daemon(store, clock=lambda: clock[0])
    assert stale._last_slot(job.id) == first_slot  # what it knows, and keeps
    other = Daemon(store, clock=lambda: clock[0])
    other.tick()  # runs the next slot
    wait_for(lambda: not other.running, 30, "the other daemon's run to end")
    stale.tick()  # the same slot, seen late: refused by the history
    assert not stale.running
    slots = [r.slot for r in history.list(job_id=job.id)]
    assert len(slots) == len(set(slots)) == 2
    assert "was already taken by run" in capsys.readouterr().out


# --- a job runs once at a time, whoever starts it ---------------------------------------------


def slow_job(store, sandbox):
    """A job whose call takes two minutes, on a connection that waits for it."""
    job = setup(
        store,
        sandbox,
        calls=[{"path": "/suppliers", "query": [{"name": "slow", "value": "120"}]}],
    )
    store.modify(
        "connections",
        "Demo sandbox",
        lambda c: c.model_copy(update={"timeout": 300.0}),
        source="cli",
    )
    return job


def cli_run(home, name: str) -> subprocess.Popen:
    env = {"STUDIO_HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "run", name],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def running(home, job) -> object:
    runs = [r for r in RunHistory(home).list(job_id=job.id) if r.status == "running"]
    return runs[0] if runs else None


def test_a_job_held_by_a_cli_run_is_refused_by_the_cli_api_daemon_and_studio(
    store, sandbox, home, capsys
):
    job = slow_job(store, sandbox)
    holder = cli_run(home, job.name)
    try:
        held = wait_for(lambda: running(home, job), 30, "the CLI run to start")
        assert held.owner.endswith(f":{holder.pid}")
        sentence = f"job {job.name!r} is already running (run {held.id}, started "

        second = runner("run", job.name, home=home)
        assert second.returncode == 2
        assert second.stderr.startswith(f"error: {sentence}") and "by manual)" in second.stderr

        api = Api(store)
        try:
            refused = api.post(f"/v1/jobs/{job.id}/start")
            assert refused.status_code == 409 and refused.json()["error"].startswith(sentence)
        finally:
            api.stop()

        daemon = Daemon(store, clock=lambda: job.created_at + timedelta(seconds=61))
        daemon.tick()
        assert not daemon.running
        assert f"skipped job={job.name}" in capsys.readouterr().out
        skipped = [r for r in RunHistory(home).list(job_id=job.id) if r.trigger == "schedule"]
        assert [r.status for r in skipped] == ["skipped"] and skipped[0].slot
        assert skipped[0].error.startswith(sentence)

        at = page("views/runs.py")
        at.selectbox(key="runs_now_job").select(job.id).run()
        at.button(key="runs_now").click().run()
        assert at.warning[0].value.startswith(sentence)
        assert running(home, job).id == held.id  # nothing else ran
    finally:
        holder.kill()
        holder.wait(timeout=10)
    statuses = sorted(r.status for r in RunHistory(home).list(job_id=job.id))
    assert statuses == ["running", "skipped", "skipped", "skipped", "skipped"]


def killed_mid_run(home, job):
    """A CLI run of ``job`` killed with SIGKILL once it has staged: (its run, its staging file)."""
    holder = cli_run(home, job.name)
    killed = wait_for(lambda: running(home, job), 30, "the CLI run to start")
    stage = staging_path(home, killed.id)
    wait_for(stage.exists, 30, "the staging file")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    return killed, stage


def test_a_killed_run_neither_blocks_its_job_nor_leaves_its_staging_file(store, sandbox, home):
    job = slow_job(store, sandbox)
    slow = job.calls[0]
    killed, stage = killed_mid_run(home, job)
    assert stage.exists()
    store.modify(
        "jobs",
        job.id,
        lambda j: j.model_copy(update={"calls": [slow.model_copy(update={"query": []})]}),
        source="cli",
    )
    out = runner("run", job.name, home=home)  # the dead run's claim does not block
    assert out.returncode == 0, out.stderr
    history = RunHistory(home)
    gone = history.get(killed.id)
    assert gone.status == "interrupted" and "process ended" in gone.error
    assert not stage.exists()

    # The runner's start marks a dead run interrupted too, and removes its staging file.
    store.modify("jobs", job.id, lambda j: j.model_copy(update={"calls": [slow]}), source="cli")
    killed, stage = killed_mid_run(home, job)
    orphan = staging_path(home, "finishedrun")  # left by a runner cut off mid-run
    orphan.write_bytes(b"")
    assert history.mark_interrupted("the runner stopped before the run ended") == 1
    assert history.get(killed.id).status == "interrupted"
    assert not stage.exists() and not orphan.exists()
