""" "Test connection" for every kind of connection, against the sandbox and the file servers:
what an analyst reads when it works, when the credentials are wrong, and when the server is
down, slow or speaks TLS otherwise."""

from __future__ import annotations

from studio.connectivity import check_connection
from tests.helpers import conn_for, oauth

TOKEN = "/oauth/token"


def test_a_wrong_client_secret_names_the_token_endpoint_and_its_answer(sandbox):
    check = check_connection(conn_for(sandbox, auth=oauth(sandbox, client_secret="nope")))
    assert not check.ok
    assert check.message == (
        f"Sandbox: the token endpoint {sandbox.url}{TOKEN} answered 401 Unauthorized: "
        '{"error": "invalid_client", "error_description": "Bad client credentials"}'
    )


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


def test_test_connection_for_file_servers(server, home):
    conn, local = server
    (local / "in").mkdir()
    (local / "a.csv").write_text("x\n")
    check = check_connection(conn, home)
    assert check.ok, check.message
    assert check.message.endswith("the root folder holds 1 folder and 1 file")
    bad = check_connection(conn.model_copy(update={"password": "nope", "private_key": ""}), home)
    assert not bad.ok and bad.message.startswith(f"{conn.name}: Login to 127.0.0.1:")
