"""Target entities: the built-in catalog and the analyst's own, fields added to a built-in
entity, and new entities. Layout only: every change is one call into the config store, which
refuses (and says why) a change that would strand imported rows or a job's mapping."""

import pandas as pd
import streamlit as st

from studio.config.store import ConfigStore
from studio.entities import catalog
from studio.entityviews import KIND_TEXT, entity_views
from studio.errors import StudioError
from views.access import gate
from views.common import allowed, flash, show_error, show_flash

NEW = "+ New entity"
TYPES = ["string", "integer", "number", "boolean", "date", "datetime"]

store = ConfigStore()
state = st.session_state
who = gate(store)
st.title("Target entities")
show_flash("en")
st.caption(
    "What jobs import into. The built-in entities come with the studio; add fields of your own "
    "to them, or entities of your own. A field with imported data is not removed or retyped, "
    "and an entity a job imports into is not deleted."
)

entities = store.entities()
configs = {c.name: c for c in store.list("entities")}
builtin = catalog()


st.dataframe(
    pd.DataFrame(
        [
            {
                "Entity": e.name,
                "Kind": KIND_TEXT[e.kind],
                "Key": e.key,
                "Fields": len(e.fields),
                "Required": ", ".join(f.name for f in e.fields if f.required),
                "Description": e.description,
            }
            for e in entity_views(store)
        ]
    ),
    hide_index=True,
    width="stretch",
)
if not who.can("editor"):
    st.caption("You are a viewer: an editor adds entities and fields.")
    st.stop()

if "en_pick_next" in state:
    state["en_pick"] = state.pop("en_pick_next")
choice = st.selectbox("Open", [NEW, *entities], key="en_pick")
spec = entities.get(choice)
config = configs.get(choice)
if spec is not None and choice in builtin:
    st.markdown(f"**Fields of {choice}** (built in)")
    st.dataframe(
        pd.DataFrame(
            [
                {"Field": n, "Type": f.type, "Required": f.required, "Description": f.description}
                for n, f in builtin[choice].fields.items()
            ]
        ),
        hide_index=True,
        width="stretch",
    )

editing = f"en.{config.id if config else choice}"
own = config.fields if config else []
with st.form(f"{editing}.form", border=True):
    if choice in builtin:
        st.markdown(f"**Your fields on {choice}**")
        name, description, key = choice, "", ""
    else:
        cols = st.columns(2)
        name = cols[0].text_input("Name", config.name if config else "", key=f"{editing}.name")
        description = cols[1].text_input(
            "Description", config.description if config else "", key=f"{editing}.description"
        )
        key = st.text_input(
            "Key field",
            config.key if config else "",
            key=f"{editing}.key",
            help="The field rows are upserted by: one of the fields below",
        )
    fields = st.data_editor(
        pd.DataFrame(
            [f.model_dump() for f in own] or [],
            columns=["name", "type", "required", "description"],
        ),
        num_rows="dynamic",
        width="stretch",
        hide_index=True,
        key=f"{editing}.fields",
        column_config={
            "name": st.column_config.TextColumn("Field name", required=True),
            "type": st.column_config.SelectboxColumn("Type", options=TYPES, default="string"),
            "required": st.column_config.CheckboxColumn("Required", default=False),
            "description": st.column_config.TextColumn("Description"),
        },
    )
    saved = st.form_submit_button("Save" if config else "Create", type="primary")
if saved and allowed(who, "editor", "save an entity"):
    data = {
        "name": name,
        "description": description,
        "key": key,
        "fields": [
            {k: ("" if pd.isna(v) else v) for k, v in row.items()}
            | {"required": row["required"] is True}
            for row in fields.to_dict("records")
            if row.get("name")
        ],
    }
    try:
        if config:
            result = store.update("entities", config.id, data, source="studio")
        else:
            result = store.create("entities", data, source="studio")
    except StudioError as e:
        show_error(e)
    else:
        flash("en", f"Saved entity {result.name!r}.")
        state["en_pick_next"] = result.name
        st.rerun()

if config is not None:
    what = "your fields of" if choice in builtin else "the entity"
    with st.popover(f"Delete {what} {choice}…"):
        st.write("This cannot be undone. Refused while a job or imported data needs it.")
        if st.button("Delete", key=f"{editing}.delete", type="primary") and allowed(
            who, "editor", "delete an entity"
        ):
            try:
                store.delete("entities", config.id, source="studio")
            except StudioError as e:
                st.error(str(e))
            else:
                flash("en", f"Deleted {what} {choice}.")
                state["en_pick_next"] = NEW if choice not in builtin else choice
                st.rerun()
