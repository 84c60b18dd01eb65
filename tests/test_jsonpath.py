"""Compiled JSONPath: the fast path and the full engine agree; errors say where."""

from __future__ import annotations

import pytest

from studio.jsonpath import JsonPathError, check, compile_path, leaf_paths

DOC = {
    "data": {"results": [{"id": 1, "tags": ["a"]}, {"id": 2}]},
    "items": [{"sku": "A", "price": {"amount": 3}}, {"sku": "B", "price": {"amount": 10}}],
    "weird key": {"x": 1},
    "next": None,
}


@pytest.mark.parametrize(
    ("expr", "plain", "values"),
    [
        ("$", True, [DOC]),
        ("$.items", True, [DOC["items"]]),
        ("$.data.results[1].id", True, [2]),
        ("$['weird key'].x", True, [1]),
        ("$.missing.deeper", True, []),
        ("$.next", True, [None]),
        ("data.results", True, [DOC["data"]["results"]]),
        ("$.data.results[*].id", False, [1, 2]),
        ("$.data.results[*]", False, DOC["data"]["results"]),
        ("$.items[*].price.amount", False, [3, 10]),
        ("$['weird key'][*]", False, [1]),
        ("$.data.*", False, [DOC["data"]["results"]]),
        ("$.items[?(@.price.amount > 5)].sku", False, ["B"]),
        ("$..sku", False, ["A", "B"]),
    ],
)
def test_values(expr, plain, values):
    """The fast path gives what jsonpath-ng gives."""
    from jsonpath_ng.ext import parse

    path = compile_path(expr)
    assert path.is_plain is plain
    expected = [m.value for m in parse(expr).find(DOC)] if values is None else values
    assert path.values(DOC) == expected
    assert path.values(DOC) == [m.value for m in parse(expr).find(DOC)]


def test_get_returns_first_or_default_and_never_raises_on_shape():
    assert compile_path("$.items[5].sku").get(DOC, "none") == "none"
    assert compile_path("$.items.sku").get(DOC, "none") == "none"  # a list has no key
    assert compile_path("$.data.results[*].id").get(DOC) == 1


def test_compiled_once():
    assert compile_path("$.a[*]") is compile_path("$.a[*]")


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("$.a b", "JSONPath '$.a b': unexpected 'b' at position 5\n  $.a b\n      ^"),
        (
            "$.items[",
            "JSONPath '$.items[': ends too early (an unclosed bracket or quote?) at position 9",
        ),
        ("", "JSONPath '': is empty"),
    ],
)
def test_errors_show_the_position(expr, message):
    with pytest.raises(JsonPathError) as e:
        compile_path(expr)
    assert str(e.value).startswith(message)
    assert check(expr).startswith(message)
    assert check("$.fine") is None


def test_leaf_paths_list_what_matches():
    paths = dict(leaf_paths(DOC))
    assert paths["$.data.results"] == DOC["data"]["results"]
    assert paths["$.data.results[0].id"] == 1
    assert paths["$['weird key'].x"] == 1
    assert "$.items[0].price.amount" in paths
