"""Mapping suggestions: the fields found in sample records (``profile``) and ``extract`` →
``generate`` pairs by name similarity (``suggest``), offered to the analyst, never applied
unasked."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from studio.entities import Entity
from studio.jsonpath import leaf_paths

if TYPE_CHECKING:
    from studio.mapping import FieldMap


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
    from studio.mapping import FieldMap  # the mapping module re-exports this one

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
