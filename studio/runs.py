"""Running saved jobs, whatever their kind: the entry points the CLI, the studio, the runner
daemon and its Celery workers share. Each kind has its own source (an API call chain, CSV files
from a server); here a saved job is loaded with its connection and sent to the right one.

A run goes from a ``Snapshot`` of its configs (secrets sealed), in this process (``run_job``)
or, with ``STUDIO_BROKER_URL`` set, on a worker (``enqueue`` here, ``run_message`` there): one
path, ``run_snapshot``, whichever machine runs it."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from cryptography.fernet import Fernet

from studio import broker, pg
from studio.children import WithChildren, child_outputs, job_mapper
from studio.config.connections import ApiConnection, FileServerConnection
from studio.config.jobs import ApiJob, FileJob
from studio.config.kinds import KINDS
from studio.config.store import ConfigStore
from studio.engine import PREVIEW_PAGES, PREVIEW_RECORDS, Chain, Event, Trace, preview
from studio.entities import Entity, entity, entity_scope, load_entities
from studio.errors import NotFound, StudioError
from studio.files import connect
from studio.filesource import import_files, preview_file
from studio.historybase import NoLongerRunning, Progress
from studio.http import Exchange, HttpClient
from studio.mapping import Mapper
from studio.private import open_private, private_dir
from studio.runhistory import COUNTS, AlreadyRunning, EndNotRecorded, NotQueued, Run, now_iso
from studio.sinks import RunOutputs, deliver
from studio.sources import ChainUnit, run_units
from studio.stores import RunStore, open_history
from studio.vault import SALT_FILE, Vault, _derive, load_key


def load_job(
    store: ConfigStore, ref: str
) -> tuple[ApiJob | FileJob, ApiConnection | FileServerConnection]:
    """A saved job and its connection, secrets in clear, ready for a preview or a run."""
    job = store.get("jobs", ref, reveal=True)
    conn = store.get("connections", job.connection_id, reveal=True)
    return job, conn


def preview_job(
    job: ApiJob | FileJob,
    conn: ApiConnection | FileServerConnection,
    home: Path,
    *,
    up_to_call: int | None = None,
    max_pages: int = PREVIEW_PAGES,
    max_records: int = PREVIEW_RECORDS,
    on_event: Callable[[Event], None] | None = None,
) -> Trace:
    """Preview a job of any kind (saved or being built): the one place a test starts. Writes
    nothing, moves no file. The job's entity is looked up in ``home``."""
    with entity_scope(load_entities(home)):
        if isinstance(job, FileJob):
            return preview_file(job, conn, home, max_records=max_records)
        return preview(
            job,
            conn,
            up_to_call=up_to_call,
            max_pages=max_pages,
            max_records=max_records,
            on_event=on_event,
        )


def preview_saved(store: ConfigStore, ref: str, **limits) -> Trace:
    """Preview a saved job: ``preview_job`` with the job and its connection from the store."""
    job, conn = load_job(store, ref)
    return preview_job(job, conn, store.home, **limits)


class Snapshot(NamedTuple):
    """What a run needs of the config store, as it was when the run was asked for: the job,
    its connection and its destination's, with their secrets still sealed (the vault's form,
    which only the key opens), the entities of the home, and when each config was saved (the
    config version the run records). A run message carries it to a worker that has no access
    to the store; ``run_job`` runs from one too."""

    job: dict
    connection: dict
    destination: dict | None
    entities: dict[str, dict]
    version: str
    salt: str = ""  # the home's secret.salt, for a STUDIO_SECRET_KEY that is a passphrase

    @classmethod
    def of(cls, store: ConfigStore, ref: str) -> Snapshot:
        job, conn = load_job(store, ref)
        dest = None
        if job.destination.enabled and job.destination.connection_id:
            dest = store.get("connections", job.destination.connection_id, reveal=True)
        saved = [f"job {_stamp(job)}", f"connection {_stamp(conn)}"]
        salt = store.home / SALT_FILE
        return cls(
            job=store.vault.seal(job),
            connection=store.vault.seal(conn),
            destination=store.vault.seal(dest) if dest else None,
            entities={n: e.model_dump(mode="json") for n, e in store.entities().items()},
            version=", ".join(saved + ([f"destination {_stamp(dest)}"] if dest else [])),
            salt=salt.read_text("utf-8").strip() if salt.is_file() else "",
        )

    def opened(self, home: Path, vault: Vault | None = None) -> Opened:
        """The configs validated as the store would, their secrets opened with ``vault`` (else
        this machine's key: ``STUDIO_SECRET_KEY``, with this snapshot's salt if it is a
        passphrase, or the key file of ``home``)."""
        vault = vault or _vault(home, self.salt)
        entities = {n: Entity.model_validate(e) for n, e in self.entities.items()}
        with entity_scope(entities):
            job = vault.open(KINDS["jobs"].validate_config(self.job))
            conns = [vault.open(KINDS["connections"].validate_config(self.connection))]
            if self.destination:
                conns.append(vault.open(KINDS["connections"].validate_config(self.destination)))
        return Opened(home, job, conns[0], {c.id: c for c in conns}, entities, self.version)


def _stamp(config) -> str:
    return config.updated_at.isoformat() if config.updated_at else "never saved"


def _vault(home: Path, salt: str) -> Vault:
    """This machine's key; a passphrase is stretched with the salt of the snapshot's home (a
    worker's own home has another, or none)."""
    secret = os.environ.get("STUDIO_SECRET_KEY", "").strip()
    if secret and salt:
        try:
            Fernet(secret.encode())
        except ValueError:  # not a Fernet key: a passphrase
            return Vault(_derive(secret, salt.encode()))
    return Vault(load_key(home))


class Opened(NamedTuple):
    """A snapshot opened for a run, in memory only: what ``_JobRun`` and ``deliver`` ask of a
    config store (``home``, ``entities()``, ``get`` of the destination's connection)."""

    home: Path
    job: ApiJob | FileJob
    conn: ApiConnection | FileServerConnection
    connections: dict[str, ApiConnection | FileServerConnection]
    all_entities: dict[str, Entity]
    version: str

    def entities(self) -> dict[str, Entity]:
        return self.all_entities

    def get(self, kind: str, ref: str, *, reveal: bool = False):
        if kind != "connections" or ref not in self.connections or not reveal:
            raise NotFound(f"the run's snapshot has no {kind} {ref!r}")
        return self.connections[ref]


SAVE_EVERY = 0.5  # seconds: how often a running run's counts are saved to the history


def run_job(
    store: ConfigStore,
    ref: str,
    *,
    trigger: str = "manual",
    slot: datetime | None = None,
    timeout: float | None = None,
    run: Run | None = None,
    on_event: Callable[[Event], None] | None = None,
    started_by: str | None = None,
) -> Run:
    """Run a saved job now: source → mapping → entity store, run files and destination.
    ``started_by``: the user recorded as starting it (None: the acting one, "" for none).

    Success when every record became a row; partial when some were rejected (or some bulk
    files failed); failed when the run stopped, in which case the entity store is unchanged
    (for bulk files: the files already committed stay committed).

    The run goes the way a worker's does (``run_snapshot``): from a snapshot of the job taken
    here, opened with this store's key."""
    snapshot = Snapshot.of(store, ref)  # or NotFound, before anything is claimed
    return run_snapshot(
        snapshot,
        store.home,
        trigger=trigger,
        slot=slot.isoformat() if slot else "",
        timeout=timeout,
        run=run,
        on_event=on_event,
        started_by=started_by,
        vault=store.vault,
    )


def run_snapshot(
    snapshot: Snapshot,
    home: Path,
    *,
    trigger: str = "manual",
    slot: str = "",
    timeout: float | None = None,
    run: Run | None = None,
    on_event: Callable[[Event], None] | None = None,
    started_by: str | None = None,
    vault: Vault | None = None,
) -> Run:
    """Run a job from its snapshot: what ``run_job`` does on the machine of the config store and
    a Celery worker (``runner.worker``) on any machine, with no access to that store. ``home``:
    this machine's (scratch folders, and the SQLite stores when there is no database);
    ``vault``: the key the secrets open with (else this machine's: ``STUDIO_SECRET_KEY``).

    ``run``: one recorded when it was queued (the REST API's processId, a queued message), or
    claimed already; the claim makes it ``running`` here, or raises ``AlreadyRunning`` (the
    job held by another run) or ``NotQueued`` (the run ended or was taken meanwhile)."""
    source = snapshot.opened(home, vault)  # secrets in clear from here on, in memory only
    job = source.job
    history = open_history(home)
    run = run or history.new(job.id, job.name, trigger, slot, started_by)
    run.config_version = source.version
    run = history.start_run(job.id, job.name, trigger, slot=slot, run=run)  # or AlreadyRunning
    with entity_scope(source.entities()):  # the job's entity, as its home defined it
        return _JobRun(source, history, run, timeout, on_event).execute()


def start_in_background(
    store: ConfigStore, ref: str, *, trigger: str = "manual", started_by: str | None = None
) -> Run:
    """Start a saved job (name or id) now in a thread of this process, or on a worker when
    ``STUDIO_BROKER_URL`` is set (``enqueue``), and return its run as soon as it is claimed
    (``running``, or ``queued`` for a worker): follow it with ``open_history(home).get(run.id)``.

    For the studio's Run now buttons (the Runs page, the job editor), where a click must not
    wait for the run. The job is claimed here, before the thread starts, so a job that is
    already running is refused to the caller (``AlreadyRunning``, the attempt recorded as
    skipped) rather than in a thread where no one would see it. The thread ends with the
    process; a run it leaves unfinished is marked interrupted when the runner next starts.

    ``started_by``: who pressed Run now (None: the page's acting user, ``studio.access``); the
    run records it before the thread starts, where the page's context would be gone."""
    if broker.broker_url():
        return enqueue(store, ref, trigger=trigger, started_by=started_by)
    job = store.get("jobs", ref)
    history = open_history(store.home)
    run = history.start_run(job.id, job.name, trigger, started_by=started_by)  # or AlreadyRunning
    threading.Thread(
        target=_run_claimed, args=(store, job.id, run), daemon=True, name=f"run-{run.id}"
    ).start()
    return run


def queue_run(
    store: ConfigStore,
    ref: str,
    *,
    trigger: str = "manual",
    slot: datetime | None = None,
    run: Run | None = None,
    started_by: str | None = None,
    timeout: float | None = None,
) -> tuple[Run, dict]:
    """Claim a saved job as ``queued`` and make its run message: the run, which whoever takes
    the message (a Celery worker, a process of the embedded daemon) makes ``running``, and the
    message (``run_message``'s input). ``run``: one recorded already (the daemon's run queued
    behind another). Raises ``AlreadyRunning`` (recorded skipped) as ``run_job`` does."""
    snapshot = Snapshot.of(store, ref)  # or NotFound, before anything is claimed
    job_id, name = snapshot.job["id"], snapshot.job["name"]
    history = open_history(store.home)
    stamp = slot.isoformat() if slot else ""
    run = run or history.new(job_id, name, trigger, stamp, started_by)
    run.config_version = snapshot.version
    run = history.start_run(job_id, name, trigger, slot=stamp, run=run, status="queued")
    message = {
        "v": 1,
        "run_id": run.id,
        "job_id": job_id,
        "trigger": run.trigger,
        "slot": run.slot,
        "started_by": run.started_by,
        "timeout": timeout,
        "snapshot": snapshot._asdict(),
    }
    return run, message


def enqueue(store: ConfigStore, ref: str, **how) -> Run:
    """Claim a saved job as ``queued`` and send its run message to the workers (``broker``);
    the run, which a worker makes ``running``. ``how``: ``queue_run``'s. A message Redis does
    not take leaves the run failed, saying so."""
    run, message = queue_run(store, ref, **how)
    try:
        broker.send(message, run.trigger)
    except StudioError as e:
        run.status, run.error, run.finished_at = "failed", str(e), now_iso()
        open_history(store.home).save(run)
        raise
    return run


def run_message(message: dict, home: Path) -> Run:
    """A worker's part (``runner.worker``): run the queued run a message names, from its
    snapshot, in ``home`` (this machine's). Raises ``NotQueued``, doing nothing, when the run
    is not in the history or no longer queued: interrupted while it waited (its claimant's
    process ended, or no worker took it in time), even just as this worker took it (the claim
    is conditional: ``start_run``), or taken by another worker (a message delivered twice)."""
    history = open_history(home)
    run = history.get(message["run_id"])
    if run is None:
        raise NotQueued(f"run {message['run_id']} is not in the run history")
    if run.status != "queued":
        error = f" ({run.error})" if run.error else ""
        raise NotQueued(f"run {run.id} is no longer queued: it is {run.status}{error}")
    run.folder = str(home / "runs" / run.id)  # this machine's, not the sender's
    try:
        return run_snapshot(
            Snapshot(**message["snapshot"]),
            home,
            trigger=run.trigger,
            slot=run.slot,
            timeout=message.get("timeout"),
            run=run,
        )
    except (AlreadyRunning, NotQueued, EndNotRecorded):
        raise
    except Exception as e:  # a snapshot that does not open (another key), a bad config
        error = reason_of(e)
        if run.status == "queued":  # not claimed here: failed only if it still waits
            history.end_if_queued(run.id, "failed", error)
            return history.get(run.id) or run
        run.status, run.error, run.finished_at = "failed", error, now_iso()
        history.save(run)
        return run


def reason_of(e: Exception) -> str:
    """Why a run stopped, as its record says it: a ``StudioError`` says it already; the
    connection to PostgreSQL lost (the server stopped or restarted, the session ended) is said
    so; anything else is a bug, named by its type."""
    if isinstance(e, StudioError):
        return str(e)
    kinds = {k.__name__ for k in type(e).__mro__}
    if type(e).__module__.startswith("psycopg") and kinds & {"OperationalError", "InterfaceError"}:
        return f"the connection to PostgreSQL ({pg.ENV}) was lost during the run: {e}"
    return f"{type(e).__name__}: {e}"


def _run_claimed(store: ConfigStore, job_id: str, run: Run) -> None:
    """Run a claimed run; if it cannot even begin (its job or connection deleted since the
    claim), record it failed, so that it does not hold its job while this process lives. A
    run that is no longer this process's (``NotQueued``), or whose end could not be recorded
    (``EndNotRecorded``: left to the scheduler's check), keeps its record."""
    try:
        run_job(store, job_id, trigger=run.trigger, run=run)
    except (NotQueued, EndNotRecorded):
        pass
    except Exception as e:
        run.status, run.finished_at = "failed", now_iso()
        run.error = reason_of(e)
        open_history(store.home).save(run)


class _JobRun:
    """One run of a saved job, once claimed: its record, its log (and debug trace), its
    deadline, and its counts, which it saves to the history as they grow (at most every
    ``SAVE_EVERY`` seconds), so that whoever looks at a running run sees how far it got.

    A save that finds the run no longer ``running`` (interrupted meanwhile by the scheduler's
    check or a stopping runner, while the run still went) stops it (``NoLongerRunning``), and
    so does the same check just before its rows are committed: its uncommitted rows are
    dropped, and its end is recorded only while it is still running, so "interrupted" stays."""

    def __init__(
        self,
        source: Opened,
        history: RunStore,
        run: Run,
        timeout: float | None,
        on_event: Callable[[Event], None] | None,
    ):
        self.store, self.history, self.run = source, history, run  # source: home and configs
        self.job = job = source.job
        self.conn = source.conn
        self.on_event = on_event
        self.limit = timeout if timeout is not None else job.run.timeout_minutes * 60
        self.deadline = time.monotonic() + self.limit
        self.folder = private_dir(Path(run.folder))
        self.raw = self.folder / ".rows.raw.csv" if job.destination.enabled else None
        self.log = open_private(self.folder / "run.log")
        debug = job.debug_until is not None and job.debug_until > datetime.now(UTC)
        self.trace = open_private(self.folder / "trace.jsonl") if debug else None
        self.spec = entity(job.entity)
        self.outputs: RunOutputs | None = None
        self.saved = time.monotonic()

    def event(self, e: Event, check: bool = True) -> None:
        """Count an event of the source and log it in run.log. ``check``: the run's deadline
        and whether it still runs (``progress``); the lines said as it ends check neither."""
        if check and time.monotonic() > self.deadline:
            # Cooperative: checked at every request, page and log line of the run.
            raise StudioError(f"stopped: the run took longer than its timeout of {self.limit:g} s")
        line = self._count(e)
        if line is not None:
            self.log.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.log.flush()
            if self.on_event:
                self.on_event(e)
        if check:
            self.progress()

    def _count(self, e: Event) -> dict | None:
        """Count ``e`` into the run; its line of run.log, or None for what is not logged."""
        kind = e["kind"]
        line: dict = {"at": now_iso(), "kind": kind}
        if kind == "exchange":
            line |= self._exchange(e["exchange"])
        elif kind == "page":
            self.run.pages += 1
            line |= {"call": e.get("call"), "records": e.get("records")}
        elif kind in ("log", "stop"):
            line["message"] = e["message"]
        else:
            return None
        return line

    def _exchange(self, x: Exchange) -> dict:
        """Count a request and every attempt it took; its fields in run.log."""
        self.run.requests += 1
        self.run.attempts += x.attempts
        if self.trace:  # debug: the whole exchange, headers and bodies, secrets masked
            self.trace.write(json.dumps(x.as_dict(), ensure_ascii=False, default=str) + "\n")
            self.trace.flush()  # whole lines on disk, for the heartbeat to copy (pgfiles)
        return {
            "label": x.label,
            "method": x.method,
            "url": x.url,
            "status": x.status,
            "ms": round(x.elapsed_ms),
            "size": x.size,
            "attempts": x.attempts,
            "retries": x.retries,
            "error": x.error,
        }

    def progress(self, now_anyway: bool = False) -> None:
        """Save the counts so far when ``SAVE_EVERY`` seconds have passed since the last save
        (``now_anyway``: at once, before a commit): called at every event and batch, it costs a
        clock read but every half second. Raises ``NoLongerRunning`` when the history says the
        run is no longer ``running``; a save skipped because the history is busy goes on."""
        now = time.monotonic()
        if now - self.saved < SAVE_EVERY and not now_anyway:
            return
        self.saved = now
        counts = {c: getattr(self.run, c) for c in COUNTS}
        if self.outputs is not None:  # rows staged so far; the run's own counts come at commit
            counts |= self._written()
        if self.history.save_counts(self.run.id, counts) is Progress.ENDED:
            raise NoLongerRunning.of(self.run.id, self.history.get(self.run.id))

    def _written(self) -> dict[str, int]:
        """What the run's outputs counted: rows, rejects, discarded records and child rows."""
        out = self.outputs
        return {
            "rows_written": out.rows,
            "rows_rejected": out.rejects,
            "discarded": out.discarded,
            "child_rows": out.child_rows,
        }

    def execute(self) -> Run:
        run, job = self.run, self.job
        try:
            # Compiled here for the columns the row store keeps on update; a file job's
            # files compile their own, for their columns.
            mapper = job_mapper(job, self.spec)
            self.outputs = RunOutputs(
                self.store.home,
                self.folder,
                self.spec,
                run.id,
                [f.generate for f in job.mapping],
                raw=self.raw,
                immutable=mapper.immutable_fields,
                children=child_outputs(mapper),
                before_commit=lambda: self.progress(now_anyway=True),
            )
            if isinstance(job, FileJob):
                self._read_files()
            else:
                self._read_api(mapper)
            for count, value in self._written().items():
                setattr(run, count, value)
            run.outputs = self.outputs.close()
            self.outputs = None  # committed: from here on, nothing may undo the rows
            if self.job.destination.enabled:
                self._deliver()
            run.status = "partial" if run.rows_rejected or run.error else "success"
        except NoLongerRunning as e:  # its record, interrupted, stays as it is
            self._drop_rows()
            self.event({"kind": "log", "message": f"stopped: {e}"}, check=False)
        except Exception as e:  # a StudioError says what happened; anything else is a bug: say so
            self._fail(reason_of(e))
        finally:
            self._close()
        return self.run

    def _counted(self, records: int) -> None:
        """After each batch of either source: the records so far, saved as they grow."""
        self.run.records += records
        self.progress()

    def _read_files(self) -> None:
        """A file job: its file, or its bulk files, each committed as its own unit of work."""
        job, run = self.job, self.run
        with connect(self.conn, self.store.home) as client:
            report = import_files(
                job, client, self.outputs, on_event=self.event, on_batch=self._counted
            )
        run.files = len(report.files)
        if report.failed and len(report.failed) == len(report.files) and job.source.mode == "path":
            raise StudioError(report.failed[0].error)
        if report.failed:
            run.error = "; ".join(f.error for f in report.failed)

    def _read_api(self, mapper: Mapper | WithChildren) -> None:
        """An API job: one unit, the call chain's record batches, committed at once."""
        job, run = self.job, self.run
        last_success = self.history.last_success(job.id)
        with HttpClient(
            self.conn, on_exchange=lambda x: self.event({"kind": "exchange", "exchange": x})
        ) as client:
            chain = Chain(
                job,
                self.conn,
                client,
                run_id=run.id,
                last_success_at=last_success,
                on_event=self.event,
                workdir=self.folder,
            )
            unit = ChainUnit(chain, mapper)
            run_units([unit], self.outputs, on_event=self.event, on_batch=self._counted)

    def _deliver(self) -> None:
        """The destination file; one that cannot be written leaves the rows in, and says so."""
        try:
            where = deliver(self.store, self.job, self.run, self.raw)
            self.event({"kind": "log", "message": f"Wrote the rows to {where}"}, check=False)
        except Exception as e:  # the rows are in; the run says the file is not
            self.run.error = f"the destination file was not written: {e}"
            self.event({"kind": "log", "message": self.run.error}, check=False)

    def _fail(self, message: str) -> None:
        """The run stopped: its uncommitted rows are dropped and the reason recorded."""
        if dropping := self._drop_rows():
            message = f"{message} ({dropping})"
        self.run.status, self.run.error = "failed", message
        self.event({"kind": "log", "message": f"failed: {message}"}, check=False)

    def _drop_rows(self) -> str:
        """Drop the rows not committed yet; what went wrong doing it ("" when nothing did)."""
        error = ""
        if self.outputs is not None:
            try:
                self.outputs.rollback()
            except Exception as e:  # the run's own reason stays the one recorded
                error = f"and its rows could not be dropped: {e}"
            self.run.outputs = self.outputs.close()
            self.outputs = None
        return error

    def _close(self) -> None:
        """Close the run's files and record its end, whatever the end, but only while its
        record is ``running``: a run interrupted meanwhile keeps that record (and is returned
        as recorded)."""
        run = self.run
        if self.raw:
            self.raw.unlink(missing_ok=True)
        run.finished_at = now_iso()
        self.log.close()
        run.outputs = [*run.outputs, str(self.folder / "run.log")]
        if self.trace:
            self.trace.close()
            run.outputs.append(self.trace.name)
        if not self.history.save(run, if_running=True):
            self.run = self.history.get(run.id) or run
