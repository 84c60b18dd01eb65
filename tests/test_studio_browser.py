"""The whole studio, started by the README's command, used in headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright. Outside CI a machine without
it skips these tests and says so; in CI (``CI`` set) a missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from studio.config.store import ConfigStore
from tests.helpers import ROOT, point_demo_at, wait_for
from tests.servers import free_port, need

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTPUT = ROOT / "test-output"


def wait_http(url: str, timeout: float = 60) -> None:
    """Until ``url`` answers 200, for ``timeout`` seconds at most."""

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for(answers, timeout, f"{url} to answer 200", interval=0.3)


@pytest.fixture(scope="session")
def studio(tmp_path_factory):
    """``python -m runner up`` on a fresh home, once for the session."""
    home = tmp_path_factory.mktemp("studio-home")
    port, sandbox_port = free_port(), free_port()
    env = {**os.environ, "STUDIO_HOME": str(home), "PYTHONPATH": str(ROOT)}
    log = open(tmp_path_factory.mktemp("logs") / "up.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "up",
            "--port",
            str(port),
            "--sandbox-port",
            str(sandbox_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/_stcore/health")
        wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats")
        yield url, Path(home), f"http://127.0.0.1:{sandbox_port}"
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0, "runner up did not stop cleanly on SIGTERM"
        log.close()


@pytest.fixture(scope="session")
def browser():
    need(f"Chromium ({CHROMIUM})", Path(CHROMIUM).exists(), "apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


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
