"""``python -m runner entities …`` as a user runs it, a separate process on the same store: an
entity created from a file and given a field, a job importing into it run, built-in entities
listed beside it, and changes refused with a sentence saying what is in the way."""

from __future__ import annotations

import json

from studio.config.store import ConfigStore
from tests.helpers import conn_for, runner

FEED = {
    "name": "Feed items",
    "key": "id",
    "fields": [{"name": "id", "required": True}, {"name": "title"}],
}


def write(path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_create_add_a_field_list_show_and_run_a_job_into_it(home, tmp_path, sandbox):
    made = runner("entities", "create", write(tmp_path / "feed.json", FEED), home=home)
    assert (made.returncode, made.stdout) == (
        0,
        "created entity 'Feed items' (custom, key id, 2 fields)\n",
    )
    added = runner("entities", "add-field", "feed items", "stock", "--type", "integer", home=home)
    assert added.stdout == (
        "added integer field 'stock' to entity 'Feed items' (custom, key id, 3 fields)\n"
    )
    on_builtin = runner(
        "entities", "add-field", "Products", "stock", "--required", "--description", "Units",
        home=home,
    )  # fmt: skip
    assert on_builtin.returncode == 0, on_builtin.stderr
    assert "(built-in + custom fields, key external_id, 10 fields, 1 custom)" in on_builtin.stdout
    lines = runner("entities", "list", home=home).stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "KEY", "FIELDS", "UPDATED"]
    rows = {line.split("  ")[0]: line for line in lines[1:]}
    assert "built-in + custom fields  external_id  10 (1 custom)" in rows["Products"]
    assert rows["Offers"].split()[1:3] == ["built-in", "external_id"]
    assert rows["Feed items"].split()[2:5] == ["custom", "id", "3"]
    listed = json.loads(runner("entities", "list", "--json", home=home).stdout)
    assert [e["kind"] for e in listed if e["name"] in ("Products", "Feed items")] == [
        "extended",
        "custom",
    ]
    shown = runner("entities", "show", "Products", home=home).stdout.splitlines()
    assert shown[0] == "Products (built-in + custom fields), key external_id"
    assert shown[-1].split() == ["stock", "string", "yes", "yes", "Units"]
    store = ConfigStore(home)
    conn = store.create("connections", conn_for(sandbox).model_dump(), source="cli")
    store.create(
        "jobs",
        {
            "kind": "api",
            "name": "Feed",
            "connection_id": conn.id,
            "entity": "Feed items",
            "calls": [{"path": "/products", "behavior": {"type": "pagination", "page_size": 50}}],
            "content_finder": "$.items",
            "mapping": [
                {"extract": "$.id", "generate": "id"},
                {"extract": "$.title", "generate": "title"},
                {"extract": "$.stock", "generate": "stock", "type": "integer"},
            ],
        },
        source="cli",
    )
    run = runner("run", "Feed", "--json", home=home)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["rows_written"] == 95
    audit = runner("entities", "audit", "feed items", home=home).stdout
    assert "update   'Feed items' by cli" in audit and "fields[2].name: 'stock'" in audit


def test_changes_in_the_way_are_refused_naming_what_is_in_the_way(home, tmp_path):
    store = ConfigStore(home)
    runner("entities", "create", write(tmp_path / "feed.json", FEED), home=home)
    store.create(
        "connections", {"kind": "api", "name": "Shop", "base_url": "http://x"}, source="cli"
    )
    store.create(
        "jobs",
        {
            "kind": "api",
            "name": "Feed",
            "connection_id": "Shop",
            "entity": "Feed items",
            "calls": [{"path": "/p"}],
            "mapping": [{"extract": "$.id", "generate": "id"}],
        },
        source="cli",
    )
    used = runner("entities", "delete", "Feed items", home=home)
    assert (used.returncode, used.stderr) == (
        2,
        "error: Entity 'Feed items' is used by 'Feed'; it cannot be deleted while jobs import "
        "into it\n",
    )
    smaller = write(
        tmp_path / "smaller.json", FEED | {"fields": FEED["fields"][1:], "key": "title"}
    )
    mapped = runner("entities", "replace", smaller, home=home)
    assert mapped.returncode == 2
    assert (
        mapped.stderr
        == "error: Field 'id' of Feed items is mapped by 'Feed': change those jobs first\n"
    )
    builtin = runner("entities", "delete", "Offers", home=home)
    assert builtin.returncode == 2 and "is built in" in builtin.stderr
    assert [e.name for e in store.list("entities")] == ["Feed items"]


def test_a_bad_entity_is_refused_naming_the_field(home, tmp_path):
    wrong_key = runner(
        "entities", "create", write(tmp_path / "a.json", FEED | {"key": "sku"}), home=home
    )
    assert (wrong_key.returncode, wrong_key.stderr) == (
        2,
        "error: Key field: 'sku' is not one of id, title\n",
    )
    bad_field = runner("entities", "add-field", "Products", "1st", home=home)
    assert bad_field.stderr == "error: Field name: has characters that are not allowed\n"
    clash = runner("entities", "add-field", "Products", "name", home=home)
    assert clash.stderr == "error: Products has name already: add fields it does not have\n"
    loose = runner("entities", "create", write(tmp_path / "b.json", [FEED]), home=home)
    assert "holds no JSON object" in loose.stderr
    missing = runner("entities", "show", "Nope", home=home)
    assert missing.stderr == "error: No entity called 'Nope' (built-in or of this home)\n"
    assert not ConfigStore(home).list("entities")
