"""Hostile input ends a run with a sentence, never the process: bombs, fan-outs of millions,
endless pages, polling past the deadline; and secrets that must not leak or travel: passwords
in URLs, basic credentials echoed back, tokens on redirects and links to other origins.

Against real servers on 127.0.0.1: the hostile API of tests/hostile.py (reachable as two
origins) and the demo sandbox."""

from __future__ import annotations

import json
import sys
import time

import pytest

from studio.config.jobs import ApiJob
from studio.config.kinds import CONNECTIONS
from studio.config.store import ConfigStore
from studio.engine import preview
from studio.errors import ConfigError
from studio.http import HttpClient, HttpError
from studio.vault import MASK
from tests.helpers import run_python
from tests.hostile import MB, json_array, zip_of

MAPPING = [{"extract": "$.id", "generate": "external_id"}]


def conn_to(server, **overrides):
    data = {"kind": "api", "name": "Hostile", "base_url": server.url}
    data.update(overrides)
    return CONNECTIONS.validate_config(data)


def job(calls, finder="$.items", **extra) -> ApiJob:
    return ApiJob(
        name="Hostile job",
        connection_id="c",
        entity="Suppliers",
        calls=calls,
        content_finder=finder,
        mapping=[*MAPPING, {"extract": '"x"', "generate": "name"}],
        **extra,
    )


def download(url: str, fmt: str) -> list[dict]:
    return [{"path": url, "behavior": {"type": "download", "format": fmt}}]


# --- 1. ZIP bombs ------------------------------------------------------------------------------


def test_a_zip_member_that_inflates_too_far_is_refused(hostile):
    bomb = hostile.put("/bomb.zip", zip_of("data.json", b" " * (20 * MB)))
    trace = preview(job(download(bomb, "zip")), conn_to(hostile))
    assert trace.error.startswith("Call 1: bomb.zip:data.json: the member would inflate ")
    assert trace.error.endswith("bytes to 20,971,520): refused as a ZIP bomb")
    big = hostile.put("/big.zip", zip_of("data.jsonl", json_array(60_000)[: 5 * MB]))
    small_cap = conn_to(hostile, max_download_mb=1)
    trace = preview(job(download(big, "zip")), small_cap)
    assert "more than the 1 MB allowed (max download size)" in trace.error


def test_a_large_json_member_is_streamed_with_flat_memory(hostile, home):
    """60 MB of JSON in a ZIP: parsed whole it would take ~350 MB; streamed along the content
    finder it stays far below. Measured in a child process, which holds only this run."""
    data = json_array(700_000)
    assert len(data) > 38 * MB
    url = hostile.put("/large.zip", zip_of("products.json", data))
    code = f"""
import json, sys
from studio.engine import Chain, Limits
from studio.http import HttpClient
from studio.config.jobs import ApiJob
from studio.config.kinds import CONNECTIONS
conn = CONNECTIONS.validate_config({{"kind": "api", "name": "h", "base_url": {hostile.url!r}}})
job = ApiJob(name="j", connection_id="c", entity="Suppliers", content_finder={{finder!r}},
    calls=[{{"path": {url!r}, "behavior": {{"type": "download", "format": "zip"}}}}],
    mapping=[{{"extract": "$.id", "generate": "external_id"}},
             {{"extract": '"x"', "generate": "name"}}])
count, error = 0, ""
try:
    with HttpClient(conn) as client:
        for batch in Chain(job, conn, client, Limits()).batches():
            count += len(batch)
except Exception as e:
    error = str(e)
# VmHWM, not ru_maxrss: Linux carries the forking parent's peak over into a child's ru_maxrss
status = open("/proc/self/status").read()
peak = int(status.split("VmHWM:")[1].split()[0]) // 1024
print(json.dumps({{"count": count, "error": error, "peak_mb": peak}}))
"""
    import subprocess

    results = {}
    for finder in ("$.items[*]", "$.items[?(@.n > 5)]"):
        proc = run_python(code.replace("{finder!r}", repr(finder)), home, stdout=subprocess.PIPE)
        out, _ = proc.communicate(timeout=120)
        results[finder] = json.loads(out)
    streamed = results["$.items[*]"]
    assert (streamed["count"], streamed["error"]) == (700_000, ""), streamed
    assert streamed["peak_mb"] < 200, streamed
    refused = results["$.items[?(@.n > 5)]"]
    assert (
        "more than the 16 MB read whole; a content finder that names the list" in (refused["error"])
    )


# --- 2. fan-out --------------------------------------------------------------------------------


def fan_job(**extra) -> ApiJob:
    return job(
        [
            {
                "path": "/values",
                "variables": [
                    {"name": "a", "path": "$.a[*]"},
                    {"name": "b", "path": "$.b[*]"},
                    {"name": "c", "path": "$.c[*]"},
                ],
            },
            {"path": "/item", "query": [{"name": "x", "value": "{a}-{b}-{c}"}]},
        ],
        **extra,
    )


def test_a_fan_out_of_billions_is_previewed_lazily_and_refused_in_a_run(hostile):
    trace = preview(fan_job(), conn_to(hostile), max_records=5)
    assert trace.error is None and len(trace.records) == 5
    assert "Call 2: fanning out over a, b, c: 15,625,000,000 requests" in trace.log
    assert trace.stopped == ["stopped after 5 records: preview limit"]
    from studio.engine import Chain, Limits

    conn = conn_to(hostile)
    with HttpClient(conn) as client, pytest.raises(Exception) as refused:
        list(Chain(fan_job(), conn, client, Limits()).batches())
    assert str(refused.value) == (
        "Call 2 would send 15,625,000,000 requests ({a} 2,500 × {b} 2,500 × {c} 2,500 values), "
        "more than the limit of 100,000 (max fan-out requests per call)"
    )
    assert len(hostile.captured["/item"]) == 5  # the preview's; the run sent none


def test_the_fan_out_limit_is_the_jobs_own(hostile):
    from studio.engine import Chain, Limits

    conn = conn_to(hostile)
    small = fan_job(max_fanout=1000)
    with HttpClient(conn) as client, pytest.raises(Exception, match=r"variable \{a\} took more"):
        list(Chain(small, conn, client, Limits()).batches())


# --- 3. downloads ------------------------------------------------------------------------------


def test_a_gzip_bomb_is_cut_at_the_download_limit(hostile, tmp_path):
    url = hostile.put_gzip_bomb("/bomb.csv", 50 * MB)
    assert len(hostile.files["/bomb.csv"][0]) < 100_000  # on the wire
    trace = preview(job(download(url, "csv")), conn_to(hostile, max_download_mb=5))
    assert trace.error == (
        "Call 1: the download is larger than 5,242,880 bytes once decompressed (max download size)"
    )


def test_a_line_without_end_is_refused_not_read_whole(hostile):
    url = hostile.put("/one-line.csv", b"id," + b"x" * (20 * MB))
    trace = preview(job(download(url, "csv")), conn_to(hostile))
    assert trace.error == (
        "Call 1: one-line.csv: a line is longer than 16 MB; is this really a CSV or JSON Lines "
        "file?"
    )
    url = hostile.put("/one-line.jsonl", b'{"id": "' + b"x" * (20 * MB))
    trace = preview(job(download(url, "jsonl")), conn_to(hostile))
    assert "a line is longer than 16 MB" in trace.error


# --- 4. polling and the run's deadline ---------------------------------------------------------


def test_polling_stops_at_the_run_timeout_not_after_the_interval(hostile, home):
    from studio.runs import run_job

    store = ConfigStore(home)
    store.create("connections", conn_to(hostile), source="cli")
    poll = {
        "path": "/poll",
        "behavior": {
            "type": "retry",
            "max_attempts": 5,
            "interval": 40,
            "condition_key": "$.status",
            "condition_value": "ready",
        },
    }
    saved = job([poll]).model_dump(exclude={"id"}) | {"connection_id": "Hostile"}
    store.create("jobs", saved, source="cli")
    started = time.monotonic()
    run = run_job(store, "Hostile job", timeout=1.5)
    assert (run.status, run.error) == (
        "failed",
        "stopped: the run took longer than its timeout of 1.5 s",
    )
    assert time.monotonic() - started < 20  # not the 40 s interval


# --- 5. a pagination that repeats its last page ------------------------------------------------


def test_a_page_repeating_the_previous_one_stops_the_pagination(hostile):
    paged = job(
        [
            {
                "path": "/clamped",
                "behavior": {"type": "pagination", "style": "page", "page_size": 10},
            }
        ]
    )
    trace = preview(paged, conn_to(hostile), max_pages=50, max_records=1000)
    assert len(trace.records) == 30 and trace.error is None
    assert (
        "Call 1: stopped after 3 page(s): page 4 holds the same records as page 3 (the API "
        "repeats its last page)" in trace.log
    )
    assert len(hostile.captured["/clamped"]) == 4


# --- 6-10. secrets -----------------------------------------------------------------------------


def test_a_password_in_the_base_url_is_refused(store):
    with pytest.raises(ConfigError) as refused:
        store.create(
            "connections",
            {"kind": "api", "name": "x", "base_url": "https://user:pa55@api.example.com/"},
            source="cli",
        )
    assert refused.value.messages == [
        "Base URL: must not hold a user name or password (user:password@host): it would be "
        "stored and shown in clear; use Basic authentication instead"
    ]


def test_basic_credentials_echoed_back_are_masked_in_every_form(hostile):
    conn = conn_to(hostile, auth={"type": "basic", "username": "importer", "password": "B4sic!pw"})
    trace = preview(job([{"path": "/echo"}]), conn)
    text = json.dumps(trace.as_dict())
    import base64

    assert base64.b64encode(b"importer:B4sic!pw").decode() not in text
    assert "B4sic!pw" not in text
    assert trace.exchanges[0]["request_headers"]["Authorization"] == MASK
    assert trace.documents[0]["headers"]["authorization"] == MASK


def test_the_token_endpoint_is_never_redirected(hostile):
    conn = conn_to(
        hostile,
        auth={
            "type": "oauth2",
            "token_url": f"{hostile.url}/token-redirect",
            "client_id": "cid",
            "client_secret": "very-secret-client",
            "username": "u",
            "password": "user-password-1",
        },
    )
    trace = preview(job([{"path": "/echo"}]), conn)
    assert trace.error == (
        f"the token endpoint {hostile.url}/token-redirect redirected to {hostile.other}/capture "
        "(307); credentials are never sent after a redirect: give the final token URL"
    )
    assert hostile.captured["/capture"] == []


def login_job(calls_after) -> ApiJob:
    login = {
        "method": "POST",
        "path": "/login",
        "variables": [{"name": "session", "path": "$.session"}],
    }
    return job([login, *calls_after])


def test_a_token_from_a_login_call_stays_on_its_origin_and_is_masked(hostile):
    paged = {
        "path": "/paged",
        "headers": [{"name": "X-Session", "value": "{session}"}],
        "query": [{"name": "sid", "value": "{session}"}],
        "behavior": {
            "type": "pagination",
            "style": "next_link",
            "next_link_path": "$.next",
            "page_size": 1,
        },
    }
    trace = preview(login_job([paged]), conn_to(hostile))
    assert trace.error is None and [r["id"] for r in trace.records] == ["a", "b"]
    first, second = hostile.captured["/paged"]
    assert first["headers"]["x-session"] == "sess-8f2c1a9e-77"
    assert second["host"].startswith("localhost") and "x-session" not in second["headers"]
    assert "sid" not in second["query"]
    text = json.dumps(trace.as_dict())
    assert "sess-8f2c1a9e-77" not in text


def test_a_download_url_on_another_origin_gets_no_call_headers(hostile):
    hostile.put("/files/data.jsonl", b'{"id": "f1"}\n')
    calls = [
        {"path": "/file-elsewhere"},
        {
            "path": "/unused",
            "headers": [{"name": "X-Session", "value": "{session}"}],
            "behavior": {"type": "download", "url_source": "$.url", "format": "jsonl"},
        },
    ]
    trace = preview(login_job(calls), conn_to(hostile), max_records=10)
    assert trace.error is None and [r["id"] for r in trace.records] == ["f1"]
    [fetched] = hostile.captured["/files/data.jsonl"]
    assert fetched["host"].startswith("localhost") and "x-session" not in fetched["headers"]


def test_a_variable_can_be_marked_secret_and_token_names_are_by_default():
    from studio.config.jobs import Variable

    assert Variable(name="session", path="$.x").secret
    assert Variable(name="x", path="$.data.access_token").secret
    assert not Variable(name="productKey", path="$.items[*].key").secret
    assert not Variable(name="authToken", path="$.t", secret=False).secret


def test_masking_is_by_exact_value_and_data_is_not_masked(hostile):
    conn = conn_to(
        hostile,
        auth={"type": "api_key", "name": "k", "value": "ab", "placement": "query"},
    )
    hostile.put("/data.jsonl", b'{"id": "ab", "name": "a lab"}\n{"id": "cab"}\n')
    trace = preview(job(download(f"{hostile.url}/data.jsonl", "jsonl"), finder="$"), conn)
    assert trace.error is None
    assert trace.exchanges[0]["url"].endswith("k=" + MASK)
    assert [r["id"] for r in trace.records] == ["ab", "cab"]  # data, never masked


# --- 12. line breaks in headers ----------------------------------------------------------------


def test_a_line_break_in_a_header_is_refused_at_save_and_at_run(store, hostile):
    with pytest.raises(ConfigError, match="Header value: must not contain line breaks"):
        store.create(
            "connections",
            {
                "kind": "api",
                "name": "x",
                "base_url": "https://api.example.com",
                "headers": [{"name": "X-A", "value": "a\r\nX-Injected: 1"}],
            },
            source="cli",
        )
    with pytest.raises(ValueError, match="header 'X-B' must not contain line breaks"):
        job([{"path": "/echo", "headers": [{"name": "X-B", "value": "a\nb"}]}])
    conn = conn_to(hostile)
    with HttpClient(conn) as client, pytest.raises(HttpError, match="cannot be sent"):
        client.request("Call 1", "GET", client.url("/echo"), headers={"X-C": "a\r\nb"})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
