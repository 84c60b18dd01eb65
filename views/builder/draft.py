"""The job being edited, and every session key it owns.

The draft is kept in the session (``jb_drafts``), apart from the widgets, so that nothing typed
is lost when the analyst switches pages (Streamlit forgets the state of widgets that are not
drawn): widgets are seeded from the draft and write back into it on every run. The last test of
each job (``jb_tests``) and its preview limits (``jb_limits``) live beside it. ``Draft`` is the
one place that knows these keys; the sections only ask it.

Each run ends with ``persist``: a draft that changed is written to the studio's home
(``studio.drafts``) under its key (the job's id, or ``new-…`` for a job not saved yet), which
the page's URL carries, so that a reload or a second tab opens it again.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import uuid
from typing import Any

import pandas as pd
import streamlit as st
from pydantic import BaseModel

from studio.config.jobs import ApiJob, FileJob, draft_job, job_problems
from studio.drafts import DraftStore
from studio.engine import PREVIEW_PAGES, PREVIEW_RECORDS
from studio.errors import StudioError
from studio.heap import settle

CONN_KIND = {"api": "api", "file": "file_server"}
DEFAULT_LIMITS = {"pages": PREVIEW_PAGES, "records": PREVIEW_RECORDS}
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


def saved_data(job) -> dict:
    return job.model_dump(mode="json", exclude={"created_at", "updated_at"})


EMPTY = ("", None, [], {}, {"type": "none"})


def _pruned(value: Any) -> Any:
    """``value`` without its empty parts, at every depth."""
    if isinstance(value, dict):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in EMPTY}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


@functools.cache
def _defaults(model) -> dict:
    """The job's fields with a default, as JSON values (a default that is not a valid value
    by itself, such as a file source to fill in, is left out)."""
    out = {}
    for name, f in model.model_fields.items():
        if f.is_required():
            continue
        try:
            value = f.get_default(call_default_factory=True)
        except ValueError:
            continue
        out[name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return out


PLACEHOLDER = "·"  # stands in for what is still empty, so that a draft reads as a job


def normal(data: dict) -> str:
    """A draft for comparing, whatever the widgets filled in: read as the job it would be (its
    empty required fields filled with a placeholder, the same on both sides of a comparison),
    so that a widget that only wrote a default changes nothing; else without its empty parts
    and its top-level defaults."""
    probe = copy.deepcopy(data)
    probe["name"] = probe.get("name") or PLACEHOLDER
    probe["connection_id"] = probe.get("connection_id") or PLACEHOLDER
    for call in probe.get("calls") or []:
        call["path"] = call.get("path") or "/" + PLACEHOLDER
    for name in ("path", "inbound", "outbound"):
        if isinstance(probe.get("source"), dict) and not probe["source"].get(name):
            probe["source"][name] = PLACEHOLDER
    try:
        job = saved_data(draft_job(probe))
    except StudioError:
        pass
    else:
        if "id" not in data:
            job.pop("id")  # a new id each time a new job is read
        return json.dumps(job, sort_keys=True, default=str)
    defaults = _defaults(ApiJob if data.get("kind", "api") == "api" else FileJob)
    top = {k: v for k, v in data.items() if k not in defaults or v != defaults[k]}
    return json.dumps(_pruned(top), sort_keys=True, default=str)


class Draft:
    """One job's draft (``data``), its widget keys (``jb.<job id>.…``), last test and limits,
    kept in the session and in the studio's home: the draft under ``draft_key`` (one per
    browser link, so two analysts on one job never share a draft), the last test and the
    preview limits under ``key`` (the job's id, or the new job's key: the job's test inputs)."""

    def __init__(
        self,
        jid: str,
        current,
        connections: list,
        store: DraftStore,
        key: str,
        draft_key: str | None = None,
    ):
        self.state = st.session_state
        self.jid, self.current, self.connections = jid, current, connections
        self.store, self.store_key, self.draft_key = store, key, draft_key or key
        drafts: dict = self.state.setdefault("jb_drafts", {})
        if jid not in drafts:
            kept = store.get(self.draft_key)
            self.state[f"jb_rev.{jid}"] = store.revision(self.draft_key)
            drafts[jid] = kept or (saved_data(current) if current else new_draft(connections))
        self._drafts = drafts
        self.tests: dict = self.state.setdefault("jb_tests", {})
        self.uids: list = self.state.setdefault(
            f"jb_uids.{jid}", [self.new_uid() for _ in self.data.get("calls", [])]
        )
        self.state.setdefault(f"jb_persisted.{jid}", self._stamp([self.data, self.limits]))

    @property
    def data(self) -> dict:
        return self._drafts[self.jid]

    @property
    def stamp(self) -> str:
        """The draft's content as text: equal stamps, equal drafts."""
        return self._stamp(self.data)

    @staticmethod
    def _stamp(data: dict) -> str:
        return json.dumps(data, sort_keys=True, default=str)

    @property
    def dirty(self) -> bool:
        """Whether the draft holds changes that are not saved. Both sides are read as jobs
        first, so a widget that only wrote a field's default changes nothing."""
        stamp = self.stamp
        memo = self.state.get(f"jb_dirty_memo.{self.jid}")
        if not memo or memo[0] != stamp:
            if self.current is None:
                reference = new_draft(self.connections, self.data["kind"])
            else:
                reference = saved_data(self.current)
            memo = (stamp, normal(self.data) != normal(reference))
            self.state[f"jb_dirty_memo.{self.jid}"] = memo
        return memo[1]

    def _saved_stamp(self) -> str | None:
        """What the saved job is now, as a short digest (a draft keeps the one it began from;
        ``updated_at`` is not enough: two saves can fall in one second)."""
        if self.current is None:
            return None
        return hashlib.sha256(self._stamp(saved_data(self.current)).encode()).hexdigest()[:16]

    @property
    def changed_elsewhere(self) -> str | None:
        """When the job was saved (by someone else, the CLI, the API) after this draft began."""
        base = self.store.base(self.draft_key) if self.current else None
        if base and base != self._saved_stamp() and self.dirty:
            return self.current.updated_at.isoformat()
        return None

    @property
    def problems(self) -> list[str]:
        """What keeps the draft from being saved, checked again only when it changes."""
        stamp = self.stamp
        memo = self.state.get(f"jb_problems.{self.jid}")
        if not memo or memo[0] != stamp:
            memo = (stamp, job_problems(self.data))
            self.state[f"jb_problems.{self.jid}"] = memo
        return memo[1]

    def problems_at(self, head: str, typed: bool = True) -> list[str]:
        """The problems of the field (or the fields under) ``head``, such as "Name" or "Call
        1", without their head: shown once the analyst typed there (``typed``) or tried to
        save, so an empty new job is not a wall of red."""
        if not (typed or self.state.get(f"jb_tried.{self.jid}")):
            return []
        out = []
        for message in self.problems:
            place, _, text = message.partition(": ")
            if place == head or place.startswith(head + " › "):
                out.append(f"{place[len(head) + 3 :]}: {text}" if place != head else text)
        return out

    @property
    def taken_elsewhere(self) -> bool:
        """Whether another tab on this link wrote the draft since this one last read or wrote
        it: then this tab does not write over it until the analyst chooses."""
        return self.store.revision(self.draft_key) != self.state.get(f"jb_rev.{self.jid}", 0)

    def persist(self, force: bool = False) -> None:
        """Write the draft to the studio's home if it changed since the last write (a draft
        that is the saved job again is dropped), unless another tab wrote it meanwhile."""
        stamp = self._stamp([self.data, self.limits])
        if self.state.get(f"jb_persisted.{self.jid}") == stamp and not force:
            return
        if self.taken_elsewhere and not force:
            self.state[f"jb_conflict.{self.jid}"] = True
            return
        self.state.pop(f"jb_conflict.{self.jid}", None)
        self.state[f"jb_persisted.{self.jid}"] = stamp
        if self.store.limits(self.store_key) != self.limits and (
            self.store.limits(self.store_key) or self.limits != DEFAULT_LIMITS
        ):
            self.store.put_limits(self.store_key, self.limits)
        if not self.dirty:
            if self.store.get(self.draft_key) is not None:
                self.state[f"jb_rev.{self.jid}"] = self.store.drop(self.draft_key)
            return
        started = self._saved_stamp()
        stored = self.store.get(self.draft_key) is not None
        base = self.store.base(self.draft_key) if stored else started
        job_id = self.current.id if self.current else ""
        self.state[f"jb_rev.{self.jid}"] = self.store.put(self.draft_key, self.data, base, job_id)

    def take_theirs(self) -> None:
        """The other tab's version replaces this one's."""
        self.state.pop(f"jb_conflict.{self.jid}", None)
        self._forget_draft()

    def restart(self, kind: str) -> None:
        """A new draft of another kind, keeping the name and entity typed so far."""
        self._drafts[self.jid] = new_draft(self.connections, kind) | {
            "name": self.data["name"],
            "entity": self.data["entity"],
        }

    def discard(self) -> None:
        """Forget the draft and its widgets: the job is reloaded from the store."""
        self.state[f"jb_rev.{self.jid}"] = self.store.drop(self.draft_key)
        self._forget_draft()

    def _forget_draft(self) -> None:
        cancel_test(self)
        self._drafts.pop(self.jid, None)
        self.state.pop(f"jb_persisted.{self.jid}", None)
        self.forget(f"jb.{self.jid}.")
        self.forget(f"_st_keyup_jb.{self.jid}.")
        self.state.pop(f"jb_uids.{self.jid}", None)
        for k in [k for k in self.state if str(k).startswith(f"jbv.{self.jid}.")]:
            self.state[k] += 1  # live widgets start again from the job

    def saved_as(self, new_id: str) -> None:
        """The draft was saved: what was kept of it (limits, last test) follows the job."""
        self.store.drop(self.draft_key)
        if self.jid == "new":
            self.store.move(self.store_key, new_id)
            self.tests[new_id] = self.tests.pop("new", None) or self.tests.get(new_id)
            every = self.state.setdefault("jb_limits", {})
            every[new_id] = every.pop("new", self.limits)
            self.state.pop("jb_new_key", None)

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
        if self.jid not in self.tests:
            self.tests[self.jid] = self.store.get_test(self.store_key)
            if self.tests[self.jid] is not None:
                settle()  # a test read back after a reload, as one just run
        return self.tests[self.jid]

    @test.setter
    def test(self, value: dict) -> None:
        self.tests[self.jid] = value
        self.store.put_test(self.store_key, value)
        settle()  # the cached test, out of the collector's way while the analyst types

    @property
    def limits(self) -> dict:
        every = self.state.setdefault("jb_limits", {})
        if self.jid not in every:
            every[self.jid] = self.store.limits(self.store_key) or dict(DEFAULT_LIMITS)
        return every[self.jid]

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


def unsaved_bar(d: Draft, where) -> None:
    """The unsaved mark, Discard behind a confirmation, and a warning when the job was saved
    elsewhere after the draft began (Save would replace that version)."""
    if d.state.get(f"jb_conflict.{d.jid}"):
        where.warning(
            "This draft was changed in another tab or window on the same link since this one "
            "read it: nothing typed here is kept until you choose."
        )
        mine, theirs = where.columns(2)
        if mine.button("Keep this tab's version", key="jb_keep_mine"):
            d.persist(force=True)
            st.rerun()
        if theirs.button("Take the other version", key="jb_take_theirs"):
            d.take_theirs()
            st.rerun()
    if not d.dirty:
        return
    bar = where.container(horizontal=True, vertical_alignment="center")
    bar.markdown(":orange[**● Unsaved changes**] · kept under this page's link until saved")
    with bar.popover("Discard…"):
        back = "go back to the saved job" if d.current else "start an empty job"
        st.write(f"Discard the unsaved changes and {back}? This cannot be undone.")
        if st.button("Discard", key="jb_discard", type="primary"):
            d.discard()
            st.rerun()
    if when := d.changed_elsewhere:
        where.warning(
            f"This job was saved elsewhere (at {when[:19].replace('T', ' ')} UTC) after your "
            "draft began: Save replaces that version with yours, Discard takes it instead."
        )


def cancel_test(d: Draft) -> None:
    """Stop the draft's running test, if any: a test nobody will see must not go on calling
    the API (a second test, Discard, Save, Delete)."""
    task = d.state.pop(d.key("task"), None)
    if task is not None:
        task.cancel()
