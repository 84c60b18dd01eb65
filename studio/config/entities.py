"""Target entities of the analyst's own, as configs: a new entity (its fields and key), or
fields of one's own added to a built-in entity of the catalog (a config with the built-in's
name). They live in the config store like connections and jobs (audit trail, export and import,
the REST API and the CLI), not in ``configs/entities.json``, which an upgrade replaces.

Changing an entity that holds imported rows is guarded (``guard_entity_change``): a field is
added freely (its column is added), but a field with data is not removed or retyped, the key of
an entity with rows does not change, and neither a field nor an entity that a job maps goes
away; each refusal says what is in the way.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from studio.config.base import ConfigModel, Stamped
from studio.entities import FieldType, catalog, load_entities
from studio.errors import ConfigError, Conflict, NotFound, readable
from studio.rowsql import table_name

FIELD_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
# Columns the row store keeps for itself, and names SQLite gives a meaning of its own.
RESERVED = {"rowid", "oid", "_rowid_", "_run_id", "_updated_at"}


class CustomField(ConfigModel):
    """One field of an entity of one's own (or added to a built-in one)."""

    name: str = Field(
        title="Field name",
        pattern=FIELD_NAME,
        description="Letters, digits and _, not starting with a digit: it names a column.",
    )
    type: FieldType = Field(default="string", title="Type")
    required: bool = Field(default=False, title="Required")
    description: str = Field(default="", title="Description")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v.casefold() in RESERVED:
            raise ValueError(f"{v!r} is kept for the row store's own use: choose another name")
        return v


class EntityConfig(Stamped):
    """A target entity: a new one, or fields added to a built-in one of the same name."""

    description: str = Field(default="", title="Description")
    key: str = Field(
        default="",
        title="Key field",
        description="The field rows are upserted by; a built-in entity keeps its own.",
    )
    fields: list[CustomField] = Field(default_factory=list, title="Field")

    @field_validator("fields")
    @classmethod
    def _unique_fields(cls, v: list[CustomField]) -> list[CustomField]:
        seen: set[str] = set()
        for f in v:
            if f.name.casefold() in seen:
                raise ValueError(f"{f.name!r} is listed twice")
            seen.add(f.name.casefold())
        return v

    @model_validator(mode="after")
    def _own_table(self) -> EntityConfig:
        """Rows live in a table named after the entity ("Feed items" → feed_items): two names
        that make one table would mix their rows."""
        table = table_name(self.name)
        if table.startswith("sqlite_"):
            raise ValueError("Name: names starting with sqlite_ are SQLite's own")
        for other in load_entities():
            itself = other.casefold() == self.name.casefold() and other not in catalog()
            if other != self.name and not itself and table_name(other) == table:
                raise ValueError(f"Name: too close to the entity {other!r} (one table, {table})")
        return self

    @model_validator(mode="after")
    def _fits_the_catalog(self) -> EntityConfig:
        builtin = catalog().get(self.name)
        names = [f.name for f in self.fields]
        if builtin is not None:
            have = {f.casefold() for f in builtin.fields}  # one column per name, whatever case
            clash = [n for n in names if n.casefold() in have]
            if clash:
                raise ValueError(
                    f"{self.name} has {', '.join(clash)} already: add fields it does not have"
                )
            if self.key and self.key != builtin.key:
                raise ValueError(f"Key field: {self.name} is keyed by {builtin.key!r}")
            return self
        if not self.fields:
            raise ValueError("Field: a new entity needs at least one field")
        if not self.key:
            raise ValueError(f"Key field: is required, one of {', '.join(names)}")
        if self.key not in names:
            raise ValueError(f"Key field: {self.key!r} is not one of {', '.join(names)}")
        return self


def _fields(model: EntityConfig | None) -> dict[str, CustomField]:
    return {f.name: f for f in model.fields} if model else {}


def guard_entity_change(
    old: EntityConfig | None, new: EntityConfig | None, jobs: list[dict], rows: Any
) -> None:
    """Refuse a change (``new`` None: a delete) that would strand data or a job's mapping.
    ``jobs`` are the stored jobs (as documents), ``rows`` the row store."""
    assert old is not None
    name = old.name
    users = [j for j in jobs if str(j.get("entity", "")).casefold() == name.casefold()]
    builtin = catalog().get(name) is not None
    if (new is None and not builtin) or (new is not None and new.name != name):
        if users:
            what = "renamed" if new is not None else "deleted"
            raise Conflict(
                f"Entity {name!r} is used by {', '.join(repr(j['name']) for j in users)}; it "
                f"cannot be {what} while jobs import into it"
            )
        gone = list(_fields(old))
        if not builtin and (count := rows.count(name)):
            raise Conflict(f"Entity {name!r} holds {count:,} imported rows; it cannot go away")
    else:
        now = _fields(new)
        gone = [n for n, f in _fields(old).items() if n not in now or now[n].type != f.type]
        if new is not None and old.key and new.key != old.key and (count := rows.count(name)):
            raise Conflict(
                f"Key field: {name} holds {count:,} rows keyed by {old.key!r}; the key of an "
                "entity with rows does not change"
            )
    for field in gone:
        mapped = [j["name"] for j in users if any(m.get("generate") == field for m in j["mapping"])]
        if mapped:
            raise Conflict(
                f"Field {field!r} of {name} is mapped by {', '.join(map(repr, mapped))}: change "
                "those jobs first"
            )
        if count := rows.count(name, field):
            raise Conflict(
                f"Field {field!r} of {name} holds data in {count:,} rows: it cannot be removed "
                "or change type"
            )


def add_field(store, entity_name: str, field: dict, *, source: str) -> EntityConfig:
    """Add one field to an entity: to its config, or to a new config of a built-in entity (the
    analyst's most common change, from the builder's mapping, the CLI or the REST API). A field
    that cannot be is refused naming what is wrong with it, as any config change is."""
    try:
        new = CustomField.model_validate(field)
    except ValidationError as e:
        raise ConfigError(readable(e, [CustomField])) from None
    if any(e.name == entity_name for e in store.list("entities")):

        def added(config: EntityConfig) -> EntityConfig:
            return config.model_copy(update={"fields": [*config.fields, new]})

        return store.modify("entities", entity_name, added, source=source)
    if entity_name not in catalog():
        raise NotFound(f"There is no entity called {entity_name!r}")
    return store.create("entities", {"name": entity_name, "fields": [new]}, source=source)
