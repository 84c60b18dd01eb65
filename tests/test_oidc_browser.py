"""Streamlit's own ``st.login`` against a real OpenID Connect provider on 127.0.0.1, in headless
Chromium: the provider (``oidc_provider``), the helpers that drive its pages (tests/oidc.py),
and what ``st.user`` then holds, handed to ``studio.sso.who_from_sso``.

The app is a few lines written here, not the studio: this proves the pieces the studio's gate
builds on (the secrets file given by ``--secrets.files`` from outside the project, the claims,
the cookie that outlives a reload, sign-out through the provider, a cancelled sign-in).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from studio.config.store import ConfigStore
from studio.users import add_user
from tests.helpers import ROOT, wait_http
from tests.oidc import (
    auth_secrets,
    deny_at_provider,
    end_session_at_provider,
    sign_in_with_provider,
)
from tests.servers import free_port

APP = """
import json

import streamlit as st

from studio.access import Forbidden
from studio.config.store import ConfigStore
from studio.sso import who_from_sso

if not st.user.is_logged_in:
    st.text("signed out")
    if st.button("Sign in"):
        st.login()
    st.stop()
claims = st.user.to_dict()
st.text("claims " + json.dumps(claims, sort_keys=True))
try:
    who = who_from_sso(claims, st.secrets.get("access"), ConfigStore())
    st.text(f"who {who.name} is {who.role} via {who.via}")
except Forbidden as e:
    st.text(f"refused: {e}")
if st.button("Sign out"):
    st.logout()
"""
ACCESS = {"role_claim": "roles", "editor": ["@example.com"]}


@pytest.fixture(scope="module")
def sso_app(oidc_provider, tmp_path_factory):
    """The app above under ``streamlit run`` on a free port, its secrets in a temporary folder
    (not the project's .streamlit/), and its store's home."""
    folder = tmp_path_factory.mktemp("sso-app")
    home = folder / "home"
    (folder / "app.py").write_text(APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secrets = folder / "secrets" / "auth.toml"
    secrets.parent.mkdir()
    secrets.write_text(auth_secrets(oidc_provider, url, ACCESS))
    env = {**os.environ, "STUDIO_HOME": str(home), "PYTHONPATH": str(ROOT)}
    log = open(folder / "streamlit.log", "w")  # noqa: SIM115 - open while Streamlit runs
    command = [
        sys.executable, "-m", "streamlit", "run", str(folder / "app.py"),
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--secrets.files", str(secrets),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"{url}/_stcore/health")
        yield url, home
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def start_sign_in(browser, url):
    page = browser.new_page()  # a new context: no cookie of another test
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    return page


def said(page, prefix: str) -> str:
    """The text of the app's line that starts with ``prefix``, once it shows."""
    line = page.get_by_text(prefix, exact=False).first
    line.wait_for(timeout=30_000)
    return line.inner_text().removeprefix(prefix)


def test_st_login_signs_in_through_the_provider_and_stays_signed_in(
    sso_app, oidc_provider, browser
):
    url, _home = sso_app
    page = start_sign_in(browser, url)
    sign_in_with_provider(page, "Ana@Example.com", {"roles": ["viewer", "admin"], "name": "Ana"})
    claims = json.loads(said(page, "claims "))
    assert claims["is_logged_in"] is True and claims["iss"] == oidc_provider
    assert (claims["email"], claims["email_verified"], claims["sub"]) == (
        "Ana@Example.com",
        True,
        "Ana@Example.com",
    )
    assert (claims["roles"], claims["name"]) == (["viewer", "admin"], "Ana")
    assert said(page, "who ") == "Ana@Example.com is admin via sso"  # the claim's highest
    cookie = {c["name"]: c for c in page.context.cookies()}["_streamlit_user"]
    assert cookie["httpOnly"] and cookie["expires"] > 0  # a signed cookie with an expiry
    page.reload()
    assert said(page, "who ") == "Ana@Example.com is admin via sso"
    page.get_by_role("button", name="Sign out").click()
    end_session_at_provider(page)
    page.get_by_text("signed out").wait_for(timeout=30_000)
    page.close()


def test_roles_come_from_the_store_the_lists_or_nowhere(sso_app, browser):
    url, home = sso_app
    add_user(ConfigStore(home), "bo", "correct horse battery", "viewer", "bo@example.com")
    cases = [
        ("bo@example.com", {"roles": "admin"}, "who ", "bo@example.com is viewer via sso"),
        ("cy@example.com", {}, "who ", "cy@example.com is editor via sso"),
        (
            "eve@elsewhere.org",
            {},
            "refused: ",
            "eve@elsewhere.org may not use this studio: ask an admin to give you a role",
        ),
        (
            "mallory@example.com",
            {"email_verified": False},
            "refused: ",
            "mallory@example.com is not verified by the sign-in provider: verify it there, or "
            "ask an admin to give you a role",
        ),
    ]
    for email, claims, prefix, expected in cases:
        page = start_sign_in(browser, url)
        sign_in_with_provider(page, email, claims)
        assert said(page, prefix) == expected, email
        page.close()


def test_a_sign_in_cancelled_at_the_provider_leaves_the_app_signed_out(sso_app, browser):
    url, _home = sso_app
    page = start_sign_in(browser, url)
    deny_at_provider(page)
    page.get_by_text("signed out").wait_for(timeout=30_000)
    assert "_streamlit_user" not in {c["name"] for c in page.context.cookies()}
    page.close()


def test_without_an_email_the_subject_is_the_name(sso_app, browser):
    url, _home = sso_app
    page = start_sign_in(browser, url)
    sign_in_with_provider(page, "", {"roles": "editor"}, sub="u-42")
    claims = json.loads(said(page, "claims "))
    assert "email" not in claims and claims["sub"] == "u-42"
    assert said(page, "who ") == "u-42 is editor via sso"
    page.close()
