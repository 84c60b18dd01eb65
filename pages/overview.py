"""Overview: what is configured, at a glance (jobs and runs join as they arrive)."""

import streamlit as st

from studio.store import ConfigStore

store = ConfigStore()
connections = store.list("connections")

st.title("Connector Studio")
st.caption(f"Configs in `{store.path}`")
active = sum(c.status == "active" for c in connections)
left, right = st.columns(2)
left.metric("Connections", len(connections))
right.metric("Active connections", active)
if not connections:
    st.info("No connections yet: create the first one on the Connections page.")
st.page_link("pages/connections.py", label="Manage connections", icon=":material/link:")
