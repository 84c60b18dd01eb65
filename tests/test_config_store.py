"""The config store: CRUD, unique names, audit trail, dependents, and safety across processes."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time

import pytest

from studio.config.base import ConfigModel
from studio.config.kinds import KINDS, ResourceKind
from studio.config.store import ConfigStore
from studio.errors import ConfigError, Conflict, NotFound
from studio.vault import MASK
from tests.helpers import api_connection, run_python, sftp_connection


def test_create_get_list_by_id_or_name_case_insensitive(store):
    created = store.create("connections", api_connection(), source="cli")
    assert created.created_at and created.created_at == created.updated_at
    assert store.get("connections", "shop api").id == created.id
    assert store.get("connections", created.id).name == "Shop API"
    store.create("connections", sftp_connection(), source="cli")
    assert [c.name for c in store.list("connections")] == ["Shop API", "Supplier SFTP"]
    with pytest.raises(NotFound, match="No connection called 'nope'"):
        store.get("connections", "nope")


def test_duplicate_names_are_refused_whatever_their_case_and_nothing_is_written(store):
    store.create("connections", api_connection("Shop API"), source="cli")
    before = store.path.read_bytes()
    with pytest.raises(Conflict, match="Name: a connection called 'Shop API' exists already"):
        store.create("connections", sftp_connection("SHOP api"), source="cli")
    assert store.path.read_bytes() == before
    other = store.create("connections", sftp_connection(), source="cli")
    with pytest.raises(Conflict):
        store.update("connections", other.id, sftp_connection("shop API"), source="cli")
    assert len(store.list("connections")) == 2
    assert store.get("connections", other.id).name == "Supplier SFTP"


def test_invalid_config_is_refused_with_readable_messages_and_nothing_written(store):
    with pytest.raises(ConfigError) as e:
        store.create("connections", api_connection(base_url="api.example.com"), source="studio")
    assert e.value.messages == ["Base URL: must start with http:// or https://"]
    assert not store.path.exists()


def test_update_keeps_masked_secrets_and_records_the_change(store):
    conn = store.create("connections", api_connection(), source="studio")
    shown = store.get("connections", conn.id)
    assert shown.auth.client_secret == MASK and shown.headers[0].value == MASK
    form = shown.model_dump(mode="json") | {"timeout": 12}
    store.update("connections", conn.id, form, source="studio")
    kept = store.get("connections", conn.id, reveal=True)
    assert kept.auth.client_secret == "client-secret-value-42"
    assert kept.headers[0].value == "header-secret-value-7"
    assert kept.timeout == 12
    entry = store.audit("connections", "Shop API")[0]
    assert (entry["action"], entry["source"]) == ("update", "studio")
    assert entry["changes"] == [{"field": "timeout", "old": 30.0, "new": 12.0}]


def test_a_changed_secret_is_audited_masked(store):
    conn = store.create("connections", api_connection(), source="studio")
    form = store.get("connections", conn.id).model_dump(mode="json")
    form["auth"]["client_secret"] = "rotated-secret-value"
    store.update("connections", conn.id, form, source="api")
    entry = store.audit("connections", conn.id)[0]
    assert entry["changes"] == [{"field": "auth.client_secret", "old": MASK, "new": MASK}]
    assert (
        store.get("connections", conn.id, reveal=True).auth.client_secret == "rotated-secret-value"
    )
    assert "rotated-secret-value" not in json.dumps(store.audit())


def test_a_mask_with_nothing_stored_is_refused(store):
    with pytest.raises(ConfigError, match="Client secret: still shows the mask"):
        store.create(
            "connections",
            api_connection(
                auth={
                    "type": "oauth2",
                    "token_url": "https://x.example/t",
                    "client_id": "c",
                    "client_secret": MASK,
                }
            ),
            source="cli",
        )


def test_switching_auth_type_does_not_carry_a_masked_secret_over(store):
    conn = store.create(
        "connections",
        api_connection(auth={"type": "basic", "username": "u", "password": "basic-pw"}),
        source="cli",
    )
    form = store.get("connections", conn.id).model_dump(mode="json")
    form["auth"] = {"type": "bearer", "token": MASK}
    with pytest.raises(ConfigError, match="Bearer token: still shows the mask"):
        store.update("connections", conn.id, form, source="studio")


def test_an_unchanged_save_writes_no_audit_entry(store):
    conn = store.create("connections", api_connection(), source="studio")
    store.update("connections", conn.id, store.get("connections", conn.id), source="studio")
    assert [e["action"] for e in store.audit("connections", conn.id)] == ["create"]


def test_activate_disable_delete_are_audited_and_trail_outlives_the_config(store):
    conn = store.create("connections", sftp_connection(), source="cli")
    assert store.set_status("connections", conn.id, "disabled", source="cli").status == "disabled"
    assert (
        store.set_status("connections", "supplier sftp", "active", source="api").status == "active"
    )
    store.delete("connections", conn.id, source="studio")
    assert store.list("connections") == []
    trail = store.audit("connections", "Supplier SFTP")
    assert [(e["action"], e["source"]) for e in trail] == [
        ("delete", "studio"),
        ("activate", "api"),
        ("disable", "cli"),
        ("create", "cli"),
    ]
    assert trail[2]["changes"] == [{"field": "status", "old": "active", "new": "disabled"}]
    other = store.create("connections", sftp_connection("Other"), source="cli")
    with pytest.raises(ConfigError, match="Status: must be 'active' or 'disabled'"):
        store.set_status("connections", other.id, "paused", source="cli")


class Job(ConfigModel):
    """A stand-in for the job kind that arrives later: it refers to a connection by id."""

    id: str
    name: str
    connection_id: str


def test_delete_is_refused_while_something_uses_the_connection(home):
    jobs = ResourceKind(
        table="jobs", label="job", annotation=Job, refs={"connection_id": "connections"}
    )
    store = ConfigStore(home, kinds={**KINDS, "jobs": jobs})
    conn = store.create("connections", api_connection(), source="cli")
    store.create(
        "jobs", {"id": "j1", "name": "Nightly products", "connection_id": conn.id}, source="cli"
    )
    store.create("jobs", {"id": "j2", "name": "Offers", "connection_id": conn.id}, source="cli")
    with pytest.raises(Conflict) as e:
        store.delete("connections", conn.id, source="studio")
    assert str(e.value) == (
        "Connection 'Shop API' is used by job 'Nightly products', job 'Offers'; "
        "change or delete those first"
    )
    assert store.dependents("connections", conn.id) == ["job 'Nightly products'", "job 'Offers'"]
    assert store.get("connections", conn.id)
    store.delete("jobs", "j1", source="cli")
    store.delete("jobs", "j2", source="cli")
    store.delete("connections", conn.id, source="cli")
    assert store.list("connections") == []


def test_a_corrupt_file_is_reported_not_overwritten(store):
    store.create("connections", api_connection(), source="cli")
    store.path.write_text('{"connections": {"1": ', "utf-8")
    with pytest.raises(Exception, match=r"configs.json is not valid JSON \(line 1"):
        store.list("connections")
    with pytest.raises(Exception, match="not valid JSON"):
        store.create("connections", sftp_connection(), source="cli")
    assert store.path.read_text("utf-8") == '{"connections": {"1": '


INCREMENT = """
from studio.config.store import ConfigStore
store = ConfigStore()
bump = lambda c: c.model_copy(update={"timeout": c.timeout + 1})
for _ in range(250):
    store.modify("connections", "Counter", bump, source="cli")
"""


def test_four_processes_incrementing_one_record_lose_no_update(store, home):
    store.create("connections", api_connection("Counter", timeout=1), source="cli")
    workers = [run_python(INCREMENT, home) for _ in range(4)]
    assert [w.wait(timeout=240) for w in workers] == [0, 0, 0, 0]
    assert store.get("connections", "Counter").timeout == 1001
    assert len(store.audit("connections", "Counter")) == 1001


WRITER = """
import time
from studio.config.store import ConfigStore
store = ConfigStore()
i = {0}
deadline = time.monotonic() + 120  # killed long before; never left writing
while time.monotonic() < deadline:
    store.create("connections", {{"kind": "file_server", "name": f"w{{i}}", "host": "h",
                 "username": "u", "password": f"secret-{{i}}"}}, source="cli")
    print(i, flush=True)
    i += 1
"""


def test_a_writer_killed_mid_write_leaves_a_loadable_file_with_every_committed_write(store, home):
    committed: list[int] = []
    next_index = 0
    rng = random.Random(7)
    for _ in range(20):
        writer = run_python(WRITER.format(next_index), home, stdout=subprocess.PIPE, text=True)
        first = writer.stdout.readline()  # the writer is up and writing
        assert first.strip(), "the writer process failed to start"
        time.sleep(rng.uniform(0.0, 0.15))
        writer.send_signal(signal.SIGKILL)
        rest, _ = writer.communicate(timeout=30)
        committed += [int(x) for x in [first, *rest.splitlines()] if x.strip()]
        names = {c.name for c in ConfigStore(home).list("connections", reveal=True)}
        assert {f"w{i}" for i in committed} <= names
        next_index = max(int(n[1:]) for n in names) + 1
    assert len(committed) >= 20
    revealed = ConfigStore(home).get("connections", f"w{committed[-1]}", reveal=True)
    assert revealed.password == f"secret-{committed[-1]}"
