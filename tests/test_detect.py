"""Guesses from a test response: the content finder and the pagination."""

from __future__ import annotations

from studio.detect import Finder, content_finders, links_of, pagination


def test_the_longest_list_of_objects_is_the_first_content_finder():
    doc = {"data": {"results": [{"id": 1}, {"id": 2}]}, "tags": [{"a": 1}], "ids": [1, 2, 3]}
    assert content_finders(doc) == [Finder("$.data.results", 2), Finder("$.tags", 1)]
    assert content_finders([{"a": 1}, {"a": 2}]) == [Finder("$", 2)]
    assert content_finders({"count": 0}) == []


def test_pagination_is_guessed_from_links_cursors_and_totals_most_telling_first():
    doc = {"items": [{"id": 1}], "meta": {"total": 95, "next": "https://x/api?page=2"}}
    assert [p.settings for p in pagination(doc)] == [
        {"style": "next_link", "next_link_path": "$.meta.next"},
        {
            "style": "offset",
            "total_records_path": "$.meta.total",
            "stop_when_empty_path": "$.meta.next",
        },
    ]
    cursor = pagination({"items": [], "next_cursor": "abc", "total_pages": 5})
    assert [p.settings["style"] for p in cursor] == ["cursor", "page"]
    assert cursor[0].why == "$.next_cursor holds a cursor"
    headers = {"Link": '<https://x/api?page=2>; rel="next"', "X-Next-Cursor": "q"}
    assert [p.settings for p in pagination({}, links_of(headers), headers)] == [
        {"style": "next_link"},
        {"style": "cursor", "cursor_header": "X-Next-Cursor"},
    ]
    assert pagination({"items": [{"id": 1}], "next": None}) == []


def test_a_style_that_does_not_read_the_next_field_stops_when_it_is_empty():
    # Facebook's Graph API: the cursor stays set on the last page, the next link goes.
    graph = {"data": [{"id": 1}], "paging": {"cursors": {"after": "b"}, "next": "https://g/x"}}
    cursor = pagination(graph)[1]
    assert cursor.settings == {
        "style": "cursor",
        "cursor_path": "$.paging.cursors.after",
        "stop_when_empty_path": "$.paging.next",
    }
    assert (
        cursor.why == "$.paging.cursors.after holds a cursor, stopping when $.paging.next is empty"
    )
    # A cursor in a header, and the body's own: stop on the body's.
    headers = {"X-Next-Cursor": "q"}
    assert [p.settings for p in pagination({"next_cursor": "q"}, {}, headers)] == [
        {"style": "cursor", "cursor_path": "$.next_cursor"},  # it stops on its own cursor
        {
            "style": "cursor",
            "cursor_header": "X-Next-Cursor",
            "stop_when_empty_path": "$.next_cursor",
        },
    ]
    # The next page's number, or a next field already null on a one-page answer.
    assert pagination({"items": [{"id": 1}], "next_page": 2})[0].settings == {
        "style": "page",
        "stop_when_empty_path": "$.next_page",
    }
    assert [p.settings for p in pagination({"count": 3, "next": None, "results": []})] == [
        {"style": "offset", "total_records_path": "$.count", "stop_when_empty_path": "$.next"}
    ]
