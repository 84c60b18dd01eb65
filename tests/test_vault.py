"""Secrets at rest and on show: encrypted in the file, masked in every view, kept on save."""

from __future__ import annotations

import json
import os
import stat

import pytest
from cryptography.fernet import Fernet

from studio.config.kinds import CONNECTIONS
from studio.config.store import ConfigStore
from studio.errors import StudioError
from studio.vault import MASK, Vault, keep_masked, load_key, masked, secret_slots
from tests.helpers import api_connection, sftp_connection

SECRETS = [
    "client-secret-value-42",
    "header-secret-value-7",
    "sftp-password-value-9",
    "bearer-tok-3",
]


def test_the_raw_file_holds_no_secret(store):
    store.create("connections", api_connection(), source="cli")
    store.create("connections", sftp_connection(private_key="-----BEGIN KEY-----abc"), source="cli")
    store.create(
        "connections",
        api_connection("B", auth={"type": "bearer", "token": "bearer-tok-3"}),
        source="cli",
    )
    raw = store.path.read_text("utf-8")
    json.loads(raw)
    for secret in [*SECRETS, "-----BEGIN KEY-----abc"]:
        assert secret not in raw
    assert raw.count("enc:v1:") == 6  # 2 per API connection, password and key of the SFTP one
    assert store.get("connections", "B", reveal=True).auth.token == "bearer-tok-3"


def test_key_file_is_made_once_with_mode_0600(home):
    key = load_key(home)
    mode = stat.S_IMODE(os.stat(home / "secret.key").st_mode)
    assert mode == 0o600
    assert load_key(home) == key


def test_key_from_environment_fernet_key_or_passphrase(home, monkeypatch):
    monkeypatch.setenv("STUDIO_SECRET_KEY", "correct horse battery staple")
    store = ConfigStore(home)
    store.create("connections", sftp_connection(), source="cli")
    assert not (home / "secret.key").exists()
    assert (
        store.get("connections", "Supplier SFTP", reveal=True).password == "sftp-password-value-9"
    )
    monkeypatch.setenv("STUDIO_SECRET_KEY", "another passphrase")
    with pytest.raises(StudioError, match="cannot be decrypted: STUDIO_SECRET_KEY"):
        ConfigStore(home).get("connections", "Supplier SFTP", reveal=True)


def test_masked_copies_leave_the_original_and_empty_secrets_alone():
    conn = CONNECTIONS.validate_config(sftp_connection(password=""))
    assert not any(getattr(o, f) for _p, o, f in secret_slots(conn))
    conn = CONNECTIONS.validate_config(api_connection())
    shown = masked(conn)
    assert shown.auth.client_secret == MASK and shown.headers[0].value == MASK
    assert conn.auth.client_secret == "client-secret-value-42"
    assert MASK not in json.dumps(conn.model_dump(mode="json"))


def test_masked_header_keeps_its_value_when_headers_are_reordered():
    old = CONNECTIONS.validate_config(
        api_connection(
            headers=[
                {"name": "Accept", "value": "json"},
                {"name": "X-Api-Key", "value": "k1"},
                {"name": "X-Token", "value": "k2"},
            ]
        )
    )
    new = CONNECTIONS.validate_config(
        api_connection(
            headers=[{"name": "X-Token", "value": MASK}, {"name": "X-Api-Key", "value": MASK}]
        )
    )
    merged, missing = keep_masked(new, old)
    assert missing == []
    assert [(h.name, h.value) for h in merged.headers] == [("X-Token", "k2"), ("X-Api-Key", "k1")]
    paths = [p for p, _o, _f in secret_slots(merged)]
    assert ("headers", ("name", "X-Token"), "value") in paths


def test_seal_and_open_round_trip():
    vault = Vault(Fernet.generate_key())
    conn = CONNECTIONS.validate_config(api_connection())
    sealed = vault.seal(conn)
    assert "client-secret-value-42" not in json.dumps(sealed)
    assert vault.open(CONNECTIONS.validate_config(sealed)) == conn
