"""The target entities (Products, Offers, …): their fields, types, key and required fields.

The built-in catalog is ``configs/entities.json``, read once per process. Analysts add entities
and fields of their own as configs (``studio/config/entities.py``), kept in each home's config
store; ``load_entities`` gives the two merged. Which home: the one the caller names, else the
one in scope (``entity_scope``: the config store sets it while it validates, a run and a preview
while they go, so that a job's entity is looked up where the job lives), else ``STUDIO_HOME``.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from studio.errors import StudioError

CATALOG = Path(__file__).resolve().parent.parent / "configs" / "entities.json"
FieldType = Literal["string", "integer", "number", "boolean", "date", "datetime"]


class EntityField(BaseModel):
    type: FieldType = "string"
    required: bool = False
    description: str = ""


class Entity(BaseModel):
    name: str = ""
    description: str = ""
    key: str
    fields: dict[str, EntityField] = Field(min_length=1)

    @model_validator(mode="after")
    def _key_is_a_required_field(self) -> Entity:
        if self.key not in self.fields:
            raise ValueError(f"key {self.key!r} is not one of its fields")
        self.fields[self.key].required = True
        return self

    @property
    def required(self) -> list[str]:
        return [name for name, f in self.fields.items() if f.required]


@functools.lru_cache(maxsize=4)
def catalog(path: Path = CATALOG) -> dict[str, Entity]:
    """The built-in entities."""
    try:
        raw = json.loads(Path(path).read_text("utf-8"))
        return {name: Entity.model_validate({**spec, "name": name}) for name, spec in raw.items()}
    except (OSError, json.JSONDecodeError, ValidationError) as e:
        raise StudioError(f"The entity catalog {path} is invalid: {e}") from None


def merged(docs: list[dict]) -> dict[str, Entity]:
    """The catalog with the entities and fields of ``docs`` (stored entity configs)."""
    return _merged(json.dumps(docs, sort_keys=True, default=str))


@functools.lru_cache(maxsize=16)
def _merged(docs_json: str) -> dict[str, Entity]:
    out = dict(catalog())
    for doc in json.loads(docs_json):
        with contextlib.suppress(KeyError, TypeError, ValidationError):  # one bad config
            _merge_one(out, doc)  # (hand-edited, say) does not take every entity down
    return out


def _merge_one(out: dict[str, Entity], doc: dict) -> None:
    fields = {
        f["name"]: EntityField(
            type=f.get("type", "string"),
            required=f.get("required", False),
            description=f.get("description", ""),
        )
        for f in doc.get("fields", [])
    }
    base = out.get(doc["name"])
    if base is not None:  # fields of one's own on a built-in entity
        out[doc["name"]] = base.model_copy(update={"fields": base.fields | fields}, deep=True)
    else:
        out[doc["name"]] = Entity(
            name=doc["name"], description=doc.get("description", ""), key=doc["key"], fields=fields
        )


_SCOPE: ContextVar[dict[str, Entity] | None] = ContextVar("entities", default=None)


@contextlib.contextmanager
def entity_scope(entities: dict[str, Entity]) -> Iterator[None]:
    """Look entities up in ``entities`` within this block (and this thread)."""
    token = _SCOPE.set(entities)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def load_entities(home: Path | None = None) -> dict[str, Entity]:
    """Every entity: the catalog merged with those of ``home``'s config store (or of the scope,
    or of ``STUDIO_HOME``)."""
    if home is None and (scoped := _SCOPE.get()) is not None:
        return scoped
    if home is None:
        from studio.config.store import studio_home  # the store imports this module

        home = studio_home()
    return merged(_stored(Path(home)))


def _stored(home: Path) -> list[dict]:
    """The entity configs of a home, read from its config file without taking its lock (the
    file is replaced whole, never written in place), and read again only once it changed."""
    path = home / "configs.json"
    try:
        st = path.stat()
    except FileNotFoundError:
        return []
    return _read_stored(path, (st.st_mtime_ns, st.st_ino, st.st_size))


@functools.lru_cache(maxsize=8)
def _read_stored(path: Path, _version: tuple) -> list[dict]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return list((data.get("entities") or {}).values())


def entity(name: str, home: Path | None = None) -> Entity:
    entities = load_entities(home)
    try:
        return entities[name]
    except KeyError:
        raise StudioError(
            f"Target entity {name!r} is not in the catalog ({', '.join(entities)})"
        ) from None
