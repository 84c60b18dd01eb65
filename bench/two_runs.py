"""Benchmark: two large runs at once, in the daemon's thread pool or in worker processes.

    python bench/two_runs.py [--records 200000] [--rounds 3]

The engine benchmark's server (in a process of its own) serves ``--records`` products, 1,000 a
page. Two saved jobs pull them all, map 5 fields and upsert them into the same entity store
(``run_job``, as the daemon runs them). Measured, in turns, after a warm-up:

- ``one run``: a single run in a thread of this process (what one run costs alone);
- ``2 threads``: two runs at once in a ``ThreadPoolExecutor`` (the embedded daemon today): they
  share this interpreter's lock;
- ``2 processes``: two runs at once in a ``ProcessPoolExecutor`` of 2 spawned workers, started
  and warmed (imports done) before the clock starts, as a daemon would keep them;
- ``2 processes, cold``: the same with a pool spawned for the two runs (start-up included);
- ``daemon``: the two runs started in the embedded daemon (``Daemon.submit``, as two due slots
  or two REST API starts), which runs them in its worker processes (``runner.processes``); its
  pool kept from one round to the next, as the daemon keeps it.

For each: the wall time of the pair, the records per second of the pair, the CPU time used
(this process and its workers) over the wall time (how many cores were busy), and the peak RSS
of the process that ran the runs. Medians over the rounds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor  # noqa: E402

from engine import load, serve  # noqa: E402
from runs import FIELDS  # noqa: E402

JOBS = ("bench-a", "bench-b")


def setup(url: str) -> Path:
    from studio.config.store import ConfigStore

    home = Path(tempfile.mkdtemp(prefix="bench-two-runs-"))
    store = ConfigStore(home)
    store.create("connections", {"kind": "api", "name": "bench", "base_url": url}, source="cli")
    for name in JOBS:
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
    return home


def one_run(home: str, name: str) -> tuple[int, float]:
    """Run a job (in whichever thread or process calls it): (rows written, peak RSS in MB of
    this process)."""
    from studio.config.store import ConfigStore
    from studio.runs import run_job

    run = run_job(ConfigStore(Path(home)), name)
    assert run.status == "success", run.error
    return run.rows_written, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def warm() -> None:
    """A worker's imports, when it starts (before the clock, once the warm-up ran)."""
    import studio.runs  # noqa: F401


def cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure(label: str, fn) -> dict:
    c0, w0 = cpu(), time.perf_counter()
    results = fn()
    wall = time.perf_counter() - w0
    return {
        "label": label,
        "wall": wall,
        "rows": sum(r for r, _m in results),
        "rss": max(m for _r, m in results),
        "cores": (cpu() - c0) / wall,
    }


def peak_rss(pids: list[int]) -> float:
    """The largest peak RSS (VmHWM) of the processes ``pids``, in MB."""
    peak = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                hwm = next(line for line in f if line.startswith("VmHWM:"))
            peak = max(peak, int(hwm.split()[1]) / 1024)
        except (OSError, StopIteration):
            pass
    return peak


def pool_cpu(pids: list[int]) -> float:
    """The CPU time the pool's workers have used so far (they are not children yet waited)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def in_the_daemon(home: str, extra: list[float]):
    """An embedded daemon of 2 workers on ``home``, and the variant running the two jobs in it;
    its pool's CPU time goes to ``extra``."""
    from runner.daemon import Daemon
    from runner.processes import pool_processes
    from studio.config.store import ConfigStore
    from studio.stores import open_history

    store = ConfigStore(Path(home))
    daemon = Daemon(store, workers=2)
    history = open_history(store.home)

    def in_daemon() -> list:
        jobs = [store.get("jobs", name) for name in JOBS]
        pool = daemon.processes._pool
        before = pool_cpu(daemon_pids()) if pool else 0.0
        ids = [daemon.submit(job.id, job.name, "manual", None)[1] for job in jobs]
        while daemon.running:
            time.sleep(0.01)
        extra[0] = pool_cpu(daemon_pids()) - before
        runs = [history.get(run_id) for run_id in ids]
        assert all(run.status == "success" for run in runs), [run.error for run in runs]
        return [(run.rows_written, peak_rss(daemon_pids())) for run in runs]

    def daemon_pids() -> list[int]:
        return [p.pid for p in pool_processes(daemon.processes._pool)]  # a benchmark may look

    return daemon, in_daemon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server, url, size = serve(args.records, 1000, apart=True)
    home = str(setup(url))
    spawn = multiprocessing.get_context("spawn")
    warm_pool = ProcessPoolExecutor(2, mp_context=spawn, initializer=warm)
    threads = ThreadPoolExecutor(2)
    print(
        f"{args.records:,} records of ~{size} B per run, 2 runs at once, {os.cpu_count()} cores, "
        f"{args.rounds} rounds after a warm-up; {load()}"
    )

    def alone() -> list:
        return [threads.submit(one_run, home, JOBS[0]).result()]

    def in_threads() -> list:
        futures = [threads.submit(one_run, home, name) for name in JOBS]
        return [f.result() for f in futures]

    def in_processes(pool: ProcessPoolExecutor) -> list:
        futures = [pool.submit(one_run, home, name) for name in JOBS]
        return [f.result() for f in futures]

    def in_processes_warm() -> list:
        before = pool_cpu(list(warm_pool._processes))
        results = in_processes(warm_pool)
        extra[0] = pool_cpu(list(warm_pool._processes)) - before
        return results

    def in_processes_cold() -> list:
        with ProcessPoolExecutor(2, mp_context=spawn, initializer=warm) as pool:
            results = in_processes(pool)
        return results  # its workers, waited for, count in this process's children's times

    extra = [0.0]
    daemon, in_daemon = in_the_daemon(home, extra)
    variants = {
        "one run": alone,
        "2 threads": in_threads,
        "2 processes": in_processes_warm,
        "2 processes, cold": in_processes_cold,
        "daemon": in_daemon,
    }
    for fn in variants.values():  # warm-up
        fn()
    figures: dict[str, list[dict]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            extra[0] = 0.0
            m = measure(name, variants[name])
            m["cores"] += extra[0] / m["wall"]
            figures[name].append(m)
    warm_pool.shutdown()
    daemon.processes.kill()
    threads.shutdown()
    server.shutdown()
    walls = {name: statistics.median(m["wall"] for m in ms) for name, ms in figures.items()}
    for name, ms in figures.items():
        wall = walls[name]
        rows = ms[0]["rows"]
        print(
            f"{name:<18} {wall:6.2f} s  {rows / wall:>9,.0f} rec/s  "
            f"cores busy {statistics.median(m['cores'] for m in ms):.2f}  "
            f"peak RSS {max(m['rss'] for m in ms):.0f} MB  "
            f"(rounds {min(m['wall'] for m in ms):.2f}-{max(m['wall'] for m in ms):.2f} s)"
        )
    print(
        f"2 runs: threads {walls['2 threads'] / walls['one run']:.2f}x one run's time, "
        f"processes {walls['2 processes'] / walls['one run']:.2f}x (cold "
        f"{walls['2 processes, cold'] / walls['one run']:.2f}x); processes/threads "
        f"{walls['2 processes'] / walls['2 threads']:.2f}x; the daemon "
        f"{walls['daemon'] / walls['one run']:.2f}x; {load()}"
    )


if __name__ == "__main__":
    main()
