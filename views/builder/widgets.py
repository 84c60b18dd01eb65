"""One widget per config field, drawn from the pydantic model: its title is the label, its
description the help, its default the starting value, its bounds the number limits and a
``Literal`` the choices. A field and its label therefore exist once, in the model."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import annotated_types
from pydantic import BaseModel

from views.builder.draft import Draft


def _bounds(metadata: list) -> tuple[Any, Any]:
    low = high = None
    for m in metadata:
        if isinstance(m, annotated_types.Ge | annotated_types.Gt):
            low = m.ge if isinstance(m, annotated_types.Ge) else m.gt
        elif isinstance(m, annotated_types.Le | annotated_types.Lt):
            high = m.le if isinstance(m, annotated_types.Le) else m.lt
    return low, high


def field(
    d: Draft,
    where,
    model: type[BaseModel],
    name: str,
    values: dict,
    *key: str,
    label: str | None = None,
    options: dict | None = None,
    placeholder: str | None = None,
    place: str = "",
) -> Any:
    """Draw ``model``'s field ``name`` in ``where`` under the key ``jb.<job>.<key…>.<name>``,
    seeded from ``values`` (a part of the draft), and write the value back into ``values``.
    ``options`` gives labels for a Literal's choices (and may order or narrow them). What keeps
    the value from being saved is said under the widget; ``place`` is where the field sits in
    the job's messages ("Call 1 › Behavior")."""
    f = model.model_fields[name]
    label = label or f.title or name
    helptext = f.description
    default = None if f.is_required() else f.get_default(call_default_factory=True)
    value = values.get(name, default)
    k = d.key(*key, name)
    annotation = f.annotation
    if options is not None or typing.get_origin(annotation) is typing.Literal:
        choices = list(options or typing.get_args(annotation))
        fmt: Callable = (options or {}).get if options else str
        d.seeded(k, value if value in choices else choices[0])
        result = where.selectbox(label, choices, key=k, help=helptext, format_func=fmt)
    elif annotation is bool:
        d.seeded(k, bool(value))
        result = where.checkbox(label, key=k, help=helptext)
    elif annotation in (int, float):
        low, high = _bounds(f.metadata)
        cast = annotation
        d.seeded(k, cast(value))
        result = where.number_input(
            label,
            min_value=None if low is None else cast(low),
            max_value=None if high is None else cast(high),
            key=k,
            help=helptext,
        )
    else:
        d.seeded(k, "" if value is None else str(value))
        result = where.text_input(label, key=k, help=helptext, placeholder=placeholder)
    values[name] = result
    head = f"{place} › {f.title or name}" if place else (f.title or name)
    for problem in d.problems_at(head, typed=result not in (None, "")):
        where.caption(f":red[{problem}]")
    return result
