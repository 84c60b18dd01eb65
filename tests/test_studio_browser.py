"""The whole studio, started by the README's command, used in headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright. Outside CI a machine without
it skips these tests and says so; in CI (``CI`` set) a missing browser fails them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.config.store import ConfigStore
from tests.helpers import OUTPUT, api_connection


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


# --- secrets typed, then Tab, then Create (issue 14) ----------------------------------------------

OAUTH = {"Access token URL": "https://api.example.com/oauth/token", "Client ID": "studio"}
SERVER = {"Host": "files.example.com", "Username": "importer"}
SECRETS = {
    # case: (kind, authentication, the other fields, the secret's label, where it is stored)
    "client secret": ("API", "OAuth 2.0", OAUTH, "Client secret", "auth.client_secret"),
    "password grant": (
        "API",
        "OAuth 2.0",
        {**OAUTH, "Client secret": "cs-1", "Username (password grant)": "ana"},
        "Password (password grant)",
        "auth.password",
    ),
    "basic password": ("API", "Basic", {"Username": "ana"}, "Password", "auth.password"),
    "bearer token": ("API", "Bearer token", {}, "Bearer token", "auth.token"),
    "API key value": ("API", "API key", {"API key name": "X-Key"}, "API key value", "auth.value"),
    "SFTP password": ("File server", None, SERVER, "Password", "password"),
    "SFTP private key": ("File server", None, SERVER, "Private key (SFTP, PEM)", "private_key"),
}


def connections_page(url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(f"{url}/connections")
    page.get_by_role("heading", name="Connections").wait_for(timeout=30_000)
    return page


def choose(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def outcome(page) -> str:
    """The first message after a click: the flash of a save, or the first error."""
    alert = page.locator("[data-testid=stAlert]").first
    alert.wait_for(timeout=20_000)
    return alert.inner_text()


def stored(store: ConfigStore, name: str, path: str) -> str:
    value = store.get("connections", name, reveal=True)
    for part in path.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("case", list(SECRETS))
def test_a_secret_typed_then_tab_then_create_is_saved(studio, browser, case):
    url, home, _sandbox = studio
    kind, auth, fields, label, path = SECRETS[case]
    name, secret = f"Tabbed {case}", f"typed-{case.replace(' ', '-')}-42"
    page = connections_page(url, browser)
    page.get_by_role("radiogroup", name="Kind").get_by_text(kind, exact=True).click()
    page.get_by_label("Name", exact=True).fill(name)
    if kind == "API":
        page.get_by_label("Base URL").fill("https://api.example.com/v1")
        choose(page, "Authentication", auth)
    for field, value in fields.items():
        page.get_by_label(field, exact=True).fill(value)
    box = page.get_by_label(label, exact=True)
    box.press_sequentially(secret)
    box.press("Tab")
    page.get_by_role("button", name="Create").click()
    assert outcome(page) == f"Saved connection {name!r}."
    assert stored(ConfigStore(home), name, path) == secret
    page.close()


def test_a_secret_header_typed_then_tab_then_create_is_saved(studio, browser):
    url, home, _sandbox = studio
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    with page.expect_websocket() as connected:
        page.goto(f"{url}/connections")
    socket = connected.value
    page.get_by_role("heading", name="Connections").wait_for(timeout=30_000)
    page.get_by_label("Name", exact=True).fill("Tabbed header")
    page.get_by_label("Base URL").fill("https://api.example.com/v1")
    editor = page.locator(".st-key-conn-new-headers")
    editor.hover()
    editor.get_by_role("button", name="Add row").click()
    grid = editor.locator("canvas").first.bounding_box()
    cell = page.locator("#portal textarea")  # the data editor's cell editor
    page.mouse.dblclick(grid["x"] + 100, grid["y"] + 35 + 17)  # the new row's Name
    cell.fill("Authorization")  # fill: keys typed as the cell editor opens are lost
    with socket.expect_event("framesent"):
        cell.press("Tab")
    page.mouse.dblclick(grid["x"] + 350, grid["y"] + 35 + 17)  # its Value
    cell.fill("Bearer typed-header-42")
    # The data editor sends an edit 150 ms after it (Streamlit's debounce), where a text input
    # sends its value as the focus leaves it: wait until the browser has sent it, as any hand
    # moving to Create gives it time to.
    with socket.expect_event("framesent"):
        cell.press("Tab")
    page.get_by_role("button", name="Create").click()
    assert outcome(page) == "Saved connection 'Tabbed header'."
    header = ConfigStore(home).get("connections", "Tabbed header", reveal=True).headers[0]
    assert (header.name, header.value, header.secret) == (
        "Authorization",
        "Bearer typed-header-42",
        True,
    )
    page.close()


def test_editing_keeps_an_untouched_masked_secret_and_takes_a_typed_one(studio, browser):
    url, home, _sandbox = studio
    store = ConfigStore(home)
    bearer = {"type": "bearer", "token": "stored-token-1"}
    store.create("connections", api_connection("Edited API", auth=bearer), source="cli")
    page = connections_page(url, browser)
    choose(page, "Open", "Edited API")
    page.get_by_role("heading", name="Edited API").wait_for()
    path = page.get_by_role("textbox", name="Test path")
    path.press_sequentially("/me")
    path.press("Tab")
    page.get_by_role("button", name="Save").click()
    assert outcome(page) == "Saved connection 'Edited API'."
    kept = store.get("connections", "Edited API", reveal=True)
    assert (kept.test_path, kept.auth.token) == ("/me", "stored-token-1")
    token = page.get_by_label("Bearer token", exact=True)
    assert token.input_value() == "••••••"  # the stored secret never goes back to the browser
    token.press("Control+A")
    token.press_sequentially("typed-token-2")
    token.press("Tab")
    page.get_by_role("button", name="Save").click()
    assert outcome(page) == "Saved connection 'Edited API'."
    assert store.get("connections", "Edited API", reveal=True).auth.token == "typed-token-2"
    page.close()
