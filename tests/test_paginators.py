"""Each pagination style on plain pages, without a server: its requests and its stop reasons.
(The engine's server tests run them against the sandbox too.)"""

from __future__ import annotations

from studio.config.jobs import PaginationBehavior
from studio.paginators import (
    CursorPaginator,
    LinkHeaderPaginator,
    NextLinkPaginator,
    OffsetPaginator,
    Page,
    PageNumberPaginator,
    paginator_for,
)

URL = "https://api.example.com/items"


def behavior(**settings) -> PaginationBehavior:
    return PaginationBehavior(**settings)


def page(number, count, seen=None, doc=None, url=URL, **extra) -> Page:
    return Page(number, url, doc or {}, count, seen if seen is not None else count, **extra)


def test_page_numbers_stop_on_a_short_page_or_the_total():
    p = PageNumberPaginator(behavior(page_size=2, first_page=0), URL, [("q", "x")])
    assert p.request() == (URL, [("q", "x"), ("page", "0"), ("size", "2")])
    assert p.advance(page(1, 2)) is None
    assert p.request()[1][-2:] == [("page", "1"), ("size", "2")]
    assert p.advance(page(2, 1, seen=3)) == "a short page (1 of 2 records)"
    totals = PageNumberPaginator(
        behavior(page_size=2, total_pages_path="$.pages", stop_on_short_page=False), URL, []
    )
    assert totals.advance(page(1, 2, doc={"pages": 2})) is None
    assert totals.advance(page(2, 2, doc={"pages": 2})) == "the last page (2 of 2)"
    no_size = PageNumberPaginator(behavior(size_param=""), URL, [])
    assert no_size.request() == (URL, [("page", "1")])


def test_offsets_advance_by_the_records_read_and_stop_on_the_total():
    p = OffsetPaginator(behavior(page_size=10, total_records_path="$.total"), URL, [])
    assert p.request() == (URL, [("offset", "0"), ("limit", "10")])
    assert p.advance(page(1, 10, doc={"total": 15})) is None
    assert p.request() == (URL, [("offset", "10"), ("limit", "10")])
    assert p.advance(page(2, 5, seen=15, doc={"total": 15})) == "a short page (5 of 10 records)"
    full = OffsetPaginator(behavior(page_size=5, total_records_path="$.total"), URL, [])
    assert full.advance(page(1, 5, seen=5, doc={"total": 5})) == "all 5 records read"


def test_an_empty_page_ends_every_style():
    for style in ("page", "offset", "cursor", "next_link"):
        b = behavior(style=style, cursor_path="$.next" if style == "cursor" else "")
        assert paginator_for(b, URL, []).advance(page(1, 0)) == "an empty page"


def test_cursor_from_the_body_or_a_header():
    p = CursorPaginator(behavior(style="cursor", cursor_path="$.next"), URL, [("q", "x")])
    assert p.request() == (URL, [("q", "x")])  # no cursor on the first request
    assert p.advance(page(1, 3, doc={"next": "c2"})) is None
    assert p.request() == (URL, [("q", "x"), ("cursor", "c2")])
    assert p.advance(page(2, 3, doc={"next": "c2"})) == "the same cursor twice"
    assert p.advance(page(3, 3, doc={})) == "no next cursor"
    h = CursorPaginator(behavior(style="cursor", cursor_header="X-Next"), URL, [])
    assert h.advance(page(1, 3, headers={"X-Next": "abc"})) is None
    assert h.request() == (URL, [("cursor", "abc")])


def test_next_links_from_the_body_carry_their_own_query_and_never_loop():
    p = NextLinkPaginator(behavior(style="next_link", next_link_path="$.next"), URL, [("q", "x")])
    assert p.request() == (URL, [("q", "x")])
    assert p.advance(page(1, 2, doc={"next": "/items?page=2"})) is None
    assert p.request() == ("https://api.example.com/items?page=2", [])
    second = "https://api.example.com/items?page=2"
    assert p.advance(page(2, 2, url=second, doc={"next": URL})) == "a next link seen before"
    assert p.advance(page(3, 2, doc={})) == "no next link"


def test_the_link_header_is_its_own_style():
    b = behavior(style="next_link")
    p = paginator_for(b, URL, [])
    assert isinstance(p, LinkHeaderPaginator)
    nxt = {"next": {"url": "https://api.example.com/items?after=9"}}
    assert p.advance(page(1, 2, links=nxt)) is None
    assert p.request() == ("https://api.example.com/items?after=9", [])
    assert p.advance(page(2, 2, url=p.url)) == "no next link"


def test_a_value_left_empty_on_the_last_page_stops_every_style():
    empties = [
        ({"meta": {"next": None}}, "null"),
        ({"meta": {}}, "missing"),
        ({}, "missing"),
        ({"meta": {"next": ""}}, "an empty string"),
        ({"meta": {"next": []}}, "an empty list"),
        ({"meta": {"next": {}}}, "an empty object"),
    ]
    for style in ("page", "offset", "cursor", "next_link"):
        b = behavior(
            style=style,
            cursor_path="$.c" if style == "cursor" else "",
            next_link_path="$.link" if style == "next_link" else "",
            stop_when_empty_path="$.meta.next",
        )
        for doc, said in empties:
            p = paginator_for(b, URL, [])
            assert p.advance(page(1, 100, doc={"c": "x", "link": "/p2", **doc})) == (
                f"$.meta.next is {said}"
            )
        for value in ("/p2", 0, False, ["x"]):  # 0 and false are values, not their absence
            doc = {"c": "x", "link": "/p2", "meta": {"next": value}}
            assert paginator_for(b, URL, []).advance(page(1, 100, doc=doc)) is None


def test_the_stop_path_may_be_any_jsonpath():
    b = behavior(stop_when_empty_path="$.links[?(@.rel=='next')].href")
    p = paginator_for(b, URL, [])
    assert p.advance(page(1, 100, doc={"links": [{"rel": "next", "href": "/p2"}]})) is None
    last = {"links": [{"rel": "prev", "href": "/p1"}]}
    assert p.advance(page(2, 100, doc=last)) == "$.links[?(@.rel=='next')].href is missing"
