"""Target entities: list (the built-in catalog merged with the home's own), create, get,
replace, delete, audit, and add one field, the analyst's most common change.

``{ref}`` is an entity's name (whatever its case) or its config's id. Every answer is the whole
entity (``studio.entityviews.EntityView``); bodies are the stored config (``EntityConfig``) or
one field. A change that would strand imported rows or a job's mapping is 409 with the guard's
sentence saying what is in the way.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from runner.api.common import EDITOR, VIEWER, RunnerDep, object_body
from runner.api.schemas import answers, component, json_body
from studio.entityviews import (
    EntityView,
    add_entity_field,
    delete_entity,
    entity_view,
    entity_views,
    find_entity,
    replace_entity,
)

router = APIRouter(prefix="/v1/entities", tags=["entities"], dependencies=VIEWER)

ENTITY = component("Entity")
CONFIG = component("EntityConfig")
FEED = {
    "name": "Feed items",
    "description": "A plain product feed",
    "key": "id",
    "fields": [
        {"name": "id", "type": "string", "required": True},
        {"name": "title", "type": "string"},
        {"name": "stock", "type": "integer"},
        {"name": "price", "type": "number", "description": "Unit price, tax included"},
    ],
}
EXAMPLES = {
    "an entity of one's own": FEED,
    "fields added to a built-in entity": {
        "name": "Products",
        "fields": [{"name": "stock", "type": "integer"}],
    },
}
FIELD_EXAMPLE = {"stock": {"name": "stock", "type": "integer", "description": "Units on hand"}}


def _out(view: EntityView) -> dict:
    return view.model_dump(mode="json")


def _created(description: str) -> dict:
    out = answers(201, ENTITY, 404, 409, description=description)
    ref = {"ref": "$response.body#/id"}
    out[201]["links"] = {
        "GetEntity": {"operationId": "get_entity", "parameters": ref},
        "ReplaceEntity": {"operationId": "replace_entity", "parameters": ref},
        "AddEntityField": {"operationId": "add_entity_field", "parameters": ref},
        "AuditEntity": {"operationId": "audit_entity", "parameters": ref},
        "DeleteEntity": {"operationId": "delete_entity", "parameters": ref},
    }
    return out


@router.get(
    "",
    operation_id="list_entities",
    responses=answers(
        200,
        {"type": "array", "items": ENTITY},
        description="Every entity: built-in ones in the catalog's order, then this home's own",
    ),
)
def list_entities(r: RunnerDep) -> Any:
    return [_out(v) for v in entity_views(r.store)]


@router.post(
    "",
    status_code=201,
    operation_id="create_entity",
    dependencies=EDITOR,
    responses=_created("The entity, with every field it now has"),
    openapi_extra=json_body(CONFIG, EXAMPLES),
)
async def create_entity(request: Request, r: RunnerDep) -> Any:
    model = r.store.create("entities", await object_body(request), source="api")
    return _out(entity_view(r.store, model.id))


@router.get("/{ref}", operation_id="get_entity", responses=answers(200, ENTITY, 404))
def get_entity(ref: str, r: RunnerDep) -> Any:
    return _out(entity_view(r.store, ref))


@router.put(
    "/{ref}",
    operation_id="replace_entity",
    dependencies=EDITOR,
    responses=answers(200, ENTITY, 404, 409),
    openapi_extra=json_body(
        CONFIG, {"a field more": FEED | {"fields": [*FEED["fields"], {"name": "ean"}]}}
    ),
)
async def replace(ref: str, request: Request, r: RunnerDep) -> Any:
    """Replace the config (a built-in entity without one gets it); refused with 409 while
    rows or a job's mapping hold what it would remove, retype or rekey."""
    return _out(replace_entity(r.store, ref, await object_body(request), source="api"))


@router.delete(
    "/{ref}",
    status_code=204,
    operation_id="delete_entity",
    dependencies=EDITOR,
    responses=answers(204, None, 404, 409, description="Deleted"),
)
def delete(ref: str, r: RunnerDep) -> Response:
    delete_entity(r.store, ref, source="api")
    return Response(status_code=204)


@router.post(
    "/{ref}/fields",
    status_code=201,
    operation_id="add_entity_field",
    dependencies=EDITOR,
    responses=answers(201, ENTITY, 404, 409, description="The entity with its new field"),
    openapi_extra=json_body(component("CustomField"), FIELD_EXAMPLE),
)
async def add_one_field(ref: str, request: Request, r: RunnerDep) -> Any:
    return _out(add_entity_field(r.store, ref, await object_body(request), source="api"))


@router.get(
    "/{ref}/audit",
    operation_id="audit_entity",
    responses=answers(200, {"type": "array", "items": component("AuditEntry")}, 404),
)
def audit_entity(ref: str, r: RunnerDep) -> Any:
    name, config = find_entity(r.store, ref)
    return r.store.audit("entities", config.id if config else name)
