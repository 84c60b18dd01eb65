"""Benchmark: keystroke to redrawn preview in a real browser, on 10,000 cached records.

    python bench/preview_browser.py [--rounds 6]

Starts the demo sandbox and the studio (``python -m runner up`` on a temporary home), opens the
job builder in headless Chromium, tests a job that pulls 10,000 products (10 pages of 1,000),
then alternately types a content finder that matches nothing and one that matches all records,
timing each, inside the page, from the Enter key to the DOM mutation that shows the new count.
That is the analyst's wait: the round trip, the fragment rerun (content finder, mapping of every
record, tables) and the browser drawing it. Target: 150 ms.
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


def seed(home: Path, sandbox: str) -> None:
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
            "mapping": [
                {"extract": "$.id", "generate": "external_id"},
                {"extract": "$.title", "generate": "name"},
                {"extract": "$.category.code", "generate": "classification_category_id"},
                {"extract": "$.description", "generate": "description"},
                {"extract": "$.updatedAt", "generate": "updated_at", "type": "datetime"},
            ],
        },
        source="cli",
    )


def measure(port: int, args) -> list[float]:
    """Open the job, test it once, then time each content finder typed until it is drawn."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(f"http://127.0.0.1:{port}/jobs")
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
        page.get_by_text(f"{args.records} records", exact=False).first.wait_for(timeout=120_000)
        page.get_by_role("radio", name="Records and mapping", exact=True).click()
        finder = page.get_by_label("Content finder (JSONPath)", exact=True)
        page.get_by_text(f"{args.records:,} rows, 0 rejects").wait_for(timeout=60_000)
        times = []
        if os.environ.get("BENCH_TRACE"):
            browser.start_tracing(page=page, path=os.environ["BENCH_TRACE"])
        for n in range(args.rounds):
            expr, done = (
                ("$.item", "No records at $.item")
                if n % 2 == 0
                else ("$.items", f"{args.records:,} rows, 0 rejects")
            )
            finder.fill(expr)
            page.evaluate(
                """(done) => { window.__seen = null; window.__t0 = performance.now();
                const obs = new MutationObserver(() => {
                  if (document.body.innerText.includes(done)) {
                    window.__seen = performance.now(); obs.disconnect(); } });
                obs.observe(document.body, {subtree: true, childList: true,
                                            characterData: true}); }""",
                done,
            )
            finder.press("Enter")
            page.wait_for_function("window.__seen !== null", timeout=30_000)
            times.append(page.evaluate("window.__seen - window.__t0"))
        if os.environ.get("BENCH_TRACE"):
            browser.stop_tracing()
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
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
        seed(home, sandbox)
        times = measure(port, args)
        print(
            f"{args.records:,} cached records, 5 mapped fields, headless Chromium: keystroke "
            f"to redrawn "
            f"preview median {statistics.median(times):.0f} ms, max {max(times):.0f} ms "
            f"over {args.rounds} (target 150 ms)"
        )
    finally:
        up.terminate()
        up.wait(timeout=20)


if __name__ == "__main__":
    main()
