"""Benchmark: how fast the builder's live preview follows a keystroke on 10,000 cached records.

    python bench/preview.py [--records 10000] [--rounds 5]

The job builder page is run with Streamlit's AppTest (a script run, as the server does it, without
the browser's drawing) holding a last test whose cached response has ``--records`` products and a
mapping of 5 fields. Each round types a new content finder and times the rerun: the content
finder over the cached responses, the mapping of every record, the tables. No request is sent.
The target is 150 ms. AppTest reruns the whole page, so this is an upper bound for the fragment.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["STUDIO_HOME"] = tempfile.mkdtemp(prefix="bench-preview-")

from streamlit.testing.v1 import AppTest  # noqa: E402

from runner.sandbox import product  # noqa: E402

MAPPING = [
    {
        "extract": "$.id",
        "generate": "external_id",
        "type": "string",
        "format": "",
        "default": None,
        "required": True,
    },
    {
        "extract": "$.title",
        "generate": "name",
        "type": "string",
        "format": "",
        "default": None,
        "required": True,
    },
    {
        "extract": "$.category.code",
        "generate": "classification_category_id",
        "type": "string",
        "format": "",
        "default": None,
        "required": True,
    },
    {
        "extract": "$.description",
        "generate": "description",
        "type": "string",
        "format": "",
        "default": None,
        "required": False,
    },
    {
        "extract": "$.updatedAt",
        "generate": "updated_at",
        "type": "datetime",
        "format": "",
        "default": None,
        "required": False,
    },
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    doc = {"items": [product(i) for i in range(1, args.records + 1)]}
    at = AppTest.from_file(str(ROOT / "pages" / "jobs.py"), default_timeout=120)
    at.session_state["jb_tests"] = {
        "new": {
            "call": 1,
            "at": "bench",
            "trace": {
                "exchanges": [],
                "log": [],
                "stopped": [],
                "documents": [doc],
                "records": [],
                "rows": [],
                "rejects": [],
                "error": None,
                "elapsed_ms": 0,
            },
        }
    }
    at.session_state["jb_section"] = "Records and mapping"
    at.session_state["jb_drafts"] = {
        "new": {
            "kind": "api",
            "name": "bench",
            "status": "active",
            "connection_id": "",
            "entity": "Products",
            "external_key": "",
            "schedule": {"type": "manual"},
            "calls": [{"method": "GET", "path": "/products"}],
            "content_finder": "$.items",
            "mapping": MAPPING,
        }
    }
    at.run()
    assert not at.exception, at.exception
    times = []
    finders = ["$.items[*]", "$.items"]
    for n in range(args.rounds * 2):
        started = time.perf_counter()
        at.text_input(key="jb.new.content_finder").input(finders[n % 2]).run()
        times.append((time.perf_counter() - started) * 1000)
        shown = [m.value for m in at.markdown if m.value.startswith(f"**{args.records:,} rows")]
        assert shown, [m.value for m in at.markdown]
    print(
        f"{args.records:,} cached records, 5 mapped fields: rerun after a keystroke "
        f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms "
        f"(target 150 ms; whole page, an upper bound for the fragment)"
    )


if __name__ == "__main__":
    main()
