"""Type conversion of mapped values: text, whole numbers, numbers (with a decimal mark),
true/false, dates and date-times (in a format, and a time zone converted to UTC).

A converter takes an extracted value and returns the typed value or raises ``ValueRejected``
with the reason that follows the value in a reject ("'abc' is not a number"). Converters are
made once per field per job (``converter``); the mapper's fast path calls them only for values
that are not already of the field's type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MISSING = object()  # a value the record does not have (unlike None, a JSON null)
_TRUE = {"true", "1", "yes", "y", "t", "on"}
_FALSE = {"false", "0", "no", "n", "f", "off"}


class ValueRejected(ValueError):
    """A value that cannot become the field's (the record becomes a reject): the message
    follows the value ("'abc' is not a number")."""


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


# --- locale numbers -----------------------------------------------------------------------

# Group separators besides the other mark: space, no-break space, narrow no-break space (what
# French software writes), thin space, and the apostrophe of Swiss files.
_GROUPS = " \u00a0\u202f\u2009'"
_SHAPES = {
    ",": ("1.234,56 or 1 234,56", "."),
    ".": ("1,234.56 or 1 234.56", ","),
}


@lru_cache(maxsize=2)
def _number_pattern(decimal: str) -> re.Pattern[str]:
    group = re.escape(_SHAPES[decimal][1] + _GROUPS)
    return re.compile(
        rf"([+-]?)(\d{{1,3}}(?:([{group}])\d{{3}}(?:\3\d{{3}})*)?|\d+)"
        rf"(?:{re.escape(decimal)}(\d+))?"
    )


def parse_number(text: str, decimal: Literal[",", "."]) -> float:
    """A number written with this decimal mark: "1.234,56", "1 234,56" (spaces of any kind,
    one kind per number) and "1234,56" with a comma; "1,234.56" with a point.

    Babel's ``parse_decimal`` was weighed and left: it wants a locale rather than a mark, in
    strict mode it refuses "1 234,56" with a plain or no-break space for French (whose
    separator is U+202F), out of strict mode it reads "1,5" as 15 for English, and it costs
    ~10 µs a value plus 30 MB of locale data. Here groups must have three digits and one
    separator, so a value written with the other mark ("1,5" for a decimal point) is refused,
    never read as another number."""
    match = _number_pattern(decimal).fullmatch(text.strip())
    if match is None:
        shape, other = _SHAPES[decimal]
        mark = "comma" if decimal == "," else "point"
        last = max(text.rfind(","), text.rfind("."))
        hint = ""
        if last >= 0 and text[last] == other:
            hint = f"; it reads as a decimal {'point' if mark == 'comma' else 'comma'}"
        raise ValueRejected(f"is not a number with a decimal {mark} such as {shape}{hint}")
    sign, whole, group, fraction = match.groups()
    if group:
        whole = whole.replace(group, "")
    return float(f"{sign}{whole}.{fraction or 0}")


def locale_converter(kind: str, decimal: Literal[",", "."]) -> Callable[[Any], Any]:
    """The number or integer converter for text written with a given decimal mark."""

    def convert(v: Any) -> Any:
        if v.__class__ is str:
            n = parse_number(v, decimal)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            n = float(v)
        else:
            raise ValueRejected("is not a number")
        if kind == "number":
            return n
        if n.is_integer():
            return int(n)
        raise ValueRejected("is not a whole number")

    return convert


# --- dates in a time zone -----------------------------------------------------------------


def zone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{name!r} is not a time zone (an IANA name such as Europe/Paris or UTC)"
    return None


def to_utc(parsed: datetime, zone: ZoneInfo) -> datetime:
    """A date and time in UTC: a naive one is read in ``zone``; one that says its offset
    keeps it. A wall time the clocks skipped (02:30 when summer time begins) is refused; one
    that happened twice (when it ends) is the first, as zoneinfo reads it (fold=0)."""
    if parsed.tzinfo is None:
        local = parsed.replace(tzinfo=zone)
        back = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if back != parsed:
            raise ValueRejected(f"is a time that does not exist in {zone.key} (clocks moved on)")
        parsed = local
    return parsed.astimezone(UTC)


def _date_converter(kind: str, fmt: str, timezone: str) -> Callable[[Any], str]:
    zone = ZoneInfo(timezone) if timezone else None

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
        if kind == "date":
            return parsed.date().isoformat()
        return (to_utc(parsed, zone) if zone else parsed).isoformat()

    return convert


def converter(
    kind: str, fmt: str = "", decimal: Literal["", ",", "."] = "", timezone: str = ""
) -> Callable[[Any], Any]:
    """The converter of a field's type. ``decimal`` (number, integer): the decimal mark of
    text values; empty, "12,50" is read with a decimal comma and anything else as Python reads
    it. ``fmt`` (date, datetime): a strptime format; ISO 8601 if empty. ``timezone``
    (datetime): the zone of times that do not say their offset; the value is given in UTC."""
    if kind in ("date", "datetime"):
        return _date_converter(kind, fmt, timezone)
    if decimal and kind in ("number", "integer"):
        return locale_converter(kind, decimal)
    return {
        "string": _to_string,
        "integer": _to_integer,
        "number": _to_number,
        "boolean": _to_boolean,
    }[kind]
