"""Connector Studio: the entry point that builds the navigation over the pages in ``views/``.

Not ``pages/``: Streamlit takes a folder of that name for pages of its own, and a deep link
such as /jobs then opened without this navigation (with ``common`` listed as a page)."""

import streamlit as st

from views.access import gate, identity

st.set_page_config(page_title="Connector Studio", page_icon="🔌", layout="wide")
who = gate()  # signed out: a way to sign in, and no pages

navigation = st.navigation(
    [
        st.Page("views/overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page("views/connections.py", title="Connections", icon=":material/link:"),
        st.Page("views/jobs.py", title="Import jobs", icon=":material/sync_alt:"),
        st.Page("views/entities.py", title="Entities", icon=":material/schema:"),
        st.Page("views/runs.py", title="Runs", icon=":material/history:"),
        st.Page("views/data.py", title="Data", icon=":material/table:"),
        st.Page("views/settings.py", title="Settings", icon=":material/settings:"),
    ]
)
identity(who)
navigation.run()
