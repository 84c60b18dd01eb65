"""The Connections page, driven through Streamlit's AppTest as an analyst would click it."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from studio.config.store import ConfigStore
from tests.helpers import ROOT, api_connection


@pytest.fixture
def page(home) -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
    at.run()
    at.switch_page("views/connections.py").run()
    assert not at.exception
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_create_an_api_connection_and_see_it_listed(page, home):
    page.text_input(key="conn.new.name").input("Shop API")
    page.text_input(key="conn.new.base_url").input("https://api.example.com/v1")
    page.selectbox(key="conn.new.auth_type").select("oauth2").run()
    page.text_input(key="conn.new.token_url").input("https://api.example.com/oauth/token")
    page.text_input(key="conn.new.client_id").input("studio")
    page.text_input(key="conn.new.client_secret").input("s3cret-value")
    page.button(key="conn_save").click().run()
    assert errors(page) == [] and not page.exception
    assert page.success[0].value == "Saved connection 'Shop API'."
    table = page.dataframe[0].value
    assert table["Name"].tolist() == ["Shop API"]
    assert table["Auth"].tolist() == ["OAuth 2.0"]
    assert page.selectbox(key="conn_pick").value == "Shop API"
    stored = ConfigStore(home).get("connections", "Shop API", reveal=True)
    assert stored.auth.client_secret == "s3cret-value"
    # The secret is never sent back to the browser, only the mask.
    cid = stored.id
    assert page.text_input(key=f"conn.{cid}.client_secret").value == "••••••"
    # The tables show blanks, never "None": for a missing value, and in the audit trail of a
    # created connection (no old values).
    assert all(
        d.proto.HasField("placeholder") and d.proto.placeholder == "" for d in page.dataframe
    )
    created = page.dataframe[-1].value["Changes"][0]
    assert "name: 'Shop API'" in created and "None" not in created


def test_an_invalid_url_shows_the_message_and_saves_nothing(page, home):
    page.text_input(key="conn.new.name").input("Broken")
    page.text_input(key="conn.new.base_url").input("api.example.com")
    page.button(key="conn_save").click().run()
    assert errors(page) == ["Base URL: must start with http:// or https://"]
    assert ConfigStore(home).list("connections") == []
    assert page.text_input(key="conn.new.name").value == "Broken"  # the form keeps what was typed


def test_file_server_form_shows_only_its_protocol_fields(page, home):
    page.radio(key="conn.new.kind").set_value("file_server").run()
    labels = [t.label for t in page.text_input]
    assert "Base URL" not in labels and "Host" in labels
    assert [t.label for t in page.text_area] == ["Private key (SFTP, PEM)"]
    page.selectbox(key="conn.new.protocol").select("ftp").run()
    assert [t.label for t in page.text_area] == []
    assert [c.label for c in page.checkbox] == ["Passive mode"]
    page.text_input(key="conn.new.name").input("Supplier FTP")
    page.text_input(key="conn.new.host").input("ftp.example.com")
    page.text_input(key="conn.new.username").input("importer")
    page.text_input(key="conn.new.password").input("pw")
    page.button(key="conn_save").click().run()
    assert errors(page) == []
    conn = ConfigStore(home).get("connections", "Supplier FTP")
    assert (conn.protocol, conn.port, conn.passive) == ("ftp", 21, True)


def test_ftps_form_takes_the_mode_a_ca_and_a_fingerprint(page, home):
    page.radio(key="conn.new.kind").set_value("file_server").run()
    page.selectbox(key="conn.new.protocol").select("ftps").run()
    page.text_input(key="conn.new.name").input("Partner FTPS")
    page.text_input(key="conn.new.host").input("ftps.example.com")
    page.text_input(key="conn.new.username").input("importer")
    page.text_input(key="conn.new.password").input("pw")
    page.radio(key="conn.new.ftps_mode").set_value("implicit")
    page.text_input(key="conn.new.tls_fingerprint").input("ab" * 32)
    page.text_area(key="conn.new.ca_certificate").input("not a certificate")
    page.button(key="conn_save").click().run()
    assert errors(page) == [
        "CA certificate (FTPS): is not a PEM certificate (the text from -----BEGIN "
        "CERTIFICATE----- to -----END CERTIFICATE-----)"
    ]
    page.text_area(key="conn.new.ca_certificate").input("")
    page.button(key="conn_save").click().run()
    assert errors(page) == []
    conn = ConfigStore(home).get("connections", "Partner FTPS")
    assert (conn.ftps_mode, conn.port, conn.tls_fingerprint) == (
        "implicit",
        990,
        ":".join(["AB"] * 32),
    )


def test_edit_with_the_masked_secret_untouched_keeps_the_secret(home):
    store = ConfigStore(home)
    conn = store.create("connections", api_connection(), source="cli")
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30).run()
    at.switch_page("views/connections.py").run()
    at.selectbox(key="conn_pick").select("Shop API").run()
    assert at.text_input(key=f"conn.{conn.id}.client_secret").value == "••••••"
    at.text_input(key=f"conn.{conn.id}.scope").input("catalog:read")
    at.button(key="conn_save").click().run()
    assert errors(at) == []
    saved = store.get("connections", conn.id, reveal=True)
    assert saved.auth.scope == "catalog:read"
    assert saved.auth.client_secret == "client-secret-value-42"
    assert saved.headers[0].value == "header-secret-value-7"
    trail = store.audit("connections", conn.id)
    assert trail[0]["source"] == "studio"
    assert trail[0]["changes"] == [{"field": "auth.scope", "old": "", "new": "catalog:read"}]
    # A new address with the secrets still masked: refused, they are not sent there untyped.
    at.text_input(key=f"conn.{conn.id}.token_url").input("https://elsewhere.example/token")
    at.button(key="conn_save").click().run()
    assert errors(at) == [
        "Access token URL: changed, so the stored secrets are not sent to the new address: enter "
        "them again"
    ]
    assert store.get("connections", conn.id).auth.token_url == "https://api.example.com/oauth/token"
    assert "client-secret-value-42" not in str(at.dataframe[0].value.to_dict())


def test_disable_activate_and_delete_behind_a_confirmation(home):
    store = ConfigStore(home)
    conn = store.create("connections", api_connection(), source="cli")
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30).run()
    at.switch_page("views/connections.py").run()
    at.selectbox(key="conn_pick").select("Shop API").run()
    at.button(key="conn_disable").click().run()
    assert store.get("connections", conn.id).status == "disabled"
    at.button(key="conn_activate").click().run()
    assert store.get("connections", conn.id).status == "active"
    # Delete, then cancel: nothing happens.
    at.button(key="conn_delete").click().run()
    assert any("This cannot be undone" in m.value for m in at.markdown)
    at.button(key="conn_delete_no").click().run()
    assert [c.name for c in store.list("connections")] == ["Shop API"]
    # Delete, then confirm: gone, and the audit trail says who did it.
    at.button(key="conn_delete").click().run()
    at.button(key="conn_delete_yes").click().run()
    assert store.list("connections") == []
    assert at.success[0].value == "Deleted connection 'Shop API'."
    assert at.selectbox(key="conn_pick").value == "+ New connection"
    assert store.audit("connections", "Shop API")[0]["source"] == "studio"


def test_overview_counts_connections(home):
    ConfigStore(home).create("connections", api_connection(), source="cli")
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30).run()
    assert not at.exception
    assert [m.label for m in at.metric] == [
        "Connections",
        "Active jobs",
        "Runs (24 h)",
        "Failed runs (24 h)",
    ]
    assert [m.value for m in at.metric] == ["1", "0", "0", "0"]


def test_a_saved_connection_can_be_tested_from_its_page(home, sandbox):
    from tests.helpers import conn_for

    store = ConfigStore(home)
    good = conn_for(sandbox).model_dump(exclude={"id", "created_at", "updated_at"})
    store.create("connections", good, source="cli")
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30).run()
    at.switch_page("views/connections.py").run()
    at.selectbox(key="conn_pick").select("Sandbox").run()
    at.button(key="conn_test").click().run()
    assert [s.value for s in at.success] == [
        f"Sandbox: connected and the token endpoint issued a token; {sandbox.url}/api is reachable"
    ]
    store.modify(
        "connections",
        "Sandbox",
        lambda c: c.model_copy(update={"auth": c.auth.model_copy(update={"client_secret": "x"})}),
        source="cli",
    )
    at.button(key="conn_test").click().run()
    assert at.error[0].value.startswith("Sandbox: the token endpoint")


def test_the_worker_queue_is_saved_shown_and_checked(page, home):
    """The Worker queue is in both kinds' forms (its help says it only counts with workers), a
    bad name is refused with the sentence saying why, and the list shows the queues once one
    connection routes."""
    page.radio(key="conn.new.kind").set_value("file_server").run()
    queue = page.text_input(key="conn.new.run_queue")
    assert queue.label == "Worker queue" and "STUDIO_BROKER_URL" in queue.help
    page.text_input(key="conn.new.name").input("Partner FTP")
    page.text_input(key="conn.new.host").input("ftp.partner.example")
    page.text_input(key="conn.new.username").input("importer")
    page.text_input(key="conn.new.run_queue").input("onprem:3")
    page.button(key="conn_save").click().run()
    [error] = errors(page)
    assert error.startswith("Worker queue: 'onprem:3' holds ':'")
    assert ConfigStore(home).list("connections") == []
    page.text_input(key="conn.new.run_queue").input("onprem")
    page.button(key="conn_save").click().run()
    assert errors(page) == [] and not page.exception
    assert ConfigStore(home).get("connections", "Partner FTP").run_queue == "onprem"
    assert page.dataframe[0].value["Worker queue"].tolist() == ["onprem"]
