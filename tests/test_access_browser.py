"""Signing in to the real studio (``app.py``, as ``runner up`` serves it) in headless Chromium:
with a name and password, and with single sign-on through a real OpenID Connect provider on
127.0.0.1 (``oidc_provider``); the session outlives a reload, Sign out ends it, and a person the
roles do not let in is told so.

The studio is started once for the module, with its own home (users in it) and a secrets file
outside the project holding ``[auth]`` and ``[access]``, given with ``--secrets.files`` as
``runner up`` does."""

from __future__ import annotations

import re

import pytest
import requests

from studio.config.store import ConfigStore
from studio.users import add_user
from tests.helpers import serving_studio
from tests.oidc import auth_secrets, end_session_at_provider, sign_in_with_provider
from tests.servers import free_port

PASSWORD = "correct horse battery"
ACCESS = {"role_claim": "roles", "editor": ["@example.com"]}
WAIT = 30_000


@pytest.fixture(scope="module")
def studio_with_users(oidc_provider, tmp_path_factory):
    folder = tmp_path_factory.mktemp("team-studio")
    home = folder / "home"
    store = ConfigStore(home)
    add_user(store, "ana", PASSWORD, "admin")
    add_user(store, "vera", PASSWORD, "viewer")
    port = free_port()  # known before it starts: the redirect URI names it
    url = f"http://127.0.0.1:{port}"
    # up's own command reads the home's secrets.toml: [auth] and [access] go there
    (home / "secrets.toml").write_text(auth_secrets(oidc_provider, url, ACCESS))
    with serving_studio(home, folder, port):
        yield url, home


def signed_in_as(page, text: str) -> None:
    page.get_by_text(f"Signed in as {text}").wait_for(timeout=WAIT)


def test_a_page_load_without_a_session_goes_to_the_sign_in_page(studio_with_users):
    url, _home = studio_with_users
    answer = requests.get(f"{url}/jobs?job=x", allow_redirects=False, timeout=10)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=/jobs%3Fjob%3Dx"
    # What the page needs to load is not in the way: the app's files and its health.
    assert requests.get(f"{url}/_stcore/health", timeout=10).status_code == 200
    form = {"name": "ana", "password": PASSWORD, "next": "https://evil.example/"}
    answer = requests.post(f"{url}/signin", data=form, allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and answer.headers["location"] == "/"  # never elsewhere
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Max-Age=43200" in cookie and "SameSite=lax" in cookie
    foreign = requests.post(
        f"{url}/signin", data=form, headers={"Origin": "https://evil.example"}, timeout=10
    )
    assert foreign.status_code == 403 and "studio_session" not in foreign.headers.get(
        "set-cookie", ""
    )


def test_sign_in_with_a_password_survives_a_reload_and_sign_out_ends_it(studio_with_users, browser):
    url, _home = studio_with_users
    page = browser.new_page()
    page.goto(f"{url}/jobs")
    page.wait_for_url(re.compile(r"/signin\?next=/jobs$"))
    page.get_by_label("Name").fill("ana")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong name or password"
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/jobs")
    signed_in_as(page, "ana · admin")
    page.get_by_role("heading", name="Import jobs").wait_for(timeout=WAIT)
    cookie = {c["name"]: c for c in page.context.cookies()}["studio_session"]
    assert cookie["httpOnly"] and cookie["expires"] > 0
    page.reload()
    signed_in_as(page, "ana · admin")
    page.get_by_role("heading", name="Import jobs").wait_for(timeout=WAIT)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/signin\?next=/$"), timeout=WAIT)
    assert "studio_session" not in {c["name"] for c in page.context.cookies()}
    page.goto(f"{url}/jobs")
    page.wait_for_url(re.compile(r"/signin"))
    page.close()


def test_a_viewer_signed_in_sees_the_jobs_without_a_save(studio_with_users, browser):
    url, _home = studio_with_users
    page = browser.new_page()
    page.goto(f"{url}/signin?next=/jobs")
    page.get_by_label("Name").fill("vera")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    signed_in_as(page, "vera · viewer")
    page.get_by_text("You are a viewer").wait_for(timeout=WAIT)
    assert page.get_by_role("button", name="Save job").count() == 0
    page.close()


def test_single_sign_on_lets_in_by_the_allow_list_and_stays_signed_in(studio_with_users, browser):
    url, _home = studio_with_users
    page = browser.new_page()
    page.goto(url)
    page.get_by_role("link", name="Sign in with single sign-on").click()
    sign_in_with_provider(page, "cy@example.com")
    signed_in_as(page, "cy@example.com · editor")  # "@example.com" in [access] editor
    page.reload()
    signed_in_as(page, "cy@example.com · editor")
    page.get_by_role("button", name="Sign out").click()
    end_session_at_provider(page)
    page.wait_for_url(re.compile(r"/signin"), timeout=WAIT)
    page.close()


def test_single_sign_on_refuses_whom_the_roles_do_not_name(studio_with_users, browser):
    url, _home = studio_with_users
    page = browser.new_page()
    page.goto(f"{url}/signin")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    sign_in_with_provider(page, "eve@elsewhere.org")
    page.get_by_text("eve@elsewhere.org may not use this studio").wait_for(timeout=WAIT)
    assert page.get_by_role("heading", name="Import jobs").count() == 0
    assert page.get_by_text("Signed in as").count() == 0
    page.close()


def test_single_sign_on_takes_the_role_claim(studio_with_users, browser):
    url, _home = studio_with_users
    page = browser.new_page()
    page.goto(f"{url}/signin")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    sign_in_with_provider(page, "dan@partner.org", {"roles": ["admin"]})
    signed_in_as(page, "dan@partner.org · admin")
    page.close()


def test_a_sign_in_cancelled_at_the_provider_comes_back_signed_out(studio_with_users, browser):
    from tests.oidc import deny_at_provider

    url, _home = studio_with_users
    page = browser.new_page()
    page.goto(f"{url}/signin")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    deny_at_provider(page)
    page.wait_for_url(re.compile(r"/signin"), timeout=WAIT)
    assert not {"_streamlit_user", "studio_session"} & {c["name"] for c in page.context.cookies()}
    page.close()
