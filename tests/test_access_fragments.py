"""A role taken away while a page is open, in headless Chromium against the real studio: the
parts of a page that rerun on their own (Streamlit's fragments: the builder's mapping, its test
panel, a run going on) check the session again, so an editor made a viewer meanwhile cannot
change anything from them, and is shown the page a viewer gets."""

from __future__ import annotations

import pytest

from studio.config.store import ConfigStore
from studio.users import add_user, set_role
from tests.helpers import demo, serving_studio

PASSWORD = "correct horse battery"
WAIT = 30_000


@pytest.fixture
def team_studio(sandbox, tmp_path):
    home = tmp_path / "home"
    store = demo(ConfigStore(home), sandbox)
    for other in store.list("connections"):
        if other.kind == "api" and other.name != "Demo sandbox":
            store.set_status("connections", other.id, "disabled", source="cli")
    add_user(store, "ana", PASSWORD, "admin")
    add_user(store, "ed", PASSWORD, "editor")
    with serving_studio(home, tmp_path) as url:
        yield url, store


def test_an_editor_made_a_viewer_cannot_add_a_field_from_the_open_builder(team_studio, browser):
    url, store = team_studio
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    page.goto(f"{url}/signin?next=/jobs")
    page.get_by_label("Name").fill("ed")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Import jobs").wait_for(timeout=WAIT)
    page.get_by_role("radio", name="Calls and tests", exact=True).click()
    page.get_by_label("Path", exact=True).fill("/products")
    page.get_by_label("Path", exact=True).press("Tab")
    finder = page.locator("input[placeholder='$.items']")
    finder.click()
    finder.press_sequentially(".items", delay=40)
    page.get_by_role("button", name="Test up to here").click()
    page.get_by_text("20 records at $.items").wait_for(timeout=WAIT)
    page.get_by_role("radio", name="Records and mapping", exact=True).click()
    page.get_by_role("button", name="Suggest mapping").click()
    page.get_by_text("20 rows, 0 rejects").wait_for(timeout=WAIT)
    page.get_by_role("button", name="+ Add a field").click()
    page.get_by_label("Extract").last.click()
    page.get_by_label("Extract").last.press_sequentially("$.stock", delay=40)
    page.get_by_label("Generate").last.click()
    page.get_by_label("Generate").last.press_sequentially("stock_level", delay=40)
    page.get_by_text("'stock_level' is not a field of Products").wait_for(timeout=WAIT)
    page.get_by_role("button", name="Add 'stock_level' to Products…").click()

    set_role(store, "ed", "viewer")  # by an admin, while the builder is open
    page.get_by_role("button", name="Add 'stock_level'", exact=True).click()
    page.get_by_text("You are a viewer").wait_for(timeout=WAIT)
    assert "stock_level" not in store.entities()["Products"].fields
    page.close()
