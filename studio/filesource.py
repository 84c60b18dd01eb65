"""File jobs: read CSV files from a file server, map them, and move bulk files when done.

One path, or bulk mode: every file of the inbound folder that matches the pattern, oldest
first. Files are streamed in batches, so a file of any size keeps memory flat. In bulk mode each
file is its own unit of work: its rows go to the sink, the sink commits, and only then is the file
moved to the outbound folder (under its own name, or with a timestamp suffix when that name is
taken). A file that fails is rolled back and stays in inbound, or moves to the error folder when
one is set; the run reports it and goes on with the others.
"""

from __future__ import annotations

import fnmatch
import posixpath
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studio.config.connections import FileServerConnection
from studio.config.jobs import FileJob
from studio.engine import PREVIEW_RECORDS, Event, Trace
from studio.entities import entity
from studio.errors import StudioError
from studio.files import FileClient, connect
from studio.mapping import MappedBatch, Mapper
from studio.readers import BATCH, CsvOptions, CsvRows, read_csv, sniff_delimiter
from studio.sources import Sink, UnitResult, run_units

FileResult = UnitResult  # a file of the job, and how it went


@dataclass
class FileReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.error]


def csv_options(job: FileJob) -> CsvOptions:
    c = job.csv
    return CsvOptions(c.delimiter, c.encoding, c.header_row, c.quote_char)


def files_of(job: FileJob, client: FileClient) -> list[str]:
    """The files to import: the path, or the inbound files matching the pattern, oldest first.
    Where the listing gave times to the minute only (FTP's LIST), the exact time is asked per
    matching file, so that files written within the same minute keep their order."""
    if job.source.mode == "path":
        return [job.source.path]
    entries = [
        e
        for e in client.list(job.source.inbound)
        if not e.is_dir
        and not e.name.startswith(".")
        and fnmatch.fnmatch(e.name, job.source.pattern or "*")
    ]
    oldest = datetime.min.replace(tzinfo=UTC)
    times = {
        e.path: (e.modified if e.precise else client.modified(e.path) or e.modified) or oldest
        for e in entries
    }
    entries.sort(key=lambda e: (times[e.path], e.name))
    return [e.path for e in entries]


def read_batches(
    client: FileClient, path: str, options: CsvOptions, batch: int = BATCH
) -> Iterator[list[dict]]:
    with client.open(path) as stream:
        yield from read_csv(stream, options, name=path, batch=batch)


def mapped_batches(
    client: FileClient, path: str, job: FileJob, batch: int = BATCH
) -> Iterator[tuple[int, MappedBatch]]:
    """(records read, rows and rejects) per batch of one file. The mapping is compiled for the
    file's own columns, so that rows stay lists and are read by index."""
    spec = entity(job.entity)
    mapper, start = None, 0
    with client.open(path) as stream:
        rows = CsvRows(stream, csv_options(job), name=path, batch=batch)
        for lines in rows:
            if mapper is None or mapper.columns != rows.header:
                try:
                    mapper = Mapper(
                        job.mapping, spec, columns=list(rows.header), lookups=job.lookups
                    )
                except StudioError as e:
                    raise StudioError(f"{path}: {e}") from None
            yield len(lines), mapper.map(lines, start=start)
            start += len(lines)


def free_name(client: FileClient, folder: str, name: str, now: datetime) -> str:
    """``folder/name``, or ``folder/stem-20261122T083000Z.ext`` when that name is taken."""
    target = posixpath.join(folder, name)
    if not client.exists(target):
        return target
    stem, ext = posixpath.splitext(name)
    return posixpath.join(folder, f"{stem}-{now.strftime('%Y%m%dT%H%M%SZ')}{ext}")


class FileUnit:
    """One file of a file job: its mapped batches; once committed it moves to the outbound
    folder (bulk), once failed to the error folder (bulk, when there is one)."""

    isolated = True

    def __init__(self, job: FileJob, client: FileClient, path: str, batch: int, on_event):
        self.job, self.client, self.name, self.batch = job, client, path, batch
        self.on_event = on_event
        self.bulk = job.source.mode == "bulk"

    def batches(self) -> Iterator[tuple[int, MappedBatch]]:
        self.on_event({"kind": "log", "message": f"{self.name}: reading"})
        for count, mapped in mapped_batches(self.client, self.name, self.job, self.batch):
            self.on_event({"kind": "page", "call": self.name, "records": count})
            yield count, mapped

    def _move(self, folder: str) -> str:
        self.client.makedirs(folder)
        target = free_name(self.client, folder, posixpath.basename(self.name), datetime.now(UTC))
        self.client.rename(self.name, target)
        return target

    def done(self) -> str:
        return self._move(self.job.source.outbound) if self.bulk else ""

    def failed(self, error: str) -> str:
        folder = self.job.source.error_folder
        return self._move(folder) if self.bulk and folder else ""


def file_units(
    job: FileJob, client: FileClient, on_event: Callable[[Event], None], batch: int = BATCH
) -> Iterator[FileUnit]:
    if job.source.mode == "bulk" and job.source.outbound:
        client.makedirs(job.source.outbound)
    for path in files_of(job, client):
        yield FileUnit(job, client, path, batch, on_event)


def import_files(
    job: FileJob,
    client: FileClient,
    sink: Sink,
    *,
    on_event: Callable[[Event], None] = lambda _e: None,
    on_batch: Callable[[int], None] = lambda _n: None,
    batch: int = BATCH,
) -> FileReport:
    """Import every file of the job into ``sink``; bulk files are moved once committed."""
    bulk = job.source.mode == "bulk"

    def said(result: FileResult) -> None:
        if not result.error:
            discarded = f", {result.discarded} discarded" if result.discarded else ""
            moved = f", moved to {result.moved_to}" if bulk else ""
            on_event(
                {
                    "kind": "log",
                    "message": f"{result.path}: {result.records} records, {result.rows} "
                    f"rows, {result.rejects} rejects{discarded}{moved}",
                }
            )

    units = file_units(job, client, on_event, batch)
    report = FileReport(run_units(units, sink, on_event=on_event, on_batch=on_batch, on_unit=said))
    if bulk and not report.files:
        message = f"No file in {job.source.inbound or '/'} matches {job.source.pattern}"
        on_event({"kind": "log", "message": message})
    return report


def preview_file(
    job: FileJob,
    conn: FileServerConnection,
    home: Path,
    *,
    max_records: int = PREVIEW_RECORDS,
) -> Trace:
    """The first rows of the file (or of the first inbound file), mapped, with a delimiter
    suggestion sniffed from the first lines. Nothing is moved or written."""
    trace = Trace()
    started = time.perf_counter()
    try:
        with connect(conn, home) as client:
            paths = files_of(job, client)
            if not paths:
                raise StudioError(
                    f"No file in {job.source.inbound or '/'} matches {job.source.pattern}"
                )
            path = paths[0]
            trace.log.append(
                f"Reading {path}"
                + (f" (first of {len(paths)} inbound files)" if len(paths) > 1 else "")
            )
            with client.open(path) as stream:
                head = stream.read(64 * 1024)
            text = head.decode(
                job.csv.encoding if job.csv.encoding != "utf-8" else "utf-8-sig", errors="replace"
            )
            guess = sniff_delimiter("\n".join(text.splitlines()[:20]))
            if guess and guess != job.csv.delimiter:
                trace.log.append(f"The first lines suggest the delimiter {guess!r}")
            trace.hints["delimiter"] = guess
            records: list[Any] = []
            for rows in read_batches(client, path, csv_options(job), batch=max_records):
                records.extend(rows[: max_records - len(records)])
                if len(records) >= max_records:
                    trace.stopped.append(f"stopped after {max_records} records: preview limit")
                    break
            mapped = Mapper(job.mapping, entity(job.entity), lookups=job.lookups).map(records)
            trace.records, trace.rows = records, mapped.rows
            trace.rejects = [r.as_dict() for r in mapped.rejects]
            trace.discarded = len(mapped.discarded)
    except StudioError as e:
        trace.error = str(e)
        trace.log.append(f"error: {e}")
    trace.elapsed_ms = (time.perf_counter() - started) * 1000
    return trace
