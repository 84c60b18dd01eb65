"""One HTTP session per run, against the sandbox and a server that drops the connection:
tokens cached, refreshed and fetched again on 401; every auth kind; secrets masked in every
trace and kept on their origin; transport retries (503, 429 and Retry-After, timeouts, a
dropped connection), size limits and bad answers. No mocked HTTP."""

from __future__ import annotations

import json
import re
import time
from email.utils import formatdate

import pytest

from studio.engine import preview
from studio.http import HttpClient, TokenCache
from tests.helpers import conn_for, ids, job_for, oauth, run_chain, supplier_job

TOKEN = "/oauth/token"


def suppliers(conn) -> list[dict]:
    trace = preview(supplier_job(), conn)
    assert trace.error is None, trace.error
    return trace.exchanges


def test_token_is_cached_across_runs_until_it_expires(sandbox):
    conn = conn_for(sandbox)
    suppliers(conn)
    suppliers(conn)
    assert sandbox.hits(TOKEN) == 1
    sandbox.settings(token_ttl=31)  # cached for expires_in - 30 s = 1 s
    now = [1_000_000.0]
    cache = TokenCache(clock=lambda: now[0])  # moved by the test instead of waiting

    def run() -> None:
        with HttpClient(conn, tokens=cache) as client:
            client.request("t", "GET", client.url("/suppliers"))

    run()
    assert sandbox.hits(TOKEN) == 2
    now[0] += 0.9
    run()
    assert sandbox.hits(TOKEN) == 2  # still valid
    now[0] += 0.2
    run()
    assert sandbox.hits(TOKEN) == 3


def test_a_401_fetches_a_new_token_once(sandbox):
    conn = conn_for(sandbox)
    suppliers(conn)
    sandbox.settings(revoke_tokens=True)
    exchanges = suppliers(conn)
    assert [(e["label"], e["status"]) for e in exchanges] == [
        ("Call 1", 401),
        ("token", 200),
        ("Call 1", 200),
    ]
    assert sandbox.hits(TOKEN) == 2


def test_password_grant_and_client_basic_auth(sandbox):
    conn = conn_for(
        sandbox, auth=oauth(sandbox, username="demo", password="demo", client_auth="basic")
    )
    exchanges = suppliers(conn)
    token = exchanges[0]
    # The demo user is "demo" with the password "demo": both read as the mask.
    assert token["request_body"] == "grant_type=password&username=••••••&password=••••••"
    assert token["request_headers"]["Authorization"] == "••••••"
    bad = conn_for(sandbox, auth=oauth(sandbox, username="demo", password="wrong"))
    trace = preview(supplier_job(), bad)
    assert trace.error == (
        f"the token endpoint {sandbox.url}{TOKEN} answered 400 Bad Request: "
        '{"error": "invalid_grant", "error_description": "Bad user password"}'
    )


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "basic", "username": "demo", "password": "demo"},
        {"type": "bearer", "token": "demo-token"},
        {"type": "api_key", "name": "X-API-Key", "value": "demo-key"},
        {"type": "api_key", "name": "api_key", "value": "demo-key", "placement": "query"},
    ],
)
def test_basic_bearer_and_api_keys_work_and_are_masked(sandbox, auth):
    conn = conn_for(
        sandbox,
        auth=auth,
        headers=[
            {"name": "X-Tenant", "value": "acme"},
            {"name": "X-Secret-Header", "value": "hush-hush"},
        ],
    )
    exchanges = suppliers(conn)
    text = json.dumps(exchanges)
    for secret in ("demo-token", "demo-key", "hush-hush", "ZGVtbzpkZW1v"):  # base64 of demo:demo
        assert secret not in text
    sent = exchanges[-1]["request_headers"]
    assert sent["X-Tenant"] == "acme" and sent["X-Secret-Header"] == "••••••"
    if auth.get("placement") == "query":
        assert exchanges[-1]["url"].endswith("/api/suppliers?api_key=••••••")


def test_one_session_per_client(sandbox):
    conn = conn_for(sandbox)
    with HttpClient(conn) as client:
        first = client.session
        client.request("a", "GET", client.url("/suppliers"))
        client.request("b", "GET", client.url("/suppliers"))
        assert client.session is first


def test_encoded_secrets_and_failure_messages_are_masked(sandbox):
    key = "k+y/with=sym&bols"
    conn = conn_for(
        sandbox,
        auth={"type": "api_key", "name": "api_key", "value": key, "placement": "query"},
        base_url="http://127.0.0.1:9/api",
    )
    trace = preview(supplier_job(), conn)
    text = json.dumps(trace.as_dict())
    assert key not in text and "k%2By%2Fwith%3Dsym%26bols" not in text
    assert "api_key=••••••" in trace.exchanges[0]["url"]
    assert "refused the connection" in trace.error


def test_credentials_never_follow_a_redirect_or_a_link_to_another_origin(sandbox):
    headers = [{"name": "X-Secret-Header", "value": "hush-hush"}]
    conn = conn_for(
        sandbox, headers=headers, auth={"type": "api_key", "name": "X-API-Key", "value": "demo-key"}
    )
    other = f"http://localhost:{sandbox.port}/public/echo"
    with HttpClient(conn) as client:
        # A redirect from the connection's host to another one: no credential follows it.
        redirected = client.request("r", "GET", client.url("/redirect"), params={"to": other})
        seen = redirected.json("r")["headers"]
        assert "x-api-key" not in seen and "x-secret-header" not in seen
        assert "authorization" not in seen
        # A URL on another origin (a next link, a whole-URL variable) gets none either.
        direct = client.request("d", "GET", other).json("d")["headers"]
        assert "x-api-key" not in direct and "x-secret-header" not in direct
        # The connection's own origin gets them.
        own = client.request("o", "GET", client.url("/echo")).json("o")["headers"]
        assert own["x-api-key"] == "demo-key" and own["x-secret-header"] == "hush-hush"


# --- transport ---------------------------------------------------------------------------------


def test_503_and_429_with_retry_after_are_retried(sandbox):
    sandbox.fault("/api/suppliers", 503, times=2)
    records, exchanges, _ = run_chain(supplier_job(), conn_for(sandbox))
    assert len(records) == 4
    assert exchanges[-1].retries == ["503", "503"] and exchanges[-1].attempts == 3
    sandbox.fault("/api/suppliers", 429, times=1, retry_after="1")
    started = time.monotonic()
    records, exchanges, _ = run_chain(supplier_job(), conn_for(sandbox))
    assert len(records) == 4 and exchanges[-1].retries == ["429"]
    assert time.monotonic() - started >= 0.9  # honoured Retry-After: 1
    sandbox.fault(
        "/api/suppliers", 503, times=1, retry_after=formatdate(time.time() + 1, usegmt=True)
    )
    records, exchanges, _ = run_chain(supplier_job(), conn_for(sandbox))
    assert len(records) == 4 and exchanges[-1].retries == ["503"]


def test_retries_give_up_with_status_and_body(sandbox):
    sandbox.fault("/api/suppliers", 503, times=10, body="maintenance until noon")
    trace = preview(supplier_job(), conn_for(sandbox))
    assert trace.error.startswith("Call 1: GET http://127.0.0.1:")
    assert trace.error.endswith(
        "/api/suppliers answered 503 Service Unavailable (after 3 attempts): maintenance until noon"
    )


def test_other_4xx_fail_at_once(sandbox):
    job = job_for([{"path": "/products/P99999"}], finder="$")
    trace = preview(job, conn_for(sandbox))
    assert trace.error.endswith('answered 404 Not Found: {"error": "no product P99999"}')
    assert sandbox.hits("/api/products/P99999") == 1


def test_malformed_json_names_call_offset_and_snippet(sandbox):
    job = job_for([{"path": "/products", "query": [{"name": "malformed", "value": "1"}]}])
    trace = preview(job, conn_for(sandbox))
    assert trace.error.startswith(
        "Call 1: the response is not valid JSON at offset 37 (Unterminated string"
    )
    assert "Unterminated" in trace.error.split("):", 1)[1]


def test_timeouts_are_retried_then_reported(sandbox):
    job = supplier_job(query=[{"name": "slow", "value": "1.5"}])
    trace = preview(job, conn_for(sandbox, timeout=0.3))
    assert re.search(
        r"did not answer within 0\.3 s \(timeout\); 3 attempts over \d+ s$", trace.error
    )
    exchange = trace.exchanges[-1]
    assert exchange["attempts"] == 3 and len(exchange["retries"]) == 2


def test_max_response_size_fails_clearly(sandbox):
    sandbox.settings(products=2000)
    job = job_for([{"path": "/products", "query": [{"name": "size", "value": "1000"}]}])
    trace = preview(job, conn_for(sandbox, max_response_mb=0.1))
    assert (
        "more than the maximum of 104,857" in trace.error
        or "larger than the maximum of 104,857 bytes" in trace.error
    )


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("http://127.0.0.1:9/api", "127.0.0.1:9 refused the connection"),
        ("http://nonexistent-host.invalid/api", "cannot be resolved (DNS)"),
    ],
)
def test_unreachable_servers(sandbox, base_url, message):
    trace = preview(supplier_job(), conn_for(sandbox, base_url=base_url, auth={"type": "none"}))
    assert message in trace.error


def test_a_dropped_connection_is_retried(sandbox):
    """A real server on loopback that hangs up on the first request, then answers."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    body = b'{"items": [{"id": "P1", "title": "t", "category": {"code": "c"}}]}'

    def serve():
        for attempt in range(2):
            client, _ = listener.accept()
            client.recv(65536)
            if attempt == 0:
                client.close()  # dropped before any answer
                continue
            client.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                b"Connection: close\r\n\r\n" + body
            )
            client.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    conn = conn_for(sandbox, base_url=f"http://127.0.0.1:{port}", auth={"type": "none"})
    records, exchanges, _ = run_chain(job_for([{"path": "/products"}]), conn)
    thread.join(timeout=5)
    listener.close()
    assert ids(records) == ["P1"]
    assert len(exchanges[-1].retries) == 1  # one retry after the drop, then the answer
