"""Target entities as the studio, the CLI and the REST API show them: every entity of a home,
the built-in catalog merged with the home's own, each saying what it is (built in, the home's
own, or built in with fields of the home's own) with all its fields and, when it has one, its
config.

The store keeps only the configs (an entity of one's own, or the fields added to a built-in
one); a caller asking for "Products" wants the whole entity, whichever part of it is stored, so
every front end looks entities up and describes them here (without FastAPI, which the CLI
starts without, and without Streamlit).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from studio.config.entities import EntityConfig, add_field
from studio.config.store import ConfigStore
from studio.entities import Entity, FieldType, catalog
from studio.errors import ConfigError, Conflict, NotFound

EntityKind = Literal["built-in", "custom", "extended"]
KIND_TEXT = {
    "built-in": "built-in",
    "custom": "custom",
    "extended": "built-in + custom fields",
}


class EntityFieldView(BaseModel):
    """One field of an entity, built in or of the home's own (``custom``)."""

    name: str
    type: FieldType
    required: bool
    description: str = ""
    custom: bool = Field(description="Added by this home (true) or part of the catalog (false)")


class EntityView(BaseModel):
    """A target entity as a whole. ``kind``: ``built-in`` (the catalog's, untouched), ``custom``
    (this home's own) or ``extended`` (built in, with fields of this home added). ``config`` is
    what the store keeps of it (null for an untouched built-in one): send it back, changed, to
    ``PUT /v1/entities/{ref}``."""

    name: str
    kind: EntityKind
    id: str | None = Field(description="The config's id; null for an untouched built-in entity")
    description: str
    key: str = Field(description="The field rows are upserted by")
    fields: list[EntityFieldView]
    config: EntityConfig | None


def _view(entity: Entity, config: EntityConfig | None) -> EntityView:
    builtin = catalog().get(entity.name)
    kind: EntityKind = "custom" if builtin is None else "extended" if config else "built-in"
    return EntityView(
        name=entity.name,
        kind=kind,
        id=config.id if config else None,
        description=entity.description,
        key=entity.key,
        fields=[
            EntityFieldView(
                name=name,
                type=f.type,
                required=f.required,
                description=f.description,
                custom=builtin is None or name not in builtin.fields,
            )
            for name, f in entity.fields.items()
        ],
        config=config,
    )


def entity_views(store: ConfigStore) -> list[EntityView]:
    """Every entity of the home, built-in ones first in the catalog's order, then the home's
    own by name."""
    configs = {c.name: c for c in store.list("entities")}
    entities = store.entities()
    order = [*catalog(), *sorted((n for n in entities if n not in catalog()), key=str.casefold)]
    return [_view(entities[n], configs.get(n)) for n in order if n in entities]


def find_entity(store: ConfigStore, ref: str) -> tuple[str, EntityConfig | None]:
    """The entity ``ref`` names (a config's id, or a name, exact or else whatever its case) and
    its config, if it has one. By name first in the merged entities, not through the store's
    own lookup, so that a built-in entity is found whether or not it has a config."""
    configs = store.list("entities")
    entities = store.entities()
    name = next((c.name for c in configs if c.id == ref), None)
    if name is None and ref in entities:
        name = ref
    if name is None:
        name = next((n for n in entities if n.casefold() == str(ref).casefold()), None)
    if name is None:
        raise NotFound(f"No entity called {ref!r} (built-in or of this home)")
    return name, next((c for c in configs if c.name == name), None)


def entity_view(store: ConfigStore, ref: str) -> EntityView:
    name, config = find_entity(store, ref)
    return _view(store.entities()[name], config)


def replace_entity(store: ConfigStore, ref: str, data: dict, *, source) -> EntityView:
    """Replace an entity's config; a built-in entity without one gets it (its fields of one's
    own), as long as the body names that entity."""
    name, config = find_entity(store, ref)
    if config is not None:
        model = store.update("entities", config.id, data, source=source)
    elif str(data.get("name", "")).casefold() != name.casefold():
        raise ConfigError(
            [f"Name: this replaces the fields of one's own of {name}; name it {name!r}"]
        )
    else:
        model = store.create("entities", data | {"name": name}, source=source)
    return entity_view(store, model.id)


def delete_entity(store: ConfigStore, ref: str, *, source) -> EntityConfig:
    """Delete an entity of one's own, or the fields of one's own of a built-in one (refused, like
    any change, while data or a job is in the way). The catalog itself is not deleted."""
    name, config = find_entity(store, ref)
    if config is None:
        raise Conflict(
            f"Entity {name!r} is built in, with no fields of this home's own: there is "
            "nothing to delete"
        )
    return store.delete("entities", config.id, source=source)


def add_entity_field(store: ConfigStore, ref: str, field: dict, *, source) -> EntityView:
    """Add one field to an entity (to a new config, for a built-in entity without one); a
    field that cannot be is refused naming what is wrong with it."""
    name, _ = find_entity(store, ref)
    return entity_view(store, add_field(store, name, field, source=source).id)
