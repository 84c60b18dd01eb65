"""The Records and mapping section: the content finder and the mapping, live on the last
test's cached responses. It runs in a fragment, so typing reruns only this part and never calls
the API again; what the content finder finds is kept per test and finder, so a mapping edit
maps the records without finding them again."""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from studio.access import acting_who
from studio.children import WithChildren
from studio.config.entities import FIELD_NAME, add_field
from studio.config.store import ConfigStore
from studio.engine import find_records
from studio.errors import StudioError
from studio.mapping import Mapper, profile, suggest, typed_fields, unmapped_required
from studio.runhistory import plural
from views.access import fragment
from views.builder.children import child_previews, children_editor
from views.builder.draft import Draft
from views.builder.files import SHOWN
from views.builder.grid import grid_rows, live_text, mapping_grid, replace
from views.builder.lookups import lookups_editor, valid_lookups
from views.common import allowed

TYPED = ("extract", "generate", "template")  # a row holding none of them is a blank row


def content_finder(d: Draft) -> str:
    """The content finder, live as it is typed; also drawn beside the test of the calls."""
    draft = d.data
    draft["content_finder"] = live_text(
        d, "content_finder", "Content finder (JSONPath)", draft["content_finder"], "$.items"
    )
    st.caption("Where the records are in each response of the last call: $.items, $.data[*]")
    return draft["content_finder"] or "$"


def use_finder(d: Draft, path: str) -> None:
    d.data["content_finder"] = path
    replace(d, "content_finder")


def found(d: Draft) -> dict:
    """What the content finder finds in the last test, kept until the test or finder changes:
    records, error, near paths, the records' fields and their first rows as a table."""
    test, finder = d.test, d.data.get("content_finder") or "$"
    if not test:
        return {"records": [], "error": None, "near": [], "paths": [], "table": None}
    memo = d.state.get(d.key("found"))
    stamp = (test["at"], test["call"], finder if test["trace"]["documents"] else "")
    if memo and memo[0] == stamp:
        return memo[1]
    trace = test["trace"]
    if trace["documents"]:
        records, error, near = find_records(trace["documents"], finder)
    else:
        records, error, near = trace["records"], None, []
    result = {
        "records": records,
        "error": error,
        "near": near,
        "paths": [
            (p.path, f"{p.type} · {', '.join(map(repr, p.samples))}"[:80]) for p in profile(records)
        ],
        "table": pd.json_normalize(records[:SHOWN], max_level=2) if records else None,
    }
    d.state[d.key("found")] = (stamp, result)
    return result


def records(d: Draft) -> dict:
    """The content finder, and the records it finds in the last test."""
    api = d.data["kind"] == "api"
    finder = content_finder(d) if api else "$"
    if not d.test:
        st.info("Test a call (in Calls and tests) to see its records here.")
        return found(d)
    result = found(d)
    if result["error"]:
        st.error(result["error"])
    elif not result["records"] and result["near"]:
        st.warning(f"No records at {finder}. Paths that match: " + ", ".join(result["near"]))
    elif api and not d.test["trace"]["documents"] and result["records"]:
        st.caption(
            "Rows of a downloaded file are the records; the content finder does not apply to them."
        )
    n = len(result["records"])
    origin = f"the test of call {d.test['call']}" if api else "the test of the file"
    st.markdown(
        f"**{plural(n, 'record')}** from {origin}" + (f" (showing {SHOWN})" if n > SHOWN else "")
    )
    records_table(d, result)
    return result


def records_table(d: Draft, result: dict, height: int = 220) -> None:
    if result["table"] is not None:
        st.dataframe(result["table"], width="stretch", height=height, key=d.key("records_table"))


def tools(d: Draft, spec, result: dict, rows: list[dict]) -> list[dict]:
    """The field browser and the suggestions; they replace the grid's rows."""
    bar = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    hints = dict(result["paths"])
    picked = bar[0].selectbox(
        "Field browser",
        list(hints),
        index=None,
        key=d.key("browse"),
        placeholder="a field of the records…",
        format_func=lambda p: f"{p} · {hints[p]}"[:90],
    )
    target = bar[1].selectbox(
        "Generate",
        list(spec.fields),
        index=None,
        key=d.key("browse_to"),
        placeholder="entity field…",
    )
    if bar[2].button("Use", key=d.key("browse_use"), disabled=not (picked and target)):
        kept = [r for r in rows if r.get("generate") != target]
        rows = [*kept, {"extract": picked, "generate": target, "type": spec.fields[target].type}]
        replace(d, "mapping")  # the grid starts again from these rows
    if bar[3].button("Suggest mapping", key=d.key("suggest"), disabled=not result["records"]):
        have = {r.get("generate") for r in rows}
        extra = [f.model_dump() for f in suggest(result["records"], spec) if f.generate not in have]
        rows = [*rows, *extra]
        replace(d, "mapping")
        st.toast(f"Suggested {plural(len(extra), 'field')}")
    return rows


def clean(row: dict) -> dict:
    """A grid row as the draft keeps it (with any setting of the field the grid does not
    show, as it was)."""
    return row | {
        "extract": row.get("extract") or "",
        "generate": (row.get("generate") or "").strip(),
        "type": row.get("type") or "string",
        "format": row.get("format") or "",
        "default": row.get("default") or None,
        "required": bool(row.get("required")),
    }


def preview(spec, batch, columns: list[str], key) -> None:
    """The rows and the rejects the mapping makes of the records."""
    dropped = f", {len(batch.discarded):,} dropped (empty)" if batch.discarded else ""
    st.markdown(
        f"**{plural(len(batch.rows), 'row')}**, **{plural(len(batch.rejects), 'reject')}**"
        + dropped
    )
    frame = pd.DataFrame(batch.rows[:SHOWN], columns=columns)
    st.dataframe(frame, width="stretch", height=220, key=key(f"rows.{spec.name}"))
    if batch.rejects:
        # A plain table: a pandas Styler (a colour per cell) took ~100 ms per keystroke here.
        rejects = pd.DataFrame([r.as_dict() for r in batch.rejects[:SHOWN]])
        st.markdown(":red[**Rejects**] (the records the mapping refuses, and why)")
        st.dataframe(
            rejects,
            width="stretch",
            key=key("rejects"),
            hide_index=True,
            column_config={"record": "Row", "field": "Field", "reason": "Why"},
        )


def new_fields(d: Draft, spec, rows: list[dict], problems: dict) -> None:
    """A Generate name the entity does not have: offered as a field to add to the entity, once
    confirmed (the mapping is never changed to fit)."""
    names = {
        rows[n]["generate"].strip(): rows[n].get("type") or "string"
        for n, p in problems.items()
        if "is not a field of" in p.get("generate", "")
    }
    for name, kind in names.items():
        if not re.fullmatch(FIELD_NAME, name):
            continue
        with st.popover(f"Add {name!r} to {spec.name}…"):
            st.write(
                f"Add the field **{name}** ({kind}) to the entity **{spec.name}**, for every "
                "job importing into it? Its column is added at the next run."
            )
            if st.button(f"Add {name!r}", key=d.key("add_field", name), type="primary") and allowed(
                acting_who(), "editor", f"add a field to {spec.name}"
            ):
                try:
                    add_field(
                        ConfigStore(), spec.name, {"name": name, "type": kind}, source="studio"
                    )
                except StudioError as e:
                    st.error(str(e))
                else:
                    st.rerun(scope="app")  # every page now knows the field


def records_and_mapping(d: Draft, entities: dict) -> None:
    """The live part (records and mapping, in fragments), and the job's lookups under it,
    drawn first: a lookup renamed is in the draft before the mapping reads it."""
    above, below = st.container(), st.container()
    with below:
        lookups_editor(d)
    with above:
        live(d, entities)


@fragment
def live(d: Draft, entities: dict) -> None:
    """The content finder and its records; a finder typed reruns this and the mapping."""
    spec = entities[d.data["entity"]]
    result = records(d)
    st.subheader(f"Mapping to {spec.name}")
    mapping(d, spec, result, entities)


@fragment
def mapping(d: Draft, spec, result: dict, entities: dict) -> None:
    """The mapping and its rows; a field typed reruns only this, not the records above."""
    draft = d.data
    required_slot = st.empty()  # filled once the mapping below is known
    lookups = valid_lookups(draft)
    rows = tools(d, spec, result, grid_rows(d, draft["mapping"]))
    fields, problems = typed_fields(rows, spec, lookups)
    draft["mapping"] = [clean(r) for r in rows if any(r.get(k) for k in TYPED)]
    # The page's unsaved mark is drawn outside this fragment: the grid says it too, so that a
    # keystroke never costs a rerun of the whole page.
    summary = " · ".join(
        ([f"{plural(len(problems), 'row')} to fix"] if problems else [])
        + (["● unsaved changes"] if d.dirty else [])
    )
    mapping_grid(d, spec, rows, result["paths"], problems, summary, [lk.name for lk in lookups])
    new_fields(d, spec, rows, problems)
    children = (
        children_editor(d, entities, result["records"], lookups)
        if d.data.get("kind") == "api"
        else []
    )
    mapper = Mapper(fields, spec, lookups=lookups)
    if children:
        if spec.key not in {f.generate for f in fields}:
            st.warning(f"Map {spec.name}'s key ({spec.key}) to link the nested arrays' rows")
        mapper = WithChildren(mapper, spec.key, children)
    batch = mapper.map(result["records"]) if result["records"] and fields else None
    d.persist()
    missing = unmapped_required(fields, spec)
    required_slot.caption(
        f"Required fields of {spec.name}: "
        + ", ".join(f"{f} {'⚠️ not mapped' if f in missing else '✓'}" for f in spec.required)
    )
    if batch is not None:
        preview(spec, batch, [f.generate for f in fields], lambda name: d.key(f"{name}_table"))
        child_previews(batch)
