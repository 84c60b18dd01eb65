"""Nested arrays to a second entity: a product's variants[*] → Variants, linked by the
product's key, written in the same transaction as the products; previewed with them. The runs
are tested against SQLite and PostgreSQL (the ``backend`` fixture)."""

from __future__ import annotations

import pytest

from runner.api.jobs import status_of
from runner.sandbox import product, variants
from studio.children import ChildMapping, job_mapper
from studio.config.jobs import JOB, draft_job, job_problems
from studio.entities import entity
from studio.errors import ConfigError
from studio.runhistory import run_files
from studio.runs import preview_saved, run_job
from studio.stores import open_history, open_rows
from tests.dbservers import store_sql
from tests.helpers import PRODUCTS, demo, runner

JOB_NAME = "Products with variants"
VARIANTS = {
    "entity": "Variants",
    "path": "$.variants[*]",
    "parent_key": "product_external_id",
    "mapping": [
        {"extract": "$.id", "generate": "external_id"},
        {"extract": "$.sku", "generate": "sku"},
        {"extract": "$.color", "generate": "color", "immutable": True},
    ],
}
ALL_VARIANTS = sum(len(variants(i)) for i in range(1, 96))  # 95 products, 1 to 3 each


def with_variants(store, sandbox, **children) -> dict:
    """The demo products job, reading /products-variants, with a Variants child."""
    demo(store, sandbox)
    data = store.get("jobs", PRODUCTS).model_dump(mode="json", by_alias=True)
    for k in ("id", "created_at", "updated_at", "createdAt", "updatedAt"):
        data.pop(k, None)
    data["name"], data["external_key"] = JOB_NAME, "with-variants"
    data["calls"][0]["path"] = "/products-variants"
    data["children"] = [VARIANTS | children]
    store.create("jobs", data, source="cli")
    return data


def read_rows(home, name: str, **kw) -> tuple[list[dict], int]:
    return open_rows(home).read(name, **kw)


@pytest.mark.usefixtures("backend")
def test_a_run_writes_products_and_their_variants_linked_by_the_products_key(store, sandbox):
    with_variants(store, sandbox)
    run = run_job(store, JOB_NAME)
    assert (run.status, run.rows_written, run.rows_rejected) == ("partial", 95, 1)
    assert run.child_rows == ALL_VARIANTS - 1  # product 7's second variant has no sku
    assert open_history(store.home).get(run.id).child_rows == run.child_rows
    assert status_of(run)["child_rows"] == run.child_rows  # the REST API's run status
    rows, total = read_rows(store.home, "Variants", limit=1000)
    assert total == ALL_VARIANTS - 1
    by_id = {r["external_id"]: r for r in rows}
    assert by_id["P00007-1"]["product_external_id"] == "P00007"
    assert {k: v for k, v in by_id["P00041-3"].items() if k != "_updated_at"} == {
        "external_id": "P00041-3",
        "product_external_id": "P00041",
        "sku": "SKU-00041-3",
        "name": None,
        "ean": None,
        "size": None,
        "color": "green",
        "_run_id": run.id,
    }
    assert "P00007-2" not in by_id
    rejects = next(f for f in run_files(run) if f.name == "rejects.csv").read_text()
    assert "Variants of record 6, item 2: $.sku: is required but empty" in rejects


@pytest.mark.usefixtures("backend")
def test_immutable_child_fields_are_kept_on_update(store, sandbox):
    with_variants(store, sandbox)
    run_job(store, JOB_NAME)
    store_sql(
        store.home, "UPDATE variants SET color = 'kept', sku = 'old' WHERE external_id = 'P00001-1'"
    )
    run_job(store, JOB_NAME)
    rows, _ = read_rows(store.home, "Variants", where="P00001-1")
    assert (rows[0]["color"], rows[0]["sku"]) == ("kept", "SKU-00001-1")


@pytest.mark.usefixtures("backend")
def test_a_failed_run_writes_neither_products_nor_variants(store, sandbox):
    with_variants(store, sandbox)
    pages = []

    def on_event(e):  # the last page (the fifth) answers 500, however often it is asked
        if e["kind"] == "page":
            pages.append(e)
            if len(pages) == 4:
                sandbox.fault("/api/products-variants", 500, times=100)

    run = run_job(store, JOB_NAME, on_event=on_event)
    assert run.status == "failed" and run.child_rows == 0, run.error
    assert read_rows(store.home, "Products")[1] == 0
    assert read_rows(store.home, "Variants")[1] == 0


def test_the_preview_shows_both_tables_and_the_child_rejects(store, sandbox):
    with_variants(store, sandbox)
    trace = preview_saved(store, JOB_NAME, max_pages=1)
    assert len(trace.rows) == 20
    assert len(trace.children["Variants"]) == sum(len(variants(i)) for i in range(1, 21)) - 1
    assert trace.children["Variants"][0] == {
        "external_id": "P00001-1",
        "sku": "SKU-00001-1",
        "color": "red",
        "product_external_id": "P00001",
    }
    assert [r["field"] for r in trace.rejects] == ["Variants.sku"]
    assert trace.rejects[0]["record"] == 6


def test_a_rejected_product_gives_no_variants(store, sandbox):
    data = with_variants(store, sandbox)
    data["mapping"][0] = {"extract": "$.nothing", "generate": "external_id"}
    mapper_job = JOB.validate_python(data)
    records = [product(1) | {"variants": variants(1)}]
    mapped = job_mapper(mapper_job, entity("Products")).map(records)
    assert mapped.rows == [] and mapped.children.get("Variants", []) == []
    assert [r.field for r in mapped.rejects] == ["external_id"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"entity": "Variantz"}, "Children 1 › Target entity: 'Variantz' is not one of"),
        ({"path": "$.variants[*"}, "Children 1 › Array (JSONPath):"),
        ({"path": "variants"}, "is not a JSONPath"),
        ({"parent_key": "product"}, "'product' is not a field of Variants"),
        (
            {"mapping": [{"extract": "$.id", "generate": "external_id"}]},
            "Children 1 › Mapping: required field sku of Variants is not mapped",
        ),
        (
            {"mapping": [*VARIANTS["mapping"], {"extract": "$.x", "generate": "colour"}]},
            "Children 1 › Mapping 4 › Generate: 'colour' is not a field of Variants",
        ),
    ],
)
def test_the_model_refuses_a_bad_child(store, sandbox, change, message):
    data = with_variants(store, sandbox)
    data["children"] = [VARIANTS | change]
    problems = job_problems(data)
    assert any(message in p for p in problems), problems


def test_two_children_of_one_entity_are_refused(store, sandbox):
    data = with_variants(store, sandbox)
    data["children"] = [VARIANTS, VARIANTS]
    assert job_problems(data) == [
        "Children 2 › Target entity: Variants is written by Children 1 already"
    ]


@pytest.mark.usefixtures("backend")
def test_a_job_without_children_is_unchanged(store, sandbox):
    demo(store, sandbox)
    job = store.get("jobs", PRODUCTS)
    assert job.children == [] and "children" not in job.model_dump(exclude_defaults=True)
    run = run_job(store, PRODUCTS)
    assert (run.status, run.rows_written, run.child_rows) == ("success", 95, 0)


def test_a_file_job_refuses_children():
    data = {
        "kind": "file",
        "name": "csv",
        "connection_id": "c",
        "entity": "Products",
        "source": {"path": "in/products.csv"},
        "mapping": [
            {"extract": "id", "generate": "external_id"},
            {"extract": "name", "generate": "name"},
            {"extract": "cat", "generate": "classification_category_id"},
        ],
        "children": [VARIANTS],
    }
    problems = job_problems(data)
    assert problems and "arrays inside JSON records" in problems[0]
    with pytest.raises(ConfigError):
        draft_job(data)
    assert ChildMapping.model_validate(VARIANTS).columns == [
        "external_id",
        "sku",
        "color",
        "product_external_id",
    ]


def test_runner_preview_counts_the_child_rows(store, sandbox):
    with_variants(store, sandbox)
    out = runner("preview", JOB_NAME, "--pages", "1", home=store.home)
    assert "20 records, 20 rows, 1 reject" in out.stdout, out.stderr
    assert "  Variants: 40 rows" in out.stdout
    assert "Variants of record 6, item 2: $.sku: is required but empty" in out.stdout


def test_a_child_keyed_by_its_parent_key_or_of_the_jobs_own_entity_is_refused(store, sandbox):
    with pytest.raises(ConfigError, match="is Variants's own key"):
        with_variants(store, sandbox, parent_key="external_id")
    with pytest.raises(ConfigError, match="the job writes Products itself"):
        with_variants(store, sandbox, entity="Products", parent_key="description")
