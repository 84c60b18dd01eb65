"""The stores in PostgreSQL (studio/pgrows.py, pghistory.py, pgfiles.py) where they differ from
SQLite's: the same upserts read back alike from both, claims raced by two processes, claims
whose heartbeat stopped, a run killed mid-way, a failed copy, run files stored in the database,
the URL refused or unreachable, and the memory of a 200,000-row run. One database for the
module (``module_database``), emptied before each test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psycopg
import pytest

from studio.entities import entity
from studio.errors import StudioError
from studio.runhistory import AlreadyRunning, run_files
from studio.stores import open_history, open_rows
from tests.dbservers import empty_database, store_sql
from tests.helpers import ROOT

TYPED = {
    "name": "Typed",
    "key": "code",
    "fields": [
        {"name": "code", "type": "string", "required": True},
        {"name": "label", "type": "string"},
        {"name": "stock", "type": "integer"},
        {"name": "price", "type": "number"},
        {"name": "active", "type": "boolean"},
    ],
}


@pytest.fixture
def pg(module_database, monkeypatch, store) -> str:
    empty_database(module_database)
    monkeypatch.setenv("STUDIO_DATABASE_URL", module_database)
    return module_database


def _script(code: str, url: str, home) -> subprocess.Popen:
    env = os.environ | {"STUDIO_DATABASE_URL": url, "STUDIO_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _units(store) -> list[tuple[str, list[dict], list[str]]]:
    """Runs as (run id, rows, immutable columns): new rows, updates, a key twice in one run,
    immutable columns kept and filled, NULLs, booleans, numbers."""
    row = dict.fromkeys(["code", "label", "stock", "price", "active"])
    return [
        ("r1", [row | {"code": "A", "label": "a", "stock": 1, "price": 1.5, "active": True},
                row | {"code": "B", "label": None, "stock": 2, "price": 2.0, "active": False}], []),
        ("r2", [row | {"code": "A", "label": "a2", "stock": 3, "price": None, "active": None},
                row | {"code": "C", "label": "c", "stock": None, "price": 0.1, "active": True},
                row | {"code": "C", "label": "c2", "stock": 7, "price": 0.2, "active": False}],
         ["label", "stock"]),
        ("r3", [row | {"code": "B", "label": "b", "stock": 9, "price": 9.5, "active": True},
                row | {"code": "B", "label": "b2", "stock": 8, "price": 8.5, "active": False},
                row | {"code": "D", "label": "%d_", "stock": -1, "price": -1.25, "active": True}],
         ["label"]),
    ]  # fmt: skip


def _apply(store) -> dict:
    rows = open_rows(store.home)
    for run_id, batch, immutable in _units(store):
        w = rows.writer(entity("Typed"), run_id, list(batch[0]), immutable=immutable)
        w.write(batch[:1])
        w.write(batch[1:])
        w.commit()
        w.close()

    def strip(found: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "_updated_at"} for r in found]

    page, total = rows.read("Typed", limit=2, offset=1)
    return {
        "all": sorted(strip(rows.read("Typed", limit=100)[0]), key=lambda r: r["code"]),
        "page": (total, [r["code"] for r in page]),
        "where": [r["code"] for r in rows.read("Typed", where="C2")[0]],
        "literal": rows.read("Typed", where="%d_")[1],
        "count": (rows.count("Typed"), rows.count("Typed", "label"), rows.count("Nope")),
    }


def test_upserts_read_back_alike_from_sqlite_and_postgresql(store, module_database, monkeypatch):
    store.create("entities", TYPED, source="cli")
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    sqlite = _apply(store)
    empty_database(module_database)
    monkeypatch.setenv("STUDIO_DATABASE_URL", module_database)
    postgres = _apply(store)
    assert postgres == sqlite
    assert sqlite["all"][0] == {
        "code": "A", "label": "a", "stock": 1, "price": None, "active": None, "_run_id": "r2",
    }  # fmt: skip
    assert sqlite["all"][2]["label"] == "c" and sqlite["all"][2]["stock"] == 7  # first set kept


def test_two_processes_claiming_one_job_at_once_one_wins(pg, store):
    open_history(store.home)  # the tables, made before the race
    at = time.time() + 1.5
    code = f"""
        import time
        from pathlib import Path
        from studio.runhistory import AlreadyRunning
        from studio.stores import open_history
        history = open_history(Path("{store.home}"))
        time.sleep(max(0, {at} - time.time()))
        try:
            print("claimed", history.start_run("job-1", "Job", "manual").id)
        except AlreadyRunning as e:
            print("refused", e)
    """
    racers = [_script(code, pg, store.home) for _ in range(2)]
    out = [r.communicate(timeout=60)[0].split()[0] for r in racers]
    assert sorted(out) == ["claimed", "refused"], [r.stderr for r in racers]
    runs = open_history(store.home).list("job-1")
    assert sorted(r.status for r in runs) == ["running", "skipped"]
    with pytest.raises(psycopg.errors.UniqueViolation), psycopg.connect(pg) as conn:
        conn.execute(  # the index itself: never two claimed runs of a job
            "INSERT INTO runs (id, job_id, status, claimed) VALUES ('x', 'job-1', 'queued', true)"
        )


def _stale(url: str, run_id: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE runs SET owner = 'elsewhere:1', heartbeat = now() - interval '1 minute'"
            " WHERE id = %s",
            (run_id,),
        )


def test_a_claim_whose_heartbeat_stopped_is_interrupted(pg, store):
    history = open_history(store.home)
    first = history.start_run("job-1", "Job", "manual")
    with pytest.raises(AlreadyRunning, match="is already running"):
        history.start_run("job-1", "Job", "manual")  # alive: its heartbeat is fresh
    _stale(pg, first.id)  # its machine died a minute ago
    second = history.start_run("job-1", "Job", "manual")
    assert history.get(first.id).status == "interrupted"
    assert "stopped beating" in history.get(first.id).error
    assert history.get(second.id).status == "running"
    # mark_interrupted: a stale run of another machine goes, a live one stays
    other = history.start("job-2", "Other", "manual")
    live = history.start("job-3", "Live", "manual")
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute("UPDATE runs SET owner = 'elsewhere:2' WHERE id = %s", (live.id,))
    _stale(pg, other.id)
    assert history.mark_interrupted("gone", only_mine=False) == 2  # the stale one, and ours
    assert history.get(other.id).status == "interrupted"
    assert history.get(live.id).status == "running"


def test_a_writer_killed_mid_run_leaves_no_rows(pg, store):
    code = """
        import time
        from pathlib import Path
        from studio.entities import entity
        from studio.stores import open_rows
        w = open_rows(Path("HOME")).writer(
            entity("Suppliers"), "run-k", ["external_id", "name"])
        w.write([{"external_id": str(i), "name": "n"} for i in range(5000)])
        print("staged", flush=True)
        time.sleep(60)
    """.replace("HOME", str(store.home))
    killed = _script(code, pg, store.home)
    assert killed.stdout.readline().strip() == "staged", killed.stderr.read()
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert open_rows(store.home).read("Suppliers") == ([], 0)
    # a rollback drops what was staged, and the writer goes on
    w = open_rows(store.home).writer(entity("Suppliers"), "run-r", ["external_id", "name"])
    w.write([{"external_id": "X", "name": "no"}])
    w.rollback()
    w.write([{"external_id": "Y", "name": "yes"}])
    w.commit()
    w.close()
    assert [r["external_id"] for r in open_rows(store.home).read("Suppliers")[0]] == ["Y"]


def test_rows_are_copied_with_psycopg_s_pure_python_implementation_too(pg, store):
    """Without psycopg's C implementation (``psycopg[binary]`` not installable, or not
    importable: ``PSYCOPG_IMPL=python``), a run's rows still reach PostgreSQL."""
    code = """
        from pathlib import Path
        import psycopg
        from studio.entities import entity
        from studio.stores import open_rows
        assert psycopg.pq.__impl__ == "python", psycopg.pq.__impl__
        w = open_rows(Path("HOME")).writer(entity("Suppliers"), "run-p", ["external_id", "name"])
        w.write([{"external_id": str(i), "name": None if i % 2 else f"n{i}"} for i in range(3)])
        w.commit()
        w.close()
        print("written", flush=True)
    """.replace("HOME", str(store.home))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PSYCOPG_IMPL", "python")
        written = _script(code, pg, store.home)
        out, err = written.communicate(timeout=60)
    assert out.strip() == "written", err
    rows = sorted(open_rows(store.home).read("Suppliers")[0], key=lambda r: r["external_id"])
    assert [(r["external_id"], r["name"]) for r in rows] == [("0", "n0"), ("1", None), ("2", "n2")]


def test_a_failed_copy_changes_nothing_and_the_writers_go_on(pg, store):
    rows = open_rows(store.home)
    w = rows.writer(entity("Suppliers"), "run-0", ["external_id", "name"])
    w.write([{"external_id": "FIRST", "name": "made the table"}])
    w.commit()
    w.close()
    store_sql(store.home, "ALTER TABLE suppliers ADD CHECK (external_id <> 'BAD')")
    parent = rows.writer(entity("Suppliers"), "run-1", ["external_id", "name"])
    other = rows.writer(entity("Products"), "run-1", ["external_id", "name"], part="Products")
    group = rows.together([parent, other])
    parent.write([{"external_id": "OK", "name": "fine"}, {"external_id": "BAD", "name": "no"}])
    other.write([{"external_id": "P1", "name": "in the same transaction"}])
    with pytest.raises(psycopg.errors.CheckViolation):
        group.commit()
    group.rollback()
    assert rows.read("Suppliers")[1] == 1 and rows.read("Products")[1] == 0
    parent.write([{"external_id": "GOOD", "name": "after"}])
    other.write([{"external_id": "P2", "name": "after"}])
    group.commit()
    group.close()
    assert [r["external_id"] for r in rows.read("Suppliers")[0]] == ["GOOD", "FIRST"]
    assert rows.read("Products")[1] == 1


def test_a_table_keyed_otherwise_is_rebuilt_when_empty_and_refused_with_rows(pg, store):
    open_rows(store.home)  # the schema
    store_sql(store.home, "CREATE TABLE suppliers (name text PRIMARY KEY, old text)")
    spec = entity("Suppliers")
    w = open_rows(store.home).writer(spec, "run-1", ["external_id", "name"])
    w.write([{"external_id": "A", "name": "Acme"}])
    w.commit()
    w.close()
    rows, total = open_rows(store.home).read("Suppliers")
    assert total == 1 and "old" not in rows[0]
    rekeyed = spec.model_copy(update={"key": "name"})
    w = open_rows(store.home).writer(rekeyed, "run-2", ["external_id", "name"])
    w.write([{"external_id": "B", "name": "Globex"}])
    with pytest.raises(StudioError, match="keyed by external_id, not 'name', and holds rows"):
        w.commit()
    w.close()


def test_run_files_are_stored_with_the_run_and_read_back_elsewhere(pg, store, tmp_path):
    history = open_history(store.home)
    run = history.start_run("job-1", "Job", "manual")
    folder = store.home / "runs" / run.id
    folder.mkdir(parents=True)
    big = os.urandom(2_500_000)  # three chunks
    (folder / "rows.csv").write_bytes(big)
    (folder / "run.log").write_text("a log\n")
    run.outputs = [str(folder / "rows.csv"), str(folder / "run.log")]
    run.status, run.rows_written = "success", 1
    history.save(run)
    assert not folder.exists()  # scratch: deleted once stored
    with psycopg.connect(pg) as conn:
        assert conn.execute("SELECT count(*) FROM run_file_chunks").fetchone()[0] == 4
    elsewhere = history.get(run.id)
    elsewhere.folder = str(tmp_path / "not" / "here")  # another machine's folder
    os.chmod(tmp_path, 0o500)
    try:
        files = run_files(elsewhere)
    finally:
        os.chmod(tmp_path, 0o700)
    assert [f.name for f in files] == ["rows.csv", "run.log"]
    assert files[0].read_bytes() == big and oct(files[0].stat().st_mode)[-3:] == "600"
    assert [f.name for f in run_files(history.get(run.id))] == ["rows.csv", "run.log"]
    assert not folder.exists()  # read from the home's cache (pgfiles), not the run's folder
    history.save(history.get(run.id))  # saved again: the files stay stored
    assert [f.name for f in run_files(history.get(run.id))] == ["rows.csv", "run.log"]
    old = history.get(run.id)
    old.started_at = "2020-01-01T00:00:00+00:00"
    history.save(old)
    assert history.purge(days=30) == 1
    with psycopg.connect(pg) as conn:
        assert conn.execute("SELECT count(*) FROM run_file_chunks").fetchone()[0] == 0


def test_the_url_is_checked_and_an_unreachable_server_named(store, monkeypatch):
    from tests.servers import free_port

    monkeypatch.setenv("STUDIO_DATABASE_URL", "mysql://u:secret@db/x")
    with pytest.raises(StudioError, match="STUDIO_DATABASE_URL must be a postgresql:// URL") as e:
        open_rows(store.home)
    assert "secret" not in str(e.value)
    monkeypatch.setenv("STUDIO_DATABASE_URL", f"postgresql://u:secret@127.0.0.1:{free_port()}/x")
    with pytest.raises(StudioError, match=r"of STUDIO_DATABASE_URL .* cannot be reached") as e:
        open_history(store.home)
    assert "secret" not in str(e.value)


def test_a_200000_row_run_keeps_memory_flat(pg, store):
    code = """
        from pathlib import Path
        from studio.entities import entity
        from studio.stores import open_rows

        def hwm():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024

        rows = open_rows(Path("HOME"))
        w = rows.writer(entity("Products"), "big", ["external_id", "name", "description"])
        for batch in range(200):
            w.write([{"external_id": f"P{batch * 1000 + i}", "name": f"Product {i}",
                      "description": "x" * 200} for i in range(1000)])
            if batch == 9:
                start = hwm()
        w.commit()
        w.close()
        print(start, hwm(), rows.count("Products"))
    """.replace("HOME", str(store.home))
    done = _script(code, pg, store.home)
    out, err = done.communicate(timeout=300)
    start, end, count = map(int, out.split())
    assert count == 200_000, err
    assert end - start < 20, (start, end)  # MB: flat, whatever the rows
    print(f"VmHWM after 10,000 rows {start} MB, after 200,000 and the commit {end} MB")


def test_a_runs_files_reach_the_studio_and_the_rest_api_from_the_database(pg, store, sandbox):
    import zipfile
    from io import BytesIO
    from pathlib import Path

    from runner.api.jobs import download_of
    from studio.runhistory import archive_of
    from studio.runs import run_job
    from tests.helpers import demo

    demo(store, sandbox)
    run = run_job(store, "Demo suppliers")
    assert run.status == "success" and not (Path(run.folder) / "rows.csv").exists()  # stored
    name, mime, content = archive_of(open_history(store.home).get(run.id))  # the Runs page's
    assert (name, mime) == (f"run-{run.id}.zip", "application/zip")
    assert zipfile.ZipFile(BytesIO(content())).namelist() == ["rows.csv", "rejects.csv", "run.log"]
    response = download_of(open_history(store.home).get(run.id))  # the REST API's
    assert Path(response.path).read_text().startswith("external_id,name,email")
