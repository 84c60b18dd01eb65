"""Each role on each page, through Streamlit's AppTest: what a viewer, an editor and an admin
are offered, that a signed-out session sees no page, and that the server checks the role again
when an action runs (a page left open while an admin lowers the role changes nothing)."""

from __future__ import annotations

import time

import pytest
from itsdangerous.timed import TimestampSigner
from streamlit.testing.v1 import AppTest

from studio.config.store import ConfigStore
from studio.sessions import issue
from studio.users import add_user, end_sessions, reset_password, set_role
from tests.helpers import ROOT, api_connection

PAGES = [
    "views/overview.py",
    "views/connections.py",
    "views/jobs.py",
    "views/entities.py",
    "views/runs.py",
    "views/data.py",
    "views/settings.py",
]
PASSWORD = "a long enough password"


@pytest.fixture
def team(store: ConfigStore) -> dict:
    store.create("connections", api_connection("Shop API"), source="cli")
    return {
        role: add_user(store, name, PASSWORD, role)
        for name, role in [("vera", "viewer"), ("ed", "editor"), ("ana", "admin")]
    }


def signed_in(store: ConfigStore, user, path: str, token: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60)
    at.session_state["studio_session"] = token or issue(store, user)
    at.run()
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button} | {b.key for b in at.get("form_submit_button")}


def subheaders(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader]


def signed_out(at: AppTest) -> bool:
    return [i.value for i in at.info] == ["You are signed out."]


@pytest.mark.parametrize("path", PAGES)
def test_a_signed_out_session_sees_no_page_once_the_studio_has_users(team, path):
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    at.switch_page(path).run()
    assert signed_out(at) and not at.dataframe and not at.exception


@pytest.mark.parametrize("path", PAGES)
def test_a_viewer_sees_every_page_and_can_change_nothing(store, team, path):
    at = signed_in(store, team["viewer"], path)
    assert not signed_out(at)
    assert "Signed in as **vera** · viewer" in [c.value for c in at.sidebar.caption]
    changes = {
        "conn_save", "conn_test", "conn_delete", "conn_disable", "jb_save", "jb_clone",
        "jb_run_now", "runs_now", "user_set_role", "user_remove",
    }  # fmt: skip
    assert not keys(at) & changes, keys(at) & changes
    assert "Users" not in subheaders(at) and "REST API tokens" not in subheaders(at)


def test_what_a_viewer_sees_on_the_pages_that_list(store, team):
    at = signed_in(store, team["viewer"], "views/connections.py")
    assert at.dataframe[0].value["Name"].tolist() == ["Shop API"]
    assert any("You are a viewer" in c.value for c in at.main.caption)
    at = signed_in(store, team["viewer"], "views/entities.py")
    assert not at.get("form_submit_button")
    at = signed_in(store, team["viewer"], "views/data.py")
    assert at.selectbox(key="data_entity").value


def test_an_editor_edits_tests_and_runs_but_deletes_no_connection_nor_sees_users(store, team):
    at = signed_in(store, team["editor"], "views/connections.py")
    assert {"conn_save"} <= keys(at) and "conn_delete" not in keys(at)
    at.selectbox(key="conn_pick").select("Shop API").run()
    assert {"conn_save", "conn_test", "conn_disable"} <= keys(at)
    assert "conn_delete" not in keys(at)  # deleting a connection is an admin's
    at = signed_in(store, team["editor"], "views/jobs.py")
    assert "jb_save" in keys(at)
    at = signed_in(store, team["editor"], "views/runs.py")
    assert "runs_now" in keys(at)
    at = signed_in(store, team["editor"], "views/settings.py")
    assert "Users" not in subheaders(at)


def test_an_admin_deletes_connections_and_manages_users_and_tokens(store, team):
    at = signed_in(store, team["admin"], "views/connections.py")
    at.selectbox(key="conn_pick").select("Shop API").run()
    assert "conn_delete" in keys(at)
    at = signed_in(store, team["admin"], "views/settings.py")
    assert subheaders(at) == ["Users", "REST API tokens"]
    at.selectbox(key="user_pick").select("ed").run()
    at.selectbox(key=f"user_role.{team['editor'].id}").select("viewer")
    at.button(key="user_set_role").click().run()
    assert [s.value for s in at.success] == ["'ed' is viewer."]
    assert store.get("users", "ed").role == "viewer"
    assert store.audit("users", "ed")[0]["user"] == "ana"  # who did it


def test_the_last_admin_cannot_lower_their_own_role(store, team):
    at = signed_in(store, team["admin"], "views/settings.py")
    at.selectbox(key="user_pick").select("ana").run()
    at.selectbox(key=f"user_role.{team['admin'].id}").select("editor")
    at.button(key="user_set_role").click().run()
    assert "'ana' is the last active admin" in at.error[0].value
    assert store.get("users", "ana").role == "admin"


def test_a_lowered_role_applies_at_the_next_click_and_the_server_refuses_the_save(store, team):
    at = signed_in(store, team["editor"], "views/connections.py")
    at.selectbox(key="conn_pick").select("Shop API").run()
    set_role(store, "ed", "viewer")  # an admin, elsewhere, meanwhile
    before = len(store.audit("connections"))
    at.button(key="conn_save").click().run()  # the button of the page as it was drawn
    assert len(store.audit("connections")) == before  # nothing saved
    assert "conn_save" not in keys(at)


def test_a_change_records_who_made_it(store, team):
    at = signed_in(store, team["editor"], "views/connections.py")
    at.selectbox(key="conn_pick").select("Shop API").run()
    at.button(key="conn_disable").click().run()
    entry = store.audit("connections", "Shop API")[0]
    assert (entry["action"], entry["source"], entry["user"]) == ("disable", "studio", "ed")


def test_forged_expired_or_ended_sessions_and_disabled_users_are_signed_out(
    store, team, monkeypatch
):
    path = "views/jobs.py"
    token = issue(store, team["editor"])
    assert signed_out(signed_in(store, None, path, token=token[:-2] + "xx"))  # forged
    other = ConfigStore(store.home.parent / "elsewhere")  # signed by another studio's key
    add_user(other, "ed", PASSWORD, "admin")
    assert signed_out(signed_in(store, None, path, token=issue(other, other.get("users", "ed"))))
    with monkeypatch.context() as m:  # a session made 13 hours ago: past its 12
        m.setattr(TimestampSigner, "get_timestamp", lambda _self: int(time.time()) - 13 * 3600)
        old = issue(store, team["editor"])
    assert signed_out(signed_in(store, None, path, token=old))
    monkeypatch.setenv("STUDIO_SESSION_HOURS", "14")  # unless sessions last longer here
    assert not signed_out(signed_in(store, None, path, token=old))
    assert not signed_out(signed_in(store, None, path, token=token))
    end_sessions(store, "ed")  # "sign out everywhere"
    assert signed_out(signed_in(store, None, path, token=token))
    fresh = issue(store, team["editor"])
    reset_password(store, "ed", "another long password")  # a reset ends sessions too
    assert signed_out(signed_in(store, None, path, token=fresh))
    fresh = issue(store, store.get("users", "ed"))
    store.set_status("users", "ed", "disabled", source="cli")
    assert signed_out(signed_in(store, None, path, token=fresh))


def test_a_studio_with_no_users_on_this_machine_is_open_as_on_a_laptop(store):
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    at.switch_page("views/settings.py").run()
    assert subheaders(at) == ["Users", "REST API tokens"] and not at.sidebar.caption


def test_a_studio_with_no_users_on_the_network_lets_nobody_in(store):
    from streamlit import config

    config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    finally:
        config.set_option("server.address", "127.0.0.1")
    assert "has no users yet, so it lets nobody in" in at.error[0].value
    assert "runner users add NAME --role admin" in at.error[0].value


def test_run_now_records_who_pressed_it(store, team, sandbox):
    from studio.stores import open_history
    from tests.helpers import setup, watch

    job = setup(store, sandbox)
    at = signed_in(store, team["editor"], "views/runs.py")
    at.selectbox(key="runs_now_job").select(job.id).run()
    at.button(key="runs_now").click().run()
    history = open_history(store.home)
    [run] = history.list(job.id)
    assert (run.trigger, run.started_by) == ("manual", "ed")
    watch(history, run.id, lambda r: r.status not in ("queued", "running"))
    at.run()
    assert at.dataframe[0].value.iloc[0]["By"] == "ed"


def test_an_admin_adds_resets_disables_and_removes_users_in_settings(store, team):
    from studio.users import sign_in

    at = signed_in(store, team["admin"], "views/settings.py")
    at.text_input(key="user_name").input("bo")
    at.text_input(key="user_email").input("bo@example.com")
    at.selectbox(key="user_role").select("editor")
    at.text_input(key="user_pw").input("short")
    next(b for b in at.button if b.label == "Add user").click().run()
    assert "at least 10 characters" in at.error[0].value
    assert "bo" not in [u.name for u in store.list("users")]
    at.text_input(key="user_name").input("bo")
    at.selectbox(key="user_role").select("editor")
    at.text_input(key="user_pw").input(PASSWORD)
    next(b for b in at.button if b.label == "Add user").click().run()
    assert [s.value for s in at.success] == ["Added 'bo' (editor)."]
    assert sign_in(store, "bo", PASSWORD).role == "editor"
    bo = store.get("users", "bo")
    at.selectbox(key="user_pick").select("bo").run()
    at.text_input(key=f"user_pw.{bo.id}").input("another long password")
    at.button(key="user_reset").click().run()
    assert sign_in(store, "bo", "another long password").name == "bo"
    at.selectbox(key="user_pick").select("bo").run()
    at.button(key="user_status").click().run()
    assert store.get("users", "bo").status == "disabled"
    at.selectbox(key="user_pick").select("bo").run()
    at.button(key="user_remove").click().run()
    assert sorted(u.name for u in store.list("users")) == ["ana", "ed", "vera"]
    # No password hash on the page, ever.
    assert "argon2" not in str([e.value for e in at.dataframe if hasattr(e, "value")])
