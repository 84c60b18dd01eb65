"""Guesses from a test response, offered to the analyst as one-click suggestions: where the
records are (the content finder) and how the API pages (the pagination style and its settings).

Nothing here is applied on its own: a guess is a suggestion the analyst confirms, the way
Airbyte's Connector Builder offers the record selector and the paginator it detects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from studio.jsonpath import leaf_paths

_NEXT_LINK = re.compile(r"^(next|next_?page|next_?url|next_?link)$", re.I)
_CURSOR = re.compile(
    r"^(next_?cursor|cursor|next_?page_?token|next_?token|after|continuation)$", re.I
)
_TOTAL_PAGES = re.compile(r"^(total_?pages|pages|page_?count|last_?page)$", re.I)
_TOTAL_RECORDS = re.compile(r"^(total|total_?count|total_?records|total_?results|count)$", re.I)


@dataclass
class Finder:
    path: str
    records: int


@dataclass
class Paging:
    """A pagination behavior to offer: its settings, and why it is offered."""

    why: str
    settings: dict = field(default_factory=dict)


def content_finders(doc: Any, limit: int = 5) -> list[Finder]:
    """Every list of objects in ``doc``, the longest first: the first is the likeliest set of
    records, the others are alternatives."""
    found = [
        Finder(path if path != "$" else "$", len(value))
        for path, value in leaf_paths(doc)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value[:20])
    ]
    found.sort(key=lambda f: (-f.records, len(f.path)))
    return found[:limit]


def _fields(doc: Any) -> list[tuple[str, Any]]:
    """(path, value) of every scalar in ``doc`` outside lists of records."""
    return [(p, v) for p, v in leaf_paths(doc) if "[" not in p and not isinstance(v, list)]


def pagination(doc: Any, links: dict | None = None, headers: dict | None = None) -> list[Paging]:
    """How the response says there is more: a Link header, a next link or a cursor in the
    body, or totals (pages, records) for page numbers; each with a stop on the body's next
    link or cursor where the style would not read it otherwise."""
    out: list[Paging] = []
    if (links or {}).get("next"):
        out.append(Paging('the Link header has rel="next"', {"style": "next_link"}))
    nexts = []  # the body's next links and cursors, null ones too: what a last page empties
    for path, value in _fields(doc):
        name = path.rsplit(".", 1)[-1]
        if _NEXT_LINK.match(name) or _CURSOR.match(name):
            nexts.append(path)
        if isinstance(value, str) and _NEXT_LINK.match(name) and value.startswith(("http", "/")):
            out.append(Paging(f"{path} holds the next page's URL", _next(path)))
        elif type(value) is int and _NEXT_LINK.match(name):  # not a bool
            out.append(Paging(f"{path} gives the next page's number", {"style": "page"}))
        elif isinstance(value, str | int) and value != "" and _CURSOR.match(name):
            out.append(Paging(f"{path} holds a cursor", {"style": "cursor", "cursor_path": path}))
        elif isinstance(value, int) and _TOTAL_PAGES.match(name):
            settings = {"style": "page", "total_pages_path": path}
            out.append(Paging(f"{path} gives the number of pages", settings))
        elif isinstance(value, int) and _TOTAL_RECORDS.match(name):
            settings = {"style": "offset", "total_records_path": path}
            out.append(Paging(f"{path} gives the number of records", settings))
    for name, value in (headers or {}).items():
        if _CURSOR.match(name.removeprefix("X-").removeprefix("x-").replace("-", "_")) and value:
            settings = {"style": "cursor", "cursor_header": name}
            out.append(Paging(f"the {name} header holds a cursor", settings))
    # The most telling first: a link or a cursor says where the next page is; totals only how
    # many there are.
    rank = {"next_link": 0, "cursor": 1, "page": 2, "offset": 3}
    return sorted((_with_stop(p, nexts) for p in out), key=lambda p: rank[p.settings["style"]])


def _with_stop(p: Paging, nexts: list[str]) -> Paging:
    """``p`` stopping when a next link or cursor of the body is empty, where that helps: page
    numbers and offsets otherwise end only on totals, a short or an empty page (one request
    more); a cursor read elsewhere (a header, or Facebook's ``paging.cursors.after``, which
    stays set on the last page while ``paging.next`` goes) otherwise ends only when its own
    cursor does. A next link, or a cursor that is the field itself, already stops there."""
    settings = p.settings
    if settings["style"] == "next_link":
        return p
    own = settings.get("cursor_path")
    stop = next((path for path in nexts if path != own), None)
    if not stop:
        return p
    return Paging(
        f"{p.why}, stopping when {stop} is empty", {**settings, "stop_when_empty_path": stop}
    )


def links_of(headers: dict) -> dict:
    """The ``Link`` header's relations, as requests parses them."""
    import requests.utils

    value = next((v for k, v in headers.items() if k.lower() == "link"), "")
    return {
        link.get("rel"): link
        for link in requests.utils.parse_header_links(value)
        if link.get("rel")
    }


def _next(path: str) -> dict:
    return {"style": "next_link", "next_link_path": path}
