"""The job builder in headless Chromium: typed character by character, never with Enter, the
records and rows follow; a long test shows its progress and stops on Cancel; a reload keeps
the draft. Against the studio started by the README's command (fixture ``studio``)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from studio.config.store import ConfigStore
from studio.drafts import DraftStore
from tests.helpers import OUTPUT, point_demo_at, wait_for


@pytest.fixture
def builder(studio, browser):
    """A new job in the builder, on the session's sandbox."""
    url, home, sandbox = studio
    store = ConfigStore(home)
    for other in store.list("connections"):
        if other.kind == "api" and other.name != "Demo sandbox":
            store.set_status("connections", other.id, "disabled", source="cli")
    point_demo_at(store, sandbox)
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    page.goto(url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Import jobs").click()
    page.get_by_role("heading", name="Import jobs").wait_for(timeout=30_000)
    yield page, home
    page.close()


def type_slowly(locator, text: str) -> None:
    """One key at a time, as a person types: no fill, no Enter."""
    locator.click()
    locator.press("End")
    locator.press_sequentially(text, delay=40)


def test_records_and_rows_follow_each_keystroke_without_enter(builder):
    page, _home = builder
    page.get_by_role("radio", name="Calls and tests", exact=True).click()
    page.get_by_label("Path", exact=True).fill("/products")
    page.get_by_label("Path", exact=True).press("Tab")
    finder = page.locator("input[placeholder='$.items']")
    type_slowly(finder, ".items")  # beside the calls, before the first test
    page.get_by_role("button", name="Test up to here").click()
    page.get_by_text("20 records at $.items").wait_for(timeout=30_000)

    page.get_by_role("radio", name="Records and mapping", exact=True).click()
    page.get_by_text("20 records from the test of call 1").wait_for(timeout=20_000)
    finder = page.locator("input[placeholder='$.items']")
    finder.click()
    finder.press("End")
    for _ in range(6):  # "$.items" → "$", a keystroke at a time
        page.keyboard.press("Backspace")
        page.wait_for_timeout(40)
    page.get_by_text("1 record from the test of call 1").wait_for(timeout=20_000)
    type_slowly(finder, ".items")
    page.get_by_text("20 records from the test of call 1").wait_for(timeout=20_000)

    page.get_by_role("button", name="+ Add a field").click()
    type_slowly(page.get_by_label("Extract").last, "$.id")
    type_slowly(page.get_by_label("Generate").last, "external_id")
    page.get_by_text("20 rows, 0 rejects").wait_for(timeout=20_000)
    required = page.get_by_label("Required").last
    assert required.is_checked() and required.is_disabled()  # Products requires it
    type_slowly(page.get_by_label("Extract").last, "X")  # "$.idX": nothing there
    page.get_by_text("0 rows, 20 rejects").wait_for(timeout=20_000)
    page.get_by_label("Extract").last.press("Backspace")
    page.get_by_text("20 rows, 0 rejects").wait_for(timeout=20_000)

    page.get_by_role("button", name="+ Add a field").click()
    type_slowly(page.get_by_label("Extract").last, "$.stock")
    generate = page.get_by_label("Generate").last
    type_slowly(generate, "quantity")
    page.get_by_text("'quantity' is not a field of Products").wait_for(timeout=20_000)
    assert generate.input_value() == "quantity"  # refused, never replaced by another field
    page.get_by_text("1 row to fix").wait_for()
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "builder-live.png"), full_page=True)


def test_a_test_its_suggestions_and_a_suggested_mapping(builder):
    """The path the README's screenshot shows (docs/images/builder.png)."""
    page, _home = builder
    page.get_by_label("Job name").fill("Browser products")
    page.get_by_label("Job name").press("Enter")
    page.get_by_role("radio", name="Calls and tests", exact=True).click()
    page.get_by_label("Path", exact=True).fill("/products")
    page.get_by_label("Path", exact=True).press("Enter")
    page.get_by_role("button", name="Test up to here").click()
    page.get_by_text(re.compile(r"\d requests?, 1 record")).wait_for(timeout=30_000)
    page.get_by_role("button", name="Content finder $.items (20 records)").click()
    page.get_by_text("20 records at $.items").wait_for(timeout=20_000)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "builder-test.png"), full_page=True)
    page.get_by_role("radio", name="Records and mapping", exact=True).click()
    page.get_by_text("20 records from the test of call 1").wait_for(timeout=20_000)
    page.get_by_role("button", name="Suggest mapping").click()
    page.get_by_text("20 rows, 0 rejects").wait_for(timeout=20_000)
    page.screenshot(path=str(OUTPUT / "builder.png"), full_page=True)


def test_a_long_test_shows_its_progress_and_stops_on_cancel(builder):
    page, _home = builder
    page.get_by_role("radio", name="Calls and tests", exact=True).click()
    page.get_by_label("Path", exact=True).fill("/products?slow=0.5")
    page.get_by_label("Path", exact=True).press("Tab")
    type_slowly(page.locator("input[placeholder='$.items']"), ".items")
    page.get_by_role("tab", name="Behavior").click()
    page.get_by_role("combobox", name="Behavior").click()
    page.get_by_role("option", name="Pagination").click()
    page_size = page.get_by_label("Page size", exact=True)
    page_size.fill("5")
    page_size.press("Tab")
    page.get_by_role("button", name="Test up to here").click()
    page.get_by_text("Testing call 1…").wait_for(timeout=20_000)
    page.get_by_text(re.compile(r"[1-9] pages? · \d+ records · ")).wait_for(timeout=20_000)
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text(re.compile(r"^Cancelled: the test was stopped after")).wait_for(timeout=20_000)
    page.get_by_text(re.compile(r"\d+ records at \$\.items")).wait_for()


def test_a_reload_keeps_the_draft_and_marks_it_unsaved(builder):
    page, home = builder
    name = page.get_by_label("Job name")
    type_slowly(name, "Reloaded products")
    name.press("Tab")
    page.get_by_text("● Unsaved changes").wait_for(timeout=20_000)
    page.get_by_role("radio", name="Calls and tests", exact=True).click()
    page.get_by_label("Path", exact=True).fill("/products")
    page.get_by_label("Path", exact=True).press("Tab")
    page.wait_for_url(re.compile(r"draft=new-"))
    key = page.url.split("draft=")[1]

    def kept() -> bool:
        draft = DraftStore(home).get(key) or {"calls": [{}]}
        return draft["calls"][0].get("path") == "/products"

    wait_for(kept, 20, "the draft to be kept in the studio's home")
    page.reload()
    page.get_by_text("● Unsaved changes").wait_for(timeout=30_000)
    page.get_by_role("radio", name="Basics", exact=True).click()
    expect(page.get_by_label("Job name")).to_have_value("Reloaded products")
    page.get_by_role("radio", name="Calls and tests", exact=True).click()
    expect(page.get_by_label("Path", exact=True)).to_have_value("/products")
    page.get_by_role("button", name="Discard…").click()
    page.get_by_role("button", name="Discard", exact=True).click()
    page.get_by_text("● Unsaved changes").wait_for(state="detached", timeout=20_000)
    expect(page.get_by_label("Path", exact=True)).to_have_value("")


def test_a_field_of_ones_own_and_a_lookup_change_the_rows(builder):
    """Issue 15 in the browser: a field added to the entity from the mapping, and a lookup a
    field goes through, each changing the rows as they are typed."""
    page, home = builder
    page.get_by_role("radio", name="Calls and tests", exact=True).click()
    page.get_by_label("Path", exact=True).fill("/products")
    page.get_by_label("Path", exact=True).press("Tab")
    type_slowly(page.locator("input[placeholder='$.items']"), ".items")
    page.get_by_role("button", name="Test up to here").click()
    page.get_by_text("20 records at $.items").wait_for(timeout=30_000)
    page.get_by_role("radio", name="Records and mapping", exact=True).click()
    page.get_by_role("button", name="Suggest mapping").click()
    page.get_by_text("20 rows, 0 rejects").wait_for(timeout=20_000)

    page.get_by_role("button", name="+ Add a field").click()
    type_slowly(page.get_by_label("Extract").last, "$.stock")
    type_slowly(page.get_by_label("Generate").last, "stock_level")
    page.get_by_text("'stock_level' is not a field of Products").wait_for(timeout=20_000)
    page.get_by_role("button", name="Add 'stock_level' to Products…").click()
    page.get_by_role("button", name="Add 'stock_level'", exact=True).click()
    rows = page.get_by_test_id("stDataFrame").last
    # a column of the rows now (the grid draws on a canvas; its headers are in the DOM too)
    rows.get_by_text("stock_level").wait_for(state="attached", timeout=20_000)
    assert "stock_level" in ConfigStore(home).entities()["Products"].fields

    page.get_by_text("Lookups (0)").click()  # under the mapping
    page.get_by_role("button", name="Add a lookup").click()
    page.get_by_label("Name", exact=True).last.fill("cats")
    page.get_by_label("Name", exact=True).last.press("Tab")
    page.get_by_text("Lookups (1)").wait_for(timeout=20_000)
    expect(page.get_by_label("Extract").nth(2)).to_have_value("$.category.code")
    page.get_by_label("Settings").nth(2).click()
    page.get_by_label("Lookup", exact=True).nth(2).select_option("cats")
    # An empty map that rejects what it does not hold: every record is rejected …
    page.get_by_text("0 rows, 20 rejects").wait_for(timeout=20_000)
    page.wait_for_timeout(500)  # the page at rest before a dropdown is opened
    miss = page.get_by_role("combobox", name="Value not in the map")
    miss.click()
    miss.press_sequentially("keep")
    miss.press("Enter")
    page.get_by_text("20 rows, 0 rejects").wait_for(timeout=20_000)  # … or kept as it is
    # The map from a two-column CSV file, as an analyst keeps one.
    csv_file = home / "categories.csv"
    csv_file.write_text("code;label\ncat-1;Shoes\ncat-2;Bags\n", "utf-8")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(csv_file))
    page.get_by_role("button", name="Use this file").click()
    key = page.url.split("draft=")[1]

    def mapped() -> bool:
        lookups = (DraftStore(home).get(key) or {}).get("lookups") or [{}]
        return lookups[0].get("map") == {"cat-1": "Shoes", "cat-2": "Bags"}

    wait_for(mapped, 20, "the lookup's map read from the CSV file")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "builder-transforms.png"), full_page=True)
