"""A run's files in PostgreSQL (studio/pgfiles.py) against the test session's real server: what
a run killed mid-run leaves (its log and trace up to its last heartbeat), and what readers
leave behind (nothing that grows: copies in a bounded cache under the home, no descriptor
left open, big files in chunks).

The killed run is a real ``runner run`` process against the sandbox's slow pages, SIGKILLed
after some heartbeats; its scratch folder is deleted as a dead machine's would be gone."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from studio import pgfiles
from studio.runhistory import archive_of, run_files
from studio.runlog import timeline
from studio.stores import open_history
from tests.dbservers import empty_database
from tests.helpers import ROOT, products_job, setup, wait_for

GONE = "the worker running it stopped before the run ended"
MB = 1 << 20


@pytest.fixture
def pg(module_database, monkeypatch, store) -> str:
    empty_database(module_database)
    monkeypatch.setenv("STUDIO_DATABASE_URL", module_database)
    return module_database


def _slow_products(store, sandbox):
    """Products in pages of 10, each taking a second, with the debug trace on."""
    setup(store, sandbox)
    debug_until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    return products_job(
        store,
        "Slow products",
        1.0,
        page_size=10,
        schedule={"type": "manual"},
        debug_until=debug_until,
    )


def _interrupt_elsewhere(home: Path) -> str:
    """The scheduler's check, in a process of its own with a heartbeat timeout of 2 s."""
    code = f"""
        import time
        from pathlib import Path
        from studio.stores import open_history
        history = open_history(Path("{home}"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if history.mark_interrupted("{GONE}", others=True):
                break
            time.sleep(0.2)
    """
    env = os.environ | {"STUDIO_HEARTBEAT_TIMEOUT": "2", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT, timeout=60
    )
    return str(done.returncode)


def test_a_run_killed_mid_run_keeps_its_log_and_trace_up_to_its_last_heartbeat(pg, store, sandbox):
    job = _slow_products(store, sandbox)
    history = open_history(store.home)
    env = os.environ | {"STUDIO_HEARTBEAT_TIMEOUT": "2", "PYTHONPATH": str(ROOT)}
    runner = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", job.name],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run = wait_for(
            lambda: next((r for r in history.list(job_id=job.id) if r.pages >= 3), None),
            60,
            "the run to read three pages",
        )
        time.sleep(1.5)  # three heartbeats (every 0.5 s) since
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
    assert history.get(run.id).status == "running"  # killed: nothing recorded its end
    assert _interrupt_elsewhere(store.home) == "0"
    shutil.rmtree(run.folder)  # the dead machine's scratch folder is gone with it
    ended = history.get(run.id)
    assert (ended.status, ended.error) == ("interrupted", GONE)

    files = {f.name: f for f in run_files(ended)}
    assert sorted(files) == ["run.log", "trace.jsonl"]
    entries, _total = timeline(files["run.log"])
    steps = [e.step for e in entries]
    assert steps.count("page") >= 3 and steps.count("request") >= 3, steps
    assert all(e.message for e in entries)  # whole lines only: none cut mid-way
    trace = [json.loads(line) for line in files["trace.jsonl"].read_text().splitlines()]
    assert len([x for x in trace if "/products" in x["url"]]) >= 3, trace
    assert not [f for f in run_files(ended, data_only=True) if f.name == "rows.csv"]


def test_a_running_run_on_this_machine_is_read_from_its_folder(pg, store):
    """The heartbeat's copy is for other machines and for a run that dies; while the run goes,
    this machine reads its own fresher files, and no reader ever writes into its folder."""
    history = open_history(store.home)
    run = history.start_run("job-1", "Job", "manual")
    folder = Path(run.folder)
    folder.mkdir(parents=True)
    (folder / "run.log").write_text('{"kind": "log", "message": "one"}\n')
    pgfiles.mirror(pg, [run.id], run.owner)
    (folder / "run.log").write_text('{"kind": "log", "message": "one"}\n{"kind": "log", "me')
    pgfiles.mirror(pg, [run.id], run.owner)  # a line half written is left for the next beat
    with psycopg.connect(pg) as conn:
        stored = conn.execute("SELECT size FROM run_files WHERE run_id = %s", (run.id,))
        assert stored.fetchall() == [(34,)]
    assert run_files(history.get(run.id)) == []  # the page and the CLI read run.folder's log
    elsewhere = history.get(run.id)
    elsewhere.folder = "/nowhere/runs/" + run.id  # another machine's run
    [log] = run_files(elsewhere)
    assert log.read_text() == '{"kind": "log", "message": "one"}\n'
    assert not log.is_relative_to(folder)
    # Its end stores what the heartbeat did not copy yet, and the whole file reads back.
    (folder / "run.log").write_text('{"kind": "log", "message": "one"}\n{"kind": "log"}\n')
    run.outputs, run.status = [str(folder / "run.log")], "success"
    history.save(run)
    [log] = run_files(history.get(run.id))
    assert log.read_text() == '{"kind": "log", "message": "one"}\n{"kind": "log"}\n'


def _stored_run(history, folder: Path, files: dict[str, int]):
    """An ended run whose files (name: size in MiB, random bytes) are in the database."""
    run = history.start_run(f"job-{folder.name}", "Job", "manual")
    run.folder = str(folder)
    history.save(run)
    folder.mkdir(parents=True)
    for name, size in files.items():
        with open(folder / name, "wb") as f:
            for _ in range(size):
                f.write(os.urandom(MB))
    run.outputs = [str(folder / name) for name in files]
    run.status, run.rows_written, run.rows_rejected = "success", 1, 1
    history.save(run)
    run.folder = "/another/machine/runs/" + run.id
    return run


def _open_files(*folders: Path) -> list[str]:
    """The files this process holds open under ``folders``: not a count of all its descriptors,
    which the session's servers and pools open and close meanwhile in other threads."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if any(target.startswith(str(folder)) for folder in folders):
            found.append(target)
    return sorted(found)


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _body(response) -> bytes:
    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.body_iterator])

    if hasattr(response, "path"):
        return Path(response.path).read_bytes()
    with ThreadPoolExecutor(1) as thread:  # Playwright's tests leave a loop in this thread
        return thread.submit(asyncio.run, collect()).result()


def test_reading_run_files_again_and_again_grows_no_folder_and_leaks_nothing(
    pg, store, tmp_path, monkeypatch
):
    from runner.api.jobs import download_of

    history = open_history(store.home)
    run = _stored_run(history, tmp_path / "a", {"rows.csv": 1, "rejects.csv": 1})
    temp = tmp_path / "tmp"  # this test's own: other processes use the system's meanwhile
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    run_files(run)  # the first read fetches the copies (and the pool its connection)
    cache = pgfiles.cache_folder()
    assert cache.is_relative_to(store.home) and _size(cache) == 2 * MB
    before = _open_files(store.home, temp)
    for _ in range(20):
        assert [f.name for f in run_files(run)] == ["rows.csv", "rejects.csv"]
        _name, _mime, content = archive_of(run)
        assert zipfile.ZipFile(io.BytesIO(content())).namelist() == ["rows.csv", "rejects.csv"]
        assert zipfile.ZipFile(io.BytesIO(_body(download_of(run)))).testzip() is None
    assert _open_files(store.home, temp) == before  # no copy, archive or download left open
    assert _size(cache) == 2 * MB
    assert list(temp.iterdir()) == []  # nothing fetched into a temporary folder


def test_the_cache_is_kept_under_its_size_and_age(pg, store, tmp_path, monkeypatch):
    monkeypatch.setattr(pgfiles, "CACHE_MAX", 3 * MB)
    monkeypatch.setattr(pgfiles, "IN_USE", 0.0)  # no reader of this test is still sending one
    history = open_history(store.home)
    runs = [_stored_run(history, tmp_path / str(i), {"rows.csv": 1}) for i in range(6)]
    for run in runs:
        [copy] = run_files(run)
        assert copy.stat().st_size == MB
        assert _size(pgfiles.cache_folder()) <= 3 * MB
    kept = sorted(p.parent.name for p in pgfiles.cache_folder().rglob("rows.csv"))
    assert kept == sorted(r.id for r in runs[-3:])  # the least recently read went first
    old = time.time() - pgfiles.CACHE_AGE - 60
    for copy in pgfiles.cache_folder().rglob("*"):
        os.utime(copy, (old, old))
    (pgfiles.cache_folder() / "x" / ".rows.csv.1.part").parent.mkdir()  # a killed reader's
    (pgfiles.cache_folder() / "x" / ".rows.csv.1.part").write_bytes(b"half")
    os.utime(pgfiles.cache_folder() / "x" / ".rows.csv.1.part", (old, old))
    run_files(runs[0])
    left = [p.relative_to(pgfiles.cache_folder()) for p in pgfiles.cache_folder().rglob("*")]
    assert left == [Path(runs[0].id), Path(runs[0].id) / "rows.csv"]


def test_a_large_file_is_read_in_bounded_memory(pg, store, tmp_path):
    from runner.api.jobs import download_of

    history = open_history(store.home)
    run = _stored_run(history, tmp_path / "big", {"rows.csv": 40, "rejects.csv": 8})
    tracemalloc.start()
    try:
        files = run_files(run)
        fetched = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        archive = download_of(run)  # two files: a ZIP streamed as it is made
        size = 0
        for chunk in _chunks(archive):
            size += len(chunk)
        zipped = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [f.stat().st_size for f in files] == [40 * MB, 8 * MB]
    assert size > 48 * MB
    assert fetched < 8 * MB and zipped < 8 * MB, (fetched, zipped)


def _chunks(response):
    """A streamed response's body, chunk by chunk, as the server sends it; in a thread of its
    own, since Playwright's tests leave an event loop in this one."""
    loop = asyncio.new_event_loop()
    thread = ThreadPoolExecutor(1)
    try:
        iterator = response.body_iterator.__aiter__()
        while True:
            try:
                yield thread.submit(loop.run_until_complete, iterator.__anext__()).result()
            except StopAsyncIteration:
                return
    finally:
        thread.submit(loop.close).result()
        thread.shutdown()
