"""Data: the imported rows of each entity, paged and filterable, with the run that wrote them."""

import pandas as pd
import streamlit as st

from studio.config.store import ConfigStore
from studio.destination import people_csv
from studio.entities import load_entities
from studio.guide import opening_entity
from studio.runhistory import plural
from studio.stores import open_history, open_rows
from views.access import gate

PAGE = 100
store = ConfigStore()
rowstore = open_rows(store.home)
entities = list(load_entities())
gate(store)

st.title("Data")
left, middle, right = st.columns([2, 3, 1])
if "data_entity" not in st.session_state:  # first opened: on the entity just imported
    st.session_state["data_entity"] = opening_entity(
        entities,
        store.list("jobs"),
        open_history(store.home).list(limit=200),
        lambda e: rowstore.read(e, limit=1)[1],
    )
entity = left.selectbox("Entity", entities, key="data_entity")
where = middle.text_input("Filter (any column contains)", key="data_filter")
rows, total = rowstore.read(entity, limit=1, where=where)
pages = max(1, -(-total // PAGE))
page = right.number_input("Page", 1, pages, key="data_page") if pages > 1 else 1
rows, total = rowstore.read(entity, limit=PAGE, offset=(page - 1) * PAGE, where=where)
st.caption(
    f"{plural(total, 'row')} in {entity}"
    + (f" matching {where!r}" if where else "")
    + (f" · page {page} of {pages}" if pages > 1 else "")
)
if rows:
    frame = pd.DataFrame(rows).rename(columns={"_run_id": "last run", "_updated_at": "updated"})
    frame = frame.astype(object).where(frame.notna(), "")  # a field no run filled: blank
    st.dataframe(frame, hide_index=True, width="stretch", height=420)
    everything, _ = rowstore.read(entity, limit=100_000, where=where)
    st.download_button(
        "Download CSV",
        people_csv(everything),
        file_name=f"{entity.lower()}.csv",
        mime="text/csv",
        key="data_download",
    )
else:
    st.info("No rows yet: run an import job of this entity.")
