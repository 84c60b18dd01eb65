"""Benchmark: N large jobs at once, in the embedded daemon or on 2 Celery workers.

    python bench/scale.py [--jobs 8] [--records 200000] [--rounds 3] [--pool solo]
                          [--backends sqlite,postgresql] [--upserts 200000]

It starts what it needs, each in a process of its own on 127.0.0.1: the engine benchmark's
server (``bench/engine.py``: pages rendered in advance, 1,000 records a page; a ``part`` query
parameter gives each job ids of its own, so that N jobs upsert N × ``--records`` distinct rows),
Debian's ``redis-server`` and a PostgreSQL cluster of its own (``tests/dbservers.py``: fsync
off, so the figures are the database's work, not the disk's). Then N jobs (5 mapped fields,
``bench/runs.py``'s, one a datetime) on one home per backend, and, for each backend:

- ``embedded``: a ``Daemon`` (``runner/daemon.py``, no broker) of N workers, which starts all
  N jobs at once (``submit``, as due slots do) in its N worker processes (``runner/processes.py``)
  and ends when they have run them. It runs in a spawned process of its own, made for the round,
  its worker processes started before the clock (start-up not timed); its CPU and memory are
  those of the daemon's process and its worker processes.
- ``workers``: 2 ``python -m runner worker`` processes, started and ready before the clock;
  this process claims and sends the N runs (``studio.runs.enqueue``, as ``runner run --queue``
  and the daemon do) and waits until the run history has recorded all N ended. The pool is
  ``--pool solo`` by default (concurrency 1: one run at a time in the worker's own process), a
  worker per core: a run is CPU-bound Python that holds its interpreter's lock, so one run per
  process and one process per core is what uses the cores; prefork (``--pool prefork``, run
  here with ``--concurrency 1``) puts the same run in a forked child and adds a parent process
  that only waits, and prefork's default concurrency (the CPUs) would put 4 runs on 2 cores.

SQLite: the daemon, the workers and this process share the home (its run history and
``entities.sqlite``), as workers on one machine may. PostgreSQL (``STUDIO_DATABASE_URL``): the
run history and the rows are in the database for all of them. Each round starts from an empty
``products`` table (every run inserts), the scenarios in turns; medians over ``--rounds``.

Measured per scenario: wall time from the first start to the last run's end, records per second
(all N jobs), the CPU seconds of the runners (the daemon's process, or the workers with their
children), of the source server, of Redis and of PostgreSQL (the postmaster and its backends),
the machine's busy cores over the wall time (``/proc/stat``: includes anything else running),
and the peak RSS of each runner process (``VmHWM``). Then ``bench/upserts.py``'s upsert rates
into SQLite and PostgreSQL, the bound a store puts on any number of workers.
Target (issue 17): 2 workers ≥ 1.7x the embedded throughput, on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from engine import load, record  # noqa: E402
from runs import FIELDS  # noqa: E402

PAGE = 1000
TICK = os.sysconf("SC_CLK_TCK")
LIVE = ("queued", "running")


# --- the source API ----------------------------------------------------------------------------


class Server:
    """The engine benchmark's paged products in a forked process; ``?part=k`` prefixes the ids
    with ``k-`` (a bytes replace of the rendered page), so each job has rows of its own."""

    def __init__(self, records: int):
        ctx = multiprocessing.get_context("fork")
        ours, theirs = ctx.Pipe()
        self.process = ctx.Process(target=self._main, args=(records, theirs), daemon=True)
        self.process.start()
        self.url, self.size = ours.recv()

    @staticmethod
    def _main(records: int, pipe) -> None:
        pages = -(-records // PAGE)
        bodies = [
            json.dumps(
                {
                    "items": [record(i) for i in range(p * PAGE, min((p + 1) * PAGE, records))],
                    "page": p + 1,
                    "total_pages": pages,
                }
            ).encode()
            for p in range(pages)
        ]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                page = int(query.get("page", ["1"])[0])
                body = bodies[page - 1] if 1 <= page <= pages else b'{"items": []}'
                part = query.get("part", [""])[0].encode()
                if part:
                    body = body.replace(b'"id": "P', b'"id": "' + part + b"-P")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        size = sum(len(b) for b in bodies) // records
        pipe.send((f"http://127.0.0.1:{server.server_address[1]}", size))
        server.serve_forever()

    def stop(self) -> None:
        self.process.terminate()
        self.process.join()


# --- the homes and jobs -------------------------------------------------------------------------


def make_home(home: Path, url: str, jobs: int) -> list[str]:
    """A config store with ``jobs`` jobs of the server's products, each its own ``part``."""
    from studio.config.store import ConfigStore

    store = ConfigStore(home)
    store.create("connections", {"kind": "api", "name": "bench", "base_url": url}, source="cli")
    names = [f"bench-{j}" for j in range(jobs)]
    for j, name in enumerate(names):
        store.create(
            "jobs",
            {
                "kind": "api",
                "name": name,
                "connection_id": "bench",
                "entity": "Products",
                "calls": [
                    {
                        "path": "/products",
                        "query": [{"name": "part", "value": f"J{j}"}],
                        "behavior": {
                            "type": "pagination",
                            "page_size": PAGE,
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
    return names


def empty_products(home: Path, database: str) -> None:
    """Start a round from an empty ``products`` table (no writer is open then)."""
    if database:
        import psycopg

        with psycopg.connect(database, autocommit=True) as conn:
            exists = conn.execute("SELECT to_regclass('entities.products')").fetchone()[0]
            if exists:
                conn.execute("TRUNCATE entities.products")
        return
    path = home / "entities.sqlite"
    if path.exists():
        with sqlite3.connect(path, isolation_level=None) as db:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'products'").fetchone():
                db.execute("DELETE FROM products")
                db.execute("VACUUM")
        db.close()


def count_products(home: Path, database: str) -> int:
    if database:
        import psycopg

        with psycopg.connect(database) as conn:
            return conn.execute("SELECT count(*) FROM entities.products").fetchone()[0]
    with sqlite3.connect(home / "entities.sqlite") as db:
        n = db.execute("SELECT count(*) FROM products").fetchone()[0]
    db.close()
    return n


# --- CPU and memory of processes -----------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_of(pid: int, waited: bool = True) -> float:
    """CPU seconds of a process, with its children it has waited for (``waited``)."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if waited:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and of its children, living or waited for."""
    return cpu_of(pid) + sum(cpu_of(c, waited=False) for c in children_of(pid))


def peak_rss(pid: int) -> float:
    """Peak RSS (VmHWM) of a living process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def machine_busy() -> float:
    """Busy seconds of all CPUs so far (not idle, not waiting for I/O), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICK


# --- the scenarios -------------------------------------------------------------------------------


def embedded_round(home: str, env: dict, jobs: int, conn) -> None:
    """In a spawned process: a daemon of ``jobs`` workers runs them all at once, in its worker
    processes, started and their imports done before the clock, as a running daemon has them."""
    os.environ.update(env)
    for name in ("STUDIO_BROKER_URL", "STUDIO_DATABASE_URL"):
        if name not in env:
            os.environ.pop(name, None)
    from runner.daemon import Daemon
    from runner.processes import pool_processes
    from studio.config.store import ConfigStore

    store = ConfigStore(Path(home))
    daemon = Daemon(store, workers=jobs)
    daemon.log = lambda event, **data: None  # its run-start and run-end lines
    assert not daemon.distributed
    todo = [(j.id, j.name) for j in store.list("jobs") if j.name.startswith("bench-")]
    pool = daemon.processes.start()
    if pool.active:  # Pebble starts the processes as the pool starts; a pool's idle processes
        time.sleep(5)  # are done importing within a few seconds
    conn.send("ready")
    conn.recv()  # the go
    cpu0, busy0, started = tree_cpu(os.getpid()), machine_busy(), time.perf_counter()
    ids = [daemon.submit(job_id, name, "manual", None)[1] for job_id, name in todo]
    while True:
        with daemon.lock:
            if not daemon.running:
                break
        time.sleep(0.01)
    wall = time.perf_counter() - started
    cpu1, busy1 = tree_cpu(os.getpid()), machine_busy()
    rss = [peak_rss(os.getpid())] + [peak_rss(p.pid) for p in pool_processes(pool)]
    daemon.pool.shutdown(wait=True)
    daemon.processes.kill()
    runs = [daemon.history.get(i) for i in ids]
    conn.send(
        {
            "wall": wall,
            "cpu": cpu1 - cpu0,
            "busy": (busy1 - busy0) / wall,
            "rss": [max(rss)],
            "statuses": sorted({r.status for r in runs}),
            "rows": sum(r.rows_written for r in runs),
            "errors": [r.error for r in runs if r.error][:2],
        }
    )


class Workers:
    """``python -m runner worker`` processes on one Redis database, ready when Celery is."""

    def __init__(self, count: int, pool: str, env: dict, logs: Path):
        self.processes, self.logs = [], []
        args = ["--pool", pool, "--loglevel", "info"]
        if pool != "solo":
            args += ["--concurrency", "1"]
        for i in range(count):
            log = logs / f"worker{i}.log"
            with open(log, "w") as out:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "runner", "worker", *args],
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            self.logs.append(log)
        deadline = time.monotonic() + 90
        while not all(" ready." in log.read_text() for log in self.logs):
            for p, log in zip(self.processes, self.logs, strict=True):
                if p.poll() is not None:
                    raise RuntimeError(f"a worker ended: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the workers were not ready within 90 s")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        """The worker processes and their pool children (prefork)."""
        return [q for p in self.processes for q in [p.pid, *children_of(p.pid)]]

    def cpu(self) -> float:
        return sum(tree_cpu(p.pid) for p in self.processes)

    def stop(self) -> None:
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def workers_round(home: Path, workers: Workers) -> dict:
    """This process claims and sends the runs; the workers run them; ends when all ended."""
    from studio.config.store import ConfigStore
    from studio.runs import enqueue
    from studio.stores import open_history

    store = ConfigStore(home)
    history = open_history(home)
    todo = [j.id for j in store.list("jobs") if j.name.startswith("bench-")]
    cpu0, busy0, started = workers.cpu(), machine_busy(), time.perf_counter()
    ids = [enqueue(store, job_id, trigger="manual").id for job_id in todo]
    while True:
        runs = [history.get(i) for i in ids]
        if all(r.status not in LIVE for r in runs):
            break
        time.sleep(0.02)
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "cpu": workers.cpu() - cpu0,
        "busy": (machine_busy() - busy0) / wall,
        "rss": [peak_rss(p) for p in workers.pids()],
        "statuses": sorted({r.status for r in runs}),
        "rows": sum(r.rows_written for r in runs),
        "errors": [r.error for r in runs if r.error][:2],
    }


# --- the benchmark -------------------------------------------------------------------------------


class Bench:
    """The servers, the homes (one per backend, with its 2 workers on a Redis database of its
    own) and the rounds."""

    def __init__(self, args: argparse.Namespace):
        from cryptography.fernet import Fernet

        from tests.dbservers import PostgresServer, RedisServer

        self.args = args
        self.backends = args.backends.split(",")
        self.base = Path(tempfile.mkdtemp(prefix="bench-scale-"))
        self.clusters: dict[str, Workers] = {}
        self.server = Server(args.records)
        self.redis = RedisServer(self.base)
        needed = "postgresql" in self.backends or args.upserts
        self.postgres = PostgresServer() if needed else None
        self.pg_pid = (
            int((self.postgres.data / "postmaster.pid").read_text().split()[0])
            if self.postgres
            else 0
        )
        env = {**os.environ, "STUDIO_SECRET_KEY": Fernet.generate_key().decode()}
        env["PYTHONPATH"] = str(ROOT)
        env.pop("STUDIO_DATABASE_URL", None)
        env.pop("STUDIO_BROKER_URL", None)
        self.setups: dict[str, tuple[Path, str, dict, str]] = {}
        for n, backend in enumerate(self.backends, start=1):
            home = self.base / f"home-{backend}"
            database = self.postgres.database(f"scale_{n}") if backend == "postgresql" else ""
            own = {**env, "STUDIO_HOME": str(home)}
            if database:
                own["STUDIO_DATABASE_URL"] = database
            broker = self.redis.url.rpartition("/")[0] + f"/{n}"
            self.setups[backend] = (home, database, own, broker)
            self.environ(backend)
            make_home(home, self.server.url, args.jobs)
            self.clusters[backend] = Workers(
                args.workers, args.pool, {**own, "STUDIO_BROKER_URL": broker}, self.base
            )
        os.environ.pop("STUDIO_BROKER_URL", None)

    def environ(self, backend: str, broker: bool = False) -> None:
        """This process set as a sender of the backend's home is."""
        _home, database, own, url = self.setups[backend]
        os.environ.update(own)
        if not database:
            os.environ.pop("STUDIO_DATABASE_URL", None)
        if broker:
            os.environ["STUDIO_BROKER_URL"] = url
        else:
            os.environ.pop("STUDIO_BROKER_URL", None)

    def round(self, backend: str, mode: str) -> dict:
        home, database, own, _broker = self.setups[backend]
        empty_products(home, database)
        server, redis = self.server.process.pid, self.redis.process.pid
        before = (cpu_of(server), cpu_of(redis), tree_cpu(self.pg_pid) if database else 0.0)
        if mode == "embedded":
            result = run_embedded(home, own, self.args.jobs)
        else:
            self.environ(backend, broker=True)
            result = workers_round(home, self.clusters[backend])
            self.environ(backend)
        result["server"] = cpu_of(server) - before[0]
        result["redis"] = cpu_of(redis) - before[1]
        result["db"] = (tree_cpu(self.pg_pid) - before[2]) if database else 0.0
        result["count"] = count_products(home, database)
        return result

    def stop(self) -> None:
        for cluster in self.clusters.values():
            cluster.stop()
        self.server.stop()
        self.redis.stop()
        if self.postgres:
            self.postgres.stop()
        shutil.rmtree(self.base, ignore_errors=True)  # homes of millions of rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", choices=["solo", "prefork", "threads"], default="solo")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--upserts", type=int, default=200_000, help="rows; 0: skip")
    args = parser.parse_args()
    bench = Bench(args)
    try:
        print(
            f"{args.jobs} jobs x {args.records:,} records of ~{bench.server.size} B, {PAGE:,} a "
            f"page, 5 mapped fields; {os.cpu_count()} CPUs; {args.workers} workers --pool "
            f"{args.pool}{'' if args.pool == 'solo' else ' --concurrency 1'}; {args.rounds} "
            f"rounds; {load()}",
            flush=True,
        )
        expect = args.jobs * args.records
        results: dict[tuple[str, str], list[dict]] = {}
        for r in range(args.rounds):
            for backend in bench.backends:
                for mode in ("embedded", "workers"):
                    result = bench.round(backend, mode)
                    results.setdefault((backend, mode), []).append(result)
                    ok = result["statuses"] == ["success"] and result["rows"] == expect
                    print(
                        f"  round {r + 1} {backend:<10} {mode:<8} {result['wall']:6.2f} s "
                        f"{expect / result['wall']:>9,.0f} rec/s  runners {result['cpu']:5.1f} "
                        f"CPU-s, server {result['server']:4.1f}, db {result['db']:4.1f}, "
                        f"busy {result['busy']:.2f} cores; {result['count']:,} rows; {load()}"
                        + ("" if ok else f"  !! {result['statuses']} {result['errors']}"),
                        flush=True,
                    )
        report(results, args, bench.backends)
        if args.upserts:
            from upserts import upsert_rates

            rates = upsert_rates(bench.postgres.database("upserts"), args.upserts, repeat=3)
            print(f"\nupsert rates (bench/upserts.py, {args.upserts:,} rows, medians of 3), rows/s")
            for backend, kinds in rates.items():
                print(f"  {backend:<11} insert {kinds['insert']:>9,}  update {kinds['update']:>9,}")
        print(load())
    finally:
        bench.stop()


def run_embedded(home: Path, env: dict, jobs: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=embedded_round, args=(str(home), env, jobs, theirs))
    process.start()
    try:
        for expect in ("ready", "result"):
            while not ours.poll(1):
                if not process.is_alive():
                    raise RuntimeError(f"the embedded daemon's process ended ({process.exitcode})")
            got = ours.recv()
            if expect == "ready":
                assert got == "ready"
                ours.send("go")
    finally:
        process.join(timeout=60)
    return got


def report(results: dict, args, backends: list[str]) -> None:
    expect = args.jobs * args.records
    print(
        f"\n{args.jobs} jobs x {args.records:,} records, medians of {args.rounds} rounds "
        f"(embedded: a daemon of {args.jobs} worker processes; workers: {args.workers} x "
        f"--pool {args.pool})"
    )
    head = (
        f"{'store':<10} {'runner':<9} {'wall s':>7} {'rec/s':>9} {'vs emb.':>7} "
        f"{'runner CPU-s':>12} {'server':>6} {'db':>5} {'cores':>5}  peak RSS MB per process"
    )
    print(head)
    print("-" * len(head))
    for backend in backends:
        for mode in ("embedded", "workers"):
            rounds = results[(backend, mode)]
            wall = statistics.median(x["wall"] for x in rounds)
            rate = expect / wall

            def med(key: str, rounds: list = rounds) -> float:
                return statistics.median(x[key] for x in rounds)

            rss = [max(x["rss"][i] for x in rounds) for i in range(len(rounds[0]["rss"]))]
            embedded = results[(backend, "embedded")]
            ratio = statistics.median(
                e["wall"] / x["wall"] for e, x in zip(embedded, rounds, strict=True)
            )
            print(
                f"{backend:<10} {mode:<9} {wall:7.2f} {rate:9,.0f} {ratio:6.2f}x "
                f"{med('cpu'):12.1f} {med('server'):6.1f} {med('db'):5.1f} {med('busy'):5.2f}  "
                + ", ".join(f"{m:.0f}" for m in rss)
            )


if __name__ == "__main__":
    main()
