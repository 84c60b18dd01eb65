"""The job's lookups (named value maps a mapped field can go through), beside the mapping: each
a small table of values and what they become, its default and what a value not in the map
becomes, filled by hand or from a two-column CSV file."""

from __future__ import annotations

import contextlib

import streamlit as st
from pydantic import ValidationError

from studio.errors import StudioError, readable
from studio.transforms import Lookup, lookup_from_csv
from views.builder.draft import Draft
from views.builder.widgets import field

MISS = {
    "reject": "reject the record",
    "default": "take the default",
    "keep": "keep the value as it is",
}


def valid_lookups(draft: dict) -> list[Lookup]:
    """The draft's lookups that are lookups (the editor says what is wrong with the others)."""
    out = []
    for lookup in draft.get("lookups") or []:
        with contextlib.suppress(ValidationError):
            out.append(Lookup.model_validate(lookup))
    return out


def lookups_editor(d: Draft) -> list[Lookup]:
    """The lookups, drawn and written back into the draft; returns the valid ones, and says
    under each what is wrong with it. Drawn outside the live preview's fragments: a lookup
    changes seldom, and its tables would otherwise be drawn again at every keystroke of the
    mapping; a change here reruns the page, preview included."""
    draft = d.data
    lookups = draft.setdefault("lookups", [])
    valid = []
    with st.expander(f"Lookups ({len(lookups)})", expanded=bool(lookups)):
        st.caption(
            'A lookup turns values into others ("A" → active); a field uses it by name, in '
            "its settings (⋯) in the mapping above."
        )
        for n, lookup in enumerate(list(lookups)):
            if (checked := one_lookup(d, n, lookup)) is not None:
                valid.append(checked)
        if st.button("Add a lookup", key=d.key("lookup_add")):
            lookups.append({"name": f"lookup_{len(lookups) + 1}", "map": {}, "on_miss": "reject"})
            st.rerun()
    return valid


def one_lookup(d: Draft, n: int, lookup: dict) -> Lookup | None:
    box = st.container(border=True)
    cols = box.columns([2, 2, 2, 1], vertical_alignment="bottom")
    place = f"Lookups {n + 1}"  # where the job's messages put this lookup's problems
    field(d, cols[0], Lookup, "name", lookup, "lk", n, place=place)
    field(d, cols[1], Lookup, "on_miss", lookup, "lk", n, options=MISS, place=place)
    field(d, cols[2], Lookup, "default", lookup, "lk", n, place=place)
    lookup["default"] = lookup.get("default") or None  # no default, not an empty one
    if cols[3].button("✕", key=d.key("lk", n, "remove"), help="Remove this lookup"):
        del d.data["lookups"][n]
        d.forget(f"jb.{d.jid}.lk.")
        d.forget(f"jb.{d.jid}.lookup.")
        st.rerun()
    with box:
        pairs = [{"value": k, "becomes": v} for k, v in (lookup.get("map") or {}).items()]
        text = st.column_config.TextColumn
        edited = d.table(
            f"lookup.{n}",
            pairs,
            ["value", "becomes"],
            {"value": text("Value"), "becomes": text("Becomes")},
        )
        lookup["map"] = {str(r["value"]): str(r.get("becomes") or "") for r in edited if r["value"]}
        upload = st.file_uploader(
            "Or fill it from a two-column CSV file (value, becomes)",
            type=["csv", "txt"],
            key=d.key("lk", n, "csv"),
        )
        header = st.checkbox("Its first line is a header", True, key=d.key("lk", n, "header"))
        if upload is not None and st.button("Use this file", key=d.key("lk", n, "use")):
            try:
                read = lookup_from_csv(
                    lookup["name"], upload.getvalue().decode("utf-8-sig"), header
                )
            except (StudioError, UnicodeDecodeError) as e:
                box.error(str(e))
            except ValidationError as e:  # the lookup's name, as the form below shows it
                box.error("; ".join(readable(e, [Lookup])))
            else:
                lookup["map"] = read.map
                d.replace_table(
                    f"lookup.{n}", [{"value": k, "becomes": v} for k, v in read.map.items()]
                )
                st.rerun()
    try:
        return Lookup.model_validate(lookup)
    except ValidationError as e:
        for problem in readable(e, [Lookup]):
            box.caption(f":red[{problem}]")
        return None
