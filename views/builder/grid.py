"""The mapping as a live grid, and the content finder as a live input: both report what is
typed ~250 ms after the last keystroke, so the records and rows follow without Enter.

The content finder is ``streamlit-keyup`` (a text input that reports on keystrokes). The grid
is a component of our own (Streamlit components v2: plain DOM in the page, no iframe, nothing
to build), because no component of the field edits a table that reports on keystrokes:
``st.data_editor`` commits a cell on Enter or blur only. It draws what Python tells it (the
entity's fields, the record paths, each row's problems) and never writes data as HTML.

Neither can be set from Python once drawn; a value replaced from Python (a suggestion, a
picked field) is drawn under a new version, which the component takes as a fresh start.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from st_keyup import st_keyup

from views.builder.draft import Draft

DEBOUNCE_MS = 250
TYPES = ["string", "integer", "number", "boolean", "date", "datetime"]
_ASSETS = Path(__file__).parent / "assets"
_GRID = st.components.v2.component(
    "connector_studio.mapping_grid",
    html=(_ASSETS / "mapping_grid.html").read_text("utf-8"),
    css=(_ASSETS / "mapping_grid.css").read_text("utf-8"),
    js=(_ASSETS / "mapping_grid.js").read_text("utf-8"),
)


def version(d: Draft, name: str) -> int:
    """The version of a live widget's value, kept apart from the draft's widget keys: it only
    grows, also across a Discard, so a browser never takes a new start for the old one."""
    return d.state.setdefault(f"jbv.{d.jid}.{name}", 0)


def replace(d: Draft, name: str) -> None:
    """The value of ``name`` was set from Python: draw its widget afresh."""
    d.state[f"jbv.{d.jid}.{name}"] = version(d, name) + 1


def live_text(d: Draft, name: str, label: str, value: str, placeholder: str = "") -> str:
    """A text input that reports each pause in typing, not only Enter."""
    return st_keyup(
        label,
        value=value,
        key=d.key(name, "v", version(d, name)),
        debounce=DEBOUNCE_MS,
        placeholder=placeholder,
    )


def grid_key(d: Draft, name: str = "mapping") -> str:
    """Where the grid keeps what it last reported (AppTest sets it there too)."""
    return d.key(f"{name}_grid")


def grid_rows(d: Draft, saved: list[dict], name: str = "mapping") -> list[dict]:
    """The mapping's rows as last typed in the grid (blanks included), else ``saved``."""
    reported = (d.state.get(grid_key(d, name)) or {}).get("rows")
    if reported and reported.get("version") == version(d, name):
        return reported["rows"]
    return saved


def mapping_grid(
    d: Draft,
    spec,
    rows: list[dict],
    paths: list[tuple[str, str]],
    problems: dict,
    summary: str,
    lookups: list[str] = (),
    name: str = "mapping",
) -> None:
    """The grid over ``rows``, with each row's ``problems`` (``{row index: {column:
    message}}``) under its cells, the entity's fields offered for Generate and ``paths`` (the
    records' fields, with a hint) for Extract."""
    fields = [
        {
            "name": name,
            "type": f.type,
            "required": f.required,
            "label": f"{f.type}{' · required' if f.required else ''}"
            + (f" · {f.description}" if f.description else ""),
        }
        for name, f in spec.fields.items()
    ]
    _GRID(
        data={
            "id": d.key(name, "grid").replace(".", "-"),
            "version": version(d, name),
            "rows": rows,
            "fields": fields,
            "entity": spec.name,
            "paths": paths,
            "types": TYPES,
            "errors": {str(n): p for n, p in problems.items()},
            "summary": summary,
            "lookups": list(lookups),
            "debounce": DEBOUNCE_MS,
        },
        default={"rows": None},
        key=grid_key(d, name),
        on_rows_change=lambda: None,
    )
