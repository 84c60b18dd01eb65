"""Distributed mode (issue 17, docs/scale-out.md): runs as Celery tasks over Redis, opt-in with
``STUDIO_BROKER_URL=redis://…``. Unset (the embedded default), nothing here is used: the daemon
runs jobs in its thread pool and Run now in a thread of the studio.

Who sends: whoever starts a run (the daemon's schedule, the REST API, the studio's Run now,
``runner run --queue``) claims the job in the run history as ``queued`` and sends one message,
``studio.runs.run_message``'s input: the run id and a snapshot of the job with its secrets still
sealed. Who receives: ``python -m runner worker`` (``runner.worker``), on any machine.

The message is acknowledged when its task starts (not ``acks_late``), and a worker fetches a
message only when it has a free slot (``worker_disable_prefetch``, prefetch 1): a worker killed
mid-run loses that run only, which the run history records as interrupted when the worker's
process (SQLite: its PID; PostgreSQL: its heartbeat) is found gone; Redis never hands the message
to another worker, so a run never runs twice. The next slot runs on any worker.

Queues (routing): a job's runs go to its connection's ``run_queue`` (``route``), or to the
default queue ``studio``; a worker takes only the queues it was started with (``runner worker
--queues studio,onprem``), so a source reachable from one network only runs on the workers in
that network. Each queue is in priority steps (Redis lists ``onprem``, ``onprem:3``,
``onprem:6``): runs someone waits for (Run now, the REST API) go before scheduled ones, and
catch-ups last, within each queue.
"""

from __future__ import annotations

import os
import re
import threading
from urllib.parse import urlsplit

from studio.errors import StudioError

ENV = "STUDIO_BROKER_URL"
QUEUE = "studio"  # the default queue every worker consumes
TASK = "studio.run"  # the task's name, shared by senders and workers
PRIORITY = {"manual": 0, "api": 0, "schedule": 3, "catch-up": 6}  # 0 goes first
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}
STEP_SEP = ":"  # Redis names a queue's priority steps studio, studio:3, studio:6
QUEUE_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"  # the JSON Schema's pattern too
_QUEUE_NAME = re.compile(QUEUE_NAME)
# Keys kombu's Redis transport keeps beside the queues: a queue of that name would be mixed up
# with its bookkeeping of the messages being delivered.
RESERVED = ("unacked", "unacked_index", "unacked_mutex")

_apps: dict[tuple[int, str], object] = {}
_lock = threading.Lock()


def broker_url() -> str:
    """``STUDIO_BROKER_URL``, or "" in the embedded default; a value that is not a Redis URL
    is refused, naming the variable."""
    url = os.environ.get(ENV, "").strip()
    if url and urlsplit(url).scheme not in ("redis", "rediss"):
        raise StudioError(f"{ENV} must be a redis:// URL (redis://host:6379/0), not {shown(url)!r}")
    return url


def shown(url: str) -> str:
    """The URL without its password, as errors and logs may show it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def celery_app():
    """This process's Celery app on ``STUDIO_BROKER_URL`` (made on first use): the senders'
    and the workers' one configuration. No result backend: the run history is the result."""
    from celery import Celery

    url = broker_url()
    if not url:
        raise StudioError(f"runs go to workers only when {ENV} is set (redis://host:6379/0)")
    key = (os.getpid(), url)
    with _lock:
        if key not in _apps:
            app = Celery("studio", broker=url, set_as_current=False)
            app.conf.update(
                task_default_queue=QUEUE,
                task_serializer="json",
                accept_content=["json"],
                task_ignore_result=True,
                task_acks_late=False,  # acked as it starts: a killed worker's run is not re-run
                worker_prefetch_multiplier=1,
                worker_disable_prefetch=True,  # no message waits in a busy worker
                worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True,
                broker_transport_options={
                    "priority_steps": [0, 3, 6],
                    "sep": STEP_SEP,
                    "queue_order_strategy": "priority",
                    "socket_connect_timeout": 5,
                    "socket_timeout": 30,
                },
                task_publish_retry_policy=PUBLISH_RETRY,
            )
            _apps[key] = app
        return _apps[key]


def queue_problem(name: str) -> str:
    """What is wrong with ``name`` as a queue (a connection's Worker queue, a worker's
    ``--queues``), or "" when nothing is: a name is a Redis key a priority step is appended to,
    so ``:`` (the steps' separator: ``studio:3`` is the schedule's step of ``studio``) and the
    transport's own keys are refused, with a sentence saying which rule the name breaks."""
    if STEP_SEP in name:
        base = name.partition(STEP_SEP)[0] or "onprem"
        return (
            f"{name!r} holds ':', which names a queue's priority steps ({base}:3 and {base}:6 "
            f"are steps of the queue {base}): give the queue's name alone, e.g. {base}"
        )
    if name.lower() in RESERVED:
        return f"{name!r} is a name Redis keeps for Celery's own bookkeeping: choose another"
    if len(name) > 64:
        return f"is {len(name)} characters long: at most 64"
    if not _QUEUE_NAME.fullmatch(name):
        return (
            "must be letters, digits and - _ . only, starting with a letter or a digit: "
            f"{name!r} is not (e.g. onprem or partner-eu.1)"
        )
    return ""


def check_queue(name: str) -> str:
    """A connection's Worker queue as stored: "" (the default queue) or a valid name; raises
    ``ValueError`` with ``queue_problem``'s sentence, which the config's errors prefix with
    the field's title."""
    if name and (problem := queue_problem(name)):
        raise ValueError(problem)
    return name


def route(message: dict) -> str:
    """The queue a run message goes to: its source connection's ``run_queue`` (the API
    connection, or a file job's file server), else ``studio``. A destination connection does
    not route: the source is what a network or an allow-listed address limits, and the worker
    that reads it writes the job's CSV file too."""
    connection = (message.get("snapshot") or {}).get("connection") or {}
    return connection.get("run_queue") or QUEUE


def job_queue(store, job_id: str) -> str:
    """The queue a job's runs go to now, from the config store (its connection's ``run_queue``,
    what ``route`` reads in a message's snapshot); "" when the job or its connection is gone.
    For the scheduler's sentence on a run no worker took: it names the queue to consume."""
    try:
        job = store.get("jobs", job_id)
        return store.get("connections", job.connection_id).run_queue or QUEUE
    except StudioError:
        return ""


def send(message: dict, trigger: str) -> None:
    """Send a run's message to the workers of its queue (``route``), ahead of or behind others
    by its ``trigger``; raises ``StudioError`` when Redis cannot take it."""
    try:
        celery_app().send_task(
            TASK,
            args=[message],
            queue=route(message),
            priority=PRIORITY.get(trigger, 3),
            retry=True,
        )
    except StudioError:
        raise
    except Exception as e:  # kombu's OperationalError, redis' ConnectionError…
        raise StudioError(
            f"the run could not be queued: Redis ({shown(broker_url())}) answered {e}"
        ) from None
