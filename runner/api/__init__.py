"""The REST control API (FastAPI), served by the runner beside its schedule loop.

Imports (Celigo's ``/imports`` resource), connections, target entities, and Contentserv-style
job control, one router each; same store, same validation, same engine and the same run queue
as the rest of the runner, so a job started here never runs twice at once either. Every call needs
``Authorization: Bearer <token>``; a token acts with its user's role (``studio.access``): reads
need a viewer, changes and runs an editor, deleting a connection an admin, and a call the role
does not allow is 403. Errors are ``{"error": …, "errors": […]}``. The OpenAPI
document describes every body with the config models' own JSON Schema, every answer each
operation can give, and the bearer scheme, so that clients can be generated from it.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from runner.api import connections, entities, imports, jobs
from runner.api.common import Runner, Unauthorized
from runner.api.schemas import ERROR, config_schemas, for_generators
from studio.access import Forbidden
from studio.config.store import ConfigStore
from studio.errors import ConfigError, Conflict, NotFound, StudioError

TITLE = "Connector Studio control API"
DESCRIPTION = (
    "Manage imports, connections and target entities; start, watch and download job runs. "
    "Every call needs `Authorization: Bearer <token>` (tokens from `python -m runner "
    "api-token create NAME --user USER`). A token acts with its user's role: reading needs a "
    "viewer, every change and every start of a run an editor, deleting a connection an admin; "
    "a call the role does not allow answers 403. "
    "Bodies use the config files' snake_case names, except the names the seed APIs give: "
    "Celigo's `debugUntil`, `assistantMetadata`, `_connectionId`, `statusCode`, `_json`, and "
    'Contentserv\'s `processId` and `SyncState`. Errors are `{"error": sentence, "errors": '
    "[one per field]}`."
)
PARTS = (imports, connections, entities, jobs)
STATUSES = {Unauthorized: 401, Forbidden: 403, NotFound: 404, Conflict: 409, ConfigError: 422}


def create_app(store: ConfigStore, daemon, *, synchron_timeout: float = 3600.0) -> FastAPI:
    """``daemon`` is the runner's ``Daemon``: its queue runs what the API starts."""
    app = FastAPI(title=TITLE, version="1", description=DESCRIPTION)
    app.state.runner = Runner(store, daemon, synchron_timeout)
    for part in PARTS:
        app.include_router(part.router)
    app.add_exception_handler(StudioError, studio_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.middleware("http")(allowed_methods)
    app.openapi = lambda: openapi(app)  # type: ignore[method-assign]
    return app


async def studio_error(_request: Request, e: Exception) -> JSONResponse:
    # isinstance, not type: AlreadyRunning (a job held by another run) is a Conflict too
    status = next((code for kind, code in STATUSES.items() if isinstance(e, kind)), 422)
    body: dict[str, Any] = {"error": str(e)}
    if isinstance(e, ConfigError):
        body = {"error": e.messages[0] if e.messages else str(e), "errors": e.messages}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status, headers=headers)


async def bad_request(_request: Request, e: Exception) -> JSONResponse:
    messages = [
        f"{'.'.join(str(p) for p in err['loc'][1:]) or 'body'}: {err['msg']}"
        for err in e.errors()  # type: ignore[attr-defined]
    ]
    return JSONResponse({"error": messages[0], "errors": messages}, 422)


async def allowed_methods(request: Request, call_next):
    """``OPTIONS`` on any path answers 204 with ``Allow`` listing the methods the document gives
    it (a 405 says the same), without a token: it tells nothing but the API's shape."""
    if request.method != "OPTIONS":
        return await call_next(request)
    for template, operations in request.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", template), request.url.path):
            allow = ", ".join(sorted({m.upper() for m in operations} | {"OPTIONS"}))
            return Response(status_code=204, headers={"Allow": allow})
    return JSONResponse({"error": f"No such path: {request.url.path}"}, 404)


def openapi(app: FastAPI) -> dict:
    """FastAPI's document, with the config models and the API's bodies as components."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(config_schemas())
        for_generators(schema)
        document_roles(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def document_roles(schema: dict) -> None:
    """Every operation that needs more than a viewer says which role, and that it can answer
    403, from the role dependency it actually has (``runner.api.common``): the document cannot
    disagree with the check. The routers' own routes are read, as the app's are FastAPI's
    internal wrappers of them."""
    for route in (r for part in PARTS for r in part.router.routes):
        if not isinstance(route, APIRoute):
            continue
        roles = [getattr(d.dependency, "role", "") for d in route.dependencies]
        role = next((r for r in ("admin", "editor") if r in roles), None)
        if role is None:
            continue
        for method in route.methods:
            operation = schema["paths"][route.path_format][method.lower()]
            note = f"Needs an {role}'s token" + (" (or an admin's)." if role == "editor" else ".")
            operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
            operation["responses"]["403"] = {
                "description": f"The token's user is not an {role} (or above)",
                "content": {"application/json": {"schema": ERROR}},
            }
            operation["responses"] = dict(sorted(operation["responses"].items()))
