"""The target entities (Products, Offers, …): their fields, types, key and required fields.

They live in ``configs/entities.json`` so that a user can add an entity or a field without
touching code; the file is validated when loaded and read once per process.
"""

from __future__ import annotations

import functools
import json
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
def load_entities(path: Path = CATALOG) -> dict[str, Entity]:
    try:
        raw = json.loads(Path(path).read_text("utf-8"))
        return {name: Entity.model_validate({**spec, "name": name}) for name, spec in raw.items()}
    except (OSError, json.JSONDecodeError, ValidationError) as e:
        raise StudioError(f"The entity catalog {path} is invalid: {e}") from None


def entity(name: str) -> Entity:
    entities = load_entities()
    try:
        return entities[name]
    except KeyError:
        raise StudioError(
            f"Target entity {name!r} is not in the catalog ({', '.join(entities)})"
        ) from None
