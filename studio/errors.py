"""Errors an analyst can act on: one sentence each, naming the field in the form's own words.

Pydantic's errors are written for programmers (``auth.oauth2.client_id: Field required``); the
studio, the CLI and the REST API all show ``Authentication › Client ID: is required`` instead.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable

from pydantic import BaseModel, ValidationError


class StudioError(Exception):
    """Base of the errors the studio shows as they are: the message is for people."""


class ConfigError(StudioError):
    """A config failed validation; ``messages`` holds one readable sentence per problem."""

    def __init__(self, messages: Iterable[str]):
        self.messages = list(messages)
        super().__init__("; ".join(self.messages))


class NotFound(StudioError):
    pass


class Conflict(StudioError):
    """A duplicate name, or a delete that would leave dependents behind."""


_LABELLED = re.compile(r"^[A-Z][^:'\"]{0,60}: ")

_PHRASES = {
    "missing": "is required",
    "string_too_short": "must not be empty",
    "extra_forbidden": "is not a known setting",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list",
    "union_tag_invalid": "must be one of {expected_tags}",
    "literal_error": "must be one of {expected}",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_long": "must be at most {max_length} characters",
    "string_pattern_mismatch": "has characters that are not allowed",
    "datetime_parsing": "must be a date and time such as 2026-01-31T08:00:00Z",
    "datetime_from_date_parsing": "must be a date and time such as 2026-01-31T08:00:00Z",
}


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (unwrapping Annotated, unions and lists)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, set):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _tag_of(model: type[BaseModel]) -> set[str]:
    tags = set()
    for f in model.model_fields.values():
        if typing.get_origin(f.annotation) is typing.Literal:
            tags.update(str(a) for a in typing.get_args(f.annotation))
    return tags


def _tag_of_field(model: type[BaseModel], name: str) -> set[str]:
    f = model.model_fields.get(name)
    if f is None or typing.get_origin(f.annotation) is not typing.Literal:
        return set()
    return {str(a) for a in typing.get_args(f.annotation)}


def _walk(roots: list[type[BaseModel]], loc: tuple) -> tuple[list[str], list[type[BaseModel]]]:
    """Each field's title along ``loc``, and the models that may sit at its end."""
    candidates, titles = roots, []
    for part in loc:
        if isinstance(part, int):
            if titles:
                titles[-1] = f"{titles[-1]} {part + 1}"
            continue
        owner = next((m for m in candidates if part in m.model_fields), None)
        if owner is None:
            # A discriminator tag ("oauth2") or a function validator name: narrow, don't title.
            tagged = [m for m in candidates if part in _tag_of(m)]
            if tagged:
                candidates = tagged
            elif part is loc[-1]:
                titles.append(part)  # a key no model knows: name it as the user wrote it
            continue
        info = owner.model_fields[part]
        titles.append(info.title or part.replace("_", " ").capitalize())
        candidates = _models_in(info.annotation)
    return titles, candidates


def field_label(roots: list[type[BaseModel]], loc: tuple) -> str:
    """Walk ``loc`` through the models, collecting each field's title: "Custom headers 2 › Name"."""
    return " › ".join(_walk(roots, loc)[0])


def readable(error: ValidationError, roots: list[type[BaseModel]]) -> list[str]:
    """One sentence per validation error, naming the field by its title."""
    out = []
    for e in error.errors(include_url=False):
        label = field_label(roots, tuple(e["loc"]))
        ctx = {k: _show(v) for k, v in (e.get("ctx") or {}).items()}
        if e["type"] == "union_tag_not_found":
            # {"name": …} without "kind": name the field and the values it takes.
            field = str(e["ctx"]["discriminator"]).strip("'")
            at = _walk(roots, tuple(e["loc"]))[1]
            tags = sorted({t for m in at for t in _tag_of_field(m, field)})
            label = " › ".join(p for p in (label, field) if p)
            text = f"is required ({' or '.join(tags)})" if tags else "is required"
        elif e["type"] == "value_error":
            text = str(e["ctx"]["error"]) if "error" in (e.get("ctx") or {}) else e["msg"]
        elif e["type"] in _PHRASES:
            try:
                text = _PHRASES[e["type"]].format(**ctx)
            except (KeyError, IndexError):
                text = e["msg"]
        else:
            text = e["msg"][0].lower() + e["msg"][1:]
        for line in _sentences(text):
            if _LABELLED.match(line):
                # A model-level check names the field it is about ("Username: …"); nest it.
                out.append(f"{label} › {line}" if label else line)
            else:
                out.append(f"{label}: {line}" if label else line)
    return out


def _show(value: object) -> object:
    if isinstance(value, list):
        return ", ".join(map(repr, value))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _sentences(text: str) -> list[str]:
    """One message per line, but an indented line (a caret under an expression) stays with
    the message it illustrates."""
    out: list[str] = []
    for line in text.splitlines() or [""]:
        if out and line.startswith(" "):
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


def roots_of(adapter_type: object) -> list[type[BaseModel]]:
    return _models_in(adapter_type)
