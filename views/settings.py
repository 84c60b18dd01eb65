"""Settings: where the data lives, the runner, and the REST API's tokens."""

import pandas as pd
import streamlit as st

from studio.apitokens import create_token
from studio.config.store import ConfigStore
from studio.errors import StudioError
from studio.runhistory import runner_status
from views.common import show_error

store = ConfigStore()
st.title("Settings")
st.markdown(f"**Data folder** (`STUDIO_HOME`): `{store.home}`")
status = runner_status(store.home)
st.markdown(
    "**Runner**: "
    + (f"up since {status['started_at']} (pid {status['pid']})" if status["up"] else "down")
)

st.subheader("REST API tokens")
st.caption(
    "A token is shown once, when it is made: only its hash is kept. It is sent as "
    "`Authorization: Bearer <token>`. The CLI does the same: `python -m runner api-token "
    "create|list|revoke`."
)
made = st.session_state.pop("settings_new_token", None)
if made:
    st.success(f"Token {made[0]!r} made. Copy it now: it is not shown again.")
    st.code(made[1], language=None)
tokens = store.list("api_tokens")
if tokens:
    st.dataframe(
        pd.DataFrame(
            [
                {"Name": t.name, "Starts with": t.prefix + "…", "Created (UTC)": t.created_at}
                for t in tokens
            ]
        ),
        hide_index=True,
        width="stretch",
    )
else:
    st.info("No token yet: nothing can call the REST API.")
left, right = st.columns(2)
with left.form("token_create", clear_on_submit=True, border=False):
    name = st.text_input("New token's name", key="token_name", placeholder="my-erp")
    if st.form_submit_button("Create token"):
        try:
            st.session_state["settings_new_token"] = (name, create_token(store, name))
        except StudioError as e:
            show_error(e)
        else:
            st.rerun()
if tokens:
    with right.form("token_revoke", border=False):
        gone = st.selectbox("Token", [t.name for t in tokens], key="token_pick")
        if st.form_submit_button("Revoke"):
            store.delete("api_tokens", gone, source="studio")
            st.rerun()
