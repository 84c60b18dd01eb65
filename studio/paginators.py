"""Pagination, one class per style: page number, offset, cursor, next link, Link header.

As dlt's ``rest_api`` paginators do, each style answers three questions and nothing else: the
first request, the next request from a page just read, and why there is no next one. The rules
every style shares (an empty page, a value the response leaves empty on its last page, the total
pages or records a response announces) live in the base class; the engine owns what is not a
style's business (the page cap, a page that repeats the previous one, previews' limits). They
work on ``Page``, plain data, so they are tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from studio.config.jobs import PaginationBehavior
from studio.jsonpath import CompiledPath, compile_path

Params = list[tuple[str, str]]


@dataclass
class Page:
    """What a paginator may look at of one page."""

    number: int  # 1-based
    url: str  # the URL it came from (next links are relative to it)
    doc: Any  # the parsed response
    count: int  # records on this page
    seen: int  # records on all pages so far, this one included
    headers: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, dict] = field(default_factory=dict)  # requests' parsed Link header


_MISSING = object()
_EMPTY = {str: "an empty string", list: "an empty list", dict: "an empty object"}  # parsed JSON


def _emptiness(value: Any) -> str | None:
    """How ``value`` says there is nothing more (``missing``, ``null``, ``an empty list``…), or
    None for a value: ``0`` and ``false`` are values, not the absence of one."""
    if value is _MISSING:
        return "missing"
    if value is None:
        return "null"
    return None if value else _EMPTY.get(type(value))


def _compiled(expr: str) -> CompiledPath | None:
    """A setting's JSONPath compiled once per pagination, or None when the setting is empty."""
    return compile_path(expr) if expr else None


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Paginator:
    """The first request of a call, then each next one until a stop reason."""

    def __init__(self, b: PaginationBehavior, url: str, params: Params):
        self.b = b
        self.url, self.base_params = url, list(params)
        self._total_pages = _compiled(b.total_pages_path)
        self._total_records = _compiled(b.total_records_path)
        self._stop_when_empty = _compiled(b.stop_when_empty_path)

    def request(self) -> tuple[str, Params]:
        """The URL and query parameters of the next request to send."""
        return self.url, self.base_params

    def advance(self, page: Page) -> str | None:
        """Take ``page`` in; returns why pagination stops there, or None to go on."""
        if page.count == 0:
            return "an empty page"
        reason = self._said_last(page) or self._short(page)
        if reason:
            return reason
        total = _as_int(self._total_pages.get(page.doc)) if self._total_pages else None
        if total is not None and page.number >= total:
            return f"the last page ({page.number} of {total})"
        total = _as_int(self._total_records.get(page.doc)) if self._total_records else None
        if total is not None and page.seen >= total:
            return f"all {total} records read"
        return self._next(page)

    def _said_last(self, page: Page) -> str | None:
        """The page is the last when the value the analyst named (``$.next``) is missing or
        empty. Checked before the style's own rules: it is the API's own word that nothing
        follows, so it is the reason worth reporting."""
        if not self._stop_when_empty:
            return None
        empty = _emptiness(self._stop_when_empty.get(page.doc, _MISSING))
        return f"{self._stop_when_empty.expr} is {empty}" if empty else None

    def _short(self, page: Page) -> str | None:
        return None

    def _next(self, page: Page) -> str | None:
        raise NotImplementedError


class _Sized(Paginator):
    """Styles that ask for a page size, so that a page shorter than it is the last one."""

    def _short(self, page: Page) -> str | None:
        b = self.b
        if b.stop_on_short_page and page.count < b.page_size:
            return f"a short page ({page.count} of {b.page_size} records)"
        return None


class PageNumberPaginator(_Sized):
    def __init__(self, b: PaginationBehavior, url: str, params: Params):
        super().__init__(b, url, params)
        self.page = b.first_page

    def request(self) -> tuple[str, Params]:
        params = [*self.base_params, (self.b.page_param, str(self.page))]
        if self.b.size_param:
            params.append((self.b.size_param, str(self.b.page_size)))
        return self.url, params

    def _next(self, page: Page) -> str | None:
        self.page += 1
        return None


class OffsetPaginator(_Sized):
    def __init__(self, b: PaginationBehavior, url: str, params: Params):
        super().__init__(b, url, params)
        self.offset = 0

    def request(self) -> tuple[str, Params]:
        b = self.b
        return self.url, [
            *self.base_params,
            (b.offset_param, str(self.offset)),
            (b.limit_param, str(b.page_size)),
        ]

    def _next(self, page: Page) -> str | None:
        self.offset += page.count
        return None


class CursorPaginator(Paginator):
    """The next cursor from the body (a JSONPath) or a header, sent as a query parameter."""

    def __init__(self, b: PaginationBehavior, url: str, params: Params):
        super().__init__(b, url, params)
        self.cursor: str | None = None
        self._path = _compiled(b.cursor_path)

    def request(self) -> tuple[str, Params]:
        if self.cursor:
            return self.url, [*self.base_params, (self.b.cursor_param, self.cursor)]
        return self.url, self.base_params

    def _next(self, page: Page) -> str | None:
        nxt = self._path.get(page.doc) if self._path else page.headers.get(self.b.cursor_header)
        if not nxt:
            return "no next cursor"
        if str(nxt) == self.cursor:
            return "the same cursor twice"
        self.cursor = str(nxt)
        return None


class NextLinkPaginator(Paginator):
    """The next page's whole URL from the body (a JSONPath); it carries its own query."""

    def __init__(self, b: PaginationBehavior, url: str, params: Params):
        super().__init__(b, url, params)
        self.visited: set[str] = set()
        self._path = _compiled(b.next_link_path)

    def link(self, page: Page) -> Any:
        return self._path.get(page.doc) if self._path else None

    def _next(self, page: Page) -> str | None:
        nxt = self.link(page)
        if not nxt:
            return "no next link"
        nxt = urljoin(page.url, str(nxt))
        self.visited.add(page.url)
        if nxt in self.visited:
            return "a next link seen before"
        self.url, self.base_params = nxt, []
        return None


class LinkHeaderPaginator(NextLinkPaginator):
    """The next page's URL from the ``Link`` header's ``rel="next"`` (RFC 8288, GitHub's way)."""

    def link(self, page: Page) -> Any:
        return page.links.get("next", {}).get("url")


def paginator_for(b: PaginationBehavior, url: str, params: Params) -> Paginator:
    if b.style == "page":
        return PageNumberPaginator(b, url, params)
    if b.style == "offset":
        return OffsetPaginator(b, url, params)
    if b.style == "cursor":
        return CursorPaginator(b, url, params)
    if b.next_link_path:
        return NextLinkPaginator(b, url, params)
    return LinkHeaderPaginator(b, url, params)
