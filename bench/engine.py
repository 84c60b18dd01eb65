"""Benchmark: the engine (source + mapping, no writes) against a hand-written requests loop.

    python bench/engine.py [--records 200000] [--page-size 1000] [--rounds 7]

A local HTTP server (stdlib, pages rendered in advance so that it is not what is measured; in
a process of its own unless ``--server thread``) serves ``--records`` products of about 400
bytes, ``--page-size`` per page. After a warm-up round of each, every round pulls all of them
once through the engine (a paginated call, the content finder, a compiled mapping of 5 fields),
once through a plain ``requests`` loop with ``response.json()`` and dict access, and once
through the same loop parsing with ``orjson``; the order turns from round to round so that each
sees the same machine. Medians of the times, and the median of each round's ratio (the fairest
figure on a shared machine). Then 100,000 in-memory records are mapped with 5 compiled fields
and with plain dict access. Targets: the engine at most 0.85x the ``requests`` + ``json`` loop,
the mapping at most 2x dict access.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import requests

from studio.config.jobs import ApiJob
from studio.config.kinds import CONNECTIONS
from studio.engine import Chain, Limits
from studio.http import HttpClient
from studio.mapping import FieldMap, Mapper

FIELDS = [
    ("$.id", "external_id", "string"),
    ("$.title", "name", "string"),
    ("$.category.code", "classification_category_id", "string"),
    ("$.price.amount", "price", "number"),
    ("$.stock", "stock", "integer"),
]


def record(i: int) -> dict:
    return {
        "id": f"P{i:07d}",
        "title": f"Product number {i}",
        "category": {"code": f"cat-{i % 97}", "label": f"Category {i % 97}"},
        "price": {"amount": round(5 + (i * 37 % 1000) / 10, 2), "currency": "EUR"},
        "stock": i * 13 % 50,
        "active": i % 5 != 0,
        "updatedAt": "2026-05-17T08:00:00Z",
        "description": "A sturdy product made for benchmarking the import engine of the studio, "
        "with a long enough description to be realistic.",
        "supplierId": f"S{1 + i % 40:03d}",
        "tags": ["bench", f"group-{i % 10}"],
    }


def serve(
    records: int, page_size: int, apart: bool = False
) -> tuple[ThreadingHTTPServer | Apart, str, int]:
    """The server, in a thread of this process; ``apart``: in a process of its own, so that
    it takes neither this interpreter's lock nor its memory (the client is measured alone)."""
    if apart:
        return Apart.start(records, page_size)
    server, size = _server(records, page_size)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", size


class Apart:
    """The server in a forked process: ``shutdown`` ends it."""

    def __init__(self, process: multiprocessing.Process):
        self.process = process

    @classmethod
    def start(cls, records: int, page_size: int) -> tuple[Apart, str, int]:
        ctx = multiprocessing.get_context("fork")
        ours, theirs = ctx.Pipe()
        process = ctx.Process(target=cls._main, args=(records, page_size, theirs), daemon=True)
        process.start()
        url, size = ours.recv()
        return cls(process), url, size

    @staticmethod
    def _main(records: int, page_size: int, pipe) -> None:
        server, size = _server(records, page_size)
        pipe.send((f"http://127.0.0.1:{server.server_address[1]}", size))
        server.serve_forever()

    def shutdown(self) -> None:
        self.process.terminate()
        self.process.join()


def _server(records: int, page_size: int) -> tuple[ThreadingHTTPServer, int]:
    pages = -(-records // page_size)
    bodies = [
        json.dumps(
            {
                "items": [
                    record(i) for i in range(p * page_size, min((p + 1) * page_size, records))
                ],
                "page": p + 1,
                "total_pages": pages,
            }
        ).encode()
        for p in range(pages)
    ]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            page = int(parse_qs(urlsplit(self.path).query).get("page", ["1"])[0])
            body = bodies[page - 1] if 1 <= page <= pages else b'{"items": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    return server, sum(len(b) for b in bodies) // records


def engine_pull(url: str, page_size: int) -> int:
    conn = CONNECTIONS.validate_config({"kind": "api", "name": "bench", "base_url": url})
    job = ApiJob(
        name="bench",
        connection_id="bench",
        entity="Products",
        calls=[
            {
                "path": "/products",
                "behavior": {
                    "type": "pagination",
                    "page_size": page_size,
                    "size_param": "size",
                    "total_pages_path": "$.total_pages",
                    "max_pages": 100_000,
                },
            }
        ],
        content_finder="$.items",
        mapping=[{"extract": e, "generate": g, "type": t} for e, g, t in FIELDS[:3]],
    )
    mapper = Mapper([FieldMap(extract=e, generate=g, type=t) for e, g, t in FIELDS])
    rows = 0
    with HttpClient(conn) as client:
        for batch in Chain(job, conn, client, Limits()).batches():
            rows += len(mapper.map(batch).rows)
    return rows


def hand_pull(url: str, page_size: int, fast_json: bool = False) -> int:
    """The hand-written loop: ``response.json()`` (requests with the standard json), or the
    body parsed by ``orjson`` when ``fast_json``."""
    rows = 0
    with requests.Session() as session:
        page = 1
        while True:
            response = session.get(
                f"{url}/products", params={"page": page, "size": page_size}, timeout=30
            )
            data = orjson.loads(response.content) if fast_json else response.json()
            out = [
                {
                    "external_id": r["id"],
                    "name": r["title"],
                    "classification_category_id": r["category"]["code"],
                    "price": r["price"]["amount"],
                    "stock": r["stock"],
                }
                for r in data["items"]
            ]
            rows += len(out)
            if page >= data["total_pages"] or not out:
                return rows
            page += 1


def timed(fn, *args) -> tuple[float, int]:
    started = time.perf_counter()
    n = fn(*args)
    return time.perf_counter() - started, n


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def interleaved(contenders: dict, rounds: int, expect: int) -> dict[str, list[float]]:
    """Each contender's time per round, after a warm-up round; the order turns each round."""
    names = list(contenders)
    for name in names:
        assert contenders[name]() == expect
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t, n = timed(contenders[name])
            assert n == expect, (name, n)
            times[name].append(t)
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """The median of the rounds' ratios a/b."""
    return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--server",
        choices=["process", "thread"],
        default="process",
        help="where the server runs: a process of its own, or a thread beside the client",
    )
    args = parser.parse_args()

    server, url, size = serve(args.records, args.page_size, apart=args.server == "process")
    print(
        f"{args.records:,} records of ~{size} bytes, {args.page_size:,} per page, server in a "
        f"{args.server}, {args.rounds} interleaved rounds after a warm-up; {load()}"
    )
    times = interleaved(
        {
            "engine": lambda: engine_pull(url, args.page_size),
            "requests + json": lambda: hand_pull(url, args.page_size),
            "requests + orjson": lambda: hand_pull(url, args.page_size, fast_json=True),
        },
        args.rounds,
        args.records,
    )
    server.shutdown()
    for name, spent in times.items():
        t = statistics.median(spent)
        print(
            f"pull + map   {name:<18} {args.records / t:>10,.0f} rec/s ({t:.2f} s, "
            f"rounds {min(spent):.2f}-{max(spent):.2f} s)"
        )
    print(
        f"engine / (requests + json) {ratio(times, 'engine', 'requests + json'):.2f}x "
        f"(target <= 0.85x); (requests + orjson) / (requests + json) "
        f"{ratio(times, 'requests + orjson', 'requests + json'):.2f}x; {load()}"
    )

    records = [record(i) for i in range(100_000)]
    mapper = Mapper([FieldMap(extract=e, generate=g, type=t) for e, g, t in FIELDS])
    map_times, dict_times = [], []
    for _ in range(5):
        map_times.append(timed(lambda: len(mapper.map(records).rows))[0])
        dict_times.append(
            timed(
                lambda: len(
                    [
                        {
                            "external_id": r["id"],
                            "name": r["title"],
                            "classification_category_id": r["category"]["code"],
                            "price": r["price"]["amount"],
                            "stock": r["stock"],
                        }
                        for r in records
                    ]
                )
            )[0]
        )
    m, d = statistics.median(map_times), statistics.median(dict_times)
    print(
        f"map 100,000  compiled {100_000 / m:>10,.0f} rec/s ({m * 1000:.0f} ms)   "
        f"dict access {100_000 / d:>10,.0f} rec/s ({d * 1000:.0f} ms)   ratio {m / d:.2f}x "
        "(target <= 2x)"
    )


if __name__ == "__main__":
    main()
