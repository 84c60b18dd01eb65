"""Tokens for the REST API: made by the CLI, shown once, stored only as a hash.

A token is ``cs_`` and 32 random bytes in URL-safe base64; the store keeps its SHA-256. The API
hashes what a caller sends and compares it with every token's hash in constant time.

A token belongs to a user of the studio (``studio.users``) and acts with that user's role, read
again at every call: a user made a viewer, disabled or removed changes what their tokens can do
at the next request, not at the next token. A token can expire.

A token with no user was made before tokens had users, by someone with access to the machine
(the CLI reads the store directly): it acts as an admin named after the token, as the studio
does on a laptop with no users. Revoke it and make one for a user to narrow it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

from pydantic import Field

from studio.access import Who
from studio.config.base import Stamped
from studio.errors import ConfigError, NotFound


class ApiToken(Stamped):
    kind: Literal["api_token"] = "api_token"
    unaudited: ClassVar[tuple[str, ...]] = ("hash",)  # masked in the audit trail
    hash: str = Field(title="SHA-256 of the token", pattern=r"^[0-9a-f]{64}$")
    prefix: str = Field(default="", title="First characters, to recognise it")
    user: str = Field(default="", title="User it acts for ('' : an admin, made before users)")
    # the user's id too: a user removed and another given the name later does not get the token
    user_id: str = Field(default="", title="That user's id")
    expires_at: datetime | None = Field(default=None, title="Expires")

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    store,
    name: str,
    *,
    user: str = "",
    expires_at: datetime | None = None,
    source: str = "cli",
) -> str:
    """A new token named ``name`` acting for ``user`` (a user's name) until ``expires_at``
    (never when None); the only time it is ever shown is this return value.

    Without ``user`` the token acts as an admin (see the module's docstring): the CLI asks for
    a user whenever the store has some."""
    data: dict = {"name": name}
    if user:
        owner = _user_named(store, user)
        data |= {"user": owner.name, "user_id": owner.id}  # the name as the store spells it
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ConfigError(["Expires: give a time zone (UTC), not a local time"])
        if expires_at <= datetime.now(UTC):
            raise ConfigError([f"Expires: {expires_at:%Y-%m-%d %H:%M} UTC is already past"])
        data["expires_at"] = expires_at.astimezone(UTC).isoformat()
    token = "cs_" + secrets.token_urlsafe(32)
    store.create("api_tokens", data | {"hash": _digest(token), "prefix": token[:7]}, source=source)
    return token


def _user_named(store, name: str):
    try:
        user = store.get("users", name)
    except NotFound:
        raise ConfigError(
            [f"User: there is no user called {name!r} (runner users add {name} makes one)"]
        ) from None
    if user.status != "active":
        raise ConfigError([f"User: {user.name!r} is disabled; a token for them would not work"])
    return user


def token_role(store, token: ApiToken, users: list | None = None) -> str:
    """The role ``token`` acts with now: its user's, "admin" for a token with no user, "" when
    its user is gone or disabled (it then opens nothing)."""
    if not token.user:
        return "admin"
    users = store.list("users") if users is None else users
    user = _owner(token, users)
    return user.role if user else ""


def _owner(token: ApiToken, users: list):
    """The active user ``token`` was made for, by name and id: someone given a removed user's
    name later is another person, and a renamed user's tokens stop (make them new ones)."""
    for u in users:
        if u.name.casefold() == token.user.casefold() and u.status == "active":
            return u if u.id == token.user_id or not token.user_id else None
    return None


def verify(store, token: str) -> Who | None:
    """Who the token ``token`` acts for, with their role now (``via`` "token"); None when the
    token is unknown, disabled or expired, or its user was removed or disabled.

    A token with no user (made before tokens had users) is an admin named after the token."""
    if not token:
        return None
    digest = _digest(token)
    found = None
    for t in store.list("api_tokens"):  # every hash compared: the time tells nothing
        if hmac.compare_digest(t.hash, digest) and t.status == "active":
            found = t
    if found is None or found.expired():
        return None
    if not found.user:
        return Who(name=found.name, role="admin", via="token")
    user = _owner(found, store.list("users"))
    if user is None:
        return None
    return Who(name=user.name, role=user.role, via="token", email=user.email)


_SPAN = re.compile(r"^(\d+)\s*([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """When a token made now with ``--expires text`` stops working: ``30d``, ``12h``, ``90m``
    from now, or a date (``2027-01-31``: from 00:00 UTC that day) or an ISO time (UTC unless
    it says otherwise)."""
    now = now or datetime.now(UTC)
    text = text.strip()
    span = _SPAN.match(text.lower())
    if span:
        return now + timedelta(**{_UNITS[span[2]]: int(span[1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            [f"Expires: {text!r} is not 30d, 12h, 90m, a date (2027-01-31) or an ISO time"]
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
