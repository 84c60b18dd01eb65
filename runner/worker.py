"""``python -m runner worker``: a Celery worker that runs the runs the scheduler, the studio, the
REST API and ``runner run --queue`` send over Redis (``STUDIO_BROKER_URL``; docs/scale-out.md).

A worker needs no access to the config store: a message carries a snapshot of the job and its
connection with the secrets sealed, which the worker opens with the same key
(``STUDIO_SECRET_KEY``). It needs the run history and the entity store: PostgreSQL
(``STUDIO_DATABASE_URL``) for workers on several machines, or the SQLite files of a shared
``STUDIO_HOME`` for workers on the machine of the daemon. Its ``STUDIO_HOME`` holds its runs'
scratch folders.

It consumes the ``studio`` queue (and its priority steps, ``studio.broker``) unless told other
queues: ``--queues studio,onprem`` takes the runs of the connections whose Worker queue is
``onprem`` too (routing: ``studio.broker.route``), ``--queues onprem`` only those.

The pool: prefork by default, one process per CPU, each running one run at a time, so that two
big runs use two cores; ``--pool solo`` runs one run in the worker's own process (a
worker per core then), which is what the tests kill. SIGTERM lets the running runs finish
(Celery's warm shutdown); SIGKILL leaves them to be recorded interrupted.

A message whose run is no longer queued (interrupted while it waited, even as this worker took
it) is dropped without touching the run, and the log line says why (``dropped``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket

from studio.broker import QUEUE, TASK, broker_url, celery_app, queue_problem, shown
from studio.config.store import studio_home
from studio.runhistory import now_iso


def log(event: str, **data) -> None:
    """One JSON line per event on stdout (the worker's own, beside Celery's log)."""
    print(json.dumps({"at": now_iso(), "event": event, **data}, default=str), flush=True)


def make_app():
    """The Celery app with the run task registered: what ``celery -A runner.worker`` finds."""
    from studio.runhistory import AlreadyRunning, EndNotRecorded, NotQueued
    from studio.runs import run_message

    app = celery_app()
    app.conf.worker_redirect_stdouts = False  # the JSON lines as they are, not Celery's warnings

    @app.task(name=TASK, ignore_result=True)
    def run(message: dict) -> None:
        log("run-received", run=message.get("run_id"), job=message.get("job_id"))
        try:
            done = run_message(message, studio_home())
        except AlreadyRunning as e:  # recorded skipped by the claim
            log("skipped", run=message.get("run_id"), reason=str(e))
            return
        except NotQueued as e:  # interrupted while it waited, or taken: not run, not touched
            log("dropped", run=message.get("run_id"), reason=str(e))
            return
        except EndNotRecorded as e:  # the database out of reach: the scheduler's check ends it
            log("run-end-not-recorded", run=message.get("run_id"), reason=str(e))
            return
        log("run-end", run=done.id, job=done.job_name, status=done.status,
            rows=done.rows_written, error=done.error or None)  # fmt: skip

    return app


def add_worker_command(sub, command) -> None:
    p = command(
        sub,
        "worker",
        "distributed mode: a Celery worker running the runs sent over STUDIO_BROKER_URL",
        work,
    )
    p.add_argument(
        "--pool",
        choices=["prefork", "solo", "threads"],
        default="prefork",
        help="prefork: a process per run (default); solo: one run in this process",
    )
    p.add_argument(
        "--concurrency", type=int, help="runs at once (default: the CPUs; 1 with --pool solo)"
    )
    p.add_argument(
        "--queues",
        default=QUEUE,
        help=f"queues to consume, comma-separated (default {QUEUE}): a connection's Worker "
        f"queue sends its jobs' runs to the workers naming it, e.g. {QUEUE},onprem",
    )
    p.add_argument("--name", help="the worker's name (default studio-<pid>@<host>)")
    p.add_argument("--loglevel", default="warning", help="Celery's log level (default warning)")


def queue_list(text: str) -> list[str]:
    """``--queues`` as names, each checked as a connection's Worker queue is: ``onprem:3``
    (a priority step, not a queue) would otherwise start a worker taking the scheduled runs of
    ``onprem`` and none of its others, and a name no connection can hold waits for good."""
    from studio.errors import StudioError

    queues = [q.strip() for q in text.split(",") if q.strip()]
    if not queues:
        raise StudioError(f"--queues names no queue: give at least one, e.g. {QUEUE}")
    for queue in queues:
        if problem := queue_problem(queue):
            raise StudioError(f"--queues: {problem}")
    return queues


def work(_store, args: argparse.Namespace) -> int:
    """Start the worker in the foreground; it returns when Celery's shutdown ends."""
    url = broker_url()
    if not url:
        from studio.errors import StudioError

        raise StudioError("a worker needs STUDIO_BROKER_URL (redis://host:6379/0)")
    queues = queue_list(args.queues)
    concurrency = 1 if args.pool == "solo" else args.concurrency or os.cpu_count() or 1
    name = args.name or f"studio-{os.getpid()}@{socket.gethostname()}"
    log("worker-start", pid=os.getpid(), broker=shown(url), pool=args.pool,
        concurrency=concurrency, queues=queues, home=str(studio_home()))  # fmt: skip
    make_app().worker_main(
        [
            "worker",
            f"--pool={args.pool}",
            f"--concurrency={concurrency}",
            f"--queues={','.join(queues)}",
            f"--hostname={name}",
            f"--loglevel={args.loglevel}",
            "--without-gossip",  # the workers need not know of each other: the history knows
            "--without-mingle",
        ]
    )
    return 0
