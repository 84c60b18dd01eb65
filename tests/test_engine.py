"""The engine against the real sandbox on 127.0.0.1: behaviors, stop rules, fan-out, downloads,
variables and the content finder. No mocked HTTP. (Transport retries and bad answers are in
test_http.py.)"""

from __future__ import annotations

import json

import pytest

from studio.engine import Chain, find_records, preview, render_json
from studio.http import HttpClient
from tests.helpers import conn_for, ids, job_for, run_chain

# --- pagination ------------------------------------------------------------------------------


def test_page_number_short_last_page_keeps_its_records(sandbox):
    job = job_for([{"path": "/products", "behavior": {"type": "pagination", "page_size": 20}}])
    records, exchanges, messages = run_chain(job, conn_for(sandbox))
    assert ids(records) == [f"P{i:05d}" for i in range(1, 96)]
    assert [e.url.split("?")[1] for e in exchanges if e.label != "token"] == [
        f"page={p}&size=20" for p in range(1, 6)
    ]
    assert messages == ["Call 1: stopped after 5 page(s): a short page (15 of 20 records)"]


def test_an_exactly_full_last_page_does_not_loop(sandbox):
    sandbox.settings(products=100)
    job = job_for([{"path": "/products", "behavior": {"type": "pagination", "page_size": 20}}])
    records, exchanges, messages = run_chain(job, conn_for(sandbox))
    assert len(records) == 100
    assert messages == ["Call 1: stopped after 6 page(s): an empty page"]
    job = job_for(
        [
            {
                "path": "/products",
                "behavior": {
                    "type": "pagination",
                    "page_size": 20,
                    "total_pages_path": "$.total_pages",
                },
            }
        ]
    )
    records, exchanges, messages = run_chain(job, conn_for(sandbox))
    assert len(records) == 100 and len([e for e in exchanges if e.label != "token"]) == 5
    assert messages == ["Call 1: stopped after 5 page(s): the last page (5 of 5)"]


def test_offset_limit_with_total_records(sandbox):
    sandbox.settings(products=60)
    job = job_for(
        [
            {
                "path": "/products-offset",
                "behavior": {
                    "type": "pagination",
                    "style": "offset",
                    "page_size": 20,
                    "stop_on_short_page": False,
                    "total_records_path": "$.total",
                },
            }
        ],
        finder="$.data.results[*]",
    )
    records, exchanges, messages = run_chain(job, conn_for(sandbox))
    assert ids(records) == [f"P{i:05d}" for i in range(1, 61)]
    assert exchanges[-1].url.endswith("offset=40&limit=20")
    assert messages == ["Call 1: stopped after 3 page(s): all 60 records read"]


@pytest.mark.parametrize(
    "source", [{"cursor_path": "$.next_cursor"}, {"cursor_header": "X-Next-Cursor"}]
)
def test_cursor_from_body_or_header(sandbox, source):
    job = job_for(
        [
            {
                "path": "/products-cursor",
                "query": [{"name": "limit", "value": "40"}],
                "behavior": {"type": "pagination", "style": "cursor", **source},
            }
        ]
    )
    records, exchanges, messages = run_chain(job, conn_for(sandbox))
    assert len(records) == 95 and len(set(ids(records))) == 95
    assert "cursor=" not in exchanges[1].url and "cursor=" in exchanges[2].url
    assert messages == ["Call 1: stopped after 3 page(s): no next cursor"]


@pytest.mark.parametrize("source", [{}, {"next_link_path": "$.links.next"}])
def test_next_link_from_link_header_or_body(sandbox, source):
    job = job_for(
        [
            {
                "path": "/products-links",
                "query": [{"name": "size", "value": "30"}],
                "behavior": {"type": "pagination", "style": "next_link", **source},
            }
        ]
    )
    records, exchanges, messages = run_chain(job, conn_for(sandbox))
    assert len(records) == 95
    assert [e.url.split("?")[1] for e in exchanges[1:]] == [
        "size=30",
        "page=2&size=30",
        "page=3&size=30",
        "page=4&size=30",
    ]
    assert messages == ["Call 1: stopped after 4 page(s): no next link"]


@pytest.mark.parametrize(
    ("end", "said"),
    [
        ("null", "null"),
        ("missing", "missing"),
        ("list", "an empty list"),
        ("string", "an empty string"),
        ("object", "an empty object"),
    ],
)
def test_pages_stop_when_the_next_field_is_left_empty(sandbox, end, said):
    # An exactly full last page: page numbers alone would ask once more for an empty page.
    sandbox.settings(products=100)
    behavior = {"type": "pagination", "page_size": 20}
    call = {"path": "/products-next", "query": [{"name": "end", "value": end}]}
    plain = job_for([{**call, "behavior": behavior}], finder="$.results")
    _, _, messages = run_chain(plain, conn_for(sandbox))
    assert messages == ["Call 1: stopped after 6 page(s): an empty page"]
    stops = {**behavior, "stop_when_empty_path": "$.next"}
    job = job_for([{**call, "behavior": stops}], finder="$.results")
    records, exchanges, messages = run_chain(job, conn_for(sandbox))
    assert ids(records) == [f"P{i:05d}" for i in range(1, 101)]
    assert [e.url.split("?")[1] for e in exchanges if e.label != "token"] == [
        f"end={end}&page={p}&size=20" for p in range(1, 6)
    ]
    assert messages == [f"Call 1: stopped after 5 page(s): $.next is {said}"]


def test_a_cursor_from_a_header_stops_when_the_body_says_so(sandbox):
    behavior = {
        "type": "pagination",
        "style": "cursor",
        "cursor_header": "X-Next-Cursor",
        "stop_when_empty_path": "$.next_cursor",
    }
    job = job_for([{"path": "/products-cursor", "behavior": behavior}])
    trace = preview(job, conn_for(sandbox), max_pages=10, max_records=1000)
    # A natural end is logged like the style's own; ``stopped`` holds the limits that cut short.
    assert len(trace.records) == 95 and trace.stopped == []
    assert trace.log[-1] == "Call 1: stopped after 5 page(s): $.next_cursor is null"


def test_max_pages_cap_is_said_plainly(sandbox):
    job = job_for(
        [{"path": "/products", "behavior": {"type": "pagination", "page_size": 10, "max_pages": 2}}]
    )
    records, _, messages = run_chain(job, conn_for(sandbox))
    assert len(records) == 20
    assert messages == ["Call 1: stopped after 2 pages: max pages"]
    trace = preview(
        job.model_copy(
            update={
                "calls": [
                    job.calls[0].model_copy(
                        update={
                            "behavior": job.calls[0].behavior.model_copy(update={"max_pages": 50})
                        }
                    )
                ]
            }
        ),
        conn_for(sandbox),
        max_pages=3,
        max_records=1000,
    )
    assert trace.stopped == ["Call 1: stopped after 3 pages: preview limit"]
    assert len(trace.records) == 30


def test_preview_record_limit(sandbox):
    job = job_for([{"path": "/products", "behavior": {"type": "pagination", "page_size": 20}}])
    trace = preview(job, conn_for(sandbox), max_pages=10, max_records=25)
    assert len(trace.records) == 25 and len(trace.rows) == 25
    assert trace.stopped == ["stopped after 25 records: preview limit"]
    assert len([e for e in trace.exchanges if e["label"] != "token"]) == 2


# --- chains, variables, fan-out ----------------------------------------------------------------


def test_fan_out_over_a_multi_valued_variable(sandbox):
    job = job_for(
        [
            {
                "path": "/products",
                "query": [{"name": "size", "value": "4"}],
                "variables": [{"name": "productId", "path": "$.items[*].id"}],
            },
            {"path": "/products/{productId}"},
        ],
        finder="$.product",
    )
    records, exchanges, messages = run_chain(job, conn_for(sandbox))
    assert ids(records) == ["P00001", "P00002", "P00003", "P00004"]
    assert [e.url.rsplit("/", 1)[1] for e in exchanges[2:]] == ids(records)
    assert records[0]["details"] == {"weight_kg": 1.5}
    assert messages == ["Call 2: fanning out over productId: 4 requests"]


def test_variables_render_into_path_query_headers_and_json_body(sandbox):
    job = job_for(
        [
            {
                "path": "/suppliers",
                "variables": [
                    {"name": "first", "path": "$.suppliers[0].supplierId"},
                    {"name": "count", "path": "$.count"},
                ],
            },
            {
                "method": "POST",
                "path": "/echo",
                "query": [
                    {"name": "supplier", "value": "{first}"},
                    {"name": "since", "value": "{last_success_at}"},
                ],
                "headers": [{"name": "X-Run", "value": "run {run_id}"}],
                "body": {
                    "type": "json",
                    "content": '{"count": {count}, "note": "for {first} \\"q\\""}',
                },
            },
        ],
        finder="$",
    )
    conn = conn_for(sandbox, headers=[{"name": "X-Tenant", "value": "acme"}])
    with HttpClient(conn) as client:
        chain = Chain(job, conn, client, run_id="r42", last_success_at="2026-01-01T00:00:00Z")
        [echo] = [r for b in chain.batches() for r in b]
    assert echo["query"] == [["supplier", "S001"], ["since", "2026-01-01T00:00:00Z"]]
    assert echo["headers"]["x-run"] == "run r42"
    assert echo["headers"]["x-tenant"] == "acme"
    assert json.loads(echo["body"]) == {"count": 4, "note": 'for S001 "q"'}


def test_render_json_escapes_inside_strings_and_types_bare_values():
    assert (
        render_json('{"a": {n}, "b": "x{s}y", "c": "{{n}}"}', {"n": 5, "s": 'q"'})
        == '{"a": 5, "b": "xq\\"y", "c": "{5}"}'
    )


def test_a_single_valued_variable_that_matched_nothing_fails_clearly(sandbox):
    job = job_for(
        [
            {"path": "/suppliers", "variables": [{"name": "x", "path": "$.nope"}]},
            {"path": "/products/{x}"},
        ]
    )
    trace = preview(job, conn_for(sandbox))
    assert trace.error == (
        "Call 2 uses {x}, but it matched nothing in the earlier responses; "
        "check the variable's JSONPath against the last test"
    )
    assert "Call 1: variable {x} ($.nope) matched nothing" in trace.log


# --- retry (polling) and downloads ------------------------------------------------------------


def export_job(fmt="csv", polls=None, finder="$", **download):
    return job_for(
        [
            {
                "method": "POST",
                "path": "/exports",
                "query": [{"name": "format", "value": fmt}],
                "variables": [{"name": "exportId", "path": "$.exportId"}],
            },
            {
                "path": "/exports/{exportId}",
                "behavior": {
                    "type": "retry",
                    "max_attempts": polls or 5,
                    "interval": 0.05,
                    "condition_key": "$.status",
                    "condition_value": "AVAILABLE",
                },
                "variables": [{"name": "fileUrl", "path": "$.file.url"}],
            },
            {"behavior": {"type": "download", "url_source": "fileUrl", "format": fmt, **download}},
        ],
        finder=finder,
        mapping=[
            {"extract": "id", "generate": "external_id"},
            {"extract": "title", "generate": "name"},
            {"extract": "category", "generate": "classification_category_id"},
        ],
    )


def test_poll_until_available_then_download_csv(sandbox):
    job = export_job("csv", delimiter=";")
    trace = preview(job, conn_for(sandbox), max_records=1000)
    assert trace.error is None, trace.error
    assert len(trace.records) == 95 and trace.records[0]["id"] == "P00001"
    assert trace.rows[0] == {
        "external_id": "P00001",
        "name": "Product 1",
        "classification_category_id": "cat-1",
    }
    notes = [e["note"] for e in trace.exchanges if e["label"] == "Call 2"]
    assert notes == ["attempt 1/5", "attempt 2/5", "attempt 3/5"]
    download = trace.exchanges[-1]
    assert download["note"] == "download" and "/files/" in download["url"]
    assert download["request_headers"]["Authorization"] == "••••••"  # same host: sent, masked
    assert any(line.startswith("Call 3: downloaded ") for line in trace.log)


@pytest.mark.parametrize(
    ("fmt", "finder", "count"), [("json", "$.products", 95), ("jsonl", "$", 95), ("zip", "$", 96)]
)
def test_download_json_jsonl_and_zip(sandbox, fmt, finder, count):
    records, _, _ = run_chain(export_job(fmt, finder=finder, delimiter=";"), conn_for(sandbox))
    assert len(records) == count
    assert records[0]["id"] == "P00001"


def test_download_with_the_wrong_delimiter_says_which_one_it_may_be(sandbox):
    trace = preview(export_job("csv", delimiter=","), conn_for(sandbox))
    assert (
        "1 column found with the delimiter comma; the delimiter may be ';' (semicolon)"
        in trace.error
    )


def test_polling_gives_up_with_the_last_status_and_value(sandbox):
    sandbox.settings(export_polls=100)
    trace = preview(export_job(polls=3), conn_for(sandbox))
    assert trace.error == (
        "Call 2: gave up after 3 attempts waiting for status 200 and $.status = 'AVAILABLE'; "
        "the last answer had status 200 and $.status = 'PENDING'"
    )


# --- the content finder over cached responses ---------------------------------------------------


def test_find_records_without_calling_the_api_again(sandbox):
    job = job_for([{"path": "/products", "query": [{"name": "size", "value": "3"}]}])
    trace = preview(job, conn_for(sandbox))
    hits = sandbox.hits("/api/products")
    records, error, near = find_records(trace.documents, "$.items[*].price")
    assert (len(records), error, near) == (3, None, [])
    records, error, near = find_records(trace.documents, "$.item")
    assert records == [] and error is None and near[0] == "$.items"
    records, error, _ = find_records(trace.documents, "$.items[")
    assert error.startswith("JSONPath '$.items[': ends too early")
    assert sandbox.hits("/api/products") == hits


def test_the_last_calls_responses_are_not_kept(sandbox):
    """Memory stays flat: pages of the last call are yielded and dropped, never accumulated."""
    job = job_for([{"path": "/products", "behavior": {"type": "pagination", "page_size": 10}}])
    conn = conn_for(sandbox)
    with HttpClient(conn) as client:
        chain = Chain(job, conn, client)
        assert sum(len(b) for b in chain.batches()) == 95
    assert chain.previous_docs == []


def test_an_earlier_paginated_call_counts_its_pages_by_its_variable(sandbox):
    """Pages of ids, then a detail per id: the listing must not stop after its first page
    because the content finder (made for the details) matches nothing in it."""
    sandbox.settings(products=12)
    job = job_for(
        [
            {
                "path": "/products",
                "behavior": {"type": "pagination", "page_size": 5},
                "variables": [{"name": "productId", "path": "$.items[*].id"}],
            },
            {"path": "/products/{productId}"},
        ],
        finder="$.product",
    )
    records, _, messages = run_chain(job, conn_for(sandbox))
    assert len(records) == 12
    assert messages[0] == "Call 1: stopped after 3 page(s): a short page (2 of 5 records)"


def test_a_download_from_a_jsonpath_fetches_every_file_it_finds(sandbox):
    sandbox.settings(products=10)
    job = job_for(
        [
            {"path": "/file-index", "query": [{"name": "count", "value": "3"}]},
            {"behavior": {"type": "download", "url_source": "$.files[*].url", "format": "jsonl"}},
        ],
        finder="$",
        mapping=[
            {"extract": "id", "generate": "external_id"},
            {"extract": "title", "generate": "name"},
            {"extract": "category.code", "generate": "classification_category_id"},
        ],
    )
    records, exchanges, _messages = run_chain(job, conn_for(sandbox))
    assert len(records) == 30  # three files of ten
    assert [e.url.rsplit("/", 1)[1] for e in exchanges if e.note == "download"] == [
        "part-1.jsonl",
        "part-2.jsonl",
        "part-3.jsonl",
    ]
