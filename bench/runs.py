"""Benchmarks of the runner.

    python bench/runs.py run [--records 200000] [--rounds 7] [--rows-csv off]
                                                    a full run into the entity store
    python bench/runs.py daemon [--jobs 10000]      10,000 minute jobs: idle CPU, lateness

``run``: the engine benchmark's local server serves the records; ``run_job`` pulls them, maps 5
fields and upserts them into the entity store (plus the run's rows.csv), against a hand-written
loop that inserts the same rows with ``executemany`` in one transaction. A warm-up of each, then
rounds in turns; medians of the times and of each round's ratio. Target: within 1.3x, peak RSS
under 100 MB. ``--rows-csv off`` (to measure what the run's rows.csv costs, by the difference):
the run writes the file's header and no rows.

``daemon``: that many active jobs with schedules of every minute and no-op work (the run only
notes how late it started). Measures the daemon's CPU while idle between ticks, the lateness of
runs (median and 99th percentile; target p99 under 1 s) and its memory.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import requests  # noqa: E402

from studio.config.store import ConfigStore  # noqa: E402

FIELDS = [
    ("$.id", "external_id", "string"),
    ("$.title", "name", "string"),
    ("$.category.code", "classification_category_id", "string"),
    ("$.description", "description", "string"),
    ("$.updatedAt", "updated_at", "datetime"),
]


def hand_written(url: str, home: Path) -> int:
    """The same import written by hand: requests, dict access, executemany upserts."""
    db = sqlite3.connect(home / "hand.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS products (external_id TEXT PRIMARY KEY, name TEXT,"
        " classification_category_id TEXT, description TEXT, updated_at TEXT)"
    )
    db.execute("BEGIN")
    n, page = 0, 1
    with requests.Session() as session:
        while True:
            data = session.get(
                f"{url}/products", params={"page": page, "size": 1000}, timeout=30
            ).json()
            rows = [
                (r["id"], r["title"], r["category"]["code"], r["description"], r["updatedAt"])
                for r in data["items"]
            ]
            db.executemany(
                "INSERT INTO products VALUES (?, ?, ?, ?, ?) ON CONFLICT"
                "(external_id) DO UPDATE SET name=excluded.name, "
                "classification_category_id=excluded.classification_category_id,"
                " description=excluded.description, "
                "updated_at=excluded.updated_at",
                rows,
            )
            n += len(rows)
            if page >= data["total_pages"] or not rows:
                break
            page += 1
    db.execute("COMMIT")
    db.close()
    return n


def bench_run(records: int, rounds: int, server_in: str, rows_csv: bool = True) -> None:
    from engine import interleaved, load, ratio, serve

    from studio import sinks
    from studio.runs import run_job

    if not rows_csv:  # the batches' CSV text neither made nor written (the benchmark only)
        sinks._plain_csv_text = lambda rows, width: ""

    server, url, size = serve(records, 1000, apart=server_in == "process")
    home = Path(tempfile.mkdtemp(prefix="bench-run-"))
    store = ConfigStore(home)
    store.create("connections", {"kind": "api", "name": "bench", "base_url": url}, source="cli")
    store.create(
        "jobs",
        {
            "kind": "api",
            "name": "bench",
            "connection_id": "bench",
            "entity": "Products",
            "calls": [
                {
                    "path": "/products",
                    "behavior": {
                        "type": "pagination",
                        "page_size": 1000,
                        "total_pages_path": "$.total_pages",
                        "max_pages": 100_000,
                    },
                }
            ],
            "content_finder": "$.items",
            "mapping": [{"extract": e, "generate": g, "type": t} for e, g, t in FIELDS],
        },
        source="cli",
    )

    def engine() -> int:
        return run_job(store, "bench").rows_written

    print(f"server in a {server_in}; rows.csv {'written' if rows_csv else 'off'}; {load()}")
    contenders = {"engine": engine, "hand": lambda: hand_written(url, home)}
    times = interleaved(contenders, rounds, records)
    server.shutdown()
    e, h = statistics.median(times["engine"]), statistics.median(times["hand"])
    print(
        f"full run, {records:,} records of ~{size} B upserted: run_job {records / e:,.0f} rec/s "
        f"({e:.2f} s), hand-written executemany {records / h:,.0f} rec/s ({h:.2f} s): "
        f"ratio {ratio(times, 'engine', 'hand'):.2f}x (target <= 1.3x); peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; {load()}"
    )


def bench_daemon(jobs: int, seconds: int) -> None:
    from runner.daemon import Daemon

    home = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
    store = ConfigStore(home)
    store.create(
        "connections",
        {"kind": "api", "name": "none", "base_url": "http://127.0.0.1:9"},
        source="cli",
    )
    # Write the jobs in one go (as an import would), then let the store stamp them.
    from studio.config.kinds import JOBS

    created = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    template = {
        "kind": "api",
        "connection_id": store.get("connections", "none").id,
        "entity": "Suppliers",
        "schedule": {"type": "minutes", "every": 1},
        "calls": [{"path": "/x"}],
        "mapping": [
            {"extract": "$.a", "generate": "external_id"},
            {"extract": "$.b", "generate": "name"},
        ],
    }
    with store._db(write=True) as db:
        table = db.table("jobs", cache_size=0)
        table.insert_multiple(
            store.vault.seal(
                JOBS.validate_config(
                    template | {"name": f"job {i}", "created_at": created, "updated_at": created}
                )
            )
            for i in range(jobs)
        )
    lateness: list[float] = []
    lock = threading.Lock()

    class NoOp(Daemon):
        def _run(self, job_id, name, trigger, slot):
            with lock:
                lateness.append((datetime.now(UTC) - slot).total_seconds())
            with self.lock:
                self.running.pop(job_id, None)

    daemon = NoOp(store, workers=4)
    for job in store.list("jobs"):
        daemon.last_slot[job.id] = datetime.now(UTC).replace(second=0, microsecond=0)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c0, w0 = time.process_time(), time.perf_counter()
        daemon.tick()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        time.sleep(max(0.0, 1 - wall[-1]))
    daemon.pool.shutdown(wait=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ticks = sorted(wall)
    late = sorted(lateness)
    if late:
        p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
        late_text = (
            f"{len(late):,} runs, lateness median {statistics.median(late):.2f} s, "
            f"p99 {p99:.2f} s (target p99 < 1 s)"
        )
    else:
        late_text = "no run came due (run for more than a minute)"
    idle = [c for c, w in zip(cpu, wall, strict=True) if w < 0.5]
    print(
        f"daemon, {jobs:,} minute jobs over {seconds} s: {late_text}; tick median "
        f"{statistics.median(ticks) * 1000:.0f} ms; CPU between due minutes "
        f"{statistics.median(idle) * 100 if idle else 0:.1f}% of a core; peak RSS "
        f"{peak / 1024:.0f} MB (store loaded: {rss_before / 1024:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    run = sub.add_parser("run")
    run.add_argument("--records", type=int, default=200_000)
    run.add_argument("--rounds", type=int, default=7)
    run.add_argument("--server", choices=["process", "thread"], default="process")
    run.add_argument("--rows-csv", choices=["on", "off"], default="on")
    daemon = sub.add_parser("daemon")
    daemon.add_argument("--jobs", type=int, default=10_000)
    daemon.add_argument("--seconds", type=int, default=130)
    args = parser.parse_args()
    if args.what == "run":
        bench_run(args.records, args.rounds, args.server, args.rows_csv == "on")
    else:
        bench_daemon(args.jobs, args.seconds)


if __name__ == "__main__":
    main()
