"""What the Runs, Overview and Data pages say, without Streamlit: a run's log as a timeline,
counts in words, how a run ended, the first steps of a new user, the entity Data opens on."""

from __future__ import annotations

import json

from studio.config.schedules import Schedule
from studio.guide import first_steps, opening_entity
from studio.runhistory import Run, counts_text, ended_text, plural
from studio.runlog import Entry, entry, timeline
from tests.helpers import SUPPLIERS, api_connection

AT = "2026-03-04T05:06:07+00:00"


def test_a_request_reads_as_one_sentence_and_nothing_null_is_written():
    line = {
        "at": AT,
        "kind": "exchange",
        "label": "Call 1",
        "method": "GET",
        "url": "https://api.example.com/items?page=2",
        "status": 200,
        "ms": 1234,
        "size": 2048,
        "attempts": 3,
        "retries": ["503", "read timeout"],
        "error": "",
    }
    assert entry(line) == Entry(
        "05:06:07",
        "request",
        "Call 1: GET https://api.example.com/items?page=2 → 200 · 1,234 ms · 2,048 bytes"
        " · 3 attempts (503; read timeout)",
    )
    failed = {"at": AT, "kind": "exchange", "label": None, "method": "GET", "url": "http://x/y"}
    failed |= {"status": None, "ms": 5, "size": 0, "attempts": 1, "retries": [], "error": "refused"}
    assert entry(failed).message == "GET http://x/y → no answer · 5 ms · refused"
    assert entry({"kind": "page", "call": None, "records": None}) == Entry("", "page", "a page")


def test_log_lines_get_their_step():
    def step(message):
        e = entry({"at": AT, "kind": "log", "message": message})
        return e.step, e.message

    assert step("failed: Call 1 answered 404") == ("error", "Call 1 answered 404")
    assert step("in/a.csv: failed: bad row")[0] == "error"
    assert step("in/a.csv: reading") == ("file", "in/a.csv: reading")
    assert step("in/a.csv: 1,200 records, 1,200 rows, 0 rejects, moved to done/a.csv")[0] == "file"
    assert step("Wrote the rows to ftp://h/out.csv")[0] == "destination"
    assert step("Call 1: stopped after 5 page(s): a short page")[0] == "stop"
    assert step("Call 2: fanning out over {id}: 4 requests") == (
        "note",
        "Call 2: fanning out over {id}: 4 requests",
    )
    assert entry({"kind": "stop", "message": None}).message == ""


def test_timeline_keeps_the_end_and_skips_a_line_being_written(tmp_path):
    path = tmp_path / "run.log"
    lines = [{"at": AT, "kind": "log", "message": f"line {i}"} for i in range(5)]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"at": "2026-03-04T05:0')
    entries, total = timeline(path, limit=3)
    assert total == 6 and [e.message for e in entries] == ["line 3", "line 4"]
    assert timeline(tmp_path / "none.log") == ([], 0)


def test_counts_and_ends_in_words():
    assert [plural(n, "record") for n in (0, 1, 2, 2500)] == [
        "0 records",
        "1 record",
        "2 records",
        "2,500 records",
    ]
    assert plural(1, "entity", "entities") + plural(3, "entity", "entities") == (
        "1 entity3 entities"
    )
    one = Run("r", "j", "Job", "manual", records=1, rows_written=1, requests=1, pages=1, files=1)
    assert counts_text(one) == "1 record, 1 row written, 0 rejected, 1 request, 1 page, 1 file read"
    one.status = "success"
    assert ended_text(one) == "Run of 'Job' finished: success, 1 row"
    one.status, one.rows_rejected, one.error = "partial", 3, "the destination file was not written"
    assert ended_text(one) == (
        "Run of 'Job' finished: partial, 1 row, 3 rejected (the destination file was not written)"
    )
    one.status, one.error = "failed", "Call 1 answered 500"
    assert ended_text(one) == "Run of 'Job' failed: Call 1 answered 500"


def test_first_steps_tick_as_the_user_goes_and_end_with_a_run(store):
    from studio.config.files import EXAMPLES, import_configs

    def steps(runs=()):
        found = first_steps(store.list("connections"), store.list("jobs"), list(runs))
        return [(s.key, s.done) for s in found]

    assert steps() == [("connect", False), ("build", False), ("schedule", False)]
    import_configs(store, EXAMPLES)  # the demo: there to try, not the user's own
    assert steps() == [("connect", False), ("build", False), ("schedule", False)]
    demo_run = Run("r0", "demojobsupplier1", "Demo suppliers", "manual", status="success")
    assert steps([demo_run]) == [("connect", False), ("build", False), ("schedule", False)]
    store.create("connections", api_connection("Mine"), source="cli")
    assert steps() == [("connect", True), ("build", False), ("schedule", False)]
    job = SUPPLIERS | {"name": "My suppliers", "calls": [{"path": "/suppliers"}]}
    job |= {"connection_id": "Mine", "schedule": {"type": "manual"}}
    made = store.create("jobs", job, source="cli")
    assert steps() == [("connect", True), ("build", True), ("schedule", False)]
    store.modify(
        "jobs",
        made.id,
        lambda j: j.model_copy(update={"schedule": Schedule.model_validate(SUPPLIERS["schedule"])}),
        source="cli",
    )
    assert steps() == [("connect", True), ("build", True), ("schedule", True)]
    assert steps([Run("r1", made.id, "My suppliers", "manual", status="failed")]) == []


def test_data_opens_on_the_entity_just_imported(store):
    from studio.config.files import EXAMPLES, import_configs

    import_configs(store, EXAMPLES)
    jobs = store.list("jobs")
    entities = ["Products", "Offers", "Suppliers"]
    rows = {"Offers": 3}

    def opening(*runs):
        return opening_entity(entities, jobs, list(runs), lambda e: rows.get(e, 0))

    suppliers = Run("a", "demojobsupplier1", "Demo suppliers", "manual", status="success")
    products = Run("b", "demojobproducts1", "Demo products", "manual", status="partial")
    failed = Run("c", "demojobproducts1", "Demo products", "manual", status="failed")
    gone = Run("d", "deletedjob000001", "Deleted", "manual", status="success")
    assert opening(failed, suppliers, products) == "Suppliers"
    assert opening(products, suppliers) == "Products"
    assert opening(gone, failed) == "Offers"  # no successful run of a job that exists: rows
    rows.clear()
    assert opening() == "Products"
