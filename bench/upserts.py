"""Upsert rates into the entity store: SQLite (the default) against PostgreSQL (issue 17).

    python bench/upserts.py [--rows 200000] [--url postgresql://…]

The same rows go through each store's writer as a run sends them (batches of 1,000, five
mapped fields of Products), then one commit: a first run inserts them, a second one updates
every row. Rows per second from the first write to the end of the commit, medians of
``--repeat`` alternated tries. Without ``--url`` (or ``STUDIO_DATABASE_URL``), a PostgreSQL of
its own is started as the tests do (tests/dbservers.py: Debian's postgresql, fsync off, so the
figures are the database's work, not the disk's).

``upsert_rates`` is what ``bench/scale.py`` calls.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

COLUMNS = ["external_id", "name", "classification_category_id", "description", "updated_at"]
BATCH = 1000


def _rows(batch: int, run: int) -> list[dict]:
    return [
        {
            "external_id": f"P{batch * BATCH + i:07d}",
            "name": f"Product {i} of run {run}",
            "classification_category_id": f"CAT-{i % 40}",
            "description": "A product that the benchmark upserts. " * 3,
            "updated_at": "2024-05-01T12:00:00+00:00",
        }
        for i in range(BATCH)
    ]


def _one_run(store, rows: int, run: int) -> float:
    """Seconds to write ``rows`` rows through a writer and commit them."""
    from studio.entities import entity

    started = time.perf_counter()
    writer = store.writer(entity("Products"), f"bench-{run}", COLUMNS)
    for batch in range(rows // BATCH):
        writer.write(_rows(batch, run))
    writer.commit()
    writer.close()
    return time.perf_counter() - started


def upsert_rates(url: str, rows: int = 200_000, repeat: int = 3) -> dict[str, dict[str, float]]:
    """Rows per second into SQLite and into PostgreSQL at ``url``: {"sqlite": {"insert": …,
    "update": …}, "postgresql": {…}}, medians of ``repeat`` tries, each into an empty store."""
    from studio.pgrows import PgRows
    from studio.rowstore import SqliteRows

    times: dict[str, dict[str, list[float]]] = {
        b: {"insert": [], "update": []} for b in ("sqlite", "postgresql")
    }
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STUDIO_HOME"] = tmp  # the entity catalog: the built-in one
        for attempt in range(repeat):
            home = Path(tmp) / f"try-{attempt}"
            stores = {"sqlite": SqliteRows(home), "postgresql": PgRows(home, url)}
            _drop(url)
            for backend, store in stores.items():
                for kind, run in (("insert", 1), ("update", 2)):
                    times[backend][kind].append(_one_run(store, rows, run))
            _drop(url)
    return {
        b: {k: round(rows / statistics.median(t)) for k, t in kinds.items()}
        for b, kinds in times.items()
    }


def _drop(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS entities.products")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=os.environ.get("STUDIO_DATABASE_URL", ""))
    args = parser.parse_args()
    server = None
    if not args.url:
        from tests.dbservers import PostgresServer

        server = PostgresServer()
        args.url = server.url
    try:
        rates = upsert_rates(args.url, args.rows, args.repeat)
    finally:
        if server:
            server.stop()
    print(f"{args.rows:,} rows, batches of {BATCH:,}, 5 fields; rows/s, medians of {args.repeat}")
    for backend, kinds in rates.items():
        print(f"  {backend:<11} insert {kinds['insert']:>9,}   update {kinds['update']:>9,}")
    ratio = {k: rates["postgresql"][k] / rates["sqlite"][k] for k in ("insert", "update")}
    print(f"  PostgreSQL / SQLite: insert {ratio['insert']:.2f}x, update {ratio['update']:.2f}x")


if __name__ == "__main__":
    main()
