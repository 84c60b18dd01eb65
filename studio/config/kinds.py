"""The kinds of config the store holds, and the JSON Schema published for them.

A kind is a table, a model and what it refers to; the store is generic over kinds, so a new
kind of config (file jobs, say) is one entry here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import TypeAdapter

from studio.apitokens import ApiToken
from studio.config.base import ConfigModel
from studio.config.connections import Connection
from studio.config.entities import EntityConfig, guard_entity_change
from studio.config.jobs import Job
from studio.users import User


@dataclass(frozen=True)
class ResourceKind:
    """What the store needs to know of a kind of config: its table, model and references.

    ``refs`` names the fields holding ids of other kinds (a job's ``connection_id``), so that
    the store can refuse a delete that would leave dependents dangling, whatever the kind.
    """

    table: str
    label: str
    annotation: object
    refs: dict[str, str] = field(default_factory=dict)
    unique: tuple[str, ...] = ("name",)
    exported: bool = True  # part of exports, imports and the published schema
    # Called before a change is written, (old, new or None for a delete, the stored jobs, the
    # row store): refuses what would strand data (an entity's fields with rows).
    guard: Callable | None = None
    # Kinds whose configs are checked again against a change of this one (jobs, against a
    # changed entity), and whether a config of this kind may be cloned.
    revalidates: tuple[str, ...] = ()
    clonable: bool = True

    @functools.cached_property
    def adapter(self) -> TypeAdapter:
        return TypeAdapter(self.annotation)

    def validate_config(self, data: object) -> ConfigModel:
        return self.adapter.validate_python(data)


CONNECTIONS = ResourceKind(table="connections", label="connection", annotation=Connection)
JOBS = ResourceKind(
    table="jobs",
    label="job",
    annotation=Job,
    refs={"connection_id": "connections", "destination.connection_id": "connections"},
    unique=("name", "external_key"),
)
ENTITIES = ResourceKind(
    table="entities",
    label="entity",
    annotation=EntityConfig,
    guard=guard_entity_change,
    revalidates=("jobs",),
    clonable=False,
)
API_TOKENS = ResourceKind(
    table="api_tokens", label="API token", annotation=ApiToken, exported=False
)
USERS = ResourceKind(table="users", label="user", annotation=User, exported=False)
KINDS: dict[str, ResourceKind] = {
    "entities": ENTITIES,
    "connections": CONNECTIONS,
    "jobs": JOBS,
    "api_tokens": API_TOKENS,
    "users": USERS,
}


def config_schema() -> dict:
    """The JSON Schema of every config kind, as published in ``docs/config-schema.json``."""
    defs: dict = {}
    one_of = []
    for kind in (k for k in KINDS.values() if k.exported):
        schema = kind.adapter.json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[kind.label.title()] = schema
        one_of.append({"$ref": f"#/$defs/{kind.label.title()}"})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Connector Studio configuration",
        "description": "One config file as exported by `python -m runner export`.",
        "oneOf": one_of,
        "$defs": dict(sorted(defs.items())),
    }
