"""Connector Studio: the entry point that builds the navigation over the pages in ``pages/``."""

import streamlit as st

st.set_page_config(page_title="Connector Studio", page_icon="🔌", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page("pages/connections.py", title="Connections", icon=":material/link:"),
        st.Page("pages/jobs.py", title="Import jobs", icon=":material/sync_alt:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
        st.Page("pages/data.py", title="Data", icon=":material/table:"),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
    ]
)
navigation.run()
