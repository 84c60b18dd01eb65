"""Nested arrays to a second entity: the rows of a child entity from an array in each record.

A product's ``variants[*]`` become Variants rows, each linked to its product by the product
row's key (written into the child's ``parent_key`` field). A job lists its ``children``; each is
mapped with its own compiled ``Mapper`` (once per job), from the records of the parents that
became rows: a rejected or discarded parent gives no children. A child that cannot be mapped is
a reject of the run that names the child entity and its parent record ("Variants of record 12,
item 2: $.sku: is required but empty"); its parent row is still written.

Jobs without children get the plain ``Mapper`` from ``job_mapper``, so their fast path is
untouched; the run writes parent and child rows in one transaction (``rowstore.WriterGroup``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import Field, field_validator, model_validator

from studio.config.base import ConfigModel
from studio.entities import Entity, entity, load_entities
from studio.jsonpath import check, compile_path, records_of
from studio.mapping import (
    FieldMap,
    MappedBatch,
    Mapper,
    Reject,
    field_problems,
    lookup_problems,
    unmapped_required,
)
from studio.transforms import Lookup


def known_entity(name: str) -> str:
    """A target entity's name, refused (naming the catalog) when the catalog lacks it."""
    if name not in load_entities():
        raise ValueError(f"{name!r} is not one of {', '.join(load_entities())}")
    return name


class ChildMapping(ConfigModel):
    """Rows of a second entity from an array inside each record (``$.variants[*]``)."""

    entity: str = Field(title="Target entity")
    path: str = Field(
        title="Array (JSONPath)",
        min_length=1,
        description="Where each record's child records are, e.g. $.variants[*]",
    )
    parent_key: str = Field(
        title="Parent key field",
        min_length=1,
        description="The child entity's field that receives the parent row's key",
    )
    mapping: list[FieldMap] = Field(default_factory=list, title="Mapping")

    @field_validator("entity")
    @classmethod
    def _known_entity(cls, v: str) -> str:
        return known_entity(v)

    @field_validator("path")
    @classmethod
    def _valid_path(cls, v: str) -> str:
        if not v.startswith("$"):
            raise ValueError(f"{v!r} is not a JSONPath (start it with $, e.g. $.variants[*])")
        if error := check(v):
            raise ValueError(error)
        return v

    @model_validator(mode="after")
    def _parent_key_field(self) -> ChildMapping:
        spec = entity(self.entity)
        if self.parent_key not in spec.fields:
            raise ValueError(
                f"Parent key field: {self.parent_key!r} is not a field of {self.entity} "
                f"(its fields: {', '.join(spec.fields)})"
            )
        if self.parent_key == spec.key:
            raise ValueError(
                f"Parent key field: {self.parent_key} is {self.entity}'s own key; every child of "
                "a record would be one row. Choose the field that names the parent"
            )
        if self.parent_key in {f.generate for f in self.mapping}:
            raise ValueError(
                f"Parent key field: {self.parent_key} is filled with the parent's key; "
                "it is not mapped too"
            )
        return self

    @property
    def columns(self) -> list[str]:
        """The child rows' columns, in their order: the mapped fields, then the parent key."""
        return [*(f.generate for f in self.mapping), self.parent_key]


def child_problems(
    children: list[ChildMapping], lookups: Iterable[Lookup], draft: bool, parent: str = ""
) -> list[str]:
    """Each child's mapping checked against its entity as the job's is against the job's
    ("Children 1 › Mapping 2 › Generate: …"); the parent key counts as mapped."""
    problems, seen = [], {}
    for n, child in enumerate(children, 1):
        spec = entity(child.entity)
        where = f"Children {n}"
        if child.entity in seen:
            problems.append(
                f"{where} › Target entity: {child.entity} is written by Children "
                f"{seen[child.entity]} already"
            )
        seen.setdefault(child.entity, n)
        if child.entity == parent:
            problems.append(f"{where} › Target entity: the job writes {parent} itself")
        fields = [*child.mapping, FieldMap(generate=child.parent_key)]
        missing = [] if draft else unmapped_required(fields, spec)
        if missing:
            problems.append(
                f"{where} › Mapping: required field{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} of {child.entity} {'are' if len(missing) > 1 else 'is'} "
                "not mapped"
            )
        found = field_problems(child.mapping, spec) + lookup_problems(child.mapping, lookups)
        problems += [f"{where} › Mapping {i + 1} › {col.capitalize()}: {m}" for i, col, m in found]
    return problems


class ChildMapper:
    """One child mapping, compiled: its path, its entity's ``Mapper``, its parent key."""

    def __init__(self, child: ChildMapping, lookups: Iterable[Lookup] = ()):
        self.entity: Entity = entity(child.entity)
        self.name = self.entity.name
        self.path = compile_path(child.path)
        self.parent_key = child.parent_key
        self.columns = child.columns
        self.mapper = Mapper(child.mapping, self.entity, lookups=lookups)

    def map(self, parents: list[tuple[int, Any, Any]], out: MappedBatch) -> None:
        """The child rows of ``parents`` (index, record, key) into ``out.children``, their
        rejects into ``out.rejects``. All the batch's children are mapped in one call."""
        owners, items, records = [], [], []
        for index, record, key in parents:
            for item, child in enumerate(records_of(record, self.path), 1):
                owners.append((index, item, key))
                records.append(child)
        mapped = self.mapper.map(records)
        skipped = {r.record for r in mapped.rejects}.union(mapped.discarded)
        rows = iter(mapped.rows)
        for i, (_index, _item, key) in enumerate(owners):
            if i not in skipped:
                row = next(rows)
                row[self.parent_key] = key
                items.append(row)
        out.children.setdefault(self.name, []).extend(items)
        for r in mapped.rejects:
            index, item, _key = owners[r.record]
            reason = f"{self.name} of record {index}, item {item}: {r.reason}"
            out.rejects.append(Reject(index, f"{self.name}.{r.field}", reason, r.value))


def child_outputs(mapper: Mapper | WithChildren) -> list[tuple[Entity, list[str], list[str]]]:
    """What ``sinks.RunOutputs`` writes for the mapper's children: (entity, columns,
    immutable columns) each; none for a job without children."""
    children = mapper.children if isinstance(mapper, WithChildren) else []
    return [(c.entity, c.columns, c.mapper.immutable_fields) for c in children]


class WithChildren:
    """A job's mapper when it has children: the parent's ``Mapper``, then each child's over
    the records that became rows. Same ``map`` as ``Mapper``; batches carry ``children``."""

    def __init__(self, parent: Mapper, key: str, children: list[ChildMapper]):
        self.parent, self.key, self.children = parent, key, children
        self.immutable_fields = parent.immutable_fields
        self.columns = parent.columns

    def map(self, records: list[Any], start: int = 0) -> MappedBatch:
        out = self.parent.map(records, start)
        skipped = {r.record for r in out.rejects}.union(out.discarded)
        rows = iter(out.rows)
        parents = [
            (index, record, next(rows).get(self.key))
            for index, record in enumerate(records, start)
            if index not in skipped
        ]
        for child in self.children:
            child.map(parents, out)
        return out


def job_mapper(job, spec: Entity, columns: list[str] | None = None) -> Mapper | WithChildren:
    """The job's compiled mapping: the plain ``Mapper`` (and its fast path) when the job has no
    children, else ``WithChildren``."""
    parent = Mapper(job.mapping, spec, columns=columns, lookups=job.lookups)
    children = getattr(job, "children", [])
    if not children:
        return parent
    return WithChildren(parent, spec.key, [ChildMapper(c, job.lookups) for c in children])
