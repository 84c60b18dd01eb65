"""``python -m runner``: the command line for operators and scripts.

Every command calls the same ``studio`` functions as the studio and the REST API; this module
only parses arguments and prints. Errors print their readable message and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from runner.docsgen import PROG, docs_command
from runner.entitiescli import add_entity_commands
from runner.output import exchange_text, print_json, print_list, when
from runner.runscli import runs_download, runs_list, runs_log, runs_show
from runner.userscli import add_token_commands, add_user_commands
from studio.config.connections import KIND_LABELS
from studio.config.files import export_configs, import_configs
from studio.config.kinds import KINDS
from studio.config.schedules import next_runs
from studio.config.store import ConfigStore, change_text
from studio.connectivity import check_connection
from studio.engine import PREVIEW_PAGES, PREVIEW_RECORDS
from studio.errors import ConfigError, StudioError
from studio.runhistory import (
    STATUSES,
    counts_text,
    plural,
)
from studio.runs import preview_saved, run_job
from studio.stores import open_history

RUN_HELP = "run id, or its first characters"


def _formatter(prog: str) -> argparse.HelpFormatter:
    # A fixed width keeps the generated docs/cli.md the same on every terminal.
    return argparse.RawDescriptionHelpFormatter(prog, width=100, max_help_position=32)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=_formatter,
        description="Connector Studio runner: start the studio, manage configs, preview jobs.",
        epilog="Data lives in $STUDIO_HOME (default ./data). Secrets are encrypted with "
        "$STUDIO_SECRET_KEY, or a key file made in $STUDIO_HOME on first use.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (
        _add_up,
        _add_configs,
        _add_test_connection,
        _add_preview,
        _add_serve,
        _add_worker,
        _add_run,
        _add_runs,
        _add_next_runs,
        _add_api_token,
        _add_users,
        _add_sandbox,
        _add_export,
        _add_import,
        _add_docs,
    ):
        add(sub)
    return parser


Handler = Callable[[ConfigStore, argparse.Namespace], int]


def _command(sub, name: str, text: str, handler: Handler, **kwargs) -> argparse.ArgumentParser:
    """A (sub)command that ``main`` dispatches to ``handler(store, args)``."""
    p = sub.add_parser(name, help=text, formatter_class=_formatter, **kwargs)
    p.set_defaults(handler=handler)
    return p


def _group(sub, name: str, text: str, **kwargs) -> argparse._SubParsersAction:
    """A command of actions (``connections list``, ``runs show``…): the actions' subparsers."""
    p = sub.add_parser(name, help=text, formatter_class=_formatter, **kwargs)
    return p.add_subparsers(dest="action", metavar="ACTION", required=True)


def _json_flag(p: argparse.ArgumentParser, text: str = "print JSON") -> None:
    p.add_argument("--json", action="store_true", help=text)


def _add_up(sub) -> None:
    p = _command(sub, "up", "start the studio on the embedded default", _up)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8501, help="studio port (default 8501)")
    p.add_argument(
        "--no-demo", action="store_true", help="do not load the demo configs into a new store"
    )
    p.add_argument(
        "--sandbox-port", type=int, default=8765, help="demo sandbox API port (default 8765)"
    )
    p.add_argument("--no-sandbox", action="store_true", help="do not start the demo sandbox API")
    p.add_argument("--api-port", type=int, default=8780, help="the runner's REST API port (8780)")


def _add_users(sub) -> None:
    add_user_commands(sub, _group, _command)


def _add_configs(sub) -> None:
    """The same actions on every kind of config; entities are never activated or disabled,
    list and show built-in ones too, and are created from a file or a field at a time
    (``runner/entitiescli.py``)."""
    for kind in ("connections", "jobs", "entities"):
        label = KINDS[kind].label
        if kind == "entities":
            actions = _group(sub, kind, "list, show, create, add-field, delete, audit entities")
            add_entity_commands(actions, _command)
            verbs = []
        else:
            actions = _group(sub, kind, f"list, show, activate, disable, delete {kind}")
            c = _command(actions, "list", f"a table of {kind}", _config_list)
            _json_flag(c, "print JSON (secrets masked)")
            c.set_defaults(kind=kind)
            refused = " (refused while jobs use it)" if label == "connection" else ""
            verbs = [
                ("show", f"one {label}, secrets masked", _config_show),
                ("activate", f"activate a {label}", _config_status),
                ("disable", f"disable a {label}", _config_status),
                ("delete", f"delete a {label}{refused}", _config_delete),
            ]
        for action, text, handler in [
            *verbs,
            ("audit", f"the audit trail of {_a(label)} {label}, newest first", _config_audit),
        ]:
            c = _command(actions, action, text, handler)
            c.add_argument("name", metavar="NAME", help=f"{label} name or id")
            if action in ("show", "audit"):
                _json_flag(c)
            c.set_defaults(kind=kind)


def _a(word: str) -> str:
    """The article, so that help reads "an entity" as well as "a job"."""
    return "an" if word[0] in "aeiou" else "a"


def _add_test_connection(sub) -> None:
    p = _command(
        sub,
        "test-connection",
        "log in and reach a connection's server; exit 1 if it fails",
        _test_connection,
    )
    p.add_argument("name", metavar="NAME", help="connection name or id")


def _add_preview(sub) -> None:
    p = _command(
        sub, "preview", "run a job with preview limits, write nothing, print the trace", _preview
    )
    p.add_argument("name", metavar="JOB", help="job name or id")
    p.add_argument("--up-to", type=int, metavar="N", help="run calls 1..N only (default: all)")
    p.add_argument(
        "--pages",
        type=int,
        default=PREVIEW_PAGES,
        help=f"max pages per paginated call ({PREVIEW_PAGES})",
    )
    p.add_argument(
        "--records", type=int, default=PREVIEW_RECORDS, help=f"max records ({PREVIEW_RECORDS})"
    )
    _json_flag(p, "print the whole trace as JSON")


def _add_serve(sub) -> None:
    p = _command(
        sub,
        "serve",
        "the daemon: run the active jobs on their schedules (one per STUDIO_HOME)",
        _serve,
    )
    p.add_argument(
        "--workers", type=int, default=4, help="runs at once, each in a worker process (default 4)"
    )
    p.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds to let running runs finish on SIGTERM (default 30)",
    )
    p.add_argument("--json-logs", action="store_true", help="one JSON object per log line")
    p.add_argument("--api-host", default="127.0.0.1", help="REST API address (default 127.0.0.1)")
    p.add_argument("--api-port", type=int, default=8780, help="REST API port (default 8780)")
    p.add_argument("--no-api", action="store_true", help="do not serve the REST API")
    p.add_argument(
        "--synchron-timeout",
        type=float,
        default=3600.0,
        help="seconds /v1/datafeed/synchron waits before 504 (default 3600)",
    )
    p.add_argument(
        "--keep-days",
        type=int,
        default=30,
        help="days of run history and run files to keep (default 30)",
    )
    p.add_argument(
        "--check-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="with STUDIO_BROKER_URL: how often runs whose worker is gone are recorded "
        "interrupted (default 10)",
    )


def _add_worker(sub) -> None:
    from runner.worker import add_worker_command

    add_worker_command(sub, _command)


def _add_run(sub) -> None:
    p = _command(
        sub,
        "run",
        "run a job now, in the foreground; exit 1 if the run failed, 2 if the job is "
        "already running",
        _run,
    )
    p.add_argument("name", metavar="JOB", help="job name or id")
    _json_flag(p, "print the run record as JSON")
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop the run after this long (default: the job's run timeout)",
    )
    p.add_argument(
        "--queue",
        action="store_true",
        help="send it to the workers (STUDIO_BROKER_URL) and wait for its end",
    )


def _add_runs(sub) -> None:
    actions = _group(
        sub,
        "runs",
        "the run history: list runs, show one, download its files, read its log",
        description="The run history of $STUDIO_HOME, whoever ran the runs (the runner, `run`,\n"
        "the studio, the REST API). RUN is a run id, or its first characters (4 or more).\n"
        "A running run shows its counts so far.",
    )
    p = _command(actions, "list", "the latest runs, newest first", runs_list)
    p.add_argument("--job", metavar="NAME", help="runs of this job (name or id) only")
    p.add_argument(
        "--status",
        choices=STATUSES,
        metavar="STATUS",
        help=f"runs in this status only: {', '.join(STATUSES)}",
    )
    p.add_argument("-n", type=int, default=20, help="how many (default 20)")
    _json_flag(p, "print a JSON array of runs")
    p = _command(actions, "show", "one run: counts, timings, reason, files", runs_show)
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    _json_flag(p, "print the run record as JSON")
    p = _command(
        actions,
        "download",
        "copy a run's data files (rows.csv, and rejects.csv or a trace when there are any) "
        "into a folder",
        runs_download,
    )
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument(
        "folder",
        metavar="DIR",
        type=Path,
        nargs="?",
        default=Path(),
        help="where to copy them (default: the current folder)",
    )
    p.add_argument("--force", action="store_true", help="overwrite files of the same names")
    p = _command(
        actions, "log", "a run's log (run.log), a line per request, page, message", runs_log
    )
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    _json_flag(p, "print the log's entries as JSON")


def _add_next_runs(sub) -> None:
    p = _command(sub, "next-runs", "a job's schedule in words and its next runs (UTC)", _next_runs)
    p.add_argument("name", metavar="JOB", help="job name or id")
    p.add_argument("-n", type=int, default=5, help="how many (default 5)")


def _add_api_token(sub) -> None:
    add_token_commands(sub, _group, _command)


def _add_sandbox(sub) -> None:
    p = _command(sub, "sandbox", "serve the demo sandbox API", _sandbox)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")


def _add_export(sub) -> None:
    p = _command(sub, "export", "write every config to a folder of JSON files", _export)
    p.add_argument("folder", metavar="DIR", type=Path)
    p.add_argument(
        "--include-secrets",
        action="store_true",
        help="write secrets in clear (default: the mask, which import keeps as is)",
    )


def _add_import(sub) -> None:
    p = _command(
        sub,
        "import",
        "create or update configs by name from a folder",
        _import,
        description="Create or update configs by name from DIR/entities/*.json, "
        "DIR/connections/*.json and DIR/jobs/*.json (the layout `export` writes), all in one "
        "transaction: if any file is wrong, every file is reported and nothing is imported.",
    )
    p.add_argument("folder", metavar="DIR", type=Path)
    p.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")


def _add_docs(sub) -> None:
    p = _command(sub, "docs", "generate docs/config-schema.json and docs/cli.md", docs_command)
    p.add_argument("--check", action="store_true", help="exit 1 if the committed docs are stale")


def _summary(model) -> dict:
    """One row of ``list``: what an operator scans for."""
    if model.kind in KIND_LABELS and hasattr(model, "target"):
        return {
            "name": model.name,
            "kind": KIND_LABELS[model.kind],
            "target": model.target,
            "auth": model.auth_label,
            "status": model.status,
            "updated": when(model.updated_at),
        }
    return {
        "name": model.name,
        "entity": model.entity,
        "status": model.status,
        "schedule": model.schedule.describe(),
        "updated": when(model.updated_at),
    }


def _dump(model) -> dict:
    return model.model_dump(mode="json")


# --- configs ------------------------------------------------------------------------------------


def _config_list(store: ConfigStore, args: argparse.Namespace) -> int:
    print_list(args, store.list(args.kind), _summary, _dump)
    return 0


def _config_show(store: ConfigStore, args: argparse.Namespace) -> int:
    print(json.dumps(_dump(store.get(args.kind, args.name)), indent=2))
    return 0


def _config_audit(store: ConfigStore, args: argparse.Namespace) -> int:
    entries = store.audit(args.kind, args.name)
    if args.json:
        print(json.dumps(entries, indent=2, ensure_ascii=False))
        return 0
    for e in entries:
        user = f" ({e['user']})" if e.get("user") else ""  # who: entries since issue 16
        print(f"{e['at']}  {e['action']:<8} {e['name']!r} by {e['source']}{user}")
        for c in e["changes"]:
            print(f"    {change_text(c)}")
    return 0


def _config_status(store: ConfigStore, args: argparse.Namespace) -> int:
    status = "active" if args.action == "activate" else "disabled"
    model = store.set_status(args.kind, args.name, status, source="cli")
    print(f"{store.kinds[args.kind].label} {model.name!r} is {model.status}")
    return 0


def _config_delete(store: ConfigStore, args: argparse.Namespace) -> int:
    model = store.delete(args.kind, args.name, source="cli")
    print(f"deleted {store.kinds[args.kind].label} {model.name!r}")
    return 0


def _test_connection(store: ConfigStore, args: argparse.Namespace) -> int:
    check = check_connection(store.get("connections", args.name, reveal=True), store.home)
    print(check.message, file=sys.stdout if check.ok else sys.stderr)
    return 0 if check.ok else 1


def _preview(store: ConfigStore, args: argparse.Namespace) -> int:
    trace = preview_saved(
        store, args.name, up_to_call=args.up_to, max_pages=args.pages, max_records=args.records
    )
    if args.json:
        print(json.dumps(trace.as_dict(), indent=2, ensure_ascii=False, default=str))
        return 1 if trace.error else 0
    for e in trace.exchanges:
        print(exchange_text(e, e["elapsed_ms"]))
    for line in trace.log:
        print(f"  {line}")
    dropped = f", {trace.discarded:,} discarded" if trace.discarded else ""
    print(
        f"{plural(len(trace.records), 'record')}, {plural(len(trace.rows), 'row')}, "
        f"{plural(len(trace.rejects), 'reject')}{dropped} in {trace.elapsed_ms:.0f} ms"
    )
    for name, rows in trace.children.items():  # a job's child entities (nested arrays)
        print(f"  {name}: {plural(len(rows), 'row')}")
    for r in trace.rejects[:20]:
        print(f"  reject record {r['record']}: {r['reason']}")
    if trace.error:
        print(f"error: {trace.error}", file=sys.stderr)
        return 1
    return 0


# --- the runner, runs and the run history --------------------------------------------------------


def _up(store: ConfigStore, args: argparse.Namespace) -> int:
    from runner.up import up

    return up(
        store,
        host=args.host,
        port=args.port,
        demo=not args.no_demo,
        sandbox_port=None if args.no_sandbox else args.sandbox_port,
        api_port=args.api_port,
    )


def _serve(store: ConfigStore, args: argparse.Namespace) -> int:
    from runner.daemon import Daemon

    daemon = Daemon(
        store,
        workers=args.workers,
        json_logs=args.json_logs,
        grace=args.grace,
        keep_days=args.keep_days,
        check_every=args.check_every,
    )
    daemon.hold_home()  # before the API takes its port: one runner per home
    if not args.no_api:
        serve_api(store, daemon, args.api_host, args.api_port, args.synchron_timeout)
    return daemon.serve()


def _run(store: ConfigStore, args: argparse.Namespace) -> int:
    if args.queue:
        run = _queued_run(store, args)
    else:
        run = run_job(store, args.name, trigger="manual", timeout=args.timeout)
    if args.json:
        print_json(run.as_dict())
    else:
        print(f"run {run.id} of {run.job_name!r}: {run.status}: {counts_text(run)}")
        if run.error:
            print(f"error: {run.error}", file=sys.stderr)
        print(f"files written in {run.folder}: {', '.join(Path(f).name for f in run.outputs)}")
    return 1 if run.status == "failed" else 0


def _queued_run(store: ConfigStore, args: argparse.Namespace):
    """``run --queue``: the run sent to a worker, as it ended. The command waits for it, as
    its claim holds the job only while the process that queued it lives (until a worker has
    it): after Ctrl-C, a run a worker has goes on, one still waiting is interrupted."""
    import time

    from studio.broker import broker_url
    from studio.runs import enqueue

    if not broker_url():
        raise StudioError("--queue sends the run to the workers: set STUDIO_BROKER_URL")
    run = enqueue(store, args.name, trigger="manual", timeout=args.timeout)
    print(f"run {run.id} of {run.job_name!r} queued for the workers", file=sys.stderr)
    history = open_history(store.home)
    while run.status in ("queued", "running"):
        time.sleep(0.5)
        run = history.get(run.id) or run
    return run


def _next_runs(store: ConfigStore, args: argparse.Namespace) -> int:
    job = store.get("jobs", args.name)
    print(f"{job.name}: {job.schedule.describe()}")
    for moment in next_runs(job.schedule, job.created_at, datetime.now(UTC), args.n):
        print(moment.strftime("%a %Y-%m-%d %H:%M UTC"))
    return 0


def _sandbox(store: ConfigStore, args: argparse.Namespace) -> int:
    from runner.sandbox import serve

    print(f"demo sandbox API on http://{args.host}:{args.port}/api")
    serve(args.host, args.port)
    return 0


# --- moving configs ------------------------------------------------------------------------------


def _export(store: ConfigStore, args: argparse.Namespace) -> int:
    files = export_configs(store, args.folder, include_secrets=args.include_secrets)
    print(f"exported {len(files)} config(s) to {args.folder}")
    if args.include_secrets:
        print("warning: the files hold secrets in clear; keep them safe", file=sys.stderr)
    return 0


def _import(store: ConfigStore, args: argparse.Namespace) -> int:
    outcomes = import_configs(store, args.folder, dry_run=args.dry_run)
    for o in outcomes:
        print(("(dry run) " if args.dry_run else "") + str(o))
    failed = sum(o.action == "error" for o in outcomes)
    if failed:
        print(
            f"error: {failed} of {len(outcomes)} file(s) cannot be imported, so none "
            "was: fix them and import again",
            file=sys.stderr,
        )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Parse, then call the command's handler: its exit status, or 2 for an error it names."""
    args = build_parser().parse_args(argv)
    store = ConfigStore()
    try:
        return args.handler(store, args)
    except ConfigError as e:
        for message in e.messages:
            print(f"error: {message}", file=sys.stderr)
        return 2
    except StudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def serve_api(store: ConfigStore, daemon, host: str, port: int, timeout: float) -> None:
    """The REST API in a thread of the runner: it shares the daemon's run queue."""
    import threading

    import uvicorn

    from runner.api import create_app

    app = create_app(store, daemon, synchron_timeout=timeout)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    server.install_signal_handlers = lambda: None  # the daemon handles SIGTERM and SIGINT
    threading.Thread(target=server.run, daemon=True, name="api").start()
    daemon.log("api-start", url=f"http://{host}:{port}/v1", docs=f"http://{host}:{port}/docs")
