"""Celigo's ``/imports`` resource: list, create, get, replace, patch, delete, clone, audit,
invoke, replaceConnection and dependencies."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from runner.api.common import EDITOR, VIEWER, RunnerDep, dump, job_ref, object_body, read_body
from runner.api.jobs import finish, start, timed_out
from runner.api.schemas import CONNECTION, IMPORT, answers, component, json_body, run_body
from studio.errors import ConfigError
from studio.push import push_records

router = APIRouter(prefix="/v1/imports", tags=["imports"], dependencies=VIEWER)

# Celigo's walk-through, in this studio's terms: a file import that also writes its rows as a
# CSV file to an FTP site ("Upload File to FTP Site"), renamed later with a PUT.
EXAMPLE = {
    "kind": "file",
    "name": "Upload File to FTP Site",
    "connection_id": "Demo SFTP",
    "entity": "Suppliers",
    "source": {"mode": "path", "path": "inbound/suppliers.csv"},
    "csv": {"delimiter": ";"},
    "mapping": [
        {"extract": "id", "generate": "external_id"},
        {"extract": "company", "generate": "name"},
    ],
    "destination": {
        "enabled": True,
        "connection_id": "Demo SFTP",
        "folder": "/test",
        "file_name": "file-{{timestamp}}.csv",
        "column_delimiter": ",",
        "include_header": False,
    },
}
CREATED_LINKS = {
    "GetImport": {"operationId": "get_import", "parameters": {"ref": "$response.body#/id"}},
    "CloneImport": {"operationId": "clone_import", "parameters": {"ref": "$response.body#/id"}},
    "DeleteImport": {"operationId": "delete_import", "parameters": {"ref": "$response.body#/id"}},
}


def _created(description: str) -> dict:
    out = answers(201, IMPORT, 404, 409, description=description)
    out[201]["links"] = CREATED_LINKS
    return out


@router.get(
    "", operation_id="list_imports", responses=answers(200, {"type": "array", "items": IMPORT})
)
def list_imports(r: RunnerDep) -> Any:
    return [dump(j) for j in r.store.list("jobs")]


@router.post(
    "",
    status_code=201,
    operation_id="create_import",
    dependencies=EDITOR,
    responses=_created("The import, as stored (references by id, secrets masked)"),
    openapi_extra=json_body(IMPORT, {"Celigo's file import": EXAMPLE}),
)
async def create_import(request: Request, r: RunnerDep) -> Any:
    return dump(r.store.create("jobs", await object_body(request), source="api"))


@router.get("/{ref}", operation_id="get_import", responses=answers(200, IMPORT, 404))
def get_import(ref: str, r: RunnerDep) -> Any:
    return dump(job_ref(r.store, ref))


@router.put(
    "/{ref}",
    operation_id="replace_import",
    dependencies=EDITOR,
    responses=answers(200, IMPORT, 404, 409),
    openapi_extra=json_body(
        IMPORT, {"rename": EXAMPLE | {"name": "Upload File to FTP Site (updated!)"}}
    ),
)
async def replace_import(ref: str, request: Request, r: RunnerDep) -> Any:
    job = job_ref(r.store, ref)
    return dump(r.store.update("jobs", job.id, await object_body(request), source="api"))


@router.patch(
    "/{ref}",
    status_code=204,
    operation_id="patch_import",
    dependencies=EDITOR,
    responses=answers(204, None, 404, description="Patched"),
    openapi_extra=json_body(
        component("ImportPatch"), {"debug": {"debugUntil": "2026-12-01T00:00:00Z"}}
    ),
)
async def patch_import(ref: str, request: Request, r: RunnerDep) -> Response:
    job = job_ref(r.store, ref)
    changes = await object_body(request)
    allowed = {"debugUntil": "debug_until", "assistantMetadata": "assistant_metadata"}
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ConfigError(
            [
                f"{', '.join(unknown)}: only debugUntil and assistantMetadata can be patched; "
                "PUT the import to change the rest"
            ]
        )
    update = {allowed[k]: v for k, v in changes.items()}
    r.store.modify("jobs", job.id, lambda j: {**j.model_dump(mode="json"), **update}, source="api")
    return Response(status_code=204)


@router.delete(
    "/{ref}",
    status_code=204,
    operation_id="delete_import",
    dependencies=EDITOR,
    responses=answers(204, None, 404, 409, description="Deleted"),
)
def delete_import(ref: str, r: RunnerDep) -> Response:
    r.store.delete("jobs", job_ref(r.store, ref).id, source="api")
    return Response(status_code=204)


@router.post(
    "/{ref}/clone",
    status_code=201,
    operation_id="clone_import",
    dependencies=EDITOR,
    responses=_created("The copy, disabled until activated"),
)
def clone_import(ref: str, r: RunnerDep) -> Any:
    return dump(r.store.clone("jobs", job_ref(r.store, ref).id, source="api"))


@router.get(
    "/{ref}/audit",
    operation_id="audit_import",
    responses=answers(200, {"type": "array", "items": component("AuditEntry")}, 404),
)
def audit_import(ref: str, r: RunnerDep) -> Any:
    return r.store.audit("jobs", job_ref(r.store, ref).id)


@router.post(
    "/{ref}/invoke",
    operation_id="invoke_import",
    dependencies=EDITOR,
    responses=answers(
        200,
        {"oneOf": [component("Run"), {"type": "array", "items": component("PushResult")}]},
        404,
        409,
        202,
        description="Without a body: the finished run. With records: one result per record.",
    ),
    # Documented as {"data": […]}; a bare list of records is taken too (Celigo takes both).
    openapi_extra=json_body(
        component("PushBody"),
        {"records": {"data": [{"supplierId": "S9", "companyName": "Pushed Inc"}]}},
        required=False,
    ),
)
async def invoke_import(ref: str, request: Request, r: RunnerDep) -> Any:
    """Run the import now and wait for it; or map and write the records sent."""
    job = job_ref(r.store, ref)
    data = await read_body(request)
    if data is None:
        run_id = start(r, job)
        try:
            return run_body(await finish(r, run_id))
        except TimeoutError:
            return timed_out(r, job, run_id)
    records = data.get("data") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise ConfigError(['send {"data": [records…], "settings": {…}} or a list of records'])
    return await asyncio.to_thread(push_records, r.store, job, records)


@router.put(
    "/{ref}/replaceConnection",
    operation_id="replace_connection",
    dependencies=EDITOR,
    responses=answers(200, IMPORT, 404),
    openapi_extra=json_body(
        component("ConnectionRef"), {"by name": {"connection": "Demo sandbox"}}
    ),
)
async def replace_connection(ref: str, request: Request, r: RunnerDep) -> Any:
    job = job_ref(r.store, ref)
    data = await object_body(request)
    new = data.get("connection") or data.get("_connectionId")
    if not new or not isinstance(new, str):
        raise ConfigError(["connection: give the new connection's id or name"])
    target = r.store.get("connections", new)
    return dump(
        r.store.modify(
            "jobs",
            job.id,
            lambda j: {**j.model_dump(mode="json"), "connection_id": target.id},
            source="api",
        )
    )


DEPENDENCIES = {
    "type": "object",
    "required": ["connection", "entity", "imports_sharing_connection", "imports_sharing_entity"],
    "properties": {
        "connection": CONNECTION,
        "entity": {"type": "string"},
        "imports_sharing_connection": {"type": "array", "items": component("NamedRef")},
        "imports_sharing_entity": {"type": "array", "items": component("NamedRef")},
        "destination_connection": CONNECTION,
    },
}


@router.get(
    "/{ref}/dependencies",
    operation_id="import_dependencies",
    responses=answers(200, DEPENDENCIES, 404),
)
def dependencies(ref: str, r: RunnerDep) -> Any:
    job = job_ref(r.store, ref)
    others = [j for j in r.store.list("jobs") if j.id != job.id]
    out = {
        "connection": dump(r.store.get("connections", job.connection_id)),
        "entity": job.entity,
        "imports_sharing_connection": [
            {"id": j.id, "name": j.name} for j in others if j.connection_id == job.connection_id
        ],
        "imports_sharing_entity": [
            {"id": j.id, "name": j.name} for j in others if j.entity == job.entity
        ],
    }
    if job.destination.enabled and job.destination.connection_id:
        out["destination_connection"] = dump(
            r.store.get("connections", job.destination.connection_id)
        )
    return out
