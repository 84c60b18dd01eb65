"""The REST control API (FastAPI), served by the runner beside its schedule loop.

Imports (Celigo's ``/imports`` resource), connections, target entities, and Contentserv-style
job control, one router each; same store, same validation, same engine and the same run queue
as the rest of the runner, so a job started here never runs twice at once either. Every call needs
``Authorization: Bearer <token>``; errors are ``{"error": …, "errors": […]}``. The OpenAPI
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

from runner.api import connections, entities, imports, jobs
from runner.api.common import Runner, Unauthorized
from runner.api.schemas import config_schemas, for_generators
from studio.config.store import ConfigStore
from studio.errors import ConfigError, Conflict, NotFound, StudioError

TITLE = "Connector Studio control API"
DESCRIPTION = (
    "Manage imports, connections and target entities; start, watch and download job runs. "
    "Every call needs `Authorization: Bearer <token>` (tokens from `python -m runner "
    "api-token create NAME`). "
    "Bodies use the config files' snake_case names, except the names the seed APIs give: "
    "Celigo's `debugUntil`, `assistantMetadata`, `_connectionId`, `statusCode`, `_json`, and "
    'Contentserv\'s `processId` and `SyncState`. Errors are `{"error": sentence, "errors": '
    "[one per field]}`."
)
STATUSES = {Unauthorized: 401, NotFound: 404, Conflict: 409, ConfigError: 422}


def create_app(store: ConfigStore, daemon, *, synchron_timeout: float = 3600.0) -> FastAPI:
    """``daemon`` is the runner's ``Daemon``: its queue runs what the API starts."""
    app = FastAPI(title=TITLE, version="1", description=DESCRIPTION)
    app.state.runner = Runner(store, daemon, synchron_timeout)
    for part in (imports, connections, entities, jobs):
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
        app.openapi_schema = schema
    return app.openapi_schema
