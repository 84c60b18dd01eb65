"""``runner runs …``: the run history from the command line (list, show, download, log)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from runner.output import exchange_text, print_json, print_list
from studio.config.store import ConfigStore
from studio.errors import Conflict, NotFound
from studio.runhistory import Run, counts_text, data_files, duration_seconds, run_files
from studio.stores import RunStore, open_history


def _utc(stamp: str) -> str:
    """An ISO time of the history as people read it: 2026-05-04 02:33:00 UTC."""
    return stamp[:19].replace("T", " ") + " UTC" if stamp else ""


def _run_row(run: Run) -> dict:
    """One row of ``runs list``."""
    seconds = duration_seconds(run)
    return {
        "run": run.id,
        "started": _utc(run.started_at),
        "job": run.job_name,
        "trigger": run.trigger,
        "by": run.started_by,  # who started it ("" for the schedule and the CLI)
        "status": run.status,
        "seconds": "" if seconds is None else f"{seconds:g}",
        "records": run.records,
        "rows": run.rows_written,
        "rejected": run.rows_rejected,
        "requests": run.requests,
        "error": " ".join(run.error.split()),  # the last column: as long as it is
    }


def _job_filter(store: ConfigStore, history: RunStore, name: str) -> dict:
    """``--job``: a saved job by name or id, or the name of a deleted job that has runs."""
    try:
        return {"job_id": store.get("jobs", name).id}
    except NotFound:
        if history.list(job_name=name, limit=1):
            return {"job_name": name}
        raise


def runs_list(store: ConfigStore, args: argparse.Namespace) -> int:
    history = open_history(store.home)
    which = _job_filter(store, history, args.job) if args.job else {}
    runs = history.list(status=args.status, limit=args.n, **which)
    print_list(args, runs, _run_row, Run.as_dict)
    return 0


def runs_show(store: ConfigStore, args: argparse.Namespace) -> int:
    run = open_history(store.home).find(args.run)
    if args.json:
        print_json(run.as_dict())
        return 0
    seconds = duration_seconds(run)
    running = run.status in ("queued", "running")
    lines = {
        "trigger": run.trigger + (f", slot {_utc(run.slot)}" if run.slot else ""),
        "started by": run.started_by,
        "started": _utc(run.started_at),
        "finished": f"{_utc(run.finished_at)} ({seconds:g} s)" if seconds is not None else "—",
        "counts so far" if running else "counts": counts_text(run),
        "reason": run.error,
        "folder": run.folder,
    }
    print(f"run {run.id} of {run.job_name!r}: {run.status}")
    for label, value in lines.items():
        if value:
            print(f"  {label + ':':<15}{value}")
    for i, f in enumerate(run_files(run)):
        print(f"  {'' if i else 'files:':<15}{f.name} ({f.stat().st_size:,} B)")
    return 0


def runs_download(store: ConfigStore, args: argparse.Namespace) -> int:
    run = open_history(store.home).find(args.run)
    files = data_files(run)
    targets = [args.folder / f.name for f in files]
    taken = [str(t) for t in targets if t.exists()]
    if taken and not args.force:
        raise Conflict(f"{', '.join(taken)}: already there; --force overwrites")
    args.folder.mkdir(parents=True, exist_ok=True)
    for source, target in zip(files, targets, strict=True):
        shutil.copyfile(source, target)
        print(target)
    return 0


def _log_text(entry: dict) -> str:
    """A line of run.log (JSON) as people read it."""
    kind = entry.get("kind", "")
    if kind == "exchange":
        text = exchange_text(entry, entry.get("ms") or 0)
        text += f"  error: {entry['error']}" if entry.get("error") else ""
    elif kind == "page":
        text = f"{entry.get('call')}: a page of {entry.get('records')} records"
    else:
        text = entry.get("message", "")
    return f"{entry.get('at', '')[11:19]}  {kind:<8}  {text}"


def runs_log(store: ConfigStore, args: argparse.Namespace) -> int:
    run = open_history(store.home).find(args.run)
    # An ended run's log may be in PostgreSQL (studio.pgfiles): run_files brings it here.
    path = next((f for f in run_files(run) if f.name == "run.log"), Path(run.folder) / "run.log")
    if not path.is_file():
        raise NotFound(f"Run {run.id} has no log (its files were deleted, or it never started)")
    with open(path, encoding="utf-8") as f:
        entries = [json.loads(line) for line in f if line.strip()]
    if args.json:
        print_json(entries)
    for entry in [] if args.json else entries:
        print(_log_text(entry))
    return 0
