"""What the REST API's bodies look like, for its OpenAPI document.

Imports, connections and entity configs are the config models themselves (the same JSON Schema as
``docs/config-schema.json``), added to the document's components by ``openapi()``; the small
bodies of the API's own (errors, process ids, statuses, push results) are pydantic models here.
Names follow the config files (snake_case), except where the seed manuals name a field: Celigo's
``debugUntil``, ``assistantMetadata``, ``_connectionId``, ``statusCode``, ``_json``, and
Contentserv's ``processId`` and ``SyncState``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from studio.config.connections import Connection
from studio.config.entities import EntityConfig
from studio.config.jobs import Job
from studio.entityviews import EntityView
from studio.runhistory import Run

IMPORT = {"$ref": "#/components/schemas/Import"}
CONNECTION = {"$ref": "#/components/schemas/Connection"}
ERROR = {"$ref": "#/components/schemas/Error"}


class Error(BaseModel):
    """Every error: one sentence in ``error``, and one per field in ``errors`` for a config
    that does not validate."""

    error: str
    errors: list[str] | None = None


class ProcessId(BaseModel):
    """What Contentserv's start answers: poll its status with it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"processId": "6f1c2a9b0d3e"}]})
    processId: str


class Pending(BaseModel):
    """A run still going when a synchronous call stopped waiting."""

    processId: str
    message: str


class JobStatus(BaseModel):
    """Contentserv's status (SyncState 1 success, 2 running, 3 error), with the run's counts
    so far: they grow while the run goes on."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "SyncState": 2,
                    "status": "running",
                    "processId": "6f1c2a9b0d3e",
                    "run_status": "running",
                    "started_by": "ana",
                    "requests": 3,
                    "attempts": 4,
                    "pages": 3,
                    "records": 300,
                    "rows_written": 300,
                    "rows_rejected": 0,
                    "files": 0,
                    "started_at": "2026-11-23T06:00:00+00:00",
                    "finished_at": "",
                    "message": "running",
                }
            ]
        }
    )
    SyncState: Literal[1, 2, 3]
    status: Literal["success", "running", "error"]
    processId: str
    run_status: str
    started_by: str = Field(default="", description="The user who started it ('' if none)")
    requests: int
    attempts: int = 0
    pages: int
    records: int
    rows_written: int
    rows_rejected: int
    discarded: int = Field(default=0, description="Records dropped for an empty field")
    child_rows: int = Field(default=0, description="Rows of the job's nested-array entities")
    files: int
    started_at: str
    finished_at: str
    message: str


class ImportPatch(BaseModel):
    """What PATCH may change (Celigo's list); anything else is refused with 422."""

    model_config = ConfigDict(extra="forbid")
    debugUntil: datetime | None = None
    assistantMetadata: Any = None


class ConnectionRef(BaseModel):
    connection: str | None = Field(default=None, description="The new connection's id or name")
    connectionId: str | None = Field(default=None, alias="_connectionId")


class FieldError(BaseModel):
    field: str
    message: str


class PushResult(BaseModel):
    statusCode: int
    json_: dict | None = Field(default=None, alias="_json")
    errors: list[FieldError] | None = None
    discarded: bool | None = Field(
        default=None, description="True when the record was dropped for an empty field"
    )


class PushBody(BaseModel):
    data: list[Any]
    settings: dict = Field(default_factory=dict)


class NamedRef(BaseModel):
    id: str
    name: str


class AuditEntry(BaseModel):
    """One change of a config: when, through what (``source``), by whom (``user``: the name
    of the signed-in user or the API token's user; "" before users, or from the CLI)."""

    at: str
    source: str
    user: str = ""
    action: str
    kind: str
    id: str
    name: str
    changes: list[dict]


RUN_HIDDEN = ("folder", "owner", "outputs")  # server paths and processes: not the caller's


def run_body(run: Run) -> dict:
    """A run as the API shows it: its counts, and the names of the files it wrote."""
    data = {k: v for k, v in run.as_dict().items() if k not in RUN_HIDDEN}
    return data | {"files_written": [Path(p).name for p in run.outputs]}


def component(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


BODIES = (
    Error,
    ProcessId,
    Pending,
    JobStatus,
    ImportPatch,
    ConnectionRef,
    PushResult,
    PushBody,
    NamedRef,
    AuditEntry,
)


def config_schemas() -> dict[str, dict]:
    """The Import, Connection, EntityConfig, Entity (an entity as a whole) and Run schemas,
    the API's own bodies, and every model they use, as OpenAPI components."""
    out: dict[str, dict] = {}
    named = {"Import": Job, "Connection": Connection, "EntityConfig": EntityConfig}
    named |= {"Entity": EntityView} | {m.__name__: m for m in BODIES}
    for name, annotation in named.items():
        schema = TypeAdapter(annotation).json_schema(
            ref_template="#/components/schemas/{model}", by_alias=True
        )
        out.update(schema.pop("$defs", {}))
        out[name] = schema
    run = TypeAdapter(Run).json_schema(ref_template="#/components/schemas/{model}")
    run["properties"] = {k: v for k, v in run["properties"].items() if k not in RUN_HIDDEN}
    run["required"] = [k for k in run.get("required", []) if k not in RUN_HIDDEN]
    run["properties"]["files_written"] = {"type": "array", "items": {"type": "string"}}
    out["Run"] = run
    return out


def json_body(schema: dict, examples: dict | None = None, required: bool = True) -> dict:
    """``openapi_extra`` for a request body read by hand (so that errors name the field the
    way the studio does) but documented with its real schema."""
    content: dict = {"schema": schema}
    if examples:
        content["examples"] = {k: {"value": v} for k, v in examples.items()}
    return {"requestBody": {"required": required, "content": {"application/json": content}}}


def answers(ok: int, schema: dict | None, *errors: int, description: str = "OK") -> dict:
    """The ``responses`` of an operation: its success and the errors it can answer, each
    with the Error body. Every operation can answer 401 (no valid token) and 422."""
    out: dict[int | str, dict] = {}
    if schema is None:
        out[ok] = {"description": description}
    else:
        out[ok] = {"description": description, "content": {"application/json": {"schema": schema}}}
    reasons = {
        401: "No valid bearer token",
        404: "No such import, connection, entity or run",
        409: "In the way of another config or run",
        422: "The body or a value is not valid",
        424: "The run failed: the error says why",
    }
    for code in sorted({401, 422, *errors}):
        if code == 202:
            out[202] = {
                "description": "Still running when the wait was over: poll its status",
                "content": {"application/json": {"schema": component("Pending")}},
            }
            continue
        out[code] = {
            "description": reasons[code],
            "content": {"application/json": {"schema": ERROR}},
        }
    return out


def for_generators(node: Any) -> None:
    """Client generators (openapi-python-client) name an enum's members after its values and
    give up on values that are control characters, such as the row delimiters ``"\\n"`` and
    ``"\\r\\n"``: those enums are written as a choice of constants instead, which says the
    same."""
    if isinstance(node, dict):
        values = node.get("enum")
        if values and any(isinstance(v, str) and not v.isprintable() for v in values):
            del node["enum"]
            node.pop("type", None)
            node["anyOf"] = [{"type": "string", "const": v} for v in values]
        for value in node.values():
            for_generators(value)
    elif isinstance(node, list):
        for value in node:
            for_generators(value)
