"""What a mapped field does to its value between extract and type: lookups, templates,
cleanup, locale numbers, dates in a time zone.

A field's steps run in a fixed order, documented in docs/jobs.md: the value is extracted (or
built by its template, ``studio.templates``), then ``trim``, ``case``, ``split`` (text → list),
``lookup`` (each item of a list), ``join`` (list → text); then the mapper checks emptiness
(default, required, ``discard_if_empty``) and converts the type (``decimal``, ``format``,
``timezone``). ``compile_steps`` composes a field's steps into one function once per job, so a
record pays only for the steps its field has.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from studio.config.base import ConfigModel
from studio.converters import MISSING, ValueRejected
from studio.errors import StudioError
from studio.templates import TemplateRejected, compile_template

if TYPE_CHECKING:
    from studio.mapping import FieldMap

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_LOOKUP_VALUES = 100_000  # values a lookup may map
MAX_LOOKUP_BYTES = 10_000_000  # bytes (UTF-8) of a lookup's values and what they become


class StepRejected(ValueRejected):
    """A value a step refused (a lookup miss, a template error): the message is whole."""


def _empty(v: Any) -> bool:
    return v is MISSING or v is None or v == ""


# --- lookups ------------------------------------------------------------------------------


class Lookup(ConfigModel):
    """A named value map of the job (Celigo's static ``lookups``: a ``name``, a ``map`` and a
    ``default``); a field uses it by name (``lookup: "status_map"``). Where Celigo has
    ``allowFailures``, ``on_miss`` says what a value the map does not hold becomes: the
    ``default``, the value itself (``keep``), or a reject naming the value and the lookup.

    A lookup maps at most 100,000 values in 10,000,000 bytes (UTF-8), and no empty value (the
    mapper never looks one up, so mapping it would mean nothing, and the fast and careful paths
    could differ on it)."""

    name: str = Field(title="Name", pattern=IDENT)
    map: dict[str, str] = Field(default_factory=dict, title="Values")
    default: str | None = Field(default=None, title="Default")
    on_miss: Literal["default", "reject", "keep"] = Field(
        default="reject",
        title="Value not in the map",
        description="default: the lookup's default; keep: the value as it is; reject: the "
        "record is rejected. A lookup with a default and no on_miss takes the default.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_means_default(cls, data: object) -> object:
        if isinstance(data, dict) and "on_miss" not in data and data.get("default") is not None:
            return {**data, "on_miss": "default"}
        return data

    @field_validator("map")
    @classmethod
    def _map_within_limits(cls, v: dict[str, str]) -> dict[str, str]:
        if "" in v:
            raise ValueError(
                "a value to replace is empty: an empty value is never looked up (it stays "
                "empty, or takes the field's default), so it cannot be mapped"
            )
        if len(v) > MAX_LOOKUP_VALUES:
            raise ValueError(
                f"has {len(v):,} values, more than the {MAX_LOOKUP_VALUES:,} a lookup may map"
            )
        size = sum(len(k.encode()) + len(x.encode()) for k, x in v.items())
        if size > MAX_LOOKUP_BYTES:
            raise ValueError(
                f"holds {size:,} bytes, more than the {MAX_LOOKUP_BYTES:,} a lookup may hold"
            )
        return v

    @model_validator(mode="after")
    def _default_given(self) -> Lookup:
        if self.on_miss == "default" and self.default is None:
            raise ValueError("Default: is required when a value not in the map takes it")
        return self


def duplicate_names(lookups: Iterable[Lookup]) -> list[str]:
    seen: set[str] = set()
    doubles = [lk.name for lk in lookups if lk.name in seen or seen.add(lk.name)]
    return sorted(set(doubles))


class LookupCsvError(StudioError):
    """A CSV text that is not a lookup, naming the line."""


_DELIMITERS = (",", ";", "\t", "|")


def _delimiter(first_line: str) -> str:
    for d in _DELIMITERS:
        if len(next(csv.reader([first_line], delimiter=d))) == 2:
            return d
    raise LookupCsvError(
        "line 1: a lookup takes two columns (the value, and what it becomes) separated by "
        "a comma, a semicolon, a tab or |"
    )


def _csv_rows(rows: Any) -> Iterable[list[str]]:
    """The reader's rows, with what the csv module refuses (a cell over its field size limit,
    a stray quote in strict mode) as a ``LookupCsvError`` naming the line."""
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as e:
            raise LookupCsvError(f"line {rows.line_num}: {e}") from None
        yield row


def lookup_from_csv(name: str, text: str, header: bool = True, **options: Any) -> Lookup:
    """A lookup from a two-column CSV text: the value, and what it becomes.

    ``header``: the first row names the columns and is skipped (the default, as in the file
    jobs' CSV settings); pass False for a file that starts with data, since no rule can tell a
    header from a first pair reliably. The delimiter (, ; tab or |) is the one that splits the
    first line in two. Blank lines are skipped; a line without exactly two columns, an empty
    value, or a value given twice with two meanings is an error naming the line, as is a cell
    the csv module refuses (over its field size limit), more than ``MAX_LOOKUP_VALUES`` values;
    a text over ``MAX_LOOKUP_BYTES`` is refused before it is read. ``options``
    (``default``, ``on_miss``) go to the lookup."""
    if len(text) > MAX_LOOKUP_BYTES or len(text.encode()) > MAX_LOOKUP_BYTES:
        raise LookupCsvError(
            f"the file is larger than the {MAX_LOOKUP_BYTES:,} bytes a lookup may hold"
        )
    lines = text.removeprefix("\ufeff").splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise LookupCsvError("the file is empty: a lookup needs at least one value")
    rows = csv.reader(io.StringIO("\n".join(lines)), delimiter=_delimiter(first))
    values: dict[str, str] = {}
    where: dict[str, int] = {}
    skip_header = header
    for number, row in enumerate(_csv_rows(rows), 1):
        if not any(cell.strip() for cell in row):
            continue
        if skip_header:
            skip_header = False
            continue
        if len(row) != 2:
            raise LookupCsvError(f"line {number}: has {len(row)} columns, a lookup takes two")
        key, value = row[0].strip(), row[1].strip()
        if not key:
            raise LookupCsvError(f"line {number}: the value to replace is empty")
        if key in values and values[key] != value:
            raise LookupCsvError(
                f"line {number}: {key!r} is already mapped to {values[key]!r} "
                f"(line {where[key]}), not {value!r}"
            )
        values[key], where[key] = value, number
        if len(values) > MAX_LOOKUP_VALUES:
            raise LookupCsvError(
                f"line {number}: more than the {MAX_LOOKUP_VALUES:,} values a lookup may map"
            )
    if not values:
        raise LookupCsvError("the file has a header and no values")
    return Lookup.model_validate({"name": name, "map": values, **options})


def _as_key(v: Any) -> str:
    if v.__class__ is str:
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _lookup_step(lookup: Lookup) -> Callable[[Any], Any]:
    values, name, default, on_miss = lookup.map, lookup.name, lookup.default, lookup.on_miss

    def one(v: Any) -> Any:
        found = values.get(v if v.__class__ is str else _as_key(v), MISSING)
        if found is not MISSING:
            return found
        if on_miss == "default":
            return default
        if on_miss == "keep":
            return v
        raise StepRejected(f"{v!r} is not in the lookup {name!r}")

    def step(v: Any) -> Any:
        if v.__class__ is list:
            return [one(item) for item in v if not _empty(item)]
        return v if _empty(v) else one(v)

    return step


# --- cleanup ------------------------------------------------------------------------------


def _each(text_op: Callable[[str], str]) -> Callable[[Any], Any]:
    """A text operation applied to a text, or to each text of a list; other values pass."""

    def step(v: Any) -> Any:
        if v.__class__ is str:
            return text_op(v)
        if v.__class__ is list:
            return [text_op(i) if i.__class__ is str else i for i in v]
        return v

    return step


def _split_step(separator: str, trim: bool) -> Callable[[Any], Any]:
    def step(v: Any) -> Any:
        if v.__class__ is not str:
            return v
        parts = [p.strip() for p in v.split(separator)] if trim else v.split(separator)
        return [p for p in parts if p] or ""

    return step


def _join_step(separator: str) -> Callable[[Any], Any]:
    def step(v: Any) -> Any:
        if v.__class__ is not list:
            return v
        return separator.join("" if i is None else _as_key(i) for i in v)

    return step


def compile_steps(f: FieldMap, lookups: dict[str, Lookup]) -> Callable[[Any], Any] | None:
    """The field's steps after extract as one function value → value, or None if it has none.
    An unknown lookup name raises ``StudioError`` (the job's validation refuses it earlier)."""
    steps: list[Callable[[Any], Any]] = []
    if f.trim:
        steps.append(_each(str.strip))
    if f.case != "none":
        steps.append(_each(str.upper if f.case == "upper" else str.lower))
    if f.split:
        steps.append(_split_step(f.split, f.trim))
    if f.lookup:
        if f.lookup not in lookups:
            known = ", ".join(sorted(lookups)) or "none"
            raise StudioError(
                f"{f.generate}: uses the lookup {f.lookup!r}, which the job does not have "
                f"(its lookups: {known})"
            )
        steps.append(_lookup_step(lookups[f.lookup]))
    if f.join:
        steps.append(_join_step(f.join))
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]
    chain = tuple(steps)

    def all_steps(v: Any) -> Any:
        for step in chain:
            v = step(v)
        return v

    return all_steps


def template_source(source: str, columns: list[str] | None) -> Callable[[Any], Any]:
    """A field's template as its source: record (a dict, or a CSV row in ``columns``) → text."""
    render = compile_template(source)

    def value(r: Any) -> str:
        if columns is not None and r.__class__ is list:
            r = dict(zip(columns, r, strict=False))
        try:
            return render(r)
        except TemplateRejected as e:
            raise StepRejected(str(e)) from None

    return value
