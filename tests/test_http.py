"""Authentication and "test connection" against the sandbox: tokens cached, refreshed and
fetched again on 401; every auth kind; secrets masked in every trace."""

from __future__ import annotations

import json
import time

import pytest

from studio.connectivity import check_connection
from studio.engine import preview
from studio.http import HttpClient
from tests.helpers import conn_for, supplier_job

TOKEN = "/oauth/token"


def oauth(sandbox, **extra):
    return {
        "type": "oauth2",
        "token_url": f"{sandbox.url}{TOKEN}",
        "client_id": "demo-client",
        "client_secret": "demo-secret",
        **extra,
    }


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
    from studio.http import TOKENS

    TOKENS._tokens.clear()
    suppliers(conn)
    assert sandbox.hits(TOKEN) == 2
    time.sleep(1.1)
    suppliers(conn)
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


def test_a_wrong_client_secret_names_the_token_endpoint_and_its_answer(sandbox):
    check = check_connection(conn_for(sandbox, auth=oauth(sandbox, client_secret="nope")))
    assert not check.ok
    assert check.message == (
        f"Sandbox: the token endpoint {sandbox.url}{TOKEN} answered 401 Unauthorized: "
        '{"error": "invalid_client", "error_description": "Bad client credentials"}'
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


def test_wrong_credentials_are_reported_by_test_connection(sandbox):
    check = check_connection(conn_for(sandbox, auth={"type": "bearer", "token": "wrong"}))
    assert not check.ok
    assert check.message == (
        'Sandbox: the API refused the credentials (401 Unauthorized: {"error": "unauthorized"})'
    )


def test_test_connection_success_and_failures(sandbox):
    check = check_connection(conn_for(sandbox))
    assert check.ok
    assert check.message == (
        f"Sandbox: connected and the token endpoint issued a token; {sandbox.url}/api is reachable"
    )
    assert [e["label"] for e in check.exchanges] == ["token", "Test"]
    check = check_connection(conn_for(sandbox, base_url=f"{sandbox.url}/api/v9"))
    assert check.ok and check.message.endswith("(the base URL itself answers 404 Not Found)")
    down = check_connection(conn_for(sandbox, base_url="http://127.0.0.1:9", auth={"type": "none"}))
    assert down.message == (
        "Sandbox: 127.0.0.1:9 refused the connection (is the server running and the port "
        "right?); 2 attempts over 0 s"
    )
    slow = check_connection(
        conn_for(
            sandbox,
            base_url=f"{sandbox.url}/api/suppliers?slow=2",
            timeout=0.3,
            auth={"type": "none"},
        )
    )
    assert "did not answer within 0.3 s (timeout); 2 attempts over" in slow.message


def test_tls_failure_is_named(sandbox):
    conn = conn_for(
        sandbox, base_url=f"https://127.0.0.1:{sandbox.port}/api", auth={"type": "none"}
    )
    check = check_connection(conn)
    assert check.message.startswith(
        f"Sandbox: the TLS handshake with 127.0.0.1:{sandbox.port} failed"
    )


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


def test_a_test_path_proves_basic_credentials(sandbox):
    wrong = {"type": "basic", "username": "demo", "password": "wrong"}
    # The server's root answers anyone: without a test path the test cannot tell.
    open_root = check_connection(conn_for(sandbox, base_url=sandbox.url, auth=wrong))
    assert open_root.ok and open_root.message.endswith("; set a test path to prove the credentials")
    proven = conn_for(sandbox, base_url=sandbox.url, auth=wrong, test_path="/api/suppliers")
    refused = check_connection(proven)
    assert not refused.ok
    assert refused.message.startswith("Sandbox: the API refused the credentials (401 Unauthorized")
    right = {"type": "basic", "username": "demo", "password": "demo"}
    ok = check_connection(
        conn_for(sandbox, base_url=sandbox.url, auth=right, test_path="/api/suppliers")
    )
    assert ok.ok and ok.message == (
        "Sandbox: connected; /api/suppliers accepted the credentials (200)"
    )
    missing = conn_for(sandbox, base_url=sandbox.url, auth=right, test_path="/api/nope")
    assert check_connection(missing).message == (
        'Sandbox: /api/nope answered 404 Not Found: {"detail":"Not Found"}'
    )
