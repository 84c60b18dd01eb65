"""Settings: where the data lives, the runner, and the REST API's tokens."""

import pandas as pd
import streamlit as st

from studio.config.store import ConfigStore
from studio.runhistory import runner_status

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
    "Tokens are made with `python -m runner api-token create NAME`, which shows a token "
    "once; only its hash is kept, so it cannot be shown again. Revoke one with "
    "`python -m runner api-token revoke NAME`."
)
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
