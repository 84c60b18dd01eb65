"""Running saved jobs, whatever their kind: the entry points the CLI, the studio and (later) the
runner daemon share. Each kind has its own source (an API call chain, CSV files from a server);
here a saved job is loaded with its connection and sent to the right one."""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from studio.destination import CsvFile
from studio.engine import Chain, Event, Trace, preview
from studio.entities import Entity, entity
from studio.entitystore import EntityWriter
from studio.errors import StudioError
from studio.files import connect
from studio.filesource import import_files, preview_file
from studio.history import Run, RunHistory, now_iso
from studio.http import HttpClient
from studio.jobs import ApiJob, FileJob
from studio.mapping import Mapper, Reject
from studio.models import ApiConnection, FileServerConnection
from studio.private import open_private, private_dir
from studio.store import ConfigStore


def load_job(
    store: ConfigStore, ref: str
) -> tuple[ApiJob | FileJob, ApiConnection | FileServerConnection]:
    """A saved job and its connection, secrets in clear, ready for a preview or a run."""
    job = store.get("jobs", ref, reveal=True)
    conn = store.get("connections", job.connection_id, reveal=True)
    return job, conn


def preview_saved(
    store: ConfigStore,
    ref: str,
    *,
    up_to_call: int | None = None,
    max_pages: int = 5,
    max_records: int = 500,
) -> Trace:
    """Preview a saved job of any kind; writes nothing, moves no file."""
    job, conn = load_job(store, ref)
    if isinstance(job, FileJob):
        return preview_file(job, conn, store.home, max_records=max_records)
    return preview(job, conn, up_to_call=up_to_call, max_pages=max_pages, max_records=max_records)


class RunOutputs:
    """Where a run's rows go: the entity store (one transaction), and the run's files:
    ``rows.csv`` and ``rejects.csv`` (record, field, reason). Rows wait in a pending file until
    the unit of work (the run, or a bulk file) commits, so a rolled-back file leaves no trace."""

    def __init__(self, home: Path, folder: Path, entity: Entity, run_id: str, columns: list[str]):
        private_dir(folder)
        self.folder = folder
        self.fields = columns
        self.writer = EntityWriter(home, entity, run_id, columns)
        self.rows_path, self.rejects_path = folder / "rows.csv", folder / "rejects.csv"
        self._rows = open_private(self.rows_path, newline="")
        self._rejects = open_private(self.rejects_path, newline="")
        csv.writer(self._rows).writerow(self.fields)
        csv.writer(self._rejects).writerow(["record", "field", "reason"])
        # Rows of the unit of work not yet committed: a write-only file beside rows.csv (a
        # read-write text file costs a codec reset per write).
        self._pending_path = folder / ".rows.pending"
        self._pending = open_private(self._pending_path, newline="")
        self.rows = self.rejects = 0

    def write(self, rows: list[dict], rejects: list[Reject]) -> None:
        self.writer.write(rows)
        csv.writer(self._pending).writerows(r.values() for r in rows)
        csv.writer(self._rejects).writerows([[r.record, r.field, r.reason] for r in rejects])
        self.rows += len(rows)
        self.rejects += len(rejects)

    def commit(self) -> None:
        self.writer.commit()
        self._pending.close()
        with open(self._pending_path, newline="", encoding="utf-8") as pending:
            shutil.copyfileobj(pending, self._rows)
        self._pending = open_private(self._pending_path, newline="")

    def rollback(self) -> None:
        self.writer.rollback()
        self._pending.close()
        self._pending = open_private(self._pending_path, newline="")

    def close(self) -> list[str]:
        self.writer.close()
        for f in (self._rows, self._rejects, self._pending):
            f.close()
        self._pending_path.unlink(missing_ok=True)
        return [str(self.rows_path), str(self.rejects_path)]


def _deliver(store: ConfigStore, job: ApiJob | FileJob, run: Run, rows_csv: Path) -> str:
    """Write the committed rows as the job's destination CSV file; returns where."""
    dest = job.destination
    conn = store.get("connections", dest.connection_id, reveal=True)
    out = CsvFile(dest, list(entity(job.entity).fields))
    try:
        with open(rows_csv, newline="", encoding="utf-8") as f:
            out.write(csv.DictReader(f))
        with connect(conn, store.home) as client:
            target = out.deliver(client, job=job.name, run_id=run.id, now=datetime.now(UTC))
    finally:
        out.discard()
    return f"{conn.name}:{target}"


def run_job(
    store: ConfigStore,
    ref: str,
    *,
    trigger: str = "manual",
    slot: datetime | None = None,
    timeout: float | None = None,
    run: Run | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> Run:
    """Run a saved job now: source → mapping → entity store, run files and destination.

    Success when every record became a row; partial when some were rejected (or some bulk
    files failed); failed when the run stopped, in which case the entity store is unchanged
    (for bulk files: the files already committed stay committed)."""
    job, conn = load_job(store, ref)
    history = RunHistory(store.home)
    if run is None:  # or one recorded when it was queued (the REST API's processId)
        run = history.start(job.id, job.name, trigger, slot=slot.isoformat() if slot else "")
    else:
        run.status, run.started_at = "running", now_iso()
        history.save(run)
    debug = job.debug_until is not None and job.debug_until > datetime.now(UTC)
    limit = timeout if timeout is not None else job.run.timeout_minutes * 60
    deadline = time.monotonic() + limit
    folder = private_dir(Path(run.folder))
    log = open_private(folder / "run.log")
    trace = open_private(folder / "trace.jsonl") if debug else None
    spec = entity(job.entity)

    def event(e: Event, check: bool = True) -> None:
        if check and time.monotonic() > deadline:
            # Cooperative: checked at every request, page and log line of the run.
            raise StudioError(f"stopped: the run took longer than its timeout of {limit:g} s")
        kind = e["kind"]
        line: dict = {"at": now_iso(), "kind": kind}
        if kind == "exchange":
            x = e["exchange"]
            run.requests += 1
            if trace:  # debug: the whole exchange, headers and bodies, secrets masked
                trace.write(json.dumps(x.as_dict(), ensure_ascii=False, default=str) + "\n")
            line |= {
                "label": x.label,
                "method": x.method,
                "url": x.url,
                "status": x.status,
                "ms": round(x.elapsed_ms),
                "size": x.size,
                "error": x.error,
            }
        elif kind == "page":
            run.pages += 1
            line |= {"call": e.get("call"), "records": e.get("records")}
        elif kind in ("log", "stop"):
            line["message"] = e["message"]
        else:
            return
        log.write(json.dumps(line, ensure_ascii=False) + "\n")
        log.flush()
        if on_event:
            on_event(e)

    outputs = None
    try:
        outputs = RunOutputs(store.home, folder, spec, run.id, [f.generate for f in job.mapping])
        if isinstance(job, FileJob):
            with connect(conn, store.home) as client:
                report = import_files(job, client, outputs, on_event=event)
            run.files = len(report.files)
            run.records = sum(f.records for f in report.files)
            if (
                report.failed
                and len(report.failed) == len(report.files)
                and job.source.mode == "path"
            ):
                raise StudioError(report.failed[0].error)
            if report.failed:
                run.error = "; ".join(f.error for f in report.failed)
        else:
            history_last = history.last_success(job.id)
            with HttpClient(
                conn, on_exchange=lambda x: event({"kind": "exchange", "exchange": x})
            ) as client:
                chain = Chain(
                    job,
                    conn,
                    client,
                    run_id=run.id,
                    last_success_at=history_last,
                    on_event=event,
                    workdir=folder,
                )
                mapper = Mapper(job.mapping, spec)
                for batch in chain.batches():
                    mapped = mapper.map(batch, start=run.records)
                    run.records += len(batch)
                    outputs.write(mapped.rows, mapped.rejects)
            outputs.commit()
        run.rows_written, run.rows_rejected = outputs.rows, outputs.rejects
        run.outputs = outputs.close()
        outputs = None  # committed: from here on, nothing may undo the rows
        if job.destination.enabled:
            try:
                where = _deliver(store, job, run, Path(run.outputs[0]))
                event({"kind": "log", "message": f"Wrote the rows to {where}"}, check=False)
            except Exception as e:  # the rows are in; the run says the file is not
                run.error = f"the destination file was not written: {e}"
                event({"kind": "log", "message": run.error}, check=False)
        run.status = "partial" if run.rows_rejected or run.error else "success"
    except Exception as e:  # a StudioError says what happened; anything else is a bug: say so
        message = str(e) if isinstance(e, StudioError) else f"{type(e).__name__}: {e}"
        if outputs is not None:
            outputs.rollback()
            run.outputs = outputs.close()
        run.status, run.error = "failed", message
        event({"kind": "log", "message": f"failed: {message}"}, check=False)
    finally:
        run.finished_at = now_iso()
        log.close()
        run.outputs = [*run.outputs, str(folder / "run.log")]
        if trace:
            trace.close()
            run.outputs.append(trace.name)
        history.save(run)
    return run
