"""Who is acting, and what their role lets them do: the one permission check of issue 16.

Every front end (a studio page, a REST call, an API token) turns its caller into a ``Who`` and
calls ``require`` before it changes anything, on the server: a hidden button is not a check.
The role is read again from the users of the store each time, so that a changed role or a
removed user takes effect at the next click, not at the next sign-in.

``acting`` carries the caller through a request or a script run, the way ``entity_scope``
carries the entities: the store's audit trail and the run history read it to record who did
what, without every call between a page and the store passing it on.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from studio.errors import StudioError

ROLES: tuple[str, ...] = ("viewer", "editor", "admin")
WHAT = {
    "viewer": "see jobs, runs and data",
    "editor": "also create, edit, test and run",
    "admin": "also manage users and API tokens and delete connections",
}


class Forbidden(StudioError):
    """The caller is known but their role does not allow this (HTTP 403)."""


@dataclass(frozen=True)
class Who:
    """A signed-in person, or a token acting for one. ``via`` says how: ``password``,
    ``sso``, ``token`` or ``local`` (a studio on 127.0.0.1 with no users, as on a laptop)."""

    name: str
    role: str
    via: str = "password"
    email: str = ""

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


LOCAL = Who(name="", role="admin", via="local")

acting: ContextVar[Who | None] = ContextVar("acting", default=None)
# Where else the caller may be found when ``acting`` is unset: the studio registers one that
# reads the browser session, since Streamlit runs a fragment in a thread the page's run left.
fallbacks: list[Callable[[], Who | None]] = []


def require(who: Who | None, role: str, doing: str) -> Who:
    """``who`` if their role is ``role`` or above; else ``Forbidden`` naming what was refused."""
    if who is None:
        raise Forbidden(f"Sign in to {doing}")
    if not who.can(role):
        name = who.name or "this session"
        raise Forbidden(f"{name} is {_a(who.role)}: to {doing} needs {_a(role)} or above")
    return who


def acting_who() -> Who | None:
    """The current caller: ``acting``, else the first fallback that knows one."""
    who = acting.get()
    for fallback in fallbacks:
        if who is not None:
            break
        who = fallback()
    return who


def acting_name() -> str:
    """The name the audit trail and run history record for the current caller ('' if none)."""
    who = acting_who()
    return who.name if who else ""


def _a(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"
