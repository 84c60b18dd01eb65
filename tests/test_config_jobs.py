"""The job model and its storage: a whole job validated at save, errors naming call and field."""

from __future__ import annotations

import pytest

from studio.errors import ConfigError, Conflict
from tests.helpers import api_connection, sftp_connection

MAPPING = [
    {"extract": "$.id", "generate": "external_id"},
    {"extract": "$.title", "generate": "name"},
    {"extract": "$.category.code", "generate": "classification_category_id"},
]


def job(**overrides) -> dict:
    data = {
        "kind": "api",
        "name": "Nightly products",
        "connection_id": "Shop API",
        "entity": "Products",
        "calls": [{"path": "/products"}],
        "content_finder": "$.items",
        "mapping": MAPPING,
    }
    data.update(overrides)
    return data


@pytest.fixture
def conn(store):
    return store.create("connections", api_connection(), source="cli")


def errors(store, data) -> list[str]:
    with pytest.raises(ConfigError) as e:
        store.create("jobs", data, source="studio")
    return e.value.messages


def test_a_job_refers_to_its_connection_by_id_given_a_name(store, conn):
    saved = store.create("jobs", job(), source="studio")
    assert saved.connection_id == conn.id
    assert store.get("jobs", "nightly products").calls[0].path == "/products"
    assert store.dependents("connections", conn.id) == ["job 'Nightly products'"]


def test_errors_name_the_call_and_field_and_nothing_is_saved(store, conn):
    data = job(
        calls=[
            {"path": "/products", "variables": [{"name": "ids", "path": "$.items[*].id"}]},
            {
                "path": "/products/{id}",
                "query": [{"name": "since", "value": "{since}"}],
                "body": {"type": "json", "content": '{"a": }'},
            },
            {
                "path": "",
                "behavior": {"type": "retry", "condition_key": "$.status[", "interval": -1},
            },
        ],
        content_finder="$.items[?(",
        mapping=[*MAPPING[:1], {"extract": "$.x", "generate": "colour"}],
    )
    assert errors(store, data) == [
        "Call 2 › Body: is not valid JSON (line 1, column 7: Expecting value)",
        "Call 3 › Behavior › Interval (seconds): must be at least 0",
        "Call 3 › Behavior › Condition key (JSONPath): JSONPath '$.status[': ends too early "
        "(an unclosed bracket or quote?) at position 10\n  $.status[\n           ^",
        "Content finder (JSONPath): JSONPath '$.items[?(': ends too early (an unclosed bracket or "
        "quote?) at position 11\n  $.items[?(\n            ^",
    ]
    assert store.list("jobs") == []


def test_a_pagination_stop_path_must_be_a_jsonpath(store, conn):
    paged = {"type": "pagination", "stop_when_empty_path": "$.meta[next"}
    assert errors(store, job(calls=[{"path": "/products", "behavior": paged}])) == [
        "Call 1 › Behavior › Stop when empty (JSONPath): JSONPath '$.meta[next': ends too early "
        "(an unclosed bracket or quote?) at position 12\n  $.meta[next\n             ^"
    ]
    paged["stop_when_empty_path"] = "$.meta.next"
    saved = store.create(
        "jobs", job(calls=[{"path": "/products", "behavior": paged}]), source="studio"
    )
    assert saved.calls[0].behavior.stop_when_empty_path == "$.meta.next"


def test_whole_job_rules(store, conn):
    data = job(
        calls=[
            {"path": "/products", "variables": [{"name": "ids", "path": "$.items[*].id"}]},
            {"path": "/products/{id}", "query": [{"name": "since", "value": "{last_success_at}"}]},
            {"behavior": {"type": "download", "url_source": "fileUrl"}},
        ],
        mapping=[
            *MAPPING[:1],
            {"extract": "$.x", "generate": "colour"},
            {
                "extract": "$.y",
                "generate": "updated_at",
                "type": "datetime",
                "default": "yesterday",
            },
        ],
    )
    assert errors(store, data) == [
        "Call 2 › Path: uses {id}, which no earlier call defines (variables so far: ids, "
        "last_success_at, now, run_id)",
        "Call 3 › URL from: no earlier call defines {fileUrl}",
        "Mapping: required fields name, classification_category_id of Products are not mapped",
        "Mapping 2 › Generate: 'colour' is not a field of Products",
        "Mapping 3 › Default: 'yesterday' is not a datetime in the format ISO 8601",
    ]


def test_connection_must_exist_and_be_an_api(store, conn):
    assert errors(store, job(connection_id="Nope")) == ["Connection: there is no connection 'Nope'"]
    store.create("connections", sftp_connection(), source="cli")
    assert errors(store, job(connection_id="Supplier SFTP")) == [
        "Connection: 'Supplier SFTP' is a File server connection; a job of this kind needs a API "
        "one"
    ]


def test_unknown_entity_and_duplicate_external_key(store, conn):
    assert errors(store, job(entity="Widgets"))[0].startswith(
        "Target entity: 'Widgets' is not one of Products, Variants, Offers"
    )
    store.create("jobs", job(external_key="products"), source="cli")
    with pytest.raises(
        Conflict, match="External key: 'products' is taken by job 'Nightly products'"
    ):
        store.create("jobs", job(name="Other", external_key="PRODUCTS"), source="cli")
    store.create("jobs", job(name="No key 1"), source="cli")
    store.create("jobs", job(name="No key 2"), source="cli")  # empty keys do not collide


def test_a_connection_in_use_cannot_be_deleted(store, conn):
    store.create("jobs", job(), source="cli")
    with pytest.raises(Conflict, match="is used by job 'Nightly products'"):
        store.delete("connections", conn.id, source="cli")


def test_invalid_schedules_are_refused(store, conn):
    assert errors(store, job(schedule={"type": "cron", "cron": "0 25 * * *"})) == [
        "Schedule › Cron expression: '0 25 * * *' is not valid: Bad hour"
    ]
    assert errors(store, job(schedule={"type": "hourly", "mode": "at", "at": "25:00"})) == [
        "Schedule › At (UTC): must be a time of day from 00:00 to 23:59"
    ]
    assert errors(store, job(schedule={"type": "weekly"})) == [
        "Schedule › Days: tick at least one day"
    ]
    assert errors(store, job(schedule={"type": "cron", "cron": "0 0 31 2 *"})) == [
        "Schedule › Cron expression: '0 0 31 2 *' is not valid: Bad day-of-month"
    ]


def test_clone_gets_a_unique_copy_name_disabled_without_external_key(store, conn):
    original = store.create("jobs", job(external_key="nightly"), source="studio")
    first = store.clone("jobs", original.id, source="studio")
    second = store.clone("jobs", original.id, source="api")
    assert (first.name, first.status, first.external_key) == (
        "Copy of Nightly products",
        "disabled",
        "",
    )
    assert second.name == "Copy of Nightly products (2)"
    assert first.id != original.id and first.calls == original.calls
    assert store.audit("jobs", first.id)[0]["changes"] == [
        {"field": "cloned from", "old": None, "new": "Nightly products"}
    ]


def test_a_draft_may_miss_mapping_and_later_calls_for_a_test():
    from studio.config.jobs import draft_job

    data = job(calls=[{"path": "/products"}, {"path": ""}], mapping=[])
    assert draft_job(data, up_to_call=1).calls[0].path == "/products"
    with pytest.raises(ConfigError) as e:
        draft_job(data)
    assert e.value.messages == ["Call 2 › Path: is required"]
