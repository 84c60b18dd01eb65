"""Nested arrays to a second entity, under the mapping: for each child entity, where its
records are in each record (a JSONPath), the field that receives the parent's key, and a
mapping grid of its own; the preview shows the child rows beside the parent rows."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from studio.children import ChildMapper, ChildMapping
from studio.errors import readable
from studio.jsonpath import JsonPathError, compile_path, records_of
from studio.mapping import profile, typed_fields
from studio.runhistory import plural
from views.builder.draft import Draft
from views.builder.files import SHOWN
from views.builder.grid import grid_rows, live_text, mapping_grid


def children_editor(d: Draft, entities: dict, records: list, lookups: list) -> list[ChildMapper]:
    """Each child drawn and written back into the draft; returns the compiled ones fit to
    preview (what is wrong with the others is said in place)."""
    children = d.data.setdefault("children", [])
    compiled = []
    with st.expander(f"Nested arrays ({len(children)})", expanded=bool(children)):
        st.caption(
            "Rows of a second entity from an array inside each record (a product's "
            "$.variants[*] → Variants), each linked to its parent by the parent's key."
        )
        for n, child in enumerate(list(children)):
            if (mapper := one_child(d, n, child, entities, records, lookups)) is not None:
                compiled.append(mapper)
        if st.button("Add a nested array", key=d.key("child_add")):
            children.append({"entity": "Variants", "path": "", "parent_key": "", "mapping": []})
            st.rerun()
    return compiled


def one_child(d: Draft, n: int, child: dict, entities: dict, records: list, lookups: list):
    box = st.container(border=True)
    cols = box.columns([2, 3, 2, 1], vertical_alignment="bottom")
    names = list(entities)
    child["entity"] = cols[0].selectbox(
        "Target entity",
        names,
        index=names.index(child["entity"]) if child.get("entity") in names else 0,
        key=d.key("ch", n, "entity"),
    )
    spec = entities[child["entity"]]
    with cols[1]:
        child["path"] = live_text(
            d, f"ch.{n}.path", "Array (JSONPath)", child.get("path", ""), "$.variants[*]"
        )
    fields = list(spec.fields)
    child["parent_key"] = cols[2].selectbox(
        "Parent key field",
        fields,
        index=fields.index(child["parent_key"]) if child.get("parent_key") in fields else 0,
        key=d.key("ch", n, "parent_key"),
        help="The child's field that receives the parent row's key",
    )
    if cols[3].button("✕", key=d.key("ch", n, "remove"), help="Remove this nested array"):
        del d.data["children"][n]
        d.forget(f"jb.{d.jid}.ch.")
        st.rerun()
    with box:
        return child_mapping(d, n, child, spec, records, lookups)


def child_mapping(d: Draft, n: int, child: dict, spec, records: list, lookups: list):
    """The child's grid over its records (found in the parents' first records) and, when it
    is whole, its compiled mapper."""
    items: list = []
    try:
        path = compile_path(child["path"]) if child["path"] else None
    except JsonPathError as e:
        st.caption(f":red[{e}]")
        path = None
    if path is not None:
        items = [item for record in records[:SHOWN] for item in records_of(record, path)]
    paths = [(p.path, f"{p.type} · {', '.join(map(repr, p.samples))}"[:80]) for p in profile(items)]
    rows = grid_rows(d, child.get("mapping", []), name=f"ch{n}")
    fields, problems = typed_fields(rows, spec, lookups)
    child["mapping"] = [r for r in rows if r.get("generate") or r.get("extract")]
    found = f"{plural(len(items), 'record')} at {child['path']} in the first records"
    mapping_grid(
        d,
        spec,
        rows,
        paths,
        problems,
        found if path else "",
        [lk.name for lk in lookups],
        name=f"ch{n}",
    )
    try:
        model = ChildMapping.model_validate(child | {"mapping": [f.model_dump() for f in fields]})
    except ValidationError as e:
        for problem in readable(e, [ChildMapping]):
            st.caption(f":red[{problem}]")
        return None
    return ChildMapper(model, lookups)


def child_previews(batch) -> None:
    """The child rows the preview made, a table per entity."""
    for name, rows in (getattr(batch, "children", None) or {}).items():
        st.markdown(f"**{name}: {plural(len(rows), 'row')}**")
        st.dataframe(pd.DataFrame(rows[:SHOWN]), width="stretch", height=200, key=f"child.{name}")
