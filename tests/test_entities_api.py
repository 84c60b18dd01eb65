"""Target entities through the REST API, over a real uvicorn server on 127.0.0.1: the catalog
and the home's own listed together, an entity created and given a field, a job importing into
it run by the runner's queue, and changes refused while its rows or the job are in the way."""

from __future__ import annotations

import pytest
import requests

from studio.config.store import ConfigStore
from tests.helpers import conn_for, wait_for
from tests.servers import Api

FEED = {
    "name": "Feed items",
    "description": "A plain product feed",
    "key": "id",
    "fields": [
        {"name": "id", "type": "string", "required": True},
        {"name": "title", "type": "string"},
    ],
}
FEED_JOB = {
    "kind": "api",
    "name": "Feed",
    "connection_id": "Sandbox",
    "entity": "Feed items",
    "calls": [{"path": "/products", "behavior": {"type": "pagination", "page_size": 50}}],
    "content_finder": "$.items",
    "mapping": [
        {"extract": "$.id", "generate": "id"},
        {"extract": "$.title", "generate": "title"},
        {"extract": "$.stock", "generate": "stock", "type": "integer"},
    ],
}


@pytest.fixture
def api(tmp_path, sandbox):
    store = ConfigStore(tmp_path / "home")
    store.create("connections", conn_for(sandbox).model_dump(), source="cli")
    api = Api(store)
    yield api
    api.stop()


def run_to_the_end(api, job: str) -> dict:
    pid = api.post(f"/v1/jobs/{job}/start").json()["processId"]

    def ended():
        status = api.get(f"/v1/jobs/{job}/status/{pid}").json()
        return status if status["SyncState"] != 2 else None

    return wait_for(ended, 60, f"run {pid} to end", interval=0.1)


def test_the_list_holds_the_catalog_and_the_homes_own_each_saying_what_it_is(api):
    listed = api.get("/v1/entities").json()
    assert {e["kind"] for e in listed} == {"built-in"}
    products = next(e for e in listed if e["name"] == "Products")
    assert (products["key"], products["id"], products["config"]) == ("external_id", None, None)
    name = next(f for f in products["fields"] if f["name"] == "name")
    assert name == {
        "name": "name",
        "type": "string",
        "required": True,
        "description": "",
        "custom": False,
    }
    assert api.post("/v1/entities", json=FEED).status_code == 201
    added = api.post("/v1/entities/products/fields", json={"name": "stock", "type": "integer"})
    assert added.status_code == 201, added.text
    kinds = {e["name"]: e["kind"] for e in api.get("/v1/entities").json()}
    assert (kinds["Products"], kinds["Feed items"], kinds["Offers"]) == (
        "extended",
        "custom",
        "built-in",
    )
    assert list(kinds)[-1] == "Feed items"  # the catalog first, then the home's own
    stock = api.get("/v1/entities/Products").json()["fields"][-1]
    assert (stock["name"], stock["type"], stock["custom"]) == ("stock", "integer", True)
    assert api.get("/v1/entities/nope").json() == {
        "error": "No entity called 'nope' (built-in or of this home)"
    }


def test_create_add_a_field_and_a_job_importing_into_it_runs(api):
    created = api.post("/v1/entities", json=FEED)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["kind"], body["key"], body["config"]["name"]) == ("custom", "id", "Feed items")
    assert [f["required"] for f in body["fields"]] == [True, False]
    assert api.post("/v1/entities", json=FEED).status_code == 409
    # The job maps stock, which the entity lacks: refused until the field is added.
    refused = api.post("/v1/imports", json=FEED_JOB)
    assert refused.status_code == 422 and "'stock' is not a field of Feed items" in refused.text
    for ref in (body["id"], "feed ITEMS"):
        assert api.get(f"/v1/entities/{ref}").json()["name"] == "Feed items"
    field = {"name": "stock", "type": "integer", "description": "Units on hand"}
    added = api.post(f"/v1/entities/{body['id']}/fields", json=field)
    assert added.status_code == 201, added.text
    assert added.json()["fields"][-1] == field | {"required": False, "custom": True}
    assert api.post("/v1/imports", json=FEED_JOB).status_code == 201
    status = run_to_the_end(api, "Feed")
    assert (status["status"], status["rows_written"]) == ("success", 95), status
    audit = api.get("/v1/entities/Feed items/audit").json()
    assert [(e["action"], e["source"]) for e in audit] == [("update", "api"), ("create", "api")]
    assert audit[0]["changes"][0]["field"].startswith("fields[2]")


def test_changes_in_the_way_of_rows_or_a_job_are_409_naming_what_is_in_the_way(api):
    api.post("/v1/entities", json=FEED | {"fields": [*FEED["fields"], {"name": "stock"}]})
    api.post("/v1/imports", json=FEED_JOB | {"mapping": FEED_JOB["mapping"][:2]})
    assert run_to_the_end(api, "Feed")["rows_written"] == 95
    used = api.delete("/v1/entities/Feed items")
    assert used.status_code == 409
    assert used.json()["error"] == (
        "Entity 'Feed items' is used by 'Feed'; it cannot be deleted while jobs import into it"
    )
    rekeyed = api.put("/v1/entities/Feed items", json=FEED | {"key": "title"})
    assert rekeyed.status_code == 409
    assert "holds 95 rows keyed by 'id'" in rekeyed.json()["error"]
    mapped = api.put("/v1/entities/Feed items", json=FEED | {"fields": FEED["fields"][:1]})
    assert mapped.status_code == 409
    assert "'title' of Feed items is mapped by 'Feed'" in mapped.json()["error"]
    assert [f["name"] for f in api.get("/v1/entities/Feed items").json()["fields"]] == [
        "id",
        "title",
        "stock",
    ]
    # stock was never mapped and holds no data: it goes.
    kept = api.put("/v1/entities/Feed items", json=FEED)
    assert kept.status_code == 200 and len(kept.json()["fields"]) == 2
    builtin = api.delete("/v1/entities/Offers")
    assert builtin.status_code == 409 and "is built in" in builtin.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("", FEED | {"key": "sku"}, "Key field: 'sku' is not one of id, title"),
        ("", FEED | {"fields": [{"name": "1st"}]}, "Field 1 › Field name: has characters"),
        ("", FEED | {"fields": [{"name": "id", "type": "text"}]}, "Field 1 › Type"),
        ("/Products/fields", {"name": "name"}, "Products has name already"),
        ("/Products/fields", {"name": "bad name"}, "Field name"),
        ("/Products/fields", {"type": "integer"}, "Field name"),
    ],
)
def test_a_bad_entity_or_field_is_422_naming_the_field(api, path, body, message):
    r = api.post(f"/v1/entities{path}", json=body)
    assert r.status_code == 422, r.text
    assert any(message in e for e in r.json()["errors"]), r.json()
    assert api.get("/v1/entities/Products").json()["kind"] == "built-in"


def test_put_gives_a_built_in_entity_its_fields_and_options_lists_the_methods(api):
    extra = {"name": "Offers", "fields": [{"name": "warehouse"}]}
    other = api.put("/v1/entities/Offers", json=extra | {"name": "Variants"})
    assert other.status_code == 422 and "name it 'Offers'" in other.json()["error"]
    put = api.put("/v1/entities/offers", json=extra)
    assert put.status_code == 200 and put.json()["kind"] == "extended"
    assert api.delete("/v1/entities/Offers").status_code == 204
    assert api.get("/v1/entities/Offers").json()["kind"] == "built-in"
    allow = requests.options(f"{api.url}/v1/entities/x", timeout=10).headers["Allow"]
    assert allow == "DELETE, GET, OPTIONS, PUT"
    document = requests.get(f"{api.url}/openapi.json", timeout=10).json()
    create = document["paths"]["/v1/entities"]["post"]
    assert set(create["responses"]["201"]["links"]) == {
        "GetEntity",
        "ReplaceEntity",
        "AddEntityField",
        "AuditEntity",
        "DeleteEntity",
    }
