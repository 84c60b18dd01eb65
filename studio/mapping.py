"""Field mapping: records in, rows of the target entity and rejects out.

A mapping is a list of ``extract`` → ``generate`` fields. ``Mapper`` turns it into one function
per field (a compiled JSONPath, or a plain key lookup, plus a type converter) once per job, and
``Mapper.map`` then only calls them. A record with a bad value becomes a reject naming the
record, the field and the reason, never an exception that stops the run.

``extract`` is a JSONPath (``$.price.amount``), a dotted path or column name (``price.amount``,
``Product Name``), or a quoted literal (``"EUR"``) for a hard-coded value; or a ``template``
builds the value (``studio.templates``). Between extract and type a field may have steps
(lookup, trim, case, split, join: ``studio.transforms``); types are converted by
``studio.converters`` (decimal marks, date formats, time zones).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import Field, StringConstraints, ValidationError, field_validator, model_validator

from studio.config.base import ConfigModel
from studio.converters import MISSING as _MISSING
from studio.converters import ValueRejected, converter, zone_problem
from studio.entities import Entity, FieldType
from studio.errors import StudioError
from studio.jsonpath import check, compile_path
from studio.templates import shortcut, soft_str, template_problem
from studio.transforms import Lookup, StepRejected, compile_steps, template_source

__all__ = [
    "FieldMap",
    "Lookup",
    "MappedBatch",
    "Mapper",
    "PathInfo",
    "Reject",
    "ValueRejected",
    "profile",
    "suggest",
]

# A separator is kept as typed: ", " and " " are separators, not blanks to strip.
Separator = Annotated[str, StringConstraints(strip_whitespace=False, max_length=10)]


class FieldMap(ConfigModel):
    """One mapped field: where its value comes from, the steps it goes through, its type."""

    extract: str = Field(default="", title="Extract")
    generate: str = Field(title="Generate", min_length=1)
    type: FieldType = Field(default="string", title="Type")
    format: str = Field(
        default="",
        title="Input format",
        description="For date and datetime: a strptime format such as %d/%m/%Y; ISO 8601 if empty.",
    )
    default: str | None = Field(default=None, title="Default")
    required: bool = Field(default=False, title="Required")
    template: str = Field(
        default="",
        title="Template",
        description="Instead of Extract: a Jinja2 template over the record, such as "
        "{{ first }} {{ last }} or {{ price.amount | round(2) }}",
    )
    lookup: str = Field(
        default="",
        title="Lookup",
        pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$",
        description="The name of one of the job's lookups, applied to the value",
    )
    trim: bool = Field(default=False, title="Trim", description="Remove spaces around text")
    case: Literal["none", "upper", "lower"] = Field(default="none", title="Case")
    split: Separator = Field(
        default="", title="Split on", description="Make a list of a text, cut at this separator"
    )
    join: Separator = Field(
        default="", title="Join with", description="Make a text of a list, with this separator"
    )
    decimal: Literal["", ",", "."] = Field(
        default="",
        title="Decimal mark",
        description="For number and integer text: ',' reads 1.234,56 and 1 234,56; '.' reads "
        "1,234.56; empty: 12,50 has a decimal comma and anything else is read as 12.5",
    )
    timezone: str = Field(
        default="",
        title="Time zone",
        description="For datetime: the IANA zone (Europe/Paris) of times without an offset; "
        "the value is stored in UTC",
    )
    discard_if_empty: bool = Field(
        default=False,
        title="Discard the record if empty",
        description="A record where this field is empty makes no row and no reject",
    )
    immutable: bool = Field(
        default=False,
        title="Keep on update",
        description="Set when a row is created, never overwritten when it is updated",
    )

    @field_validator("extract")
    @classmethod
    def _valid_path(cls, v: str) -> str:
        if v and literal(v) is None and v.startswith("$") and (error := check(v)):
            raise ValueError(error)
        return v

    @field_validator("template")
    @classmethod
    def _valid_template(cls, v: str) -> str:
        if v and (error := template_problem(v)):
            raise ValueError(error)
        return v

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, v: str) -> str:
        if v and (error := zone_problem(v)):
            raise ValueError(error)
        return v

    @model_validator(mode="after")
    def _fits_together(self) -> FieldMap:
        if self.template and self.extract:
            raise ValueError("Template: give either an extract or a template, not both")
        if self.timezone and self.type != "datetime":
            raise ValueError("Time zone: is for datetime fields (a date has no time to convert)")
        if self.decimal and self.type not in ("number", "integer"):
            raise ValueError("Decimal mark: is for number and integer fields")
        if self.discard_if_empty and self.default not in (None, ""):
            raise ValueError("Default: a field that discards its empty records takes no default")
        return self

    @property
    def plain(self) -> bool:
        """Whether the value goes from extract to type with no step between."""
        return (
            not (self.template or self.lookup or self.trim or self.split or self.join)
            and self.case == "none"
        )

    def convert(self) -> Callable[[Any], Any]:
        return converter(self.type, self.format, self.decimal, self.timezone)


def literal(extract: str) -> str | None:
    """The hard-coded value of a quoted extract (``"EUR"`` → EUR), else None."""
    if len(extract) >= 2 and extract[0] == extract[-1] and extract[0] in "\"'":
        return extract[1:-1]
    return None


def _getter(extract: str) -> Callable[[Any], Any]:
    """A function record → value (or _MISSING), as cheap as the expression allows."""
    fixed = literal(extract)
    if fixed is not None:
        return lambda _r: fixed
    if not extract:
        return lambda _r: _MISSING
    if not extract.startswith("$"):
        # A column name or a dotted path: the exact key first ("price.amount" as a CSV column).
        path = compile_path(extract) if "." in extract else None
        if path is None:
            return lambda r: r.get(extract, _MISSING) if isinstance(r, dict) else _MISSING

        def by_key_or_path(r: Any) -> Any:
            if isinstance(r, dict) and extract in r:
                return r[extract]
            return path.get(r, _MISSING)

        return by_key_or_path
    path = compile_path(extract)
    if path.is_plain:
        return lambda r: path.get(r, _MISSING)

    def many(r: Any) -> Any:
        found = path.values(r)
        return _MISSING if not found else found[0] if len(found) == 1 else found

    return many


@dataclass
class Reject:
    """Why one record (by its index in the run) did not become a row."""

    record: int
    field: str
    reason: str
    value: Any = None

    def as_dict(self) -> dict:
        return {"record": self.record, "field": self.field, "reason": self.reason}


@dataclass
class MappedBatch:
    """A batch's rows and rejects, and the indexes of the records a ``discard_if_empty``
    field dropped (neither rows nor rejects: counted apart); with a job's children
    (``studio.children``), their rows by entity."""

    rows: list[dict] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    discarded: list[int] = field(default_factory=list)
    children: dict[str, list[dict]] = field(default_factory=dict)


class _Field(NamedTuple):
    """One field as the careful path applies it."""

    generate: str
    label: str
    get: Callable[[Any], Any]  # record → value after the steps, or _MISSING
    convert: Callable[[Any], Any]
    default: Any
    required: bool
    discard: bool


class _Slow(Exception):
    """Raised inside the generated fast path: this record needs the careful path."""


# Inline tests that a value needs no conversion; anything else goes through the converter.
_FAST_CHECK = {
    "string": "(v := {}).__class__ is str and v",
    "integer": "(v := {}).__class__ is int",
    "number": "(v := {}).__class__ is float",
    "boolean": "(v := {}).__class__ is bool",
}


def _strict(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def strict(v: Any) -> Any:
        if v is _MISSING or v is None or v == "":
            raise _Slow
        return convert(v)

    return strict


def _text_to(parse: Callable[[str], Any], fallback: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """For numbers read from CSV: ``float(v)``/``int(v)`` straight away. Anything it does not
    take ("12,50", "4.0" as an integer, "") raises, and the careful path decides."""

    def fast(v: Any) -> Any:
        if v.__class__ is str:
            return parse(v)
        return fallback(v)

    return fast


def _utc_text(fallback: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """For datetimes in ISO 8601 without a format: the commonest text, ``2026-05-17T08:00:00Z``,
    is checked by ``fromisoformat`` (C, fast) and given as ``isoformat`` would give it (the
    same text with +00:00), without ``isoformat``, most of the conversion's cost; a time zone
    changes nothing to a time that says it is UTC. Anything else goes through the converter,
    and a text that is no date raises, so the careful path rejects it."""
    parse = datetime.fromisoformat

    def fast(v: Any) -> Any:
        if v.__class__ is str and len(v) == 20 and v[4::3] == "--T::Z":
            parse(v)
            return v[:19] + "+00:00"
        return fallback(v)

    return fast


class Mapper:
    """A compiled mapping. Compile once per job; call ``map`` on every batch.

    Each record first goes through a function generated for this mapping (one dict display
    with direct ``r["a"]["b"]`` lookups and inline type checks), which is close to hand-written
    dict access; a field with steps (a template, a lookup, cleanup) calls its own composed
    function there. Anything unusual (a missing or empty value, a value to convert or reject)
    raises inside it and the record is redone by ``_careful``, which applies defaults, required
    fields, discards and rejects; so the fast path only decides speed, never results.
    """

    def __init__(
        self,
        fields: list[FieldMap],
        entity: Entity | None = None,
        columns: list[str] | None = None,
        lookups: Iterable[Lookup] = (),
    ):
        """``columns``: records are lists in this column order (CSV rows), not dicts.
        ``lookups``: the job's lookups, which fields use by name."""
        required = set(entity.required) if entity else set()
        self.fields = fields
        self.columns = columns
        self.lookups = {lk.name: lk for lk in lookups}
        if columns is not None:
            missing = [
                f.extract
                for f in fields
                if f.extract
                and literal(f.extract) is None
                and not f.extract.startswith("$")
                and "." not in f.extract
                and f.extract not in columns
            ]
            if missing:
                raise StudioError(
                    f"the mapping reads column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(map(repr, missing))}, which the file does not have "
                    f"(its columns: {', '.join(columns)})"
                )
        self._steps = [compile_steps(f, self.lookups) for f in fields]
        self._sources = [
            template_source(f.template, columns) if f.template else _getter(f.extract)
            for f in fields
        ]
        self._plan = [
            self._field(f, source, steps, f.required or f.generate in required)
            for f, source, steps in zip(fields, self._sources, self._steps, strict=True)
        ]
        self.immutable_fields = [f.generate for f in fields if f.immutable]
        """Fields an update must not overwrite: the row store keeps their stored value."""
        self._fast = self._generate()

    @staticmethod
    def _field(f: FieldMap, source: Callable, steps: Callable | None, required: bool) -> _Field:
        convert = f.convert()
        default = None if f.default in (None, "") else convert(f.default)
        get = source if steps is None else (lambda r: steps(source(r)))
        label = f.extract or f.generate
        return _Field(f.generate, label, get, convert, default, required, f.discard_if_empty)

    def _access(self, i: int, f: FieldMap, names: dict[str, Any]) -> str:
        """The expression that reads field ``i``'s value (before its steps) from ``r``."""
        keys = compile_path(f.extract).keys if f.extract.startswith("$") else None
        if keys:
            return "r" + "".join(f"[{k!r}]" for k in keys)
        if f.extract and literal(f.extract) is None and "." not in f.extract:
            column = f.extract if self.columns is None else self.columns.index(f.extract)
            return f"r[{column!r}]"
        if f.template and self.columns is None and (expr := shortcut(f.template)):
            names["_soft"] = soft_str
            return f"({expr})"
        names[f"_g{i}"] = self._sources[i]
        return f"_g{i}(r)"

    def _inline_steps(self, i: int, f: FieldMap, access: str, names: dict[str, Any]) -> str:
        """Field ``i``'s steps over ``access``: for a text, trim, case and lookup are inline
        (``_m3[r["st"].strip().upper()]``), since a call per step would cost more than the row;
        any other value makes them raise (no ``.strip`` on a number, a miss is a KeyError) and
        the careful path applies the steps. Split and join call the composed steps."""
        if self._steps[i] is None:
            return access
        if f.split or f.join:
            names[f"_t{i}"] = self._steps[i]
            return f"_t{i}({access})"
        if f.trim:
            access += ".strip()"
        if f.case != "none":
            access += f".{f.case}()"
        if f.lookup:
            names[f"_m{i}"] = self.lookups[f.lookup].map
            access = f"_m{i}[{access}]"
        return access

    def _value(self, i: int, f: FieldMap, names: dict[str, Any]) -> str:
        """The expression for field ``i``'s converted value; it raises for the careful path."""
        fixed = literal(f.extract)
        convert = self._plan[i].convert
        names[f"_s{i}"] = _strict(convert)
        if fixed is not None and f.plain:
            if fixed == "":
                return f"_s{i}(_MISSING)"  # an empty literal: let the careful path decide
            names[f"_c{i}"] = convert(fixed)
            return f"_c{i}"
        access = self._inline_steps(i, f, self._access(i, f, names), names)
        if f.type in ("number", "integer") and not f.decimal:
            names[f"_s{i}"] = _text_to(float if f.type == "number" else int, names[f"_s{i}"])
        elif f.type == "datetime" and not f.format:
            names[f"_s{i}"] = _utc_text(names[f"_s{i}"])
        check = _FAST_CHECK.get(f.type)
        return f"(v if {check.format(access)} else _s{i}(v))" if check else f"_s{i}({access})"

    def _generate(self) -> Callable:
        names: dict[str, Any] = {"_MISSING": _MISSING}
        items = [f"{f.generate!r}: {self._value(i, f, names)}" for i, f in enumerate(self.fields)]
        source = (
            "def fast(records, start, careful):\n"
            "    rows = []\n"
            "    append = rows.append\n"
            "    for index, r in enumerate(records, start):\n"
            "        try:\n"
            f"            append({{{', '.join(items)}}})\n"
            "        except Exception:\n"
            "            row = careful(index, r)\n"
            "            if row is not None:\n"
            "                append(row)\n"
            "    return rows\n"
        )
        exec(compile(source, "<mapping>", "exec"), names)
        return names["fast"]

    def map(self, records: Iterable[Any], start: int = 0) -> MappedBatch:
        out = MappedBatch()

        def careful(index: int, record: Any) -> dict | None:
            return self._careful(index, record, out.rejects, out.discarded)

        out.rows = self._fast(records, start, careful)
        return out

    def _careful(
        self, index: int, record: Any, rejects: list[Reject], discarded: list[int] | None = None
    ) -> dict | None:
        """The row of one record, or None: its rejects appended to ``rejects``, or its index
        to ``discarded`` when a ``discard_if_empty`` field is empty (then without rejects)."""
        if self.columns is not None and isinstance(record, list):
            record = dict(zip(self.columns, record, strict=False))
        row: dict[str, Any] = {}
        problems = []
        for generate, label, get, convert, default, required, discard in self._plan:
            try:
                value = get(record)
            except StepRejected as e:
                problems.append(Reject(index, generate, f"{label}: {e}"))
                continue
            if value is _MISSING or value is None or value == "":
                if discard:
                    if discarded is not None:
                        discarded.append(index)
                    return None
                if default is not None:
                    row[generate] = default
                elif required:
                    problems.append(Reject(index, generate, f"{label}: is required but empty"))
                else:
                    row[generate] = None
                continue
            try:
                row[generate] = convert(value)
            except (ValueRejected, TypeError, ValueError) as e:
                problems.append(Reject(index, generate, f"{label}: {value!r} {e}", value))
        rejects.extend(problems)
        return None if problems else row


def lookup_problems(
    fields: list[FieldMap], lookups: Iterable[Lookup]
) -> list[tuple[int, str, str]]:
    """Each field that uses a lookup the job does not have, as (index, "lookup", message)."""
    names = sorted({lk.name for lk in lookups})
    return [
        (
            n,
            "lookup",
            f"{f.lookup!r} is not a lookup of this job (its lookups: {', '.join(names) or 'none'})",
        )
        for n, f in enumerate(fields)
        if f.lookup and f.lookup not in names
    ]


def field_problems(
    fields: list[FieldMap], entity: Entity, lookups: Iterable[Lookup] | None = None
) -> list[tuple[int, str, str]]:
    """Each field's problems as (index, column, message): a name the entity does not have (with
    the nearest it has, offered, never put in its place), a field generated twice, a default its
    type refuses, the key kept on update; with ``lookups``, a lookup the job does not have. The
    job's validation and the builder's grid share them, so the words at Save are the words next
    to the cell."""
    problems, seen = [], set()
    for n, f in enumerate(fields):
        if f.generate not in entity.fields:
            near = difflib.get_close_matches(f.generate, list(entity.fields), n=1, cutoff=0.7)
            hint = f" (did you mean {near[0]}?)" if near else ""
            message = f"{f.generate!r} is not a field of {entity.name}{hint}"
            problems.append((n, "generate", message))
        elif f.generate in seen:
            problems.append((n, "generate", f"{f.generate!r} is generated twice"))
        seen.add(f.generate)
        if f.default not in (None, ""):
            try:
                f.convert()(f.default)
            except (ValueRejected, ValueError) as e:
                problems.append((n, "default", f"{f.default!r} {e}"))
        if f.immutable and f.generate == entity.key:
            message = f"{f.generate} is the key of {entity.name}, which an update never changes"
            problems.append((n, "immutable", message))
    return problems + (lookup_problems(fields, lookups) if lookups is not None else [])


def _column_of(message: str) -> tuple[str, str]:
    """A field-level check's message ("Time zone: is for…") as the column it names, and the
    rest; a message that names none is the extract's."""
    title, _, rest = message.partition(": ")
    for name, info in FieldMap.model_fields.items():
        if info.title == title:
            return name, rest
    return "extract", message


def typed_fields(
    rows: list[dict], entity: Entity, lookups: Iterable[Lookup] | None = None
) -> tuple[list[FieldMap], dict[int, dict[str, str]]]:
    """A mapping as the builder's grid holds it (rows of text, blanks included): the fields fit
    to preview, and each row's problems by column, keyed by the row's place in ``rows``. A row
    with a problem is left out of the preview and shown with its reason; it is never changed.
    With the job's ``lookups``, a lookup it does not have is a problem of the row too."""
    fields, places, problems = [], [], {}
    for n, row in enumerate(rows):
        data = {k: v for k, v in row.items() if v not in (None, "")}
        if not (data.get("generate") or data.get("extract") or data.get("template")):
            continue  # a row just added, not typed yet
        if not data.get("generate"):
            problems[n] = {"generate": f"which field of {entity.name} does it fill?"}
            continue
        data["required"] = bool(row.get("required"))
        try:
            fields.append(FieldMap.model_validate(data))
            places.append(n)
        except ValidationError as e:
            for error in e.errors():
                message = error["msg"].removeprefix("Value error, ")
                if error["loc"]:
                    column = str(error["loc"][0])
                else:
                    column, message = _column_of(message)
                problems.setdefault(n, {})[column] = message
    for i, column, message in field_problems(fields, entity, lookups):
        problems.setdefault(places[i], {})[column] = message
    return [f for f, n in zip(fields, places, strict=True) if n not in problems], problems


def unmapped_required(fields: list[FieldMap], entity: Entity) -> list[str]:
    """The entity's required fields that no mapping field generates (a job cannot be saved)."""
    mapped = {f.generate for f in fields}
    return [name for name in entity.required if name not in mapped]


# The suggestions live in studio.suggestions (they build FieldMaps, so they import this module);
# their names stay importable from here, where the builder and older code look for them.
from studio.suggestions import PathInfo, profile, suggest  # noqa: E402
