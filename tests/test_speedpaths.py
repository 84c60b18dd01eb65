"""The fast paths of issue 17's single node give what the paths they shortcut give."""

from __future__ import annotations

import json

import pytest

from studio.mapping import FieldMap, Mapper
from studio.readers import parse_json

TEXTS = [
    b'{"items": [{"id": 1, "price": 12.5, "name": "caf\\u00e9"}], "total_pages": 3}',
    b'{"a": NaN, "b": Infinity, "c": -Infinity}',
    b"[123456789012345678901234567890, -9223372036854775809, 18446744073709551616]",
    b'{"id": "1234567890123456789012", "n": 1e400}',
    b'"\\ud800"',
    b"\xef\xbb\xbf[1, 2]",
    '["é"]'.encode("utf-16"),
    b'{"a": 1, "a": 2}',
    "[1, 2]",
]
BAD = [b"[1,]", b"", b"  ", b'{"a": 1', b"\xff\xfe\xfd", b"[" * 5000 + b"]" * 5000]


@pytest.mark.parametrize("text", TEXTS)
def test_parse_json_reads_as_json_does(text):
    got, want = parse_json(text), json.loads(text)
    assert json.dumps(got) == json.dumps(want)
    assert [type(v) for v in got] == [type(v) for v in want] if isinstance(want, list) else True


@pytest.mark.parametrize("text", BAD)
def test_parse_json_fails_as_json_does(text):
    with pytest.raises(Exception) as ours:
        parse_json(text)
    with pytest.raises(Exception) as theirs:
        json.loads(text)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


DATES = [
    "2026-05-17T08:00:00Z",
    "2026-05-17T24:00:00Z",
    "2026-02-30T08:00:00Z",
    "2026-05-17T08:00:60Z",
    "2026-05-17T08:00:00+00:00",
    " 2026-05-17T08:00:00Z",
    "2026-05-17 08:00:00Z",
    "2026-05-17T08:00:00.5Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "xxxxxxxxxxxxxxxxxxxx",
    "2026-05-17T08:00:00z",
    "٢٠٢٦-05-17T08:00:00Z",
    None,
    "",
    5,
]


@pytest.mark.parametrize("zone", ["", "Europe/Paris"])
def test_datetime_shortcut_gives_what_the_converter_gives(zone):
    mapper = Mapper([FieldMap(extract="$.d", generate="d", type="datetime", timezone=zone)])
    records = [{"d": v} for v in DATES]
    fast = mapper.map(records)
    rejects: list = []
    careful = [mapper._careful(i, r, rejects) for i, r in enumerate(records)]
    assert fast.rows == [row for row in careful if row is not None]
    assert [r.as_dict() for r in fast.rejects] == [r.as_dict() for r in rejects]
    assert fast.rows[0] == {"d": "2026-05-17T08:00:00+00:00"}


def _products(home):
    from studio.entities import load_entities

    return load_entities(home)["Products"]


def test_staged_rows_keep_their_order_across_statements(tmp_path):
    from studio.rowstore import EntityWriter, read_rows

    writer = EntityWriter(tmp_path, _products(tmp_path), "run-1", ["external_id", "name"])
    writer.write([{"external_id": f"K{i % 7}", "name": f"n{i}"} for i in range(250)])
    writer.write([{"external_id": "K1", "name": "last"}])
    writer.commit()
    writer.close()
    rows, total = read_rows(tmp_path, "Products", limit=10)
    assert total == 7
    names = {r["external_id"]: r["name"] for r in rows}
    assert names == {f"K{k}": f"n{max(i for i in range(250) if i % 7 == k)}" for k in range(7)} | {
        "K1": "last"
    }


@pytest.mark.parametrize(
    "bad",
    [{"name": {"a": 1}}, {"name": 2**70}, {"name": "\ud800"}, {}],
    ids=["dict", "big int", "surrogate", "short row"],
)
def test_a_value_sqlite_refuses_fails_as_it_did(tmp_path, bad):
    import sqlite3

    from studio.rowstore import EntityWriter

    writer = EntityWriter(tmp_path, _products(tmp_path), "run-1", ["external_id", "name"])
    rows = [{"external_id": f"K{i}", "name": "fine"} for i in range(150)]
    rows[120] = {"external_id": "bad"} | bad
    with pytest.raises(Exception) as ours:
        writer.write(rows)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (a, b, c, d)")
    with pytest.raises(Exception) as plain:
        db.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(*r.values(), "r", "t") for r in rows])
    assert (type(ours.value), str(ours.value)) == (type(plain.value), str(plain.value))
    writer.rollback()
    writer.close()


def test_a_large_parse_leaves_the_garbage_collector_as_it_found_it():
    import gc

    from studio.readers import gc_paused

    big = json.dumps({"items": [{"id": i, "tags": ["a"]} for i in range(10_000)]}).encode()
    assert gc.isenabled()
    assert len(parse_json(big)["items"]) == 10_000
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        parse_json(big)
        assert not gc.isenabled()  # off by someone else: left off
    finally:
        gc.enable()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError
    assert gc.isenabled()


def _recording_server():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", seen


def test_the_proxies_of_the_environment_are_still_used_per_origin(monkeypatch):
    """Proxies are resolved once per origin and run, as requests resolves them per request:
    HTTP_PROXY is used, and NO_PROXY keeps a host out of it."""
    from studio.config.kinds import CONNECTIONS
    from studio.http import HttpClient

    proxy, proxy_url, via_proxy = _recording_server()
    api, api_url, direct = _recording_server()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        conn = CONNECTIONS.validate_config({"kind": "api", "name": "p", "base_url": api_url})
        with HttpClient(conn, retries=0) as client:
            for _ in range(2):
                assert client.request("t", "GET", client.url("/items")).json("t") == {"ok": True}
        assert via_proxy == [f"{api_url}/items"] * 2 and direct == []
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with HttpClient(conn, retries=0) as client:
            client.request("t", "GET", client.url("/items"))
        assert direct == ["/items"] and len(via_proxy) == 2
    finally:
        proxy.shutdown()
        api.shutdown()
