"""The job being edited, and every session key it owns.

The draft is kept in the session (``jb_drafts``), apart from the widgets, so that nothing typed
is lost when the analyst switches pages (Streamlit forgets the state of widgets that are not
drawn): widgets are seeded from the draft and write back into it on every run. The last test of
each job (``jb_tests``) and its preview limits (``jb_limits``) live beside it. ``Draft`` is the
one place that knows these keys; the sections only ask it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import streamlit as st

from studio.engine import PREVIEW_PAGES, PREVIEW_RECORDS

CONN_KIND = {"api": "api", "file": "file_server"}
# What an empty cell holds: a checkbox needs a bool; "secret" stays unset, so that the model
# guesses it from the variable's name.
BLANK = {"required": False, "secret": None}


def new_draft(connections: list, kind: str = "api") -> dict:
    active = [c for c in connections if c.status == "active" and c.kind == CONN_KIND[kind]]
    draft = {
        "kind": kind,
        "name": "",
        "status": "active",
        "connection_id": active[0].id if active else "",
        "entity": "Products",
        "external_key": "",
        "schedule": {"type": "manual"},
        "mapping": [],
    }
    if kind == "api":
        return draft | {"calls": [{"method": "GET", "path": ""}], "content_finder": "$"}
    return draft | {"source": {"mode": "path", "path": ""}, "csv": {"delimiter": ","}}


class Draft:
    """One job's draft (``data``), its widget keys (``jb.<job id>.…``), last test and limits."""

    def __init__(self, jid: str, current, connections: list):
        self.state = st.session_state
        self.jid, self.current, self.connections = jid, current, connections
        drafts: dict = self.state.setdefault("jb_drafts", {})
        if jid not in drafts:
            drafts[jid] = (
                current.model_dump(mode="json", exclude={"created_at", "updated_at"})
                if current
                else new_draft(connections)
            )
        self._drafts = drafts
        self.tests: dict = self.state.setdefault("jb_tests", {})
        self.uids: list = self.state.setdefault(
            f"jb_uids.{jid}", [self.new_uid() for _ in self.data.get("calls", [])]
        )

    @property
    def data(self) -> dict:
        return self._drafts[self.jid]

    def restart(self, kind: str) -> None:
        """A new draft of another kind, keeping the name and entity typed so far."""
        self._drafts[self.jid] = new_draft(self.connections, kind) | {
            "name": self.data["name"],
            "entity": self.data["entity"],
        }

    def discard(self) -> None:
        """Forget the draft and its widgets: the job is reloaded from the store."""
        self._drafts.pop(self.jid, None)
        self.forget(f"jb.{self.jid}.")
        self.state.pop(f"jb_uids.{self.jid}", None)

    def saved_as(self, new_id: str) -> None:
        """A new job was saved: its last test and limits follow it to its id."""
        if self.jid == "new":
            self.tests[new_id] = self.tests.pop("new", None) or self.tests.get(new_id)
            every = self.state.setdefault("jb_limits", {})
            every[new_id] = every.pop("new", self.limits)

    @staticmethod
    def new_uid() -> str:
        return uuid.uuid4().hex[:8]

    # --- widget keys -----------------------------------------------------------------------------

    def key(self, *parts) -> str:
        return ".".join(["jb", self.jid, *map(str, parts)])

    def seeded(self, k: str, value: Any) -> str:
        """Give a widget its draft value unless it already holds one (the widget may be new, or
        forgotten after a visit to another page)."""
        if k not in self.state:
            self.state[k] = value
        return k

    def forget(self, prefix: str) -> None:
        for k in [k for k in self.state if str(k).startswith(prefix)]:
            del self.state[k]

    # --- the last test and the preview limits ----------------------------------------------------

    @property
    def test(self) -> dict | None:
        return self.tests.get(self.jid)

    @test.setter
    def test(self, value: dict) -> None:
        self.tests[self.jid] = value

    @property
    def limits(self) -> dict:
        return self.state.setdefault("jb_limits", {}).setdefault(
            self.jid, {"pages": PREVIEW_PAGES, "records": PREVIEW_RECORDS}
        )

    # --- editable tables -------------------------------------------------------------------------

    def table(self, name: str, rows: list[dict], columns: list[str], config: dict) -> list[dict]:
        """An editable table bound to the draft. The editor keeps only its edits, relative to
        the rows it started from; those rows are kept beside it, and replacing them (a
        suggestion, a pasted cURL) starts a new editor under a new version of the key."""
        version = self.state.setdefault(self.key(name, "version"), 0)
        editor = self.key(name, version)
        base = self.key(name, "base")
        if editor not in self.state or base not in self.state:
            self.state[base] = [dict(r) for r in rows]
        # Blanks as "" (and False for a checkbox), never NaN: a column that is empty in every
        # row would otherwise be typed float, and the editor refuses text in it.
        frame = pd.DataFrame(
            [
                {c: r.get(c) if r.get(c) is not None else BLANK.get(c, "") for c in columns}
                for r in self.state[base]
            ],
            columns=columns,
        )
        edited = st.data_editor(
            frame,
            key=editor,
            num_rows="dynamic",
            width="stretch",
            column_config=config,
            hide_index=True,
        )
        out = []
        for row in edited.to_dict("records"):
            clean = {
                k: (None if (not isinstance(v, list | dict) and pd.isna(v)) else v)
                for k, v in row.items()
            }
            if any(v not in (None, "") for v in clean.values()):
                out.append(clean)
        return out

    def replace_table(self, name: str, rows: list[dict]) -> None:
        self.state[self.key(name, "version")] = self.state.get(self.key(name, "version"), 0) + 1
        self.state[self.key(name, "base")] = rows

    def param_table(self, name: str, rows: list[dict]) -> list[dict]:
        """A name/value table (query parameters, headers, form fields)."""
        text = st.column_config.TextColumn
        edited = self.table(
            name, rows, ["name", "value"], {"name": text("Name"), "value": text("Value")}
        )
        return [
            {
                "name": r.get("name") or "",
                "value": "" if r.get("value") is None else str(r["value"]),
            }
            for r in edited
        ]
