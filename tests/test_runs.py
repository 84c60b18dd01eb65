"""Runs: source → mapping → entity store (SQLite, upsert by key), run files, destination, and
the run history; a failed run changes nothing."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

from runner.api.jobs import status_of
from studio.config.jobs import Param
from studio.mapping import FieldMap
from studio.push import push_records
from studio.rowstore import read_rows
from studio.runhistory import RunHistory, counts_text
from studio.runs import preview_saved, run_job
from tests.helpers import (
    PRODUCTS,
    bulk_suppliers_job,
    demo,
    ftp_connection,
    reject_every_product,
    runner,
)


def test_a_run_upserts_rows_writes_its_files_and_its_history(store, sandbox):
    demo(store, sandbox)
    run = run_job(store, "Demo products (page numbers)")
    assert (run.status, run.records, run.rows_written, run.rows_rejected) == ("success", 95, 95, 0)
    assert run.requests == 6 and run.pages == 5  # a token request and five pages
    rows, total = read_rows(store.home, "Products", limit=5)
    assert total == 95 and rows[0]["_run_id"] == run.id
    with open(run.outputs[0], newline="") as f:
        assert len(list(csv.reader(f))) == 96
    again = run_job(store, "Demo products (page numbers)", trigger="api")
    assert read_rows(store.home, "Products")[1] == 95  # upserted by key, not duplicated
    runs = RunHistory(store.home).list()
    assert [(r.id, r.trigger, r.status) for r in runs] == [
        (again.id, "api", "success"),
        (run.id, "manual", "success"),
    ]
    log = [json.loads(line) for line in Path(run.outputs[-1]).read_text().splitlines()]
    assert log[0]["kind"] == "exchange" and "demo-secret" not in json.dumps(log)


def test_the_next_run_gets_last_success_at(store, sandbox):
    demo(store, sandbox)
    first = run_job(store, "Demo products (page numbers)")
    second = run_job(store, "Demo products (page numbers)")
    urls = [json.loads(x).get("url", "") for x in Path(second.outputs[-1]).read_text().splitlines()]
    since = first.started_at.replace(":", "%3A").replace("+", "%2B")
    assert any(f"since={since}" in u for u in urls), urls


def test_rejects_make_a_partial_run_with_a_rejects_file(store, sandbox):
    demo(store, sandbox)
    reject_every_product(store)
    run = run_job(store, "Demo products (page numbers)")
    assert (run.status, run.rows_written, run.rows_rejected) == ("partial", 0, 95)
    with open(run.outputs[1], newline="") as f:
        rejects = list(csv.DictReader(f))
    assert rejects[0]["field"] == "created_at"
    assert "is not a datetime" in rejects[0]["reason"]


def test_a_failed_run_changes_nothing(store, sandbox):
    demo(store, sandbox)
    store.modify(
        "jobs",
        "Demo product details (fan-out)",
        lambda j: j.model_copy(
            update={
                "calls": [
                    j.calls[0].model_copy(update={"query": [Param(name="size", value="10")]}),
                    j.calls[1],
                ]
            }
        ),
        source="cli",
    )
    sandbox.fault("/api/products/P00007", 404, times=5, body='{"error": "gone"}')
    run = run_job(store, "Demo product details (fan-out)")
    assert run.status == "failed" and run.records == 6  # six details read before the failure
    assert "answered 404 Not Found" in run.error
    assert read_rows(store.home, "Products")[1] == 0
    with sqlite3.connect(store.home / "entities.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 0


def test_a_bulk_file_run_and_a_destination_file(store, sandbox, ftp_server):
    demo(store, sandbox)
    root = ftp_server.root / "run-test"
    (root / "in").mkdir(parents=True, exist_ok=True)
    (root / "in" / "a.csv").write_text("id;company\nS1;Acme\nS2;=cmd\n")
    (root / "in" / "b.csv").write_text("id,company\nS3,Bad delimiter\n")
    store.create("connections", ftp_connection(ftp_server, "/run-test"), source="cli")
    store.create(
        "jobs",
        bulk_suppliers_job(
            destination={
                "enabled": True,
                "connection_id": "FTP",
                "folder": "exports",
                "file_name": "{{job}}-{{run_id}}.csv",
            }
        ),
        source="cli",
    )
    run = run_job(store, "Suppliers files")
    assert (run.status, run.files, run.rows_written) == ("partial", 2, 2)
    assert "b.csv: 1 column found" in run.error
    assert sorted(p.name for p in (root / "in").iterdir()) == ["b.csv"]
    assert (root / "done" / "a.csv").exists()
    exported = (root / "exports" / f"Suppliers-files-{run.id}.csv").read_text()
    assert exported.splitlines()[:3] == [
        "external_id,name,email,phone,country,status",
        "S1,Acme,,,,",
        "S2,'=cmd,,,,",
    ]


def test_a_destination_that_fails_after_the_rows_are_in_makes_a_partial_run(store, sandbox):
    demo(store, sandbox)
    store.create(
        "connections",
        {
            "kind": "file_server",
            "name": "Nowhere",
            "protocol": "ftp",
            "host": "127.0.0.1",
            "port": 9,
            "username": "u",
            "password": "p",
        },
        source="cli",
    )
    store.modify(
        "jobs",
        "Demo suppliers",
        lambda j: {
            **j.model_dump(mode="json"),
            "destination": {"enabled": True, "connection_id": "Nowhere"},
        },
        source="cli",
    )
    run = run_job(store, "Demo suppliers")
    assert (run.status, run.rows_written) == ("partial", 4)
    assert run.error.startswith("the destination file was not written: 127.0.0.1:9 refused")
    assert read_rows(store.home, "Suppliers")[1] == 4


def _keeping_and_discarding(store, status: str, description: str) -> None:
    """The demo products with ``status`` kept on update and ``description`` not (both
    hard-coded, so that a second run can change them), and inactive products (every fifth:
    19 of 95) discarded by an empty brand."""
    mapping = [
        *store.get("jobs", PRODUCTS).mapping[:3],
        FieldMap(extract=f'"{status}"', generate="status", immutable=True),
        FieldMap(extract=f'"{description}"', generate="description"),
        FieldMap(
            generate="brand", template='{{ "Demo" if active else "" }}', discard_if_empty=True
        ),
    ]
    store.modify(
        "jobs", PRODUCTS, lambda j: j.model_copy(update={"mapping": mapping}), source="cli"
    )


def test_immutable_fields_are_kept_on_update_and_discarded_records_counted(home, store, sandbox):
    demo(store, sandbox)
    _keeping_and_discarding(store, "new", "first")
    first = run_job(store, PRODUCTS)
    assert (first.status, first.records, first.rows_written, first.rows_rejected) == (
        "success",
        95,
        76,
        0,
    )
    assert first.discarded == 19 and "76 rows written, 0 rejected, 19 discarded" in counts_text(
        first
    )
    _keeping_and_discarding(store, "changed", "second")
    second = run_job(store, PRODUCTS)
    rows = {r["external_id"]: r for r in read_rows(store.home, "Products", limit=100)[0]}
    assert len(rows) == 76 and "P00005" not in rows  # inactive: discarded, never written
    assert (rows["P00001"]["status"], rows["P00001"]["description"]) == ("new", "second")
    assert rows["P00001"]["_run_id"] == second.id
    recorded = RunHistory(store.home).get(second.id)
    assert (recorded.discarded, status_of(recorded)["discarded"]) == (19, 19)
    shown = runner("runs", "show", second.id, home=home)
    assert "19 discarded" in shown.stdout, shown.stderr
    trace = preview_saved(store, PRODUCTS, max_pages=1)  # products 1 to 20: 5, 10, 15, 20
    assert (len(trace.records), len(trace.rows), trace.rejects, trace.discarded) == (20, 16, [], 4)


def test_pushed_records_keep_immutable_fields_and_count_discards(store, sandbox):
    demo(store, sandbox)
    mapping = [
        FieldMap(extract="$.supplierId", generate="external_id"),
        FieldMap(extract="$.companyName", generate="name"),
        FieldMap(extract="$.email", generate="email", immutable=True),
        FieldMap(extract="$.country", generate="country", discard_if_empty=True),
    ]
    job = store.modify(
        "jobs", "Demo suppliers", lambda j: j.model_copy(update={"mapping": mapping}), source="cli"
    )
    one = {"supplierId": "S9", "companyName": "Pushed", "email": "first@x.example", "country": "FR"}
    push_records(store, job, [one])
    again = one | {"companyName": "Pushed Inc", "email": "second@x.example"}
    results = push_records(store, job, [again, {"supplierId": "S10", "companyName": "No country"}])
    assert results[1] == {"statusCode": 200, "discarded": True}
    rows = {r["external_id"]: r for r in read_rows(store.home, "Suppliers")[0]}
    assert (rows["S9"]["name"], rows["S9"]["email"]) == ("Pushed Inc", "first@x.example")
    assert "S10" not in rows
    pushed = RunHistory(store.home).list(job_id=job.id)[0]
    assert (pushed.status, pushed.rows_written, pushed.discarded) == ("success", 1, 1)


def test_a_copy_that_fails_fails_the_run_and_the_push_with_its_error(store, sandbox):
    """A real SQLite error when the rows are copied in (a CHECK on the key column): the run and
    the push are recorded failed with that error, not a rollback's, and the next ones go."""
    import pytest

    from studio.rowstore import connect

    demo(store, sandbox)
    connect(store.home).close()
    with sqlite3.connect(store.home / "entities.sqlite") as db:
        db.execute(
            "CREATE TABLE suppliers (external_id TEXT CHECK (external_id = 'never'), name TEXT, "
            "email TEXT, phone TEXT, country TEXT, status TEXT, _run_id TEXT, _updated_at TEXT, "
            "PRIMARY KEY (external_id))"
        )
    db.close()
    run = run_job(store, "Demo suppliers")
    assert run.status == "failed" and "CHECK constraint failed" in run.error, run.error
    assert "rollback" not in run.error
    job = store.get("jobs", "Demo suppliers")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        push_records(store, job, [{"supplierId": "S9", "companyName": "Pushed"}])
    pushed = RunHistory(store.home).list(job_id=job.id)[0]
    assert pushed.status == "failed" and "CHECK constraint failed" in pushed.error
    with sqlite3.connect(store.home / "entities.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM suppliers").fetchone()[0] == 0
        db.execute("DROP TABLE suppliers")  # mended: the next run and push are not refused
    db.close()
    assert run_job(store, "Demo suppliers").status in ("success", "partial")
    assert (
        push_records(store, job, [{"supplierId": "S9", "companyName": "Pushed"}])[0]["statusCode"]
        == 200
    )
    assert "S9" in {r["external_id"] for r in read_rows(store.home, "Suppliers", limit=1000)[0]}
