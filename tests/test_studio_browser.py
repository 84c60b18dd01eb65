"""The whole studio, started by the README's command, used in headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright. Outside CI a machine without
it skips these tests and says so; in CI (``CI`` set) a missing browser fails them.
"""

from __future__ import annotations

from pathlib import Path

from studio.config.store import ConfigStore
from tests.helpers import OUTPUT


def test_up_serves_the_studio_with_demo_data(studio, browser):
    url, home, sandbox = studio
    store = ConfigStore(home)
    assert {c.name for c in store.list("connections")} >= {"Demo sandbox", "Demo SFTP"}
    # ``--sandbox-port``: the demo connection points at the sandbox ``up`` started.
    demo = store.get("connections", "Demo sandbox")
    assert (demo.base_url, demo.auth.token_url) == (f"{sandbox}/api", f"{sandbox}/oauth/token")
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
    # No file watcher: Streamlit's watched the project folder recursively, .venv and data/ too.
    studio_pid = next(pid for pid, args in processes() if url.rsplit(":", 1)[1] in args)
    assert inotify_watches(studio_pid) == 0


def processes():
    """(pid, command line) of the Streamlit processes on this machine."""
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().decode().split("\0")
        except (OSError, ValueError):
            continue
        if "streamlit" in args:
            yield int(entry.name), args


def inotify_watches(pid: int) -> int:
    """How many inotify watches the process holds (one per folder a watcher observes)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            count += fd.read_text().count("inotify wd:")
        except OSError:
            continue
    return count


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
    url, home, _sandbox = studio
    # ``up`` pointed the demo connection at this session's sandbox. It is made the only active
    # API connection, so that a new job picks it.
    store = ConfigStore(home)
    for other in store.list("connections"):
        if other.kind == "api" and other.name != "Demo sandbox":
            store.set_status("connections", other.id, "disabled", source="cli")
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
