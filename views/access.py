"""Who is using this browser session, checked on every script run; not a page of its own.

The websocket is where the pages run, so the check is here and not only in the HTTP gate of
``views/signin.py``: the session cookie (``st.context.cookies``, sent with the websocket's
handshake) or Streamlit's ``st.user`` after single sign-on is turned into a ``Who`` again at
every run, so a role changed or a user removed meanwhile applies at the next click.

``gate()`` is the first call of every page. What a page offers then follows ``who.can(role)``,
and every change it makes is checked again with ``studio.access.require`` before the store is
touched. The caller is also registered for the audit trail and the run history.
"""

from __future__ import annotations

import functools

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from studio import access
from studio.access import WHAT, Forbidden, Who
from studio.config.store import ConfigStore
from studio.errors import StudioError
from studio.sessions import COOKIE, is_local, open_access, who_from_token
from studio.sso import rules_problems, sso_configured, who_from_sso
from views.common import plain
from views.signin import secrets

SESSION_KEY = "studio_session"  # the session token; tests put one here instead of a cookie
WHO_KEY = "studio_who"


def _from_session_state() -> Who | None:
    """The acting user in a Streamlit script thread: fragment reruns run in threads of their
    own, where the ContextVar set by the page's full run is not."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    return st.session_state.get(WHO_KEY)


access.fallbacks.append(_from_session_state)


def current(store: ConfigStore) -> Who | None:
    """The person this session is, or None (signed out, expired, or refused)."""
    sso = sso_configured(secrets())
    address = str(st.get_option("server.address") or "")
    if who := open_access(store, address, sso, st.context.headers):
        return who
    token = st.session_state.get(SESSION_KEY) or st.context.cookies.get(COOKIE)
    if who := who_from_token(store, token):
        return who
    if sso and st.user.is_logged_in:
        return who_from_sso(st.user.to_dict(), secrets().get("access"), store)
    return None


def gate(store: ConfigStore | None = None) -> Who:
    """The signed-in person; a run that has none stops here with a way to sign in. Home.py
    calls it before the navigation and every page again at its top (a page can be run alone)."""
    store = store or ConfigStore()
    try:
        who = current(store)
    except Forbidden as e:
        st.session_state.pop(WHO_KEY, None)
        st.error(plain(str(e)))
        if st.button("Sign out", key="signout_refused"):
            st.logout()
        st.stop()
    if who is None:
        st.session_state.pop(WHO_KEY, None)
        _signed_out(store)
        st.stop()
    st.session_state[WHO_KEY] = who
    access.acting.set(who)
    return who


def fragment(func=None, *, run_every=None):
    """``st.fragment`` whose every rerun of its own checks the session again. Such a rerun runs
    the fragment alone, not the page and its ``gate()``: without this, a person signed out,
    disabled, removed or given another role since the page last ran kept what the page had
    offered them (an editor made a viewer still added fields and ran tests from the builder).
    A session that is no longer the one the page ran for runs the whole page again, whose gate
    and role checks then decide."""

    def decorate(f):
        @functools.wraps(f)
        def checked(*args, **kwargs):
            recheck()
            return f(*args, **kwargs)

        return st.fragment(checked, run_every=run_every)

    return decorate(func) if func is not None else decorate


def recheck() -> None:
    """In a fragment's own rerun: the session looked up again, and the whole page run again if
    it is not the person (and role) the page last ran for; else that person is the acting one
    of this run too. Nothing to do in a full run: the page's gate has just run."""
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not ctx.fragment_ids_this_run:
        return
    try:
        who = current(ConfigStore())
    except StudioError:  # refused (Forbidden) or misconfigured: the gate says which
        who = None
    if who is None or who != st.session_state.get(WHO_KEY):
        st.rerun(scope="app")
    access.acting.set(who)


def identity(who: Who) -> None:
    """Who is signed in, and Sign out, in the sidebar (nothing on an open laptop studio)."""
    if who.via == "local":
        return
    with st.sidebar:
        st.caption(f"Signed in as **{plain(who.name)}** · {who.role}", help=WHAT[who.role])
        if st.button("Sign out", key="signout", icon=":material/logout:"):
            st.logout()


def _signed_out(store: ConfigStore) -> None:
    st.title("Connector Studio")
    address = str(st.get_option("server.address") or "")
    if not store.list("users") and not sso_configured(secrets()):
        where = (
            "is reached from elsewhere (a proxy, or a name that is not this machine's)"
            if is_local(address)
            else f"listens on {address or 'every address'}"
        )
        st.error(
            f"This studio {where} and has no users yet, so it lets nobody in. Add the first "
            "admin on its machine: `python -m runner users add NAME --role admin`."
        )
        return
    for problem in rules_problems(secrets().get("access")):
        st.warning(f"[access] in secrets.toml: {problem}")
    st.info("You are signed out.")
    st.html('<a href="/signin" target="_self">Sign in</a>')
