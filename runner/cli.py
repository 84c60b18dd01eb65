"""``python -m runner``: the command line for operators and scripts.

Every command calls the same ``studio`` functions as the studio and the REST API; this module
only parses arguments and prints. Errors print their readable message and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from studio.connectivity import check_connection
from studio.errors import ConfigError, StudioError
from studio.kinds import config_schema
from studio.models import KIND_LABELS
from studio.runs import preview_saved, run_job
from studio.schedules import next_runs
from studio.store import ConfigStore
from studio.transfer import export_configs, import_configs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PROG = "python -m runner"


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

    p = sub.add_parser(
        "up", help="start the studio on the embedded default", formatter_class=_formatter
    )
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

    for kind in ("connections", "jobs"):
        label = kind[:-1]
        p = sub.add_parser(
            kind,
            help=f"list, show, activate, disable, delete {kind}",
            formatter_class=_formatter,
        )
        csub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
        c = csub.add_parser("list", help=f"a table of {kind}", formatter_class=_formatter)
        c.add_argument("--json", action="store_true", help="print JSON (secrets masked)")
        for action, text in [
            ("show", f"one {label}, secrets masked"),
            ("activate", f"activate a {label}"),
            ("disable", f"disable a {label}"),
            (
                "delete",
                f"delete a {label}"
                + (" (refused while jobs use it)" if label == "connection" else ""),
            ),
            ("audit", f"the audit trail of a {label}, newest first"),
        ]:
            c = csub.add_parser(action, help=text, formatter_class=_formatter)
            c.add_argument("name", metavar="NAME", help=f"{label} name or id")
            if action in ("show", "audit"):
                c.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser(
        "test-connection",
        help="log in and reach a connection's server; exit 1 if it fails",
        formatter_class=_formatter,
    )
    p.add_argument("name", metavar="NAME", help="connection name or id")

    p = sub.add_parser(
        "preview",
        help="run a job with preview limits, write nothing, print the trace",
        formatter_class=_formatter,
    )
    p.add_argument("name", metavar="JOB", help="job name or id")
    p.add_argument("--up-to", type=int, metavar="N", help="run calls 1..N only (default: all)")
    p.add_argument("--pages", type=int, default=5, help="max pages per paginated call (5)")
    p.add_argument("--records", type=int, default=500, help="max records (500)")
    p.add_argument("--json", action="store_true", help="print the whole trace as JSON")

    p = sub.add_parser(
        "serve",
        help="the daemon: run the active jobs on their schedules (one per STUDIO_HOME)",
        formatter_class=_formatter,
    )
    p.add_argument("--workers", type=int, default=4, help="runs at once (default 4)")
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

    p = sub.add_parser(
        "run",
        help="run a job now, in the foreground; exit 1 if the run failed, 2 if the job is "
        "already running",
        formatter_class=_formatter,
    )
    p.add_argument("name", metavar="JOB", help="job name or id")
    p.add_argument("--json", action="store_true", help="print the run record as JSON")
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop the run after this long (default: the job's run timeout)",
    )

    p = sub.add_parser(
        "next-runs",
        help="a job's schedule in words and its next runs (UTC)",
        formatter_class=_formatter,
    )
    p.add_argument("name", metavar="JOB", help="job name or id")
    p.add_argument("-n", type=int, default=5, help="how many (default 5)")

    p = sub.add_parser(
        "api-token", help="create, revoke or list REST API tokens", formatter_class=_formatter
    )
    tsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in [
        ("create", "make a token; it is printed once, only its hash is kept"),
        ("revoke", "delete a token"),
    ]:
        t = tsub.add_parser(action, help=text, formatter_class=_formatter)
        t.add_argument("name", metavar="NAME", help="token name")
    tsub.add_parser(
        "list", help="the tokens (names and prefixes, never the tokens)", formatter_class=_formatter
    )

    p = sub.add_parser("sandbox", help="serve the demo sandbox API", formatter_class=_formatter)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")

    p = sub.add_parser(
        "export", help="write every config to a folder of JSON files", formatter_class=_formatter
    )
    p.add_argument("folder", metavar="DIR", type=Path)
    p.add_argument(
        "--include-secrets",
        action="store_true",
        help="write secrets in clear (default: the mask, which import keeps as is)",
    )

    p = sub.add_parser(
        "import",
        help="create or update configs by name from a folder",
        description="Create or update configs by name from DIR/connections/*.json and "
        "DIR/jobs/*.json (the layout `export` writes), all in one transaction: if any file is "
        "wrong, every file is reported and nothing is imported.",
        formatter_class=_formatter,
    )
    p.add_argument("folder", metavar="DIR", type=Path)
    p.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")

    p = sub.add_parser(
        "docs", help="generate docs/config-schema.json and docs/cli.md", formatter_class=_formatter
    )
    p.add_argument("--check", action="store_true", help="exit 1 if the committed docs are stale")
    return parser


def cli_reference(parser: argparse.ArgumentParser) -> str:
    """docs/cli.md: the help of every command, generated so it never drifts from the code."""
    out = ["# CLI reference", "", "Generated by `python -m runner docs`; do not edit.", ""]

    def walk(p: argparse.ArgumentParser, title: str) -> None:
        out.extend([f"## `{title}`", "", "```text", p.format_help().rstrip(), "```", ""])
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{title} {name}")

    walk(parser, PROG)
    return "\n".join(out)


def generated_docs() -> dict[Path, str]:
    return {
        DOCS / "config-schema.json": json.dumps(config_schema(), indent=2, ensure_ascii=False)
        + "\n",
        DOCS / "cli.md": cli_reference(build_parser()),
        DOCS / "openapi.json": json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n",
    }


def _print_table(rows: list[dict]) -> None:
    if not rows:
        print("(none)")
        return
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in rows[0]}
    print("  ".join(k.upper().ljust(w) for k, w in widths.items()).rstrip())
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in widths.items()).rstrip())


def _summary(model) -> dict:
    """One row of ``list``: what an operator scans for."""
    when = model.updated_at.strftime("%Y-%m-%d %H:%M") if model.updated_at else ""
    if model.kind in KIND_LABELS and hasattr(model, "target"):
        return {
            "name": model.name,
            "kind": KIND_LABELS[model.kind],
            "target": model.target,
            "auth": model.auth_label,
            "status": model.status,
            "updated": when,
        }
    return {
        "name": model.name,
        "entity": model.entity,
        "status": model.status,
        "schedule": model.schedule.describe(),
        "updated": when,
    }


def _configs(store: ConfigStore, kind: str, args: argparse.Namespace) -> int:
    label = store.kinds[kind].label
    if args.action == "list":
        models = store.list(kind)
        if args.json:
            print(json.dumps([m.model_dump(mode="json") for m in models], indent=2))
        else:
            _print_table([_summary(m) for m in models])
    elif args.action == "show":
        print(json.dumps(store.get(kind, args.name).model_dump(mode="json"), indent=2))
    elif args.action == "audit":
        entries = store.audit(kind, args.name)
        if args.json:
            print(json.dumps(entries, indent=2, ensure_ascii=False))
        for e in [] if args.json else entries:
            print(f"{e['at']}  {e['action']:<8} {e['name']!r} by {e['source']}")
            for c in e["changes"]:
                print(f"    {c['field']}: {c['old']!r} → {c['new']!r}")
    elif args.action in ("activate", "disable"):
        status = "active" if args.action == "activate" else "disabled"
        model = store.set_status(kind, args.name, status, source="cli")
        print(f"{label} {model.name!r} is {model.status}")
    elif args.action == "delete":
        model = store.delete(kind, args.name, source="cli")
        print(f"deleted {label} {model.name!r}")
    return 0


def _preview(store: ConfigStore, args: argparse.Namespace) -> int:
    trace = preview_saved(
        store, args.name, up_to_call=args.up_to, max_pages=args.pages, max_records=args.records
    )
    if args.json:
        print(json.dumps(trace.as_dict(), indent=2, ensure_ascii=False, default=str))
        return 1 if trace.error else 0
    for e in trace.exchanges:
        status = e["status"] if e["status"] is not None else "---"
        note = f"  [{e['note']}]" if e["note"] else ""
        retried = f"  retried: {', '.join(e['retries'])}" if e["retries"] else ""
        print(
            f"{e['label']:<10} {e['method']:<6} {status}  {e['elapsed_ms']:7.0f} ms  "
            f"{e['size']:>9,} B  {e['url']}{note}{retried}"
        )
    for line in trace.log:
        print(f"  {line}")
    print(
        f"{len(trace.records)} records, {len(trace.rows)} rows, {len(trace.rejects)} rejects "
        f"in {trace.elapsed_ms:.0f} ms"
    )
    for r in trace.rejects[:20]:
        print(f"  reject record {r['record']}: {r['reason']}")
    if trace.error:
        print(f"error: {trace.error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    store = ConfigStore()
    try:
        if args.command == "up":
            from runner.up import up

            return up(
                store,
                host=args.host,
                port=args.port,
                demo=not args.no_demo,
                sandbox_port=None if args.no_sandbox else args.sandbox_port,
                api_port=args.api_port,
            )
        if args.command in ("connections", "jobs"):
            return _configs(store, args.command, args)
        if args.command == "test-connection":
            check = check_connection(store.get("connections", args.name, reveal=True), store.home)
            print(check.message, file=sys.stdout if check.ok else sys.stderr)
            return 0 if check.ok else 1
        if args.command == "preview":
            return _preview(store, args)
        if args.command == "serve":
            from runner.daemon import Daemon

            daemon = Daemon(
                store,
                workers=args.workers,
                json_logs=args.json_logs,
                grace=args.grace,
                keep_days=args.keep_days,
            )
            daemon.hold_home()  # before the API takes its port: one runner per home
            if not args.no_api:
                serve_api(store, daemon, args.api_host, args.api_port, args.synchron_timeout)
            return daemon.serve()
        if args.command == "api-token":
            return _api_tokens(store, args)
        if args.command == "run":
            run = run_job(store, args.name, trigger="manual", timeout=args.timeout)
            if args.json:
                print(json.dumps(run.as_dict(), indent=2, ensure_ascii=False))
            else:
                print(
                    f"run {run.id} of {run.job_name!r}: {run.status}: {run.records} records, "
                    f"{run.rows_written} rows written, {run.rows_rejected} rejected, "
                    f"{run.requests} requests, {run.files} files"
                )
                if run.error:
                    print(f"error: {run.error}", file=sys.stderr)
                print(f"files: {', '.join(run.outputs)}")
            return 1 if run.status == "failed" else 0
        if args.command == "next-runs":
            job = store.get("jobs", args.name)
            print(f"{job.name}: {job.schedule.describe()}")
            for moment in next_runs(job.schedule, job.created_at, datetime.now(UTC), args.n):
                print(moment.strftime("%a %Y-%m-%d %H:%M UTC"))
            return 0
        if args.command == "sandbox":
            from runner.sandbox import serve

            print(f"demo sandbox API on http://{args.host}:{args.port}/api")
            serve(args.host, args.port)
            return 0
        if args.command == "export":
            files = export_configs(store, args.folder, include_secrets=args.include_secrets)
            print(f"exported {len(files)} config(s) to {args.folder}")
            if args.include_secrets:
                print("warning: the files hold secrets in clear; keep them safe", file=sys.stderr)
            return 0
        if args.command == "import":
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
        if args.command == "docs":
            return _docs(check=args.check)
    except ConfigError as e:
        for message in e.messages:
            print(f"error: {message}", file=sys.stderr)
        return 2
    except StudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


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


def _api_tokens(store: ConfigStore, args: argparse.Namespace) -> int:
    from studio.apitokens import create_token

    if args.action == "create":
        token = create_token(store, args.name)
        print(token)
        print(f"token {args.name!r} created; it is shown only now", file=sys.stderr)
    elif args.action == "revoke":
        store.delete("api_tokens", args.name, source="cli")
        print(f"token {args.name!r} revoked")
    else:
        _print_table(
            [
                {
                    "name": t.name,
                    "prefix": t.prefix + "…",
                    "created": t.created_at.strftime("%Y-%m-%d %H:%M") if t.created_at else "",
                }
                for t in store.list("api_tokens")
            ]
        )
    return 0


def openapi_document() -> dict:
    """The REST API's OpenAPI document, as served at /openapi.json."""
    import types

    from runner.api import create_app

    return create_app(None, types.SimpleNamespace(history=None)).openapi()


def _docs(check: bool) -> int:
    stale = []
    for path, text in generated_docs().items():
        current = path.read_text("utf-8") if path.exists() else None
        if current != text:
            stale.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, "utf-8")
    for path in stale:
        rel = path.relative_to(ROOT)
        print(f"{rel} is stale; run `{PROG} docs`" if check else f"wrote {rel}")
    return 1 if check and stale else 0
