"""The whole studio, started by the README's command, used in headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright. Outside CI a machine without
it skips these tests and says so; in CI (``CI`` set) a missing browser fails them.
"""

from __future__ import annotations

from studio.config.store import ConfigStore
from tests.helpers import OUTPUT, point_demo_at


def test_up_serves_the_studio_with_demo_data(studio, browser):
    url, home, _sandbox = studio
    assert {c.name for c in ConfigStore(home).list("connections")} >= {"Demo sandbox", "Demo SFTP"}
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.get_by_role("heading", name="Connector Studio").wait_for(timeout=30_000)
    page.get_by_role("link", name="Connections").first.click()
    page.get_by_role("heading", name="Connections").wait_for()
    page.get_by_label("Name", exact=True).fill("Browser API")
    page.get_by_label("Base URL").fill("https://browser.example.com/api")
    page.get_by_role("button", name="Create").click()
    page.get_by_text("Saved connection 'Browser API'.").wait_for(timeout=20_000)
    assert ConfigStore(home).get("connections", "Browser API").base_url.endswith("/api")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "connections.png"), full_page=True)
    page.close()


def test_an_invalid_url_shows_its_message_in_the_browser(studio, browser):
    url, home, _sandbox = studio
    page = browser.new_page()
    page.goto(f"{url}/connections")
    page.get_by_label("Name", exact=True).fill("Bad URL")
    page.get_by_label("Base URL").fill("not a url")
    page.get_by_role("button", name="Create").click()
    page.get_by_text("Base URL: must not contain spaces").wait_for(timeout=20_000)
    assert "Bad URL" not in {c.name for c in ConfigStore(home).list("connections")}
    page.close()


def test_builder_tests_a_call_and_the_preview_follows_the_content_finder(studio, browser):
    url, home, sandbox = studio
    # The demo connection points at 8765; this session's sandbox listens elsewhere. It is made
    # the only active API connection, so that a new job picks it.
    store = ConfigStore(home)
    for other in store.list("connections"):
        if other.kind == "api" and other.name != "Demo sandbox":
            store.set_status("connections", other.id, "disabled", source="cli")
    point_demo_at(store, sandbox)
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    page.goto(f"{url}/jobs")
    page.get_by_role("heading", name="Import jobs").wait_for(timeout=30_000)
    page.get_by_label("Job name").fill("Browser products")
    page.get_by_label("Job name").press("Enter")
    page.get_by_role("radio", name="Calls and tests", exact=True).click()
    page.get_by_label("Path", exact=True).fill("/products")
    page.get_by_label("Path", exact=True).press("Enter")
    page.get_by_role("button", name="Test up to here").click()
    page.get_by_text("2 requests, 1 records").wait_for(timeout=30_000)
    page.get_by_role("radio", name="Records and mapping", exact=True).click()
    page.get_by_text("1 records from the test of call 1").wait_for()
    finder = page.get_by_label("Content finder (JSONPath)", exact=True)
    finder.fill("$.items")
    finder.press("Enter")
    page.get_by_text("20 records from the test of call 1").wait_for(timeout=20_000)
    page.get_by_role("button", name="Suggest mapping").click()
    page.get_by_text("20 rows, 0 rejects").wait_for(timeout=20_000)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "builder.png"), full_page=True)
    page.close()
