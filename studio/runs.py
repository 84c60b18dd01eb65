"""Running saved jobs, whatever their kind: the entry points the CLI, the studio and (later) the
runner daemon share. Each kind has its own source (an API call chain, CSV files from a server);
here a saved job is loaded with its connection and sent to the right one."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from studio.destination import CsvFile, for_people
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


# Where a cell of csv.writer's output may start with a formula's first character: at a line's
# start or after a comma, or after the quote of a quoted cell (a cell starting with \r is quoted).
# It may also match inside a quoted cell: then the batch is checked value by value, which is right.
_MAYBE_FORMULA = re.compile(r'(?:^|,)[=+\-@\t]|"[=+\-@\t\r]', re.MULTILINE)


def _csv_text(rows: Iterable[Iterable]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


class _PendingCsv:
    """A CSV file whose rows of the unit of work wait in a write-only file beside it until
    ``commit`` appends them (a read-write text file costs a codec reset per write)."""

    def __init__(self, path: Path, header: list[str]):
        self.path, self._pending_path = path, path.with_name(f".{path.name}.pending")
        self._file = open_private(path, newline="")
        csv.writer(self._file).writerow(header)
        self._pending = self._open_pending()

    def _open_pending(self) -> TextIO:
        return open_private(self._pending_path, newline="")

    def write(self, text: str) -> None:
        self._pending.write(text)

    def commit(self) -> None:
        self._pending.close()
        with open(self._pending_path, newline="", encoding="utf-8") as pending:
            shutil.copyfileobj(pending, self._file)
        self._pending = self._open_pending()

    def rollback(self) -> None:
        self._pending.close()
        self._pending = self._open_pending()

    def close(self) -> None:
        self._file.close()
        self._pending.close()
        self._pending_path.unlink(missing_ok=True)


class RunOutputs:
    """Where a run's rows go: the entity store (one transaction), and the run's files:
    ``rows.csv`` and ``rejects.csv`` (record, field, reason). Rows wait in a pending file until
    the unit of work (the run, or a bulk file) commits, so a rolled-back file leaves no trace.

    The run's files are for people, who open them in a spreadsheet: a value that would run as
    a formula is written with a quote before it, as the CSV destination writes it. The entity
    store keeps the values as they are, and so does ``raw`` (when given): the committed rows
    unquoted, from which the job's destination writes its file with its own options."""

    def __init__(
        self,
        home: Path,
        folder: Path,
        entity: Entity,
        run_id: str,
        columns: list[str],
        raw: Path | None = None,
    ):
        private_dir(folder)
        self.folder = folder
        self.fields = columns
        self.writer = EntityWriter(home, entity, run_id, columns)
        self.rows_path, self.rejects_path = folder / "rows.csv", folder / "rejects.csv"
        self._rows = _PendingCsv(self.rows_path, columns)
        self._raw = _PendingCsv(raw, columns) if raw else None
        self._rejects = open_private(self.rejects_path, newline="")
        csv.writer(self._rejects).writerow(["record", "field", "reason"])
        self.rows = self.rejects = 0

    def write(self, rows: list[dict], rejects: list[Reject]) -> None:
        self.writer.write(rows)
        text = _csv_text(r.values() for r in rows)
        if self._raw:
            self._raw.write(text)
        if _MAYBE_FORMULA.search(text):  # rarely: most batches are written as they are
            text = _csv_text(for_people(r.values()) for r in rows)
        self._rows.write(text)
        csv.writer(self._rejects).writerows(
            for_people([r.record, r.field, r.reason]) for r in rejects
        )
        self.rows += len(rows)
        self.rejects += len(rejects)

    def _files(self) -> list[_PendingCsv]:
        return [self._rows, *([self._raw] if self._raw else [])]

    def commit(self) -> None:
        self.writer.commit()
        for f in self._files():
            f.commit()

    def rollback(self) -> None:
        self.writer.rollback()
        for f in self._files():
            f.rollback()

    def close(self) -> list[str]:
        self.writer.close()
        for f in self._files():
            f.close()
        self._rejects.close()
        return [str(self.rows_path), str(self.rejects_path)]


def _deliver(store: ConfigStore, job: ApiJob | FileJob, run: Run, rows_csv: Path) -> str:
    """Write the committed rows (as they are, not quoted for people) as the job's destination
    CSV file; returns where."""
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
    # ``run``: one recorded when it was queued (the REST API's processId), or claimed already.
    stamp = slot.isoformat() if slot else ""
    run = history.start_run(job.id, job.name, trigger, slot=stamp, run=run)  # or AlreadyRunning
    debug = job.debug_until is not None and job.debug_until > datetime.now(UTC)
    limit = timeout if timeout is not None else job.run.timeout_minutes * 60
    deadline = time.monotonic() + limit
    folder = private_dir(Path(run.folder))
    raw = folder / ".rows.raw.csv" if job.destination.enabled else None
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
        columns = [f.generate for f in job.mapping]
        outputs = RunOutputs(store.home, folder, spec, run.id, columns, raw=raw)
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
                where = _deliver(store, job, run, raw)
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
        if raw:
            raw.unlink(missing_ok=True)
        run.finished_at = now_iso()
        log.close()
        run.outputs = [*run.outputs, str(folder / "run.log")]
        if trace:
            trace.close()
            run.outputs.append(trace.name)
        history.save(run)
    return run
