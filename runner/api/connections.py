"""Connections: list, create, get, replace, delete. Secrets are masked in every answer, and a
masked secret sent back keeps the one stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from runner.api.common import ADMIN, EDITOR, VIEWER, RunnerDep, dump, object_body
from runner.api.schemas import CONNECTION, answers, json_body

router = APIRouter(prefix="/v1/connections", tags=["connections"], dependencies=VIEWER)

EXAMPLE = {
    "kind": "api",
    "name": "Shop API",
    "base_url": "https://api.example.com/v1",
    "auth": {
        "type": "oauth2",
        "token_url": "https://api.example.com/oauth/token",
        "client_id": "studio",
        "client_secret": "s3cret",
    },
}


@router.get(
    "",
    operation_id="list_connections",
    responses=answers(200, {"type": "array", "items": CONNECTION}),
)
def list_connections(r: RunnerDep) -> Any:
    return [dump(c) for c in r.store.list("connections")]


def _created() -> dict:
    out = answers(201, CONNECTION, 404, 409, description="The connection, secrets masked")
    ref = {"ref": "$response.body#/id"}
    out[201]["links"] = {
        "GetConnection": {"operationId": "get_connection", "parameters": ref},
        "ReplaceConnection": {"operationId": "replace_connection_config", "parameters": ref},
        "DeleteConnection": {"operationId": "delete_connection", "parameters": ref},
    }
    return out


@router.post(
    "",
    status_code=201,
    operation_id="create_connection",
    dependencies=EDITOR,
    responses=_created(),
    openapi_extra=json_body(CONNECTION, {"OAuth 2.0 API": EXAMPLE}),
)
async def create_connection(request: Request, r: RunnerDep) -> Any:
    return dump(r.store.create("connections", await object_body(request), source="api"))


@router.get("/{ref}", operation_id="get_connection", responses=answers(200, CONNECTION, 404))
def get_connection(ref: str, r: RunnerDep) -> Any:
    return dump(r.store.get("connections", ref))


@router.put(
    "/{ref}",
    operation_id="replace_connection_config",
    dependencies=EDITOR,
    responses=answers(200, CONNECTION, 404, 409),
    openapi_extra=json_body(CONNECTION, {"OAuth 2.0 API": EXAMPLE}),
)
async def replace_conn(ref: str, request: Request, r: RunnerDep) -> Any:
    conn = r.store.get("connections", ref)
    return dump(r.store.update("connections", conn.id, await object_body(request), source="api"))


@router.delete(
    "/{ref}",
    status_code=204,
    operation_id="delete_connection",
    dependencies=ADMIN,
    responses=answers(204, None, 404, 409, description="Deleted"),
)
def delete_connection(ref: str, r: RunnerDep) -> Response:
    r.store.delete("connections", r.store.get("connections", ref).id, source="api")
    return Response(status_code=204)
