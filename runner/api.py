"""The REST control API (FastAPI), served by the runner beside its schedule loop.

Imports (Celigo's ``/imports`` resource: list, create, get, replace, patch, delete, clone, audit,
invoke, replaceConnection, dependencies), connections, and Contentserv-style job control (start
→ process id, status, download; a synchronous datafeed by external key). Same store, same
validation, same engine and the same run queue as the rest of the runner, so a job started here
never runs twice at once either. Every call needs ``Authorization: Bearer <token>`` (tokens from
``python -m runner api-token create``); errors are JSON ``{"error": …}`` a person can act on.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response

from studio.apitokens import verify
from studio.entities import entity
from studio.errors import ConfigError, Conflict, NotFound, StudioError
from studio.history import Run, now_iso, run_archive, run_files
from studio.mapping import Mapper
from studio.runs import RunOutputs
from studio.store import ConfigStore

SYNC_STATE = {"success": 1, "partial": 1, "queued": 2, "running": 2}


class Unauthorized(StudioError):
    pass


def create_app(store: ConfigStore, daemon, *, synchron_timeout: float = 3600.0) -> FastAPI:
    """``daemon`` is the runner's ``Daemon``: its queue runs what the API starts."""
    app = FastAPI(
        title="Connector Studio control API",
        version="1",
        description="Manage imports and connections; start, watch and download job runs. "
        "Every call needs `Authorization: Bearer <token>`.",
    )
    history = daemon.history

    def caller(request: Request) -> str:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        name = verify(store, token)
        if name is None:
            raise Unauthorized("a valid 'Authorization: Bearer <token>' header is required")
        return name

    auth = [Depends(caller)]

    @app.exception_handler(StudioError)
    async def studio_error(_request: Request, e: StudioError) -> JSONResponse:
        statuses = {Unauthorized: 401, NotFound: 404, Conflict: 409, ConfigError: 422}
        # isinstance, not type: AlreadyRunning (a job held by another run) is a Conflict too
        status = next((code for kind, code in statuses.items() if isinstance(e, kind)), 400)
        body: dict[str, Any] = {"error": str(e)}
        if isinstance(e, ConfigError):
            body = {"error": e.messages[0] if e.messages else str(e), "errors": e.messages}
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body, status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, e: RequestValidationError) -> JSONResponse:
        messages = [
            f"{'.'.join(str(p) for p in err['loc'][1:]) or 'body'}: {err['msg']}"
            for err in e.errors()
        ]
        return JSONResponse({"error": messages[0], "errors": messages}, 422)

    def job_ref(ref: str):
        """A job by id, name or external key."""
        try:
            return store.get("jobs", ref)
        except NotFound:
            for job in store.list("jobs"):
                if job.external_key and job.external_key.casefold() == ref.casefold():
                    return job
            raise NotFound(f"No import called {ref!r} (id, name or external key)") from None

    def dump(model) -> dict:
        return model.model_dump(mode="json")

    async def body(request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            return None
        try:
            return await request.json()
        except ValueError as e:
            raise ConfigError([f"the body is not valid JSON: {e}"]) from None

    # --- imports ---------------------------------------------------------------------------------

    @app.get("/v1/imports", dependencies=auth)
    def list_imports() -> list[dict]:
        return [dump(j) for j in store.list("jobs")]

    @app.post("/v1/imports", status_code=201, dependencies=auth)
    async def create_import(request: Request) -> dict:
        return dump(store.create("jobs", await body(request) or {}, source="api"))

    @app.get("/v1/imports/{ref}", dependencies=auth)
    def get_import(ref: str) -> dict:
        return dump(job_ref(ref))

    @app.put("/v1/imports/{ref}", dependencies=auth)
    async def replace_import(ref: str, request: Request) -> dict:
        job = job_ref(ref)
        return dump(store.update("jobs", job.id, await body(request) or {}, source="api"))

    @app.patch("/v1/imports/{ref}", status_code=204, dependencies=auth)
    async def patch_import(ref: str, request: Request) -> Response:
        job = job_ref(ref)
        changes = await body(request) or {}
        if not isinstance(changes, dict):
            raise ConfigError(["the body must be an object"])
        allowed = {"debugUntil": "debug_until", "assistantMetadata": "assistant_metadata"}
        unknown = sorted(set(changes) - set(allowed))
        if unknown:
            raise ConfigError(
                [
                    f"{', '.join(unknown)}: only debugUntil and assistantMetadata "
                    "can be patched; PUT the import to change the rest"
                ]
            )
        update = {allowed[k]: v for k, v in changes.items()}
        store.modify(
            "jobs", job.id, lambda j: {**j.model_dump(mode="json"), **update}, source="api"
        )
        return Response(status_code=204)

    @app.delete("/v1/imports/{ref}", status_code=204, dependencies=auth)
    def delete_import(ref: str) -> Response:
        store.delete("jobs", job_ref(ref).id, source="api")
        return Response(status_code=204)

    @app.post("/v1/imports/{ref}/clone", status_code=201, dependencies=auth)
    def clone_import(ref: str) -> dict:
        return dump(store.clone("jobs", job_ref(ref).id, source="api"))

    @app.get("/v1/imports/{ref}/audit", dependencies=auth)
    def audit_import(ref: str) -> list[dict]:
        return store.audit("jobs", job_ref(ref).id)

    @app.put("/v1/imports/{ref}/replaceConnection", dependencies=auth)
    async def replace_connection(ref: str, request: Request) -> dict:
        job = job_ref(ref)
        data = await body(request) or {}
        new = (
            data.get("connection") or data.get("_connectionId") if isinstance(data, dict) else None
        )
        if not new:
            raise ConfigError(["connection: give the new connection's id or name"])
        target = store.get("connections", new)
        return dump(
            store.modify(
                "jobs",
                job.id,
                lambda j: {**j.model_dump(mode="json"), "connection_id": target.id},
                source="api",
            )
        )

    @app.get("/v1/imports/{ref}/dependencies", dependencies=auth)
    def dependencies(ref: str) -> dict:
        job = job_ref(ref)
        others = [j for j in store.list("jobs") if j.id != job.id]
        out = {
            "connection": dump(store.get("connections", job.connection_id)),
            "entity": job.entity,
            "importsSharingConnection": [
                {"id": j.id, "name": j.name} for j in others if j.connection_id == job.connection_id
            ],
            "importsSharingEntity": [
                {"id": j.id, "name": j.name} for j in others if j.entity == job.entity
            ],
        }
        if job.destination.enabled and job.destination.connection_id:
            out["destinationConnection"] = dump(
                store.get("connections", job.destination.connection_id)
            )
        return out

    @app.post("/v1/imports/{ref}/invoke", dependencies=auth)
    async def invoke(ref: str, request: Request) -> Any:
        job = job_ref(ref)
        data = await body(request)
        if data is None:
            run_id = start(job)
            try:
                run = await finish(run_id)
            except TimeoutError:
                return JSONResponse(
                    {
                        "error": f"Run {run_id} of {job.name!r} did not finish "
                        f"within {synchron_timeout:g} s; poll /v1/jobs/"
                        f"{job.id}/status/{run_id}",
                        "processId": run_id,
                    },
                    504,
                )
            return run.as_dict()
        records = data.get("data") if isinstance(data, dict) else data
        if not isinstance(records, list):
            raise ConfigError(['send {"data": [records…], "settings": {…}} or a list of records'])
        return await asyncio.to_thread(push, job, records)

    def push(job, records: list) -> list[dict]:
        """Map and write records sent by the caller, one result per record."""
        spec = entity(job.entity)
        mapper = Mapper(job.mapping, spec)
        run = history.start(job.id, job.name, "api")
        outputs = RunOutputs(
            store.home, Path(run.folder), spec, run.id, [f.generate for f in job.mapping]
        )
        results = []
        for index, record in enumerate(records):
            mapped = mapper.map([record], start=index)
            outputs.write(mapped.rows, mapped.rejects)
            if mapped.rows:
                results.append({"statusCode": 200, "_json": mapped.rows[0]})
            else:
                results.append(
                    {
                        "statusCode": 422,
                        "errors": [{"field": r.field, "message": r.reason} for r in mapped.rejects],
                    }
                )
        outputs.commit()
        run.records, run.rows_written, run.rows_rejected = (
            len(records),
            outputs.rows,
            outputs.rejects,
        )
        run.outputs = outputs.close()
        run.status = "partial" if outputs.rejects else "success"
        run.finished_at = now_iso()
        history.save(run)
        return results

    # --- connections -----------------------------------------------------------------------------

    @app.get("/v1/connections", dependencies=auth)
    def list_connections() -> list[dict]:
        return [dump(c) for c in store.list("connections")]

    @app.post("/v1/connections", status_code=201, dependencies=auth)
    async def create_connection(request: Request) -> dict:
        return dump(store.create("connections", await body(request) or {}, source="api"))

    @app.get("/v1/connections/{ref}", dependencies=auth)
    def get_connection(ref: str) -> dict:
        return dump(store.get("connections", ref))

    @app.put("/v1/connections/{ref}", dependencies=auth)
    async def replace_conn(ref: str, request: Request) -> dict:
        conn = store.get("connections", ref)
        return dump(store.update("connections", conn.id, await body(request) or {}, source="api"))

    @app.delete("/v1/connections/{ref}", status_code=204, dependencies=auth)
    def delete_connection(ref: str) -> Response:
        store.delete("connections", store.get("connections", ref).id, source="api")
        return Response(status_code=204)

    # --- job control (Contentserv) ---------------------------------------------------------------

    def start(job) -> str:
        _outcome, run_id = daemon.submit(job.id, job.name, "api", None, job.run.on_overlap)
        if run_id is None:
            raise Conflict(
                f"Import {job.name!r} is running, and it skips a start meanwhile "
                "(run.on_overlap = skip)"
            )
        return run_id

    async def finish(run_id: str, timeout: float | None = None) -> Run:
        deadline = time.monotonic() + (timeout or synchron_timeout)
        while True:
            run = history.get(run_id)
            if run and run.status not in ("queued", "running"):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError
            await asyncio.sleep(0.1)

    def run_of(job, process_id: str) -> Run:
        run = history.get(process_id)
        if run is None or run.job_id != job.id:
            raise NotFound(f"No run {process_id!r} of import {job.name!r}")
        return run

    def status_of(run: Run) -> dict:
        state = SYNC_STATE.get(run.status, 3)
        return {
            "SyncState": state,
            "status": {1: "success", 2: "running", 3: "error"}[state],
            "processId": run.id,
            "runStatus": run.status,
            "records": run.records,
            "rowsWritten": run.rows_written,
            "rowsRejected": run.rows_rejected,
            "requests": run.requests,
            "files": run.files,
            "startedAt": run.started_at,
            "finishedAt": run.finished_at,
            "message": run.error or run.status,
        }

    def download_of(run: Run) -> Response:
        if run.status in ("queued", "running"):
            raise Conflict(f"Run {run.id} is still {run.status}; download it when done")
        files = run_files(run, data_only=True)
        if not files:
            raise NotFound(f"Run {run.id} left no file")
        if len(files) == 1:
            return FileResponse(files[0], filename=files[0].name)
        name, data, mime = run_archive(run, data_only=True)
        return Response(
            data, media_type=mime, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    @app.post("/v1/jobs/{ref}/start", dependencies=auth)
    def start_job(ref: str) -> dict:
        return {"processId": start(job_ref(ref))}

    @app.get("/v1/jobs/{ref}/status/{process_id}", dependencies=auth)
    def job_status(ref: str, process_id: str) -> dict:
        return status_of(run_of(job_ref(ref), process_id))

    @app.get("/v1/jobs/{ref}/download/{process_id}", dependencies=auth)
    def download(ref: str, process_id: str) -> Response:
        return download_of(run_of(job_ref(ref), process_id))

    @app.get("/v1/datafeed/synchron/{external_key}", dependencies=auth)
    async def synchron(external_key: str) -> Response:
        job = job_ref(external_key)
        run_id = start(job)
        try:
            run = await finish(run_id)
        except TimeoutError:
            return JSONResponse(
                {
                    "error": f"Run {run_id} of {job.name!r} did not finish within "
                    f"{synchron_timeout:g} s; poll /v1/jobs/{job.id}/status/"
                    f"{run_id}",
                    "processId": run_id,
                },
                504,
            )
        if run.status == "failed":
            return JSONResponse({"error": run.error, "processId": run.id}, 502)
        return download_of(run)

    return app
