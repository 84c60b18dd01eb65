"""JSONPath, compiled once: a fast path for plain dotted paths, jsonpath-ng for the rest.

A content finder or a mapping is evaluated on every page and every record, so expressions are
compiled when a job is loaded and never again. Most expressions analysts write are plain paths
(``$.data.items``, ``price.amount``, ``$.items[0].id``): those become a tuple of keys walked with
dict and list indexing, several times faster than jsonpath-ng's interpreter. Filters, wildcards
and recursive descent go to jsonpath-ng (its ``ext`` dialect).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from studio.errors import StudioError

_MISSING = object()
_STEP = re.compile(
    r"""\.([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]|\[(?:'([^']*)'|"([^"]*)")\]|(\[\*\]|\.\*)"""
)
STAR = object()  # a [*] step: every item of a list (or value of an object)
_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z_][A-Za-z0-9_\-]*)*$")


class JsonPathError(StudioError):
    """An expression that does not parse; the message shows where, with a caret."""

    def __init__(self, expr: str, reason: str, position: int | None = None):
        self.expr, self.reason, self.position = expr, reason, position
        where = f" at position {position + 1}" if position is not None else ""
        pointer = f"\n  {expr}\n  {' ' * position}^" if position is not None else ""
        super().__init__(f"JSONPath {expr!r}: {reason}{where}{pointer}")


def _plain_keys(expr: str) -> tuple[object, ...] | None:
    """``$.a.b[0]`` → ("a", "b", 0), ``$.items[*].id`` → ("items", STAR, "id"); None when the
    expression needs the full engine (filters, slices, recursive descent, unions)."""
    if expr in ("$", ""):
        return ()
    if _BARE.match(expr):  # a relative dotted path, as mappings write them: price.amount
        return tuple(expr.split("."))
    if not expr.startswith("$"):
        return None
    keys: list[str | int] = []
    pos = 1
    while pos < len(expr):
        m = _STEP.match(expr, pos)
        if not m:
            return None
        name, index, quoted1, quoted2, star = m.groups()
        if star:
            keys.append(STAR)
        else:
            keys.append(int(index) if index is not None else (name or quoted1 or quoted2 or ""))
        pos = m.end()
    return tuple(keys)


class CompiledPath:
    """One compiled expression. ``values`` returns every match, ``first`` the first or a default."""

    __slots__ = ("_engine", "_steps", "expr", "keys")

    def __init__(self, expr: str):
        self.expr = expr
        steps = _plain_keys(expr)
        self._steps = steps
        # ``keys`` only for a path to one value: what the mapping turns into r["a"]["b"].
        self.keys = steps if steps is not None and STAR not in steps else None
        self._engine = None if steps is not None else _parse(expr)

    @property
    def is_plain(self) -> bool:
        return self.keys is not None

    def values(self, doc: Any) -> list[Any]:
        if self._steps is None:
            return [m.value for m in self._engine.find(doc)]
        if self.keys is not None:
            value = self.get(doc, _MISSING)
            return [] if value is _MISSING else [value]
        nodes = [doc]
        for key in self._steps:
            if key is STAR:
                nodes = [
                    v
                    for n in nodes
                    if isinstance(n, list | dict)
                    for v in (n if isinstance(n, list) else n.values())
                ]
                continue
            out = []
            for n in nodes:
                try:  # noqa: SIM105 - a bare try is the cheapest in this hot loop
                    out.append(n[key])
                except (KeyError, IndexError, TypeError):
                    pass
            nodes = out
        return nodes

    @property
    def stream_prefix(self) -> str | None:
        """The ijson prefix of the records this path selects as a content finder (``$.a.b``
        and ``$.a.b[*]`` → ``a.b.item``, ``$`` → ``item``), so that a document too large to
        load can be streamed; None when the path needs the whole document."""
        steps = self._steps
        if steps is None:
            return None
        if steps and steps[-1] is STAR:
            steps = steps[:-1]
        if not all(isinstance(k, str) and k and "." not in k for k in steps):
            return None
        return ".".join([*steps, "item"])

    def get(self, doc: Any, default: Any = None) -> Any:
        """The first match, or ``default`` when there is none (the fast path's own loop)."""
        if self.keys is None:
            found = self.values(doc)
            return found[0] if found else default
        for key in self.keys:
            try:
                doc = doc[key]
            except (KeyError, IndexError, TypeError):
                return default
        return doc

    def __repr__(self) -> str:
        return f"CompiledPath({self.expr!r})"


def _parse(expr: str):
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext import parse

    try:
        return parse(expr)
    except JsonPathParserError as e:
        text = str(e)
        m = re.search(r"at (\d+):(\d+) near token (.+?) \(", text)
        if m:
            return _raise(expr, f"unexpected {m.group(3)!r}", int(m.group(2)))
        if "end of string" in text:
            return _raise(expr, "ends too early (an unclosed bracket or quote?)", len(expr))
        return _raise(expr, text)
    except JsonPathLexerError as e:
        m = re.search(r"col (\d+): Unexpected character: (.)", str(e))
        if m:
            return _raise(expr, f"unexpected character {m.group(2)!r}", int(m.group(1)))
        return _raise(expr, str(e))
    except Exception as e:  # jsonpath-ng raises bare Exceptions for some inputs
        return _raise(expr, str(e) or type(e).__name__)


def _raise(expr: str, reason: str, position: int | None = None):
    raise JsonPathError(expr, reason, position)


@functools.lru_cache(maxsize=4096)
def compile_path(expr: str) -> CompiledPath:
    """Compile (and cache) an expression; raises ``JsonPathError`` saying where it fails."""
    expr = expr.strip()
    if not expr:
        raise JsonPathError(expr, "is empty")
    return CompiledPath(expr)


def check(expr: str) -> str | None:
    """The error message for an invalid expression, or None: for validators and forms."""
    try:
        compile_path(expr)
    except JsonPathError as e:
        return str(e)
    return None


def leaf_paths(doc: Any, prefix: str = "$", limit: int = 500) -> list[tuple[str, Any]]:
    """Every path to a leaf (and to every list) in ``doc``, in document order.

    Used to suggest paths that do match when a content finder matches nothing, and by the
    field browser of the mapping editor."""
    out: list[tuple[str, Any]] = []

    def walk(node: Any, path: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(node, dict):
            for k, v in node.items():
                step = f".{k}" if re.match(r"^[A-Za-z_][A-Za-z0-9_\-]*$", str(k)) else f"['{k}']"
                walk(v, path + step)
        elif isinstance(node, list):
            out.append((path, node))
            if node:
                walk(node[0], path + "[0]")
        else:
            out.append((path, node))

    walk(doc, prefix)
    return out


def records_of(doc: Any, finder: CompiledPath) -> list[Any]:
    """What a content finder selects: ``$.items`` (one list) and ``$.items[*]`` give the same
    records; ``$`` on a list gives its items; a single object gives one record."""
    found = finder.values(doc)
    if len(found) == 1 and isinstance(found[0], list):
        return found[0]
    return found
