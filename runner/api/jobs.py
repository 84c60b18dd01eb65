"""Contentserv-style job control: start a job (a process id comes back at once), poll its
status, download its result; and the synchronous datafeed that does all three in one call."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from runner.api.common import EDITOR, VIEWER, Runner, RunnerDep, job_ref
from runner.api.schemas import answers, component
from studio.access import acting
from studio.errors import Conflict, NotFound, StudioError
from studio.runhistory import Run, data_files

router = APIRouter(tags=["jobs"], dependencies=VIEWER)

SYNC_STATE = {"success": 1, "partial": 1, "queued": 2, "running": 2}
FILE = {
    "description": "The run's rows: the CSV file itself, or a ZIP when it wrote several",
    "content": {
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
        "application/zip": {"schema": {"type": "string", "format": "binary"}},
        "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
    },
}


class QueueDown(StudioError):
    """Distributed mode: Redis did not take the run's message (503; the run is recorded
    failed, saying why)."""


def start(r: Runner, job) -> str:
    """Queue a run of ``job`` for the daemon, recorded as started by the token's user; with
    ``STUDIO_BROKER_URL`` set, the daemon sends it to the workers."""
    who = acting.get()
    try:
        _outcome, run_id = r.daemon.submit(
            job.id, job.name, "api", None, job.run.on_overlap, started_by=who.name if who else ""
        )
    except Conflict:
        raise
    except StudioError as e:  # only sending to the workers fails so: Redis is down
        raise QueueDown(str(e)) from None
    if run_id is None:
        raise Conflict(
            f"Import {job.name!r} is running, and it skips a start meanwhile "
            "(run.on_overlap = skip)"
        )
    return run_id


async def finish(r: Runner, run_id: str) -> Run:
    deadline = time.monotonic() + r.synchron_timeout
    while True:
        run = r.history.get(run_id)
        if run and run.status not in ("queued", "running"):
            return run
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.1)


def timed_out(r: Runner, job, run_id: str) -> JSONResponse:
    """Still running when the wait is over: 202 Accepted, and where to poll."""
    return JSONResponse(
        {
            "processId": run_id,
            "message": f"Run {run_id} of {job.name!r} did not finish within "
            f"{r.synchron_timeout:g} s; poll /v1/jobs/{job.id}/status/{run_id}",
        },
        202,
    )


def run_of(r: Runner, job, process_id: str) -> Run:
    run = r.history.get(process_id)
    if run is None or run.job_id != job.id:
        raise NotFound(f"No run {process_id!r} of import {job.name!r}")
    return run


def status_of(run: Run) -> dict:
    state = SYNC_STATE.get(run.status, 3)
    return {
        "SyncState": state,
        "status": {1: "success", 2: "running", 3: "error"}[state],
        "processId": run.id,
        "run_status": run.status,
        "started_by": run.started_by,
        "requests": run.requests,
        "attempts": getattr(run, "attempts", 0) or run.requests,
        "pages": run.pages,
        "records": run.records,
        "rows_written": run.rows_written,
        "rows_rejected": run.rows_rejected,
        "discarded": run.discarded,
        "child_rows": run.child_rows,
        "files": run.files,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "message": run.error or run.status,
    }


def download_of(run: Run) -> Response:
    """The run's data files: the one file (``FileResponse`` reads it in 64 KiB steps), or a
    ZIP made as it is sent (``zipped``): memory stays small whatever their size."""
    files = data_files(run)
    if len(files) == 1:
        return FileResponse(files[0], filename=files[0].name)
    name = f"run-{run.id}.zip"
    return StreamingResponse(
        zipped(files),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class _Pipe(io.RawIOBase):
    """What ``zipfile`` writes, kept until the response takes it: a stream it cannot seek,
    so it writes each member's sizes after its data."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def zipped(files: list[Path]) -> Iterator[bytes]:
    """A ZIP of ``files`` in pieces, a MiB of a file read and compressed at a time."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            with open(path, "rb") as f, archive.open(path.name, "w", force_zip64=True) as out:
                while block := f.read(1 << 20):
                    out.write(block)
                    yield pipe.take()
    yield pipe.take()


def _started() -> dict:
    out = answers(200, component("ProcessId"), 404, 409)
    run = {"ref": "$request.path.ref", "process_id": "$response.body#/processId"}
    out[200]["links"] = {
        "JobStatus": {"operationId": "job_status", "parameters": run},
        "DownloadJob": {"operationId": "download_job", "parameters": run},
    }
    return out


@router.post(
    "/v1/jobs/{ref}/start", operation_id="start_job", dependencies=EDITOR, responses=_started()
)
def start_job(ref: str, r: RunnerDep) -> Any:
    try:
        return {"processId": start(r, job_ref(r.store, ref))}
    except QueueDown as e:
        return JSONResponse({"error": str(e)}, 503)


@router.get(
    "/v1/jobs/{ref}/status/{process_id}",
    operation_id="job_status",
    responses=answers(200, component("JobStatus"), 404),
)
def job_status(ref: str, process_id: str, r: RunnerDep) -> Any:
    return status_of(run_of(r, job_ref(r.store, ref), process_id))


def _file_answers(*errors: int) -> dict:
    out = answers(200, None, *errors)
    out[200] = FILE
    return out


@router.get(
    "/v1/jobs/{ref}/download/{process_id}",
    operation_id="download_job",
    responses=_file_answers(404, 409),
)
def download(ref: str, process_id: str, r: RunnerDep) -> Response:
    return download_of(run_of(r, job_ref(r.store, ref), process_id))


@router.get(
    "/v1/datafeed/synchron/{external_key}",
    operation_id="datafeed_synchron",
    dependencies=EDITOR,
    responses=_file_answers(404, 409, 424, 202),
)
async def synchron(external_key: str, r: RunnerDep) -> Response:
    """Start the job, wait for it, and answer its rows (or why there are none)."""
    job = job_ref(r.store, external_key)
    try:
        run_id = start(r, job)
    except QueueDown as e:
        return JSONResponse({"error": str(e)}, 503)
    try:
        run = await finish(r, run_id)
    except TimeoutError:
        return timed_out(r, job, run_id)
    if run.status == "failed":  # the import failed, not this API: 424 Failed Dependency
        return JSONResponse({"error": run.error, "processId": run.id}, 424)
    return download_of(run)
