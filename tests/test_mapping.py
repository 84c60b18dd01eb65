"""Mapping records to entity rows: types, defaults, required fields, rejects, suggestions."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from studio.entities import entity, load_entities
from studio.mapping import FieldMap, Mapper, profile, suggest, unmapped_required

PRODUCTS = entity("Products")


def fm(extract, generate, **kw) -> FieldMap:
    return FieldMap(extract=extract, generate=generate, **kw)


def test_catalog_has_the_entities_with_djust_required_fields():
    entities = load_entities()
    assert set(entities) >= {
        "Products",
        "Variants",
        "Offers",
        "Suppliers",
        "Orders",
        "Accounts",
        "Customers",
    }
    assert PRODUCTS.required == ["external_id", "name", "classification_category_id"]
    assert entities["Suppliers"].required == ["external_id", "name"]
    assert all(e.fields[e.key].required for e in entities.values())


def test_types_defaults_and_literals():
    mapper = Mapper(
        [
            fm("$.id", "external_id"),
            fm("title", "name"),
            fm("$.cat", "classification_category_id", default="uncategorised"),
            fm("$.price.amount", "price", type="number"),
            fm("$.stock", "stock", type="integer"),
            fm("$.active", "active", type="boolean"),
            fm("$.released", "released", type="date", format="%d/%m/%Y"),
            fm("$.changed", "changed", type="datetime"),
            fm('"EUR"', "currency"),
            fm("$.tags", "tags"),
        ],
        PRODUCTS,
    )
    batch = mapper.map(
        [
            {
                "id": 7,
                "title": "Lamp",
                "price": {"amount": "12,50"},
                "stock": "3",
                "active": "yes",
                "released": "31/01/2026",
                "changed": "2026-01-31T08:00:00Z",
                "tags": ["a", "b"],
            }
        ]
    )
    assert batch.rejects == []
    assert batch.rows == [
        {
            "external_id": "7",
            "name": "Lamp",
            "classification_category_id": "uncategorised",
            "price": 12.5,
            "stock": 3,
            "active": True,
            "released": "2026-01-31",
            "changed": "2026-01-31T08:00:00+00:00",
            "currency": "EUR",
            "tags": '["a", "b"]',
        }
    ]


def test_rejects_name_record_field_and_reason_and_keep_going():
    mapper = Mapper(
        [
            fm("$.id", "external_id"),
            fm("$.name", "name"),
            fm("$.cat", "classification_category_id"),
            fm("$.price.amount", "price", type="number"),
            fm("$.stock", "stock", type="integer"),
        ],
        PRODUCTS,
    )
    records = [
        {"id": "a", "name": "A", "cat": "c", "price": {"amount": 1}, "stock": 1},
        {"id": "b", "name": "B", "cat": "c", "price": {"amount": "abc"}, "stock": 1.5},
        {"id": "c", "name": "", "cat": "c", "price": {"amount": 2}},
        {"id": "d", "name": "D", "cat": "c", "price": {"amount": 2.0}, "stock": None},
    ]
    batch = mapper.map(records, start=100)
    assert [r["external_id"] for r in batch.rows] == ["a", "d"]
    assert [r.as_dict() for r in batch.rejects] == [
        {"record": 101, "field": "price", "reason": "$.price.amount: 'abc' is not a number"},
        {"record": 101, "field": "stock", "reason": "$.stock: 1.5 is not a whole number"},
        {"record": 102, "field": "name", "reason": "$.name: is required but empty"},
    ]
    assert batch.rows[1]["stock"] is None


def test_fast_and_careful_paths_agree_on_every_record():
    """The generated fast path must never change a result, only the speed."""
    mapper = Mapper(
        [
            fm("$.a.b", "x", type="integer"),
            fm("c", "y"),
            fm("$.d[*]", "z"),
            fm("e.f", "w", type="number", default="0"),
        ]
    )
    records = [
        {"a": {"b": 1}, "c": "s", "d": [1], "e": {"f": 2.5}},
        {"a": {"b": "2"}, "c": 3, "d": [1, 2], "e.f": "4"},
        {"a": {}, "c": None, "d": [], "e": {}},
        {"a": {"b": True}, "c": "", "d": "x"},
        "not a dict",
        None,
    ]
    fast = mapper.map(records)
    careful_rows = []
    careful_rejects: list = []
    for i, r in enumerate(records):
        row = mapper._careful(i, r, careful_rejects)
        if row is not None:
            careful_rows.append(row)
    assert fast.rows == careful_rows
    assert fast.rejects == careful_rejects
    assert fast.rows[1] == {"x": 2, "y": "3", "z": "[1, 2]", "w": 4.0}


def test_invalid_jsonpath_in_a_mapping_is_refused_with_its_position():
    with pytest.raises(ValidationError) as e:
        fm("$.price[", "price")
    assert "ends too early (an unclosed bracket or quote?) at position 9" in str(e.value)


def test_unmapped_required_fields():
    assert unmapped_required([fm("$.id", "external_id")], PRODUCTS) == [
        "name",
        "classification_category_id",
    ]


def test_profile_and_suggestions():
    records = [
        {
            "id": "P1",
            "title": "Lamp",
            "category": {"code": "lights"},
            "price": 9.5,
            "createdAt": "2026-01-02T03:04:05Z",
            "qty": 3,
        },
        {
            "id": "P2",
            "title": "Desk",
            "category": {"code": "desks"},
            "price": 120,
            "createdAt": "2026-01-03T03:04:05Z",
            "qty": 0,
        },
    ]
    info = {p.path: p for p in profile(records)}
    assert info["$.price"].type == "number" and info["$.qty"].type == "integer"
    assert info["$.createdAt"].type == "datetime"
    assert info["$.title"].samples == ["Lamp", "Desk"]
    pairs = {f.generate: f.extract for f in suggest(records, PRODUCTS)}
    assert pairs["external_id"] == "$.id"
    assert pairs["name"] == "$.title"
    assert pairs["classification_category_id"] == "$.category.code"
    assert pairs["created_at"] == "$.createdAt"


def test_rows_as_lists_read_by_column_index():
    """CSV rows stay lists; the mapping compiled for the columns reads them by index, and
    agrees with the careful path on every row."""
    from studio.errors import StudioError

    columns = ["id", "name", "price", "stock"]
    mapper = Mapper(
        [
            fm("id", "external_id"),
            fm("name", "name"),
            fm("price", "price", type="number"),
            fm("stock", "stock", type="integer"),
            fm('"EUR"', "currency"),
        ],
        columns=columns,
    )
    lines = [["S1", "Lamp", "12,50", "3"], ["S2", "Desk", "abc", "4.0"], ["S3", "", "1", ""]]
    batch = mapper.map(lines)
    assert batch.rows == [
        {"external_id": "S1", "name": "Lamp", "price": 12.5, "stock": 3, "currency": "EUR"},
        {"external_id": "S3", "name": None, "price": 1.0, "stock": None, "currency": "EUR"},
    ]
    assert [r.as_dict() for r in batch.rejects] == [
        {"record": 1, "field": "price", "reason": "price: 'abc' is not a number"}
    ]
    with pytest.raises(StudioError) as e:
        Mapper([fm("titel", "name")], columns=columns)
    assert str(e.value) == (
        "the mapping reads column 'titel', which the file does not have "
        "(its columns: id, name, price, stock)"
    )


def test_typed_rows_give_the_fields_to_preview_and_each_rows_problem_by_column():
    from studio.entities import entity
    from studio.mapping import typed_fields

    rows = [
        {"extract": "$.id", "generate": "external_id", "type": "string"},
        {"extract": "", "generate": "", "type": "string"},  # just added: no problem yet
        {"extract": "$.qty", "generate": "quantity", "type": "integer"},
        {"extract": "$.price[", "generate": "price", "type": "number"},
        {"extract": "$.cur", "generate": "", "type": "string"},
        {"extract": "$.id", "generate": "external_id", "type": "string"},
        {"extract": "$.from", "generate": "valid_from", "type": "date", "default": "soon"},
    ]
    fields, problems = typed_fields(rows, entity("Offers"))
    assert [f.generate for f in fields] == ["external_id"]
    assert problems[2] == {
        "generate": "'quantity' is not a field of Offers (did you mean min_quantity?)"
    }
    assert problems[3]["extract"].startswith("JSONPath '$.price[': ends too early")
    assert problems[4] == {"generate": "which field of Offers does it fill?"}
    assert problems[5] == {"generate": "'external_id' is generated twice"}
    assert problems[6]["default"].startswith("'soon' is not a date")
    assert 1 not in problems and 0 not in problems
