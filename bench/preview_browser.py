"""Benchmark: keystroke to redrawn preview in a real browser, on 10,000 cached records.

    python bench/preview_browser.py [--rounds 20] [--transforms]

Starts the demo sandbox and the studio (``python -m runner up`` on a temporary home), opens the
job builder in headless Chromium, tests a job that pulls 10,000 products (10 pages of 1,000),
then presses keys one at a time, without Enter: in the content finder (a "s" more or less
between "$.items", every record, and "$.item", none) and in a mapping field (an "X" more or
less after the extract of a required field: every record rejected, or none). Each is timed
inside the page, from the keydown to the DOM mutation that shows the new count: the input's
pause (it reports 250 ms after the last keystroke, so a word typed is one rerun, not one per
letter), the round trip, the fragment rerun (content finder, mapping of every record, tables)
and the browser drawing it. Target: 150 ms after the pause.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from studio.config.store import ConfigStore  # noqa: E402
from views.builder.grid import DEBOUNCE_MS  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str) -> None:
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


PLAIN = [
    {"extract": "$.id", "generate": "external_id"},
    {"extract": "$.title", "generate": "name"},
    {"extract": "$.category.code", "generate": "classification_category_id"},
    {"extract": "$.description", "generate": "description"},
    {"extract": "$.updatedAt", "generate": "updated_at", "type": "datetime"},
]
# The same with a template and a lookup (--transforms): the preview must stay as live.
TRANSFORMED = [
    PLAIN[0],
    {"template": "{{ title | upper }} ({{ stock }})", "generate": "name"},
    {**PLAIN[2], "lookup": "categories"},
    *PLAIN[3:],
]
LOOKUPS = [{"name": "categories", "map": {"cat-1": "Shoes", "cat-2": "Bags"}, "on_miss": "keep"}]


def seed(home: Path, sandbox: str, transforms: bool = False) -> None:
    """The sandbox connection and a paginated job of 5 mapped fields."""
    store = ConfigStore(home)
    conn = store.create(
        "connections",
        {
            "kind": "api",
            "name": "Sandbox",
            "base_url": f"{sandbox}/api",
            "auth": {"type": "bearer", "token": "demo-token"},
        },
        source="cli",
    )
    store.create(
        "jobs",
        {
            "kind": "api",
            "name": "Bench",
            "connection_id": conn.id,
            "entity": "Products",
            "calls": [
                {
                    "path": "/products",
                    "behavior": {
                        "type": "pagination",
                        "page_size": 1000,
                        "total_pages_path": "$.total_pages",
                    },
                }
            ],
            "content_finder": "$.items",
            "mapping": TRANSFORMED if transforms else PLAIN,
            "lookups": LOOKUPS if transforms else [],
        },
        source="cli",
    )


WATCH = """([done, gone]) => {
    window.__seen = null;
    if (!window.__keys) {  // the time of each keystroke, wherever it lands (shadow DOM too)
        window.__keys = true;
        document.addEventListener("keydown", () => { window.__t0 = performance.now(); }, true);
    }
    const obs = new MutationObserver(() => {
        const text = document.body.innerText;
        if (text.includes(done) && !text.includes(gone)) {
            window.__seen = performance.now(); obs.disconnect(); } });
    obs.observe(document.body, {subtree: true, childList: true, characterData: true}); }"""


PAUSE_MS = 500  # between two edits, as a person reads the rows before typing again


def keystrokes(page, field, edits: list[tuple[str, str, str]]) -> list[float]:
    """Press each key in ``field`` and time it until the page shows the text it should and no
    longer the text it showed before (Streamlit keeps the last run's elements until the new
    run replaces them)."""
    times = []
    for key, done, gone in edits:
        page.evaluate(WATCH, [done, gone])
        field.press(key)
        page.wait_for_function("window.__seen !== null", timeout=30_000)
        times.append(page.evaluate("window.__seen - window.__t0"))
        page.wait_for_timeout(PAUSE_MS)
    return times


def measure(port: int, args) -> dict[str, list[float]]:
    """Open the job, test it once, then time keystrokes in the content finder and in a mapping
    field until the records and rows they change are drawn."""
    n = f"{args.records:,}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Import jobs").click()
        page.get_by_text("Open").first.wait_for(timeout=60_000)
        page.get_by_role("combobox").first.click()
        page.get_by_role("option", name="Bench").click()
        page.get_by_role("radio", name="Calls and tests", exact=True).click()
        pages = page.get_by_label("Preview: max pages")
        pages.fill("10")
        pages.press("Enter")
        records = page.get_by_label("Preview: max records")
        records.fill("10000")
        records.press("Enter")
        time.sleep(1)
        page.get_by_role("button", name="Test up to here").click()
        page.get_by_text(f"{n} records", exact=False).first.wait_for(timeout=120_000)
        page.get_by_role("radio", name="Records and mapping", exact=True).click()
        page.get_by_text(f"{n} rows, 0 rejects").wait_for(timeout=60_000)
        finder = page.locator("input[placeholder='$.items']")
        finder.click()
        finder.press("End")
        # A "s" more or less: "$.items" finds every record, "$.item" none.
        every, none = f"{n} rows, 0 rejects", "No records at $.item"
        flips = [("Backspace", none, every), ("s", every, none)]
        found = keystrokes(page, finder, flips * (args.rounds // 2))
        extract = page.get_by_label("Extract").first  # $.id, to external_id (required)
        extract.click()
        extract.press("End")
        # "$.idX" finds no id: every record is rejected; Backspace brings them back.
        rejected = f"0 rows, {n} rejects"
        flips = [("X", rejected, every), ("Backspace", every, rejected)]
        mapped = keystrokes(page, extract, flips * (args.rounds // 2))
        browser.close()
    return {"content finder": found, "mapping field": mapped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--transforms", action="store_true", help="a template and a lookup in the mapping"
    )
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-browser-"))
    port, sandbox_port = free_port(), free_port()
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    env = {**os.environ, "STUDIO_HOME": str(home)}
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "up",
            "--no-demo",
            "--port",
            str(port),
            "--sandbox-port",
            str(sandbox_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait(f"{sandbox}/_sandbox/stats")
        wait(f"http://127.0.0.1:{port}/_stcore/health")
        urllib.request.urlopen(
            urllib.request.Request(
                f"{sandbox}/_sandbox/settings",
                data=f'{{"products": {args.records}}}'.encode(),
                headers={"Content-Type": "application/json"},
            )
        )
        seed(home, sandbox, args.transforms)
        series = measure(port, args)
        print(
            f"{args.records:,} cached records, 5 mapped fields"
            f"{' (a template and a lookup among them)' if args.transforms else ''}, headless "
            "Chromium, "
            f"{args.rounds} keystrokes each; the input reports {DEBOUNCE_MS} ms after the "
            "last keystroke, then the page redraws (target: 150 ms after that pause)"
        )
        for name, times in series.items():
            after = [t - DEBOUNCE_MS for t in times]
            if os.environ.get("BENCH_VERBOSE"):
                print(name, [round(t) for t in after])
            print(
                f"  {name:15} after the pause: median {statistics.median(after):.0f} ms, "
                f"max {max(after):.0f} ms · keystroke to rows: median "
                f"{statistics.median(times):.0f} ms, max {max(times):.0f} ms"
            )
    finally:
        up.terminate()
        up.wait(timeout=20)


if __name__ == "__main__":
    main()
