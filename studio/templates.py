"""Field templates: a value built from several of the record's values and text, in Jinja2.

``{{ first }} {{ last }}``, ``{{ price.amount | round(2) }}``, ``{{ record["Product Name"] }}``.
The record is the template's context (its keys are the names; ``record`` is the whole record,
for keys that are not names). Templates run in Jinja2's ``SandboxedEnvironment``: no access to
Python internals (``__class__``, ``mro``…), no I/O, ranges capped; on top of it ``*`` and ``**``
are capped so that ``'x' * 10**9`` cannot eat the runner's memory.

Choices, documented in docs/jobs.md:

- ``StrictUndefined``: a name the record does not have is an error (the record becomes a
  reject naming the field), not silently empty text in every row, which is what a typo in a
  field name would otherwise give. ``{{ middle | default('') }}`` and ``{% if middle is
  defined %}`` say that a value may be missing.
- ``None`` (JSON null) renders as empty text, not "None".

Speed: Jinja2 renders a small template in about 5 µs, far more than the rest of a row, so a
template made only of text and ``{{ … }}`` over names, ``.attribute``/``[key]`` paths, constants
and the filters ``round``, ``upper``, ``lower`` and ``trim`` is also compiled into one Python
expression over the record. That expression is tried first; whatever it does not handle
exactly like Jinja2 (a missing key, a value of an unexpected type) raises, and Jinja2 renders
the record instead, so the shortcut decides speed, never results (tests compare the two).
Everything is compiled once per template text (cached), not once per record.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from studio.errors import StudioError

MAX_TEXT = 100_000  # characters a `*` may make in a template
MAX_POWER = 1_000  # the largest exponent of `**`


class TemplateRejected(StudioError):
    """A template failed on one record (the mapper turns it into a reject naming the field)."""


class _Sandbox(SandboxedEnvironment):
    """The sandbox, with ``*`` and ``**`` capped: they are the cheap ways to exhaust memory or
    CPU from a one-line template that the stock sandbox lets through."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int) and abs(right) > MAX_POWER:
                raise SecurityError(f"an exponent above {MAX_POWER} is not allowed")
            return left**right
        for seq, times in ((left, right), (right, left)):
            sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
            if sized and len(seq) * times > MAX_TEXT:
                raise SecurityError(f"a text or list longer than {MAX_TEXT:,} is not allowed")
        return left * right


def _finalize(value: Any) -> Any:
    return "" if value is None else value


ENV = _Sandbox(undefined=StrictUndefined, finalize=_finalize, autoescape=False)


def template_problem(source: str) -> str | None:
    """Why a template cannot be compiled, naming the line (Jinja2 reports lines, not columns,
    so the line's text is quoted), or None when it compiles."""
    try:
        ENV.parse(source)
    except TemplateSyntaxError as e:
        lines = source.splitlines()
        text = lines[e.lineno - 1].strip() if 0 < e.lineno <= len(lines) else ""
        where = f"line {e.lineno}" + (f" ({text!r})" if len(lines) > 1 else "")
        return f"{where}: {e.message}"
    return None


# --- the shortcut: simple templates as one Python expression ------------------------------


def soft_str(v: Any) -> str:
    """Jinja2's ``soft_str``: what its string filters apply to."""
    return v if v.__class__ is str else str(v)


# What Jinja2 writes for a value, ``str(finalize(v))``, inline (a call per value is too dear).
_OUT = "('' if (_o := {}) is None else _o if _o.__class__ is str else str(_o))"


_TEXT_FILTERS = {"upper": "_soft({}).upper()", "lower": "_soft({}).lower()"}
_TEXT_FILTERS["trim"] = "_soft({}).strip()"
_DICT_ATTRS = frozenset(dir(dict))


def _filter(node: nodes.Filter) -> str | None:
    inner = _expr(node.node)
    if inner is None or node.kwargs or node.dyn_args or node.dyn_kwargs:
        return None
    if node.name in _TEXT_FILTERS and not node.args:
        return _TEXT_FILTERS[node.name].format(inner)
    if node.name == "round" and len(node.args) <= 1:
        args = [a.value for a in node.args if isinstance(a, nodes.Const)]
        if len(args) == len(node.args) and all(type(a) is int for a in args):
            return f"round({inner}, {args[0] if args else 0})"
    return None


def _expr(node: nodes.Node) -> str | None:
    """The Python expression for a Jinja2 expression, or None if it is not one we mirror.

    ``a.b`` is ``a["b"]`` only when ``b`` is no attribute of a dict (Jinja2 tries attributes
    first: ``a.items`` is the method); a value that is not a dict makes the subscript raise."""
    if isinstance(node, nodes.Name) and node.ctx == "load":
        if node.name == "record":
            return '(r["record"] if "record" in r else r)'
        return f"r[{node.name!r}]"
    if isinstance(node, nodes.Const) and type(node.value) in (str, int, float):
        return repr(node.value)
    if isinstance(node, nodes.Getattr) and node.attr not in _DICT_ATTRS:
        inner = _expr(node.node)
        return None if inner is None else f"{inner}[{node.attr!r}]"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        inner = _expr(node.node)
        key = node.arg.value
        return None if inner is None or type(key) not in (str, int) else f"{inner}[{key!r}]"
    if isinstance(node, nodes.Filter):
        return _filter(node)
    return None


def _output(node: nodes.Node, expr: str) -> str:
    """What Jinja2 writes for an expression, as cheaply as its kind allows: a text filter gives
    a text already, ``round`` a number (never None), a constant its text."""
    if isinstance(node, nodes.Const):
        return repr(str(node.value))
    if isinstance(node, nodes.Filter):
        return expr if node.name in _TEXT_FILTERS else f"str({expr})"
    return _OUT.format(expr)


@lru_cache(maxsize=512)
def shortcut(source: str) -> str | None:
    """The template as one Python expression over the record ``r`` (using ``_soft``), or None
    when it is not simple. The mapper inlines it into its generated function."""
    parts = []
    for output in ENV.parse(source).body:
        if not isinstance(output, nodes.Output):
            return None
        for node in output.nodes:
            if isinstance(node, nodes.TemplateData):
                parts.append(repr(node.data))
                continue
            expr = _expr(node)
            if expr is None:
                return None
            parts.append(_output(node, expr))
    return " + ".join(parts) or "''"


@lru_cache(maxsize=512)
def compile_template(source: str) -> Callable[[Any], str]:
    """A function record → text, for a template that ``template_problem`` accepts.

    Cached by text: the builder's live preview rebuilds its mapping at every pause, and a job's
    runs share their templates."""
    template = ENV.from_string(source)
    expr = shortcut(source)

    def careful(record: Any) -> str:
        context = {"record": record, **record} if isinstance(record, dict) else {"record": record}
        try:
            return template.render(context)
        except Exception as e:  # whatever a template does wrong on one record is a reject
            raise TemplateRejected(f"the template failed: {e}") from None

    if expr is None:
        return careful
    fast = eval(f"lambda r: {expr}", {"_soft": soft_str})

    def render(record: Any) -> str:
        try:
            return fast(record)
        except Exception:
            return careful(record)

    return render
