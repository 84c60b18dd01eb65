"""Benchmark: importing a folder of configs (``runner import``) into a new store, then again.

    python bench/configs.py [--connections 400] [--jobs 400]

Writes ``--connections`` connection files (half OAuth 2.0 APIs with a secret header, half SFTP
servers with a password, so every one has secrets to seal) and ``--jobs`` file jobs using them,
imports the folder into a new store in one transaction, then imports it again (every file
unchanged). Target: 400 connections in under 3 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.config.files import import_configs  # noqa: E402
from studio.config.store import ConfigStore  # noqa: E402
from tests.helpers import api_connection, sftp_connection  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--jobs", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-configs-") as tmp:
        folder = Path(tmp) / "in"
        (folder / "connections").mkdir(parents=True)
        (folder / "jobs").mkdir()
        for i in range(args.connections):
            conn = api_connection(f"API {i}") if i % 2 else sftp_connection(f"SFTP {i}")
            (folder / "connections" / f"c{i}.json").write_text(json.dumps(conn))
        for i in range(args.jobs):
            job = {
                "kind": "file",
                "name": f"Job {i}",
                "connection_id": f"SFTP {2 * (i % max(1, args.connections // 2))}",
                "entity": "Suppliers",
                "source": {"mode": "path", "path": f"in/{i}.csv"},
                "mapping": [
                    {"extract": "id", "generate": "external_id"},
                    {"extract": "company", "generate": "name"},
                ],
            }
            (folder / "jobs" / f"j{i}.json").write_text(json.dumps(job))
        store = ConfigStore(Path(tmp) / "home")
        for label in ("into a new store", "again, unchanged"):
            started = time.perf_counter()
            outcomes = import_configs(store, folder)
            elapsed = time.perf_counter() - started
            errors = [str(o) for o in outcomes if o.action == "error"]
            assert not errors, errors[:3]
            print(
                f"{label}: {args.connections} connections and {args.jobs} jobs in {elapsed:.2f} s "
                "(target: 400 connections < 3 s)"
            )


if __name__ == "__main__":
    main()
