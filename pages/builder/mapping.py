"""The Records and mapping section: the content finder and the mapping, live on the last
test's cached responses. It runs in a fragment, so typing reruns only this part and never calls
the API again."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.builder.draft import Draft
from pages.builder.files import SHOWN
from studio.engine import find_records
from studio.mapping import FieldMap, Mapper, profile, suggest, unmapped_required

TYPES = ["string", "integer", "number", "boolean", "date", "datetime"]


def mapping_rows(rows: list[dict]) -> tuple[list[FieldMap], list[str]]:
    """The rows that make valid fields, and a message for each that does not."""
    fields, problems = [], []
    for n, row in enumerate(rows, 1):
        data = {k: v for k, v in row.items() if v not in (None, "")}
        data.setdefault("type", "string")
        data["required"] = bool(row.get("required"))
        try:
            fields.append(FieldMap.model_validate(data))
        except ValueError as e:
            reason = str(e).split("\n", 2)[-1].split(" [type=")[0].replace("Value error, ", "")
            problems.append(f"Mapping row {n}: {reason.strip()}")
    return fields, problems


def records(d: Draft) -> list:
    """The content finder, and the records it finds in the last test."""
    draft, test = d.data, d.test
    api = draft["kind"] == "api"
    finder = "$"
    if api:
        finder = draft["content_finder"] = st.text_input(
            "Content finder (JSONPath)",
            key=d.seeded(d.key("content_finder"), draft["content_finder"]),
            help="Where the records are in each response of the last call, "
            "e.g. $.items or $.data.results[*]",
        )
    if not test:
        st.info("Test a call (in Calls and tests) to see its records here.")
        return []
    trace = test["trace"]
    found: list = []
    if trace["documents"]:
        found, error, near = find_records(trace["documents"], finder or "$")
        if error:
            st.error(error)
        elif not found:
            st.warning(f"No records at {finder}. Paths that match: " + ", ".join(near))
    else:
        found = trace["records"]
        if found and api:
            st.caption(
                "Rows of a downloaded file are the records; the content finder does not apply "
                "to them."
            )
    origin = f"the test of call {test['call']}" if api else "the test of the file"
    st.markdown(
        f"**{len(found):,} records** from {origin}"
        + (f" (showing {SHOWN})" if len(found) > SHOWN else "")
    )
    if found:
        st.dataframe(
            pd.json_normalize(found[:SHOWN], max_level=2),
            width="stretch",
            height=220,
            key=d.key("records_table"),
        )
    return found


def tools(d: Draft, spec, found: list, rows: list[dict]) -> list[dict]:
    """The field browser and the suggestions; they replace the mapping's rows."""
    bar = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    paths = profile(found) if found else []
    picked = bar[0].selectbox(
        "Field browser",
        [p.path for p in paths],
        index=None,
        key=d.key("browse"),
        placeholder="a field of the records…",
        format_func=lambda p: next(
            f"{i.path} · {i.type} · {', '.join(map(repr, i.samples))}"[:90]
            for i in paths
            if i.path == p
        ),
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
        pick = {"extract": picked, "generate": target, "type": spec.fields[target].type}
        rows = [*kept, pick | {"required": False}]
        d.replace_table("mapping", rows)  # the editor below starts from these rows
    if bar[3].button("Suggest mapping", key=d.key("suggest"), disabled=not found):
        have = {r.get("generate") for r in rows}
        extra = [f.model_dump() for f in suggest(found, spec) if f.generate not in have]
        rows = [*rows, *extra]
        d.replace_table("mapping", rows)
        st.toast(f"Suggested {len(extra)} field(s)")
    return rows


def mapping_table(d: Draft, spec, rows: list[dict]) -> list[dict]:
    column = st.column_config
    edited = d.table(
        "mapping",
        rows,
        ["extract", "generate", "type", "format", "default", "required"],
        {
            "extract": column.TextColumn(
                "Extract",
                help="JSONPath ($.price.amount), a column or "
                'dotted path (price.amount), or a quoted literal ("EUR")',
            ),
            "generate": column.SelectboxColumn("Generate", options=list(spec.fields)),
            "type": column.SelectboxColumn("Type", options=TYPES),
            "format": column.TextColumn("Input format", help="For dates: %d/%m/%Y; empty: ISO"),
            "default": column.TextColumn("Default"),
            "required": column.CheckboxColumn("Required"),
        },
    )
    return [
        {
            "extract": r.get("extract") or "",
            "generate": r["generate"],
            "type": r.get("type") or "string",
            "format": r.get("format") or "",
            "default": r.get("default") or None,
            "required": bool(r.get("required")),
        }
        for r in edited
        if r.get("generate")
    ]


def mapped(spec, found: list, mapping: list[dict], key) -> None:
    """The rows and the rejects the mapping makes of the records."""
    fields, problems = mapping_rows(mapping)
    for p in problems:
        st.error(p)
    if not (found and fields):
        return
    batch = Mapper(fields, spec).map(found)
    st.markdown(f"**{len(batch.rows):,} rows**, **{len(batch.rejects):,} rejects**")
    st.dataframe(pd.DataFrame(batch.rows[:SHOWN]), width="stretch", height=220, key=key("rows"))
    if batch.rejects:
        rejects = pd.DataFrame([r.as_dict() for r in batch.rejects[:SHOWN]])
        st.dataframe(
            rejects.style.set_properties(**{"background-color": "#fde2e1"}),
            width="stretch",
            key=key("rejects"),
            hide_index=True,
            column_config={"record": "Row", "field": "Field", "reason": "Why"},
        )


@st.fragment
def records_and_mapping(d: Draft, entities: dict) -> None:
    draft = d.data
    spec = entities[draft["entity"]]
    found = records(d)
    st.subheader("Mapping")
    required_slot = st.empty()  # filled once the mapping below is known
    rows = tools(d, spec, found, draft["mapping"])
    draft["mapping"] = mapping_table(d, spec, rows)
    missing = unmapped_required(
        [FieldMap(extract=r["extract"], generate=r["generate"]) for r in draft["mapping"]], spec
    )
    required_slot.caption(
        f"Required fields of {spec.name}: "
        + ", ".join(f"{f} {'⚠️ not mapped' if f in missing else '✓'}" for f in spec.required)
    )
    mapped(spec, found, draft["mapping"], lambda name: d.key(f"{name}_table"))
