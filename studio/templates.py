"""Field templates: a value built from several of the record's values and text, in Jinja2.

``{{ first }} {{ last }}``, ``{{ price.amount | round(2) }}``, ``{{ record["Product Name"] }}``.
The record is the template's context (its keys are the names; ``record`` is the whole record,
for keys that are not names). Templates run in Jinja2's ``ImmutableSandboxedEnvironment``: no
access to Python internals (``__class__``, ``mro``…), no I/O, and no changing the record or any
list or dict (``record.pop('id')`` is refused).

Limits: a template is the analyst's text, but what it does with a record must never take the
runner down, so every value it makes and every render has a cap, and going over one rejects
the record with a sentence naming the field ("name: the template went over its limit of
100,000 characters or items in a value"); a limit is never a crash, and nothing is
allocated past it:

- a value made by an operator (``*``, ``+``, ``%``, ``~``, ``**``), a filter or a method call
  (``center``, ``indent``, ``format``, ``%``-formatting, ``replace``, ``join``…): at most
  ``MAX_TEXT`` characters or items (nested lists counted whole), checked before the value is
  made wherever a width, count or separator could make it big; numbers at most ``MAX_BITS``
  bits (the base of ``**`` as well as its exponent, ``MAX_POWER``);
- ``range`` at most ``MAX_RANGE`` items; ``lipsum`` at most ``MAX_LIPSUM`` paragraphs of
  ``MAX_LIPSUM_WORDS`` words; no ``recursive`` loops (refused when the template is saved);
- per render: ``MAX_STEPS`` loop iterations and calls, ``MAX_WORK`` characters or items made or
  inspected by the checks above, and ``MAX_OUTPUT`` characters of output (the render is
  consumed piece by piece and stopped past it). Together they keep a render to well under a
  second of CPU and a few megabytes, whatever the record holds.

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
(Its output is at most the record's values and the template's text, so it needs no caps.)
Everything is compiled once per template text (cached), not once per record.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, SecurityError
from jinja2.utils import Namespace, generate_lorem_ipsum

from studio.errors import StudioError

MAX_TEXT = 100_000  # characters (or items) in any value a template makes
MAX_BITS = 10_000  # bits in a number a template makes (about 3,000 digits)
MAX_POWER = 1_000  # the largest exponent of `**`
MAX_RANGE = 10_000  # items of a `range` (Jinja2's sandbox allows 100,000)
MAX_LIPSUM, MAX_LIPSUM_WORDS = 20, 200  # paragraphs and words per paragraph of `lipsum`
MAX_STEPS = 20_000  # loop iterations and calls in one render
MAX_WORK = 5_000_000  # characters or items made or inspected by the capped steps in one render
MAX_OUTPUT = 100_000  # characters a template may render


class TemplateRejected(StudioError):
    """A template failed on one record (the mapper turns it into a reject naming the field)."""


class TemplateLimit(SecurityError):
    """A template went over one of its limits; ``limit`` says which, as in "its limit of …"."""

    def __init__(self, limit: str) -> None:
        super().__init__(f"the template went over its limit of {limit}")
        self.limit = limit


_TEXT_LIMIT = f"{MAX_TEXT:,} characters or items in a value"


class _Budget:
    __slots__ = ("steps", "work")

    def __init__(self) -> None:
        self.steps = 0
        self.work = 0


# The render under way (set by ``compile_template``'s careful path); outside of one (a test
# rendering ENV directly) only the per-value caps apply.
_BUDGET: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _step(n: int = 1) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.steps += n
        if budget.steps > MAX_STEPS:
            raise TemplateLimit(f"{MAX_STEPS:,} loop iterations and calls in one render")


def _work(n: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.work += n
        if budget.work > MAX_WORK:
            raise TemplateLimit(f"{MAX_WORK:,} characters or items handled in one render")


def _size(v: Any, cap: int = MAX_TEXT) -> int:
    """How big a value is (characters of texts, items of containers, nested ones counted whole,
    digits of numbers), counted only up to just past ``cap``: a list holding one long text many
    times is as big as its text would be, so the count stops early instead of copying."""
    if v.__class__ is str or isinstance(v, str | bytes):
        return len(v)
    if isinstance(v, bool) or v is None:
        return 1
    if isinstance(v, int):
        return v.bit_length() // 3 + 1
    if isinstance(v, range):
        return len(v)
    if isinstance(v, dict):
        v = [*v.keys(), *v.values()] if len(v) <= cap else range(len(v) * 2)
    elif isinstance(v, Namespace):
        return 1
    if isinstance(v, list | tuple | set | frozenset | range):
        total = len(v)
        if total > cap:
            return total
        for item in v:
            total += _size(item, cap - total)
            if total > cap:
                break
        return total
    return 1


def _check(v: Any) -> Any:
    """The value, if it is within ``MAX_TEXT`` (and charged to the render's work)."""
    size = _size(v)
    _work(size)
    if size > MAX_TEXT:
        raise TemplateLimit(_TEXT_LIMIT)
    return v


def _within(n: int) -> None:
    """An estimate of a value about to be made (before it is made)."""
    if n > MAX_TEXT:
        raise TemplateLimit(_TEXT_LIMIT)


def _bits(left: Any, right: Any, operator: str) -> None:
    if type(left) is not int or type(right) is not int:
        return
    if operator == "**":
        if abs(right) > MAX_POWER:
            raise TemplateLimit(f"{MAX_POWER:,} for the exponent of **")
        bits = left.bit_length() * max(right, 0)
    else:
        bits = left.bit_length() + right.bit_length()
    if bits > MAX_BITS:
        raise TemplateLimit(f"{MAX_BITS:,} bits in a number")


# Numbers in a %-format's conversion specs: widths and precisions (``%200000000s``, ``%.9f``).
_PERCENT_SPEC = re.compile(r"%[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")
_DIGITS = re.compile(r"\d+")


def _check_percent(fmt: str, args: Any) -> None:
    star = False
    for m in _PERCENT_SPEC.finditer(fmt):
        for part in m.groups():
            if part == "*":
                star = True
            elif part and int(part) > MAX_TEXT:
                raise TemplateLimit(f"{MAX_TEXT:,} for a width or precision in a format")
    if star:
        values = args if isinstance(args, tuple) else (args,)
        if any(type(a) is int and a > MAX_TEXT for a in values):
            raise TemplateLimit(f"{MAX_TEXT:,} for a width or precision in a format")


def _check_spec(spec: str) -> None:
    if any(len(d) > 6 or int(d) > MAX_TEXT for d in _DIGITS.findall(spec)):
        raise TemplateLimit(f"{MAX_TEXT:,} for a width or precision in a format")


def _as_int(v: Any, default: int = 0) -> int:
    try:
        return int(v)
    except (TypeError, ValueError, OverflowError):
        return default


def _replace_size(s: Any, old: Any, new: Any, count: Any = None) -> int:
    s, old, new = str(s), str(old), str(new)
    times = s.count(old) if old else len(s) + 1
    if count is not None and _as_int(count, -1) >= 0:
        times = min(times, _as_int(count))
    return len(s) + times * max(len(new) - len(old), 0)


def _join_size(items: Any, separator: Any) -> int:
    items = list(items)
    _within(len(items))
    return _size(items) + max(len(items) - 1, 0) * len(str(separator))


def _str_method(name: str, s: str, args: tuple, kwargs: dict) -> None:
    """Refuse a str method call whose result would be over ``MAX_TEXT``, before it is made."""
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _within(_as_int(args[0]))
    elif name == "expandtabs":
        tab = _as_int(args[0] if args else kwargs.get("tabsize", 8), 8)
        _within(len(s) + s.count("\t") * tab)
    elif name == "replace" and len(args) >= 2:
        _within(_replace_size(s, args[0], args[1], args[2] if len(args) > 2 else None))
    elif name == "join" and args:
        _within(_join_size(args[0], s))


# --- filters: each wrapped so that its input and output are within the caps ----------------


def _filter_pre(name: str, value: Any, args: tuple, kwargs: dict) -> None:
    arg = args[0] if args else None
    if name == "center":
        _within(_as_int(kwargs.get("width", arg if args else 80)))
    elif name == "indent":
        width = kwargs.get("width", arg if args else 4)
        per_line = len(width) if isinstance(width, str) else _as_int(width)
        _within(len(str(value)) + (str(value).count("\n") + 1) * per_line)
    elif name == "replace" and len(args) >= 2:
        count = kwargs.get("count", args[2] if len(args) > 2 else None)
        _within(_replace_size(value, args[0], args[1], count))
    elif name == "join":
        _within(_join_size(value, kwargs.get("d", arg if args else "")))
    elif name == "format":
        _check_percent(str(value), tuple(args) or tuple(kwargs.values()))
    elif name in ("batch", "slice") and args:
        _within(_as_int(kwargs.get("linecount", kwargs.get("slices", arg))))
    elif name == "sum" and not isinstance(kwargs.get("start", args[-1] if args else 0), int):
        # adding up lists or texts copies them at each item
        _within(len(list(value)) * 50)
    elif name in ("wordwrap", "truncate") and args:
        _within(_as_int(kwargs.get("width", kwargs.get("length", arg))))


def _capped_filter(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    skip = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(f)
    def filter_(*args: Any, **kwargs: Any) -> Any:
        value, rest = args[skip] if len(args) > skip else None, args[skip + 1 :]
        for v in (value, *rest, *kwargs.values()):
            _check(v)
        _filter_pre(name, value, rest, kwargs)
        result = f(*args, **kwargs)
        if isinstance(result, str | list | tuple | dict):
            _check(result)
        return result

    return filter_


def _steps(iterable: Any) -> Any:
    """A ``for`` loop's sequence, counting its iterations against the render's steps."""
    for item in iterable:
        _step()
        yield item


def _range(*args: Any) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise TemplateLimit(f"{MAX_RANGE:,} items in a range")
    return rng


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if _as_int(n) > MAX_LIPSUM or _as_int(max) > MAX_LIPSUM_WORDS:
        raise TemplateLimit(
            f"{MAX_LIPSUM} paragraphs of {MAX_LIPSUM_WORDS} words for lipsum",
        )
    return generate_lorem_ipsum(n, html, min, max)


class _Namespace(Namespace):
    """``namespace()``, whose attributes (``{% set ns.x = … %}``) are capped like any value."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _check(value))


class _Formatter(SandboxedFormatter):
    """``str.format``'s formatter, refusing widths and precisions over ``MAX_TEXT``."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_spec(format_spec)
        _check(value)
        return _check(super().format_field(value, format_spec))


class _CodeGenerator(CodeGenerator):
    """Jinja2's code generator, with ``~`` capped and ``for`` loops counted; recursive loops
    (which could multiply their work at each level) are refused."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
            self.write(f"{join}(environment.checked_parts((")
            end = ")))"
        else:
            self.write("environment.capped_concat((")
            end = "))"
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(end)

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        # Rewritten before the generator collects the filters a template uses.
        for loop in node.find_all(nodes.For):
            if loop.recursive:
                self.fail("recursive loops are not allowed in a field template", loop.lineno)
            if not isinstance(loop.iter, nodes.Filter) or loop.iter.name != "_studio_steps":
                loop.iter = nodes.Filter(loop.iter, "_studio_steps", [], [], None, None)
        super().visit_Template(node, frame)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every operator, call, filter and loop capped (the module's
    docstring lists the limits)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CodeGenerator

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = {name: _capped_filter(name, f) for name, f in self.filters.items()}
        self.filters["_studio_steps"] = _steps
        self.globals.update(range=_range, lipsum=_lipsum, namespace=_Namespace)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _bits(left, right, operator)
        if operator == "**":
            return left**right
        if operator == "%":
            if isinstance(left, str):
                _check(right)
                _check_percent(left, right)
            return _check(left % right)
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and type(times) is int:
                    _within(_size(seq) * max(times, 0))
            return _check(left * right)
        return _check(left + right)

    def checked_parts(self, parts: tuple) -> tuple:
        _within(sum(_size(_check(p)) for p in parts))
        return parts

    def capped_concat(self, parts: tuple) -> str:
        return _check("".join(map(str, self.checked_parts(parts))))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _step()
        for v in (*args, *kwargs.values()):
            _check(v)
        if isinstance(__obj, types.BuiltinMethodType) and isinstance(__obj.__self__, str):
            _str_method(__obj.__name__, __obj.__self__, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str | list | tuple | dict):
            _check(result)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        f_self, is_map = value.__self__, value.__name__ == "format_map"
        vformat = _Formatter(self).vformat

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            return _check(str(vformat(f_self, args, kwargs)))

        return functools.update_wrapper(wrapper, value)


def _finalize(value: Any) -> Any:
    return "" if value is None else _check(value)


ENV = _Sandbox(undefined=StrictUndefined, finalize=_finalize, autoescape=False)


def template_problem(source: str) -> str | None:
    """Why a template cannot be compiled, naming the line (Jinja2 reports lines, not columns,
    so the line's text is quoted), or None when it compiles."""
    try:
        ENV.compile(source)
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
    # Past MAX_OUTPUT the expression raises, and the careful path rejects the record as Jinja2
    # would (the shortcut decides speed, never results).
    return f"(_ot if len(_ot := {' + '.join(parts) or repr('')}) <= {MAX_OUTPUT} else ''[1])"


@lru_cache(maxsize=512)
def compile_template(source: str) -> Callable[[Any], str]:
    """A function record → text, for a template that ``template_problem`` accepts.

    Cached by text: the builder's live preview rebuilds its mapping at every pause, and a job's
    runs share their templates."""
    template = ENV.from_string(source)
    expr = shortcut(source)

    def careful(record: Any) -> str:
        context = {"record": record, **record} if isinstance(record, dict) else {"record": record}
        token = _BUDGET.set(_Budget())
        parts, length = [], 0
        try:
            for part in template.generate(context):
                length += len(part)
                if length > MAX_OUTPUT:
                    raise TemplateLimit(f"{MAX_OUTPUT:,} characters of output")
                parts.append(part)
        except TemplateLimit as e:
            raise TemplateRejected(str(e)) from None
        except Exception as e:  # whatever a template does wrong on one record is a reject
            raise TemplateRejected(f"the template failed: {e}") from None
        finally:
            _BUDGET.reset(token)
        return "".join(parts)

    if expr is None:
        return careful
    fast = eval(f"lambda r: {expr}", {"_soft": soft_str})

    def render(record: Any) -> str:
        try:
            return fast(record)
        except Exception:
            return careful(record)

    return render
