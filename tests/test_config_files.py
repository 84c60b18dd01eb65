"""Export to a folder of JSON files and import back by name, with a dry run."""

from __future__ import annotations

import json

from studio.config.files import EXAMPLES, export_configs, import_configs, seed_examples
from studio.vault import MASK
from tests.helpers import api_connection, sftp_connection


def test_export_leaves_secrets_out_unless_asked(store, tmp_path):
    store.create("connections", api_connection(), source="cli")
    store.create("connections", sftp_connection(), source="cli")
    files = export_configs(store, tmp_path / "out")
    assert sorted(p.name for p in files) == ["shop-api.json", "supplier-sftp.json"]
    text = "".join(p.read_text("utf-8") for p in files)
    assert "client-secret-value-42" not in text and "sftp-password-value-9" not in text
    data = json.loads((tmp_path / "out/connections/shop-api.json").read_text("utf-8"))
    assert data["auth"]["client_secret"] == MASK and "created_at" not in data
    clear = export_configs(store, tmp_path / "clear", include_secrets=True)
    assert "client-secret-value-42" in "".join(p.read_text("utf-8") for p in clear)
    assert {p.stat().st_mode & 0o777 for p in clear} == {0o600}  # secrets in clear: owner only
    assert (clear[0].parent.stat().st_mode & 0o777) == 0o700


def test_round_trip_into_a_new_store_and_dry_run_reports_changes(store, tmp_path, home):
    from studio.config.store import ConfigStore

    store.create("connections", api_connection(), source="cli")
    export_configs(store, tmp_path / "x", include_secrets=True)
    other = ConfigStore(tmp_path / "other")
    outcomes = import_configs(other, tmp_path / "x")
    assert [(o.action, o.name) for o in outcomes] == [("create", "Shop API")]
    assert (
        other.get("connections", "shop api", reveal=True).auth.client_secret
        == "client-secret-value-42"
    )
    # Edit the file: a masked secret and a new timeout; the dry run says so and writes nothing.
    path = tmp_path / "x/connections/shop-api.json"
    data = json.loads(path.read_text("utf-8"))
    data["auth"]["client_secret"] = MASK
    data["timeout"] = 5
    path.write_text(json.dumps(data), "utf-8")
    before = other.path.read_bytes()
    outcomes = import_configs(other, tmp_path / "x", dry_run=True)
    assert [(o.action, o.fields) for o in outcomes] == [("update", ["timeout"])]
    assert str(outcomes[0]) == "update    connection 'Shop API': timeout"
    assert other.path.read_bytes() == before
    assert [o.action for o in import_configs(other, tmp_path / "x")] == ["update"]
    assert other.get("connections", "Shop API").timeout == 5
    assert (
        other.get("connections", "Shop API", reveal=True).auth.client_secret
        == "client-secret-value-42"
    )
    assert [o.action for o in import_configs(other, tmp_path / "x")] == ["unchanged"]


def test_bad_files_are_reported_and_nothing_is_imported(store, tmp_path):
    folder = tmp_path / "in" / "connections"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps(sftp_connection("Good")), "utf-8")
    (folder / "b.json").write_text("{not json", "utf-8")
    (folder / "c.json").write_text(json.dumps(api_connection("Bad", base_url="nope")), "utf-8")
    (folder / "d.json").write_text(
        json.dumps(api_connection("Masked", auth={"type": "bearer", "token": MASK})), "utf-8"
    )
    outcomes = {o.file: o for o in import_configs(store, tmp_path / "in")}
    assert outcomes["connections/a.json"].action == "create"
    assert outcomes["connections/b.json"].error.startswith("unreadable: Expecting property name")
    assert outcomes["connections/c.json"].error == "Base URL: must start with http:// or https://"
    assert (
        "Bearer token still masked and nothing stored to keep"
        in outcomes["connections/d.json"].error
    )
    assert store.list("connections") == [] and not store.path.exists()


def test_a_job_may_use_a_connection_of_the_same_import_even_in_a_dry_run(store, tmp_path):
    folder = tmp_path / "in"
    (folder / "connections").mkdir(parents=True)
    (folder / "jobs").mkdir()
    (folder / "connections" / "c.json").write_text(json.dumps(sftp_connection("Files")))
    job = {
        "kind": "file",
        "name": "Suppliers",
        "connection_id": "Files",
        "entity": "Suppliers",
        "source": {"mode": "path", "path": "/in/s.csv"},
        "mapping": [
            {"extract": "id", "generate": "external_id"},
            {"extract": "company", "generate": "name"},
        ],
    }
    (folder / "jobs" / "j.json").write_text(json.dumps(job))
    dry = import_configs(store, folder, dry_run=True)
    assert [(o.action, o.name) for o in dry] == [("create", "Files"), ("create", "Suppliers")]
    assert not store.path.exists()
    assert [o.action for o in import_configs(store, folder)] == ["create", "create"]
    assert store.get("jobs", "Suppliers").connection_id == store.get("connections", "Files").id


def test_files_at_the_top_level_are_not_silently_ignored(store, tmp_path):
    import pytest

    from studio.errors import StudioError

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "shop.json").write_text(json.dumps(api_connection()))
    with pytest.raises(
        StudioError,
        match=r"holds shop\.json at the top level\. The import reads "
        r"connections/<name>\.json and jobs/<name>\.json",
    ):
        import_configs(store, tmp_path / "in")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudioError, match="no configs to import; it holds no config files"):
        import_configs(store, tmp_path / "empty")


def test_an_import_killed_midway_leaves_the_store_as_it_was(home, tmp_path):
    """SIGKILL while 400 connections are imported: the store holds all of them or none."""
    import signal

    from studio.config.store import ConfigStore
    from tests.helpers import run_python

    store = ConfigStore(home)
    store.create("connections", sftp_connection("Before"), source="cli")
    folder = tmp_path / "many" / "connections"
    folder.mkdir(parents=True)
    for i in range(400):
        (folder / f"c{i}.json").write_text(json.dumps(sftp_connection(f"Server {i}")))
    code = (
        "from pathlib import Path; from studio.config.store import ConfigStore; "
        "from studio.config.files import import_configs; "
        f"import_configs(ConfigStore(), Path({str(tmp_path / 'many')!r}))"
    )
    seen = set()
    for delay in (0.3, 0.6, 0.9, 1.2, 30):
        proc = run_python(code, home)
        try:
            proc.wait(timeout=delay)
        except Exception:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        count = len(ConfigStore(home).list("connections"))
        assert count in (1, 401), count
        seen.add(count)
        if count == 401:
            break
    assert 401 in seen  # and the last one, left alone, finished


def test_examples_are_valid_and_seed_only_a_new_store(store):
    outcomes = seed_examples(store)
    assert outcomes and all(o.action == "create" for o in outcomes), outcomes
    assert len(store.list("connections")) == len(list((EXAMPLES / "connections").glob("*.json")))
    store.delete("connections", "Demo SFTP", source="cli")
    assert seed_examples(store) == []  # never again once the store exists


def test_an_export_keeps_references_by_name_and_the_schedule_anchor(store, tmp_path):
    from datetime import UTC, datetime

    from studio.config.schedules import next_runs
    from studio.config.store import ConfigStore

    store.create("connections", sftp_connection("Files"), source="cli")
    job = {
        "kind": "file",
        "name": "Every 3 days",
        "connection_id": "Files",
        "entity": "Suppliers",
        "schedule": {"type": "daily", "every": 3, "at": "06:00"},
        "source": {"mode": "path", "path": "in/s.csv"},
        "mapping": [
            {"extract": "id", "generate": "external_id"},
            {"extract": "company", "generate": "name"},
        ],
    }
    created = store.create("jobs", job, source="cli")
    export_configs(store, tmp_path / "x", include_secrets=True)
    data = json.loads((tmp_path / "x/jobs/every-3-days.json").read_text("utf-8"))
    assert data["connection_id"] == "Files"
    assert data["schedule"]["anchor"].startswith(created.created_at.isoformat()[:19])
    # Into the same store: nothing changed.
    again = import_configs(store, tmp_path / "x")
    assert [(o.action, o.name) for o in again] == [
        ("unchanged", "Files"),
        ("unchanged", "Every 3 days"),
    ]
    # Into another store, created later: the same days.
    other = ConfigStore(tmp_path / "other")
    assert [o.action for o in import_configs(other, tmp_path / "x")] == ["create", "create"]
    moved = other.get("jobs", "Every 3 days")
    assert moved.connection_id == other.get("connections", "Files").id
    now = datetime.now(UTC)
    assert next_runs(moved.schedule, moved.anchor, now, 3) == next_runs(
        created.schedule, created.anchor, now, 3
    )
