"""Settings: where the data lives, the runner, and for admins the users and the REST API's
tokens. Layout only: each change is one call into ``studio.users`` or ``studio.apitokens``,
checked against the admin role again when it runs."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from studio.access import ROLES, WHAT
from studio.apitokens import create_token
from studio.config.store import ConfigStore
from studio.errors import StudioError
from studio.runhistory import runner_status
from studio.users import (
    add_user,
    end_sessions,
    remove_user,
    reset_password,
    set_role,
    set_user_status,
)
from views.access import gate
from views.common import allowed, flash, show_error, show_flash

store = ConfigStore()
who = gate(store)
st.title("Settings")
show_flash("set")
st.markdown(f"**Data folder** (`STUDIO_HOME`): `{store.home}`")
status = runner_status(store.home)
st.markdown(
    "**Runner**: "
    + (f"up since {status['started_at']} (pid {status['pid']})" if status["up"] else "down")
)
if not who.can("admin"):
    st.caption("Users and API tokens are managed by an admin.")
    st.stop()


def act(doing: str, change, done: str) -> None:
    """Run one admin change, then show ``done`` after the rerun, or the store's sentence."""
    if not allowed(who, "admin", doing):
        return
    try:
        change()
    except StudioError as e:
        show_error(e)
    else:
        flash("set", done)
        st.rerun()


st.subheader("Users")
st.caption(
    " · ".join(f"**{role}**: {WHAT[role]}" for role in ROLES)
    + ". The CLI does the same: `python -m runner users …`."
)
users = store.list("users")
if users:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Name": u.name,
                    "Role": u.role,
                    "E-mail": u.email,
                    "Status": u.status,
                    "Locked until (UTC)": u.locked_until,
                    "Created (UTC)": u.created_at,
                }
                for u in users
            ]
        ),
        hide_index=True,
        width="stretch",
        placeholder="",
    )
else:
    st.info(
        "No users: the studio is open to whoever reaches it, and only on this machine "
        "(127.0.0.1). Add an admin first."
    )
add, change = st.columns(2)
with add.form("user_add", clear_on_submit=True, border=True):
    st.markdown("**Add a user**")
    name = st.text_input("Name", key="user_name")
    email = st.text_input("E-mail (optional)", key="user_email")
    role = st.selectbox("Role", ROLES, index=0 if users else 2, key="user_role")
    password = st.text_input("Password (10 characters or more)", type="password", key="user_pw")
    if st.form_submit_button("Add user"):
        act(
            "add a user",
            lambda: add_user(store, name, password, role, email, source="studio"),
            f"Added {name!r} ({role}).",
        )
if users:
    with change.container(border=True):
        st.markdown("**Change a user**")
        pick = st.selectbox("User", [u.name for u in users], key="user_pick")
        picked = next(u for u in users if u.name == pick)
        new_role = st.selectbox(
            "Role", ROLES, index=ROLES.index(picked.role), key=f"user_role.{picked.id}"
        )
        new_password = st.text_input(
            "New password (ends their sessions)", type="password", key=f"user_pw.{picked.id}"
        )
        bar = st.container(horizontal=True)
        if bar.button("Set role", key="user_set_role"):
            act(
                f"change {pick!r}'s role",
                lambda: set_role(store, pick, new_role, source="studio"),
                f"{pick!r} is {new_role}.",
            )
        if bar.button("Reset password", key="user_reset"):
            act(
                f"reset {pick!r}'s password",
                lambda: reset_password(store, pick, new_password, source="studio"),
                f"New password for {pick!r}; their sessions ended.",
            )
        if bar.button("Sign out everywhere", key="user_signout"):
            act(
                f"sign {pick!r} out",
                lambda: end_sessions(store, pick, source="studio"),
                f"{pick!r} is signed out everywhere.",
            )
        verb, to = ("Disable", "disabled") if picked.status == "active" else ("Activate", "active")
        if bar.button(verb, key="user_status"):
            act(
                f"{verb.lower()} {pick!r}",
                lambda: set_user_status(store, pick, to, source="studio"),
                f"{pick!r} is {to}.",
            )
        if bar.button("Remove", key="user_remove"):
            act(
                f"remove {pick!r}",
                lambda: remove_user(store, pick, source="studio"),
                f"Removed {pick!r}.",
            )

st.subheader("REST API tokens")
st.caption(
    "A token acts for a user, with that user's role (a viewer's token reads, and is refused "
    "any change), until it expires or is revoked. It is shown once, when it is made: only its "
    "hash is kept. It is sent as `Authorization: Bearer <token>`. The CLI does the same: "
    "`python -m runner api-token create|list|revoke`."
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
                {
                    "Name": t.name,
                    "User": getattr(t, "user", "") or "(any: a token made before users)",
                    "Starts with": t.prefix + "…",
                    "Expires (UTC)": getattr(t, "expires_at", None),
                    "Created (UTC)": t.created_at,
                }
                for t in tokens
            ]
        ),
        hide_index=True,
        width="stretch",
        placeholder="",
    )
else:
    st.info("No token yet: nothing can call the REST API.")
EXPIRIES = {"30 days": 30, "90 days": 90, "1 year": 365, "never": None}
left, right = st.columns(2)
with left.form("token_create", clear_on_submit=True, border=True):
    token_name = st.text_input("New token's name", key="token_name", placeholder="my-erp")
    owner = st.selectbox("Acts for", [u.name for u in users], key="token_user")
    expiry = st.selectbox("Expires after", list(EXPIRIES), key="token_expiry")
    if st.form_submit_button("Create token") and allowed(who, "admin", "create an API token"):
        try:
            days = EXPIRIES[expiry]
            ends = datetime.now(UTC) + timedelta(days=days) if days else None
            token = create_token(
                store, token_name, user=owner or "", expires_at=ends, source="studio"
            )
        except StudioError as e:
            show_error(e)
        else:
            st.session_state["settings_new_token"] = (token_name, token)
            st.rerun()
if tokens:
    with right.form("token_revoke", border=True):
        gone = st.selectbox("Token", [t.name for t in tokens], key="token_pick")
        if st.form_submit_button("Revoke"):
            act(
                f"revoke token {gone!r}",
                lambda: store.delete("api_tokens", gone, source="studio"),
                f"Revoked {gone!r}.",
            )
