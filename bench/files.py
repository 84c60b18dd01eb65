"""Benchmark: a large CSV imported from an FTP or SFTP server, through the mapping, on loopback.

    python bench/files.py [--mb 1024] [--protocol ftp|sftp]

Writes a CSV of ``--mb`` megabytes (products, ~110 bytes a row) into a temporary folder, serves
it from a separate process (pyftpdlib for FTP, OpenSSH's sshd for SFTP when installed), and
imports it with a file job (5 mapped columns) into a sink that only counts rows. Prints MB/s and
the peak RSS of this process, which holds the whole client side. Targets: at least 30 MB/s, and
memory flat (peak RSS under 200 MB) whatever the file's size.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.config.jobs import FileJob  # noqa: E402
from studio.config.kinds import CONNECTIONS  # noqa: E402
from studio.files import connect  # noqa: E402
from studio.filesource import import_files  # noqa: E402


class CountingSink:
    def __init__(self) -> None:
        self.rows = self.rejects = 0

    def write(self, rows, rejects, discarded=0) -> None:
        self.rows += len(rows)
        self.rejects += len(rejects)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass


def make_csv(path: Path, megabytes: int) -> int:
    """Write about ``megabytes`` of CSV; returns the number of rows."""
    target = megabytes * 1024 * 1024
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("id;title;category;price;stock;description\n")
        block = []
        while f.tell() < target:
            for _ in range(10_000):
                rows += 1
                block.append(
                    f"P{rows:09d};Product number {rows};cat-{rows % 97};"
                    f"{(rows * 37 % 100_000) / 100:.2f};{rows % 500};"
                    f'"A sturdy product; made for benchmarks"\n'
                )
            f.write("".join(block))
            block.clear()
    return rows


def serve_ftp(folder: Path) -> tuple[subprocess.Popen, int]:
    code = textwrap.dedent(f"""
        import sys
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import FTPServer
        a = DummyAuthorizer(); a.add_user("bench", "bench", {str(folder)!r}, perm="elr")
        FTPHandler.authorizer = a
        server = FTPServer(("127.0.0.1", 0), FTPHandler)
        print(server.address[1], flush=True)
        server.serve_forever()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, stderr=subprocess.DEVNULL
    )
    return proc, int(proc.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--protocol", choices=["ftp", "sftp"], default="ftp")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-files-") as tmp:
        folder = Path(tmp) / "files"
        folder.mkdir()
        started = time.perf_counter()
        rows = make_csv(folder / "products.csv", args.mb)
        size = (folder / "products.csv").stat().st_size
        print(f"wrote {size / 1e6:,.0f} MB, {rows:,} rows in {time.perf_counter() - started:.1f} s")
        if args.protocol == "ftp":
            server, port = serve_ftp(folder)
            conn = CONNECTIONS.validate_config(
                {
                    "kind": "file_server",
                    "name": "bench",
                    "protocol": "ftp",
                    "host": "127.0.0.1",
                    "port": port,
                    "username": "bench",
                    "password": "bench",
                    "root": "/",
                }
            )
        else:
            from tests.servers import SshServer

            server = SshServer(Path(tmp) / "sshd")
            (server.root / "products.csv").symlink_to(folder / "products.csv")
            conn = CONNECTIONS.validate_config(
                {
                    "kind": "file_server",
                    "name": "bench",
                    "protocol": "sftp",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "username": server.user,
                    "private_key": server.client_key,
                    "root": str(server.root),
                }
            )
        job = FileJob(
            name="bench",
            connection_id="bench",
            entity="Offers",
            source={"mode": "path", "path": "products.csv"},
            csv={"delimiter": ";"},
            mapping=[
                {"extract": "id", "generate": "external_id"},
                {"extract": "title", "generate": "variant_sku"},
                {"extract": "category", "generate": "supplier_external_id"},
                {"extract": "price", "generate": "price", "type": "number"},
                {"extract": "stock", "generate": "stock", "type": "integer"},
                {"extract": '"EUR"', "generate": "currency"},
            ],
        )
        sink = CountingSink()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        with connect(conn, Path(tmp)) as client:
            report = import_files(job, client, sink)
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if args.protocol == "ftp":
            server.terminate()
        else:
            server.stop()
        assert not report.failed and sink.rows == rows, (report.failed, sink.rows)
        print(
            f"{args.protocol}: {size / 1e6:,.0f} MB, {rows:,} rows mapped in {elapsed:.1f} s: "
            f"{size / 1e6 / elapsed:.1f} MB/s, {rows / elapsed:,.0f} rows/s (target >= 30 MB/s); "
            f"peak RSS {peak / 1024:.0f} MB (before the import {before / 1024:.0f} MB; "
            "target < 200 MB)"
        )


if __name__ == "__main__":
    main()
