"""Target entities of one's own, in the config store: new entities and fields added to built-in
ones, jobs that import into them, and changes refused while data or a job is in the way.
Against the demo sandbox and the real SQLite row store."""

from __future__ import annotations

import json

import pytest

from studio.config.files import export_configs, import_configs
from studio.entities import load_entities
from studio.errors import ConfigError, Conflict, NotFound
from studio.rowstore import read_rows
from studio.runs import run_job
from tests.helpers import conn_for

FEED = {
    "name": "Feed items",
    "description": "A plain product feed",
    "key": "id",
    "fields": [
        {"name": "id", "type": "string", "required": True},
        {"name": "title", "type": "string"},
        {"name": "stock", "type": "integer"},
        {"name": "amount", "type": "number"},
    ],
}


def feed_job(store, sandbox, entity="Feed items", mapping=None):
    known = {c.name: c for c in store.list("connections")}
    conn = known.get("Sandbox") or store.create(
        "connections", conn_for(sandbox).model_dump(), source="cli"
    )
    return store.create(
        "jobs",
        {
            "kind": "api",
            "name": "Feed",
            "connection_id": conn.id,
            "entity": entity,
            "calls": [{"path": "/products", "behavior": {"type": "pagination", "page_size": 50}}],
            "content_finder": "$.items",
            "mapping": mapping
            or [
                {"extract": "$.id", "generate": "id"},
                {"extract": "$.title", "generate": "title"},
                {"extract": "$.stock", "generate": "stock", "type": "integer"},
                {"extract": "$.price.amount", "generate": "amount", "type": "number"},
            ],
        },
        source="cli",
    )


def test_a_job_imports_into_an_entity_of_ones_own(store, sandbox):
    with pytest.raises(ConfigError, match="'Feed items' is not one of"):
        feed_job(store, sandbox)
    store.create("entities", FEED, source="cli")
    assert list(store.entities()["Feed items"].fields) == ["id", "title", "stock", "amount"]
    job = feed_job(store, sandbox)
    run = run_job(store, job.id)
    assert (run.status, run.rows_written) == ("success", 95)
    rows, total = read_rows(store.home, "Feed items", limit=1)
    assert total == 95 and isinstance(rows[0]["stock"], int)
    assert load_entities(store.home)["Feed items"].key == "id"


def test_fields_of_ones_own_on_a_built_in_entity(store, sandbox):
    mapping = [
        {"extract": "$.id", "generate": "external_id"},
        {"extract": "$.title", "generate": "name"},
        {"extract": "$.category.code", "generate": "classification_category_id"},
        {"extract": "$.stock", "generate": "stock", "type": "integer"},
    ]
    with pytest.raises(ConfigError, match="'stock' is not a field of Products"):
        feed_job(store, sandbox, "Products", mapping)
    extra = {"name": "Products", "fields": [{"name": "stock", "type": "integer"}]}
    store.create("entities", extra, source="cli")
    job = feed_job(store, sandbox, "Products", mapping)
    assert run_job(store, job.id).rows_written == 95
    rows, _ = read_rows(store.home, "Products", limit=1)
    assert isinstance(rows[0]["stock"], int) and rows[0]["name"].startswith("Product")
    with pytest.raises(ConfigError, match="Products has name already"):
        store.update("entities", "Products", {**extra, "fields": [{"name": "name"}]}, source="cli")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**FEED, "key": ""}, "Key field: is required, one of id, title, stock, amount"),
        ({**FEED, "key": "sku"}, "Key field: 'sku' is not one of id, title, stock, amount"),
        ({**FEED, "fields": []}, "a new entity needs at least one field"),
        ({**FEED, "fields": [{"name": "1st"}]}, "Field name"),
        ({**FEED, "fields": [*FEED["fields"], {"name": "ID"}]}, "'ID' is listed twice"),
        ({"name": "Offers", "key": "sku", "fields": [{"name": "x"}]}, "Offers is keyed by"),
    ],
)
def test_an_entity_that_cannot_be_is_refused_with_its_reason(store, data, message):
    with pytest.raises(ConfigError) as e:
        store.create("entities", data, source="cli")
    assert any(message in m for m in e.value.messages), e.value.messages
    assert store.list("entities") == []


def test_changes_that_would_strand_data_or_a_mapping_are_refused(store, sandbox):
    store.create("entities", FEED, source="cli")
    job = feed_job(store, sandbox)
    run_job(store, job.id)

    def change(**update):
        return store.update("entities", "Feed items", {**FEED, **update}, source="cli")

    # Adding a field is free: its column is there at the next run.
    change(fields=[*FEED["fields"], {"name": "ean", "type": "string"}])
    run_job(store, job.id)
    assert "ean" in read_rows(store.home, "Feed items", limit=1)[0][0]
    with pytest.raises(Conflict, match="'stock' of Feed items is mapped by 'Feed'"):
        change(fields=[f for f in FEED["fields"] if f["name"] != "stock"])
    kept = [m for m in job.mapping if m.generate != "stock"]  # not mapped now; 95 rows hold it
    store.modify("jobs", job.id, lambda j: j.model_copy(update={"mapping": kept}), source="cli")
    with pytest.raises(Conflict, match="'stock' of Feed items holds data in 95 rows"):
        change(fields=[f for f in FEED["fields"] if f["name"] != "stock"])
    retyped = [{**f, "type": "string"} if f["name"] == "stock" else f for f in FEED["fields"]]
    with pytest.raises(Conflict, match="'stock' of Feed items holds data in 95 rows"):
        change(fields=retyped)
    with pytest.raises(Conflict, match="holds 95 rows keyed by 'id'"):
        change(key="title")
    with pytest.raises(Conflict, match="is used by 'Feed'"):
        store.delete("entities", "Feed items", source="cli")
    store.delete("jobs", job.id, source="cli")
    with pytest.raises(Conflict, match="holds 95 imported rows"):
        store.delete("entities", "Feed items", source="cli")
    assert [e.name for e in store.list("entities")] == ["Feed items"]


def test_an_unused_empty_entity_is_deleted_and_audited(store):
    store.create("entities", FEED, source="cli")
    store.delete("entities", "Feed items", source="cli")
    assert "Feed items" not in store.entities()
    assert [e["action"] for e in store.audit("entities", "Feed items")] == ["delete", "create"]


def test_an_entity_and_the_jobs_that_use_it_export_and_import_together(store, sandbox, tmp_path):
    store.create("entities", FEED, source="cli")
    feed_job(store, sandbox)
    export_configs(store, tmp_path / "out", include_secrets=True)
    assert (
        json.loads((tmp_path / "out" / "entities" / "feed-items.json").read_text())["key"] == "id"
    )
    other = type(store)(tmp_path / "other-home")
    outcomes = import_configs(other, tmp_path / "out")
    assert [o.action for o in outcomes] == ["create", "create", "create"], outcomes
    assert other.get("jobs", "Feed").entity == "Feed items"


def test_one_field_is_added_to_a_built_in_entity_then_to_its_config(store):
    from studio.config.entities import add_field

    add_field(store, "Offers", {"name": "lead_time", "type": "integer"}, source="studio")
    add_field(store, "Offers", {"name": "origin"}, source="studio")
    assert list(store.entities()["Offers"].fields)[-2:] == ["lead_time", "origin"]
    assert [f.name for f in store.get("entities", "Offers").fields] == ["lead_time", "origin"]
    with pytest.raises(ConfigError, match="'origin' is listed twice"):
        add_field(store, "Offers", {"name": "origin"}, source="studio")
    with pytest.raises(NotFound, match="no entity called 'Nowhere'"):
        add_field(store, "Nowhere", {"name": "x"}, source="studio")


@pytest.mark.parametrize("name", ["products", "PRODUCTS", "Feed_items", "feed-items"])
def test_a_name_that_would_share_a_table_with_another_entity_is_refused(store, name):
    store.create("entities", FEED, source="cli")
    with pytest.raises(ConfigError, match="too close to the entity"):
        store.create("entities", {**FEED, "name": name}, source="cli")


def test_a_change_that_would_leave_a_job_invalid_is_refused_naming_it(store, sandbox):
    """Found in review: a field made required, or a field a child mapping uses, removed."""
    store.create("entities", FEED, source="cli")
    feed_job(store, sandbox, mapping=[{"extract": "$.id", "generate": "id"}])
    required = [{**f, "required": f["name"] in ("id", "title")} for f in FEED["fields"]]
    with pytest.raises(Conflict, match="Job 'Feed' would no longer be valid: Mapping: required"):
        store.update("entities", "Feed items", {**FEED, "fields": required}, source="cli")
    assert [j.name for j in store.list("jobs")] == ["Feed"]  # every job still loads


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([{"name": "EAN"}], "Products has EAN already"),
        ([{"name": "_run_id"}], "kept for the row store's own use"),
        ([{"name": "ROWID"}], "kept for the row store's own use"),
    ],
)
def test_a_field_whose_column_would_clash_is_refused(store, fields, message):
    with pytest.raises(ConfigError) as e:
        store.create("entities", {"name": "Products", "fields": fields}, source="cli")
    assert any(message in m for m in e.value.messages), e.value.messages


def test_an_entity_named_like_sqlites_own_tables_is_refused(store):
    with pytest.raises(ConfigError, match="sqlite_ are SQLite's own"):
        store.create("entities", {**FEED, "name": "sqlite_stat1"}, source="cli")


def test_a_renamed_case_is_its_own_name_and_fields_of_a_used_built_in_go(store, sandbox):
    store.create("entities", FEED, source="cli")
    store.update("entities", "Feed items", {**FEED, "name": "FEED ITEMS"}, source="cli")
    from studio.config.entities import add_field

    add_field(store, "Products", {"name": "stock", "type": "integer"}, source="cli")
    mapping = [
        {"extract": "$.id", "generate": "external_id"},
        {"extract": "$.title", "generate": "name"},
        {"extract": "$.category.code", "generate": "classification_category_id"},
    ]
    feed_job(store, sandbox, "Products", mapping)
    store.delete("entities", "Products", source="cli")  # Products itself stays: jobs keep it
    assert "stock" not in store.entities()["Products"].fields


def test_entities_are_not_cloned_and_a_bad_stored_one_takes_no_other_down(store):
    store.create("entities", FEED, source="cli")
    with pytest.raises(Conflict, match="is not cloned"):
        store.clone("entities", "Feed items", source="cli")
    from studio.entities import merged

    assert "Products" in merged([{"name": "Broken", "fields": [{"name": "x"}]}])  # no key


def test_a_job_made_inside_a_transaction_reads_back_with_its_new_entity(store, sandbox):
    with store.transaction():
        store.create("entities", FEED, source="cli")
        job = feed_job(store, sandbox)
        assert store.get("jobs", job.id).entity == "Feed items"


def test_a_field_added_with_a_name_kept_for_the_row_store_is_refused_with_a_sentence(store):
    from studio.config.entities import add_field

    with pytest.raises(ConfigError, match="kept for the row store's own use"):
        add_field(store, "Products", {"name": "_run_id"}, source="studio")
