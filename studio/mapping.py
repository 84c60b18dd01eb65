"""Field mapping: records in, rows of the target entity and rejects out.

A mapping is a list of ``extract`` → ``generate`` fields. ``compile_mapping`` turns it into one
function per field (a compiled JSONPath, or a plain key lookup, plus a type converter) once per
job; ``Mapper.map`` then only calls them. A record with a bad value becomes a reject naming the
record, the field and the reason, never an exception that stops the run.

``extract`` is a JSONPath (``$.price.amount``), a dotted path or column name (``price.amount``,
``Product Name``), or a quoted literal (``"EUR"``) for a hard-coded value.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import Field, ValidationError, field_validator

from studio.config.base import ConfigModel
from studio.entities import Entity, FieldType
from studio.errors import StudioError
from studio.jsonpath import check, compile_path, leaf_paths

_MISSING = object()
_TRUE = {"true", "1", "yes", "y", "t", "on"}
_FALSE = {"false", "0", "no", "n", "f", "off"}


class FieldMap(ConfigModel):
    """One mapped field."""

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

    @field_validator("extract")
    @classmethod
    def _valid_path(cls, v: str) -> str:
        if v and literal(v) is None and v.startswith("$") and (error := check(v)):
            raise ValueError(error)
        return v


def literal(extract: str) -> str | None:
    """The hard-coded value of a quoted extract (``"EUR"`` → EUR), else None."""
    if len(extract) >= 2 and extract[0] == extract[-1] and extract[0] in "\"'":
        return extract[1:-1]
    return None


class ValueRejected(ValueError):
    pass


def _to_string(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _to_integer(v: Any) -> int:
    if type(v) is int:
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        text = v.strip()
        try:
            return int(text)
        except ValueError:
            try:
                f = float(text)
            except ValueError:
                f = None
            if f is not None and f.is_integer():
                return int(f)
    raise ValueRejected("is not a whole number")


def _to_number(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        text = v.strip()
        if text.count(",") == 1 and "." not in text:  # 12,50: a decimal comma
            text = text.replace(",", ".")
        try:
            return float(text)
        except ValueError:
            pass
    raise ValueRejected("is not a number")


def _to_boolean(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    text = str(v).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueRejected("is not true or false")


def _date_converter(kind: str, fmt: str) -> Callable[[Any], str]:
    def convert(v: Any) -> str:
        text = str(v).strip()
        try:
            if fmt:
                parsed = datetime.strptime(text, fmt)
            elif kind == "date":
                return date.fromisoformat(text[:10]).isoformat()
            else:
                parsed = datetime.fromisoformat(text)
        except ValueError:
            want = fmt or ("YYYY-MM-DD" if kind == "date" else "ISO 8601")
            raise ValueRejected(f"is not a {kind} in the format {want}") from None
        return parsed.date().isoformat() if kind == "date" else parsed.isoformat()

    return convert


def converter(kind: FieldType, fmt: str = "") -> Callable[[Any], Any]:
    if kind in ("date", "datetime"):
        return _date_converter(kind, fmt)
    return {
        "string": _to_string,
        "integer": _to_integer,
        "number": _to_number,
        "boolean": _to_boolean,
    }[kind]


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
    rows: list[dict] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


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


class Mapper:
    """A compiled mapping. Compile once per job; call ``map`` on every batch.

    Each record first goes through a function generated for this mapping (one dict display
    with direct ``r["a"]["b"]`` lookups and inline type checks), which is close to hand-written
    dict access. Anything unusual (a missing or empty value, a value to convert or reject)
    raises inside it and the record is redone by ``_careful``, which applies defaults, required
    fields and rejects; so the fast path only decides speed, never results.
    """

    def __init__(
        self, fields: list[FieldMap], entity: Entity | None = None, columns: list[str] | None = None
    ):
        """``columns``: records are lists in this column order (CSV rows), not dicts."""
        required = set(entity.required) if entity else set()
        self.fields = fields
        self.columns = columns
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
        self._plan = []
        for f in fields:
            default = None if f.default in (None, "") else converter(f.type, f.format)(f.default)
            self._plan.append(
                (
                    f.generate,
                    f.extract or f.generate,
                    _getter(f.extract),
                    converter(f.type, f.format),
                    default,
                    f.required or f.generate in required,
                )
            )
        self._fast = self._generate()

    def _generate(self) -> Callable:
        names: dict[str, Any] = {"_MISSING": _MISSING}
        items = []
        for i, f in enumerate(self.fields):
            generate, _label, get, convert, _default, _required = self._plan[i]
            fixed = literal(f.extract)
            if fixed is not None:
                names[f"_c{i}"] = convert(fixed) if fixed != "" else None
                if names[f"_c{i}"] is None:
                    names[f"_c{i}"] = _MISSING  # an empty literal: let the careful path decide
                    items.append(f"{generate!r}: _s{i}(_MISSING)")
                    names[f"_s{i}"] = _strict(convert)
                else:
                    items.append(f"{generate!r}: _c{i}")
                continue
            keys = compile_path(f.extract).keys if f.extract.startswith("$") else None
            if keys:
                access = "r" + "".join(f"[{k!r}]" for k in keys)
            elif f.extract and not f.extract.startswith("$") and "." not in f.extract:
                column = f.extract if self.columns is None else self.columns.index(f.extract)
                access = f"r[{column!r}]"
            else:
                names[f"_g{i}"] = get
                access = f"_g{i}(r)"
            names[f"_s{i}"] = _strict(convert)
            if f.type == "number":
                names[f"_s{i}"] = _text_to(float, names[f"_s{i}"])
            elif f.type == "integer":
                names[f"_s{i}"] = _text_to(int, names[f"_s{i}"])
            check = _FAST_CHECK.get(f.type)
            value = f"(v if {check.format(access)} else _s{i}(v))" if check else f"_s{i}({access})"
            items.append(f"{generate!r}: {value}")
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
            return self._careful(index, record, out.rejects)

        out.rows = self._fast(records, start, careful)
        return out

    def _careful(self, index: int, record: Any, rejects: list[Reject]) -> dict | None:
        if self.columns is not None and isinstance(record, list):
            record = dict(zip(self.columns, record, strict=False))
        row = {}
        ok = True
        for generate, label, get, convert, default, required in self._plan:
            value = get(record)
            if value is _MISSING or value is None or value == "":
                if default is not None:
                    row[generate] = default
                elif required:
                    ok = False
                    rejects.append(Reject(index, generate, f"{label}: is required but empty"))
                else:
                    row[generate] = None
                continue
            try:
                row[generate] = convert(value)
            except (ValueRejected, TypeError, ValueError) as e:
                ok = False
                rejects.append(Reject(index, generate, f"{label}: {value!r} {e}", value))
        return row if ok else None


def field_problems(fields: list[FieldMap], entity: Entity) -> list[tuple[int, str, str]]:
    """Each field's problems as (index, column, message): a name the entity does not have (with
    the nearest it has, offered, never put in its place), a field generated twice, a default its
    type refuses. The job's validation and the builder's grid share them, so the words at Save
    are the words next to the cell."""
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
                converter(f.type, f.format)(f.default)
            except (ValueRejected, ValueError) as e:
                problems.append((n, "default", f"{f.default!r} {e}"))
    return problems


def typed_fields(
    rows: list[dict], entity: Entity
) -> tuple[list[FieldMap], dict[int, dict[str, str]]]:
    """A mapping as the builder's grid holds it (rows of text, blanks included): the fields fit
    to preview, and each row's problems by column, keyed by the row's place in ``rows``. A row
    with a problem is left out of the preview and shown with its reason; it is never changed."""
    fields, places, problems = [], [], {}
    for n, row in enumerate(rows):
        data = {k: v for k, v in row.items() if v not in (None, "")}
        if not (data.get("generate") or data.get("extract")):
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
                column = str(error["loc"][0]) if error["loc"] else "extract"
                message = error["msg"].removeprefix("Value error, ")
                problems.setdefault(n, {})[column] = message
    for i, column, message in field_problems(fields, entity):
        problems.setdefault(places[i], {})[column] = message
    return [f for f, n in zip(fields, places, strict=True) if n not in problems], problems


def unmapped_required(fields: list[FieldMap], entity: Entity) -> list[str]:
    """The entity's required fields that no mapping field generates (a job cannot be saved)."""
    mapped = {f.generate for f in fields}
    return [name for name in entity.required if name not in mapped]


# --- suggestions ---------------------------------------------------------------------------


@dataclass
class PathInfo:
    """A field found in sample records: its path, inferred type and a few sample values."""

    path: str
    type: str
    samples: list[Any]


def _type_of(values: list[Any]) -> str:
    kinds = {type(v).__name__ for v in values if v is not None}
    if kinds <= {"bool"} and kinds:
        return "boolean"
    if kinds <= {"int"} and kinds:
        return "integer"
    if kinds <= {"int", "float"} and kinds:
        return "number"
    if kinds == {"str"}:
        texts = [v for v in values if v]
        if texts and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", t) for t in texts):
            return "date"
        if texts and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*", t) for t in texts):
            return "datetime"
        return "string"
    if kinds <= {"list"} and kinds:
        return "list"
    return "mixed" if kinds else "null"


def profile(records: list[Any], limit: int = 200) -> list[PathInfo]:
    """Every leaf path of the sample records with its type and up to three distinct samples."""
    seen: dict[str, list[Any]] = {}
    for record in records[:limit]:
        for path, value in leaf_paths(record):
            if isinstance(value, list):
                continue
            seen.setdefault(path, []).append(value)
    out = []
    for path, values in seen.items():
        samples: list[Any] = []
        for v in values:
            if v not in samples:
                samples.append(v)
            if len(samples) == 3:
                break
        out.append(PathInfo(path, _type_of(values), samples))
    return out


_SYNONYMS = {
    "external_id": ["id", "code", "reference", "ref", "uuid", "product_id", "supplier_id"],
    "name": ["title", "label", "product_name", "display_name"],
    "classification_category_id": ["category", "category_id", "categoryid", "category_code"],
    "description": ["desc", "summary", "long_description"],
    "price": ["amount", "unit_price", "price_amount", "rate"],
    "stock": ["quantity", "qty", "qty_on_hand", "inventory", "stock_level"],
    "email": ["mail", "email_address"],
    "currency": ["currency_code", "price_currency"],
}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def suggest(records: list[Any], entity: Entity) -> list[FieldMap]:
    """``extract`` → ``generate`` pairs by name similarity, for the analyst to accept or edit.

    Each entity field takes the best-scoring path (its last step compared with the field name
    and its synonyms); a path is used once; weak matches (below 0.75) are left out."""
    infos = [i for i in profile(records) if i.type not in ("list", "null")]
    used: set[str] = set()
    out = []
    for name, spec in entity.fields.items():
        wanted = [_norm(name)] + [_norm(s) for s in _SYNONYMS.get(name, [])]
        best, best_score = None, 0.0
        for info in infos:
            if info.path in used:
                continue
            leaf = _norm(re.split(r"[.\[]", info.path.rstrip("]"))[-1].strip("'"))
            whole = _norm(info.path.removeprefix("$"))
            score = max(
                max(difflib.SequenceMatcher(None, w, leaf).ratio() for w in wanted),
                max(difflib.SequenceMatcher(None, w, whole).ratio() for w in wanted) - 0.05,
            )
            if score > best_score:
                best, best_score = info, score
        if best is not None and best_score >= 0.75:
            used.add(best.path)
            out.append(
                FieldMap(extract=best.path, generate=name, type=spec.type, required=spec.required)
            )
    return out
