"""How the CLI prints: tables for people, JSON (``--json``) for scripts, times in UTC."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import datetime


def print_table(rows: list[dict]) -> None:
    if not rows:
        print("(none)")
        return
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in rows[0]}
    print("  ".join(k.upper().ljust(w) for k, w in widths.items()).rstrip())
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in widths.items()).rstrip())


def print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def print_list(args: argparse.Namespace, items: list, row: Callable, record: Callable) -> None:
    """A listing: a table of ``row(item)``, or with ``--json`` an array of ``record(item)``."""
    if args.json:
        print_json([record(item) for item in items])
    else:
        print_table([row(item) for item in items])


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def exchange_text(e: dict, ms: float) -> str:
    """A request on one line, as ``preview`` and ``runs log`` print it."""
    status = e["status"] if e.get("status") is not None else "---"
    note = f"  [{e['note']}]" if e.get("note") else ""
    retried = f"  retried: {', '.join(e['retries'])}" if e.get("retries") else ""
    return (
        f"{e['label']:<10} {e['method']:<6} {status}  {ms:7.0f} ms  "
        f"{e['size'] or 0:>9,} B  {e['url']}{note}{retried}"
    )
