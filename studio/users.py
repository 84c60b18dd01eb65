"""The people who sign in to the studio, and what each may do (the first part of issue 16).

Roles, least to most: a **viewer** sees jobs, runs and data; an **editor** also creates, edits,
tests and runs (secrets stay masked); an **admin** also manages users and API tokens and deletes
connections. Users are configs of the store (audited, never exported: an export is shared, a
password hash is not).

Passwords are hashed with Argon2id through ``argon2-cffi``, the field's maintained binding of
the reference implementation, with its default parameters (RFC 9106's second recommended
option); a hash made with older parameters is replaced at the next sign-in. A failed sign-in
says the same whether the name or the password was wrong, is slowed down, and after
``MAX_FAILURES`` in a row locks the account for ``LOCK_MINUTES``: guessing online gets a few
tries a quarter of an hour.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import Field

from studio.access import ROLES
from studio.config.base import Stamped
from studio.errors import Conflict, StudioError

Role = Literal["viewer", "editor", "admin"]
MIN_PASSWORD = 10
MAX_FAILURES = 5
LOCK_MINUTES = 15
SLOWDOWN = 0.5  # seconds per failure in a row, at most 2 s: a script guesses slowly
_HASHER = PasswordHasher()


class User(Stamped):
    """A person who signs in. ``password_hash`` is never shown: the CLI and pages leave it out."""

    kind: Literal["user"] = "user"
    unaudited: ClassVar[tuple[str, ...]] = ("password_hash",)  # masked in the audit trail
    role: Role = Field(default="viewer", title="Role")
    email: str = Field(default="", title="E-mail")
    password_hash: str = Field(default="", title="Password (Argon2 hash)")
    failures: int = Field(default=0, ge=0, title="Failed sign-ins in a row")
    locked_until: datetime | None = Field(default=None, title="Locked until")
    sessions_since: datetime | None = Field(
        default=None, title="Sessions signed in before this are ended"
    )
    signed_out: list[float] = Field(
        default_factory=list, title="Sessions signed out (when each was signed in)"
    )


class SignInRefused(StudioError):
    """A sign-in that failed; the message never says whether the name exists."""


def _checked(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise StudioError(f"Password: at least {MIN_PASSWORD} characters")
    return password


def add_user(
    store, name: str, password: str, role: str = "viewer", email: str = "", *, source="cli"
) -> User:
    if role not in ROLES:
        raise StudioError(f"Role: one of {', '.join(ROLES)}, not {role!r}")
    data = {"name": name, "role": role, "email": email}
    return store.create(
        "users", data | {"password_hash": _HASHER.hash(_checked(password))}, source=source
    )


def _keeps_an_admin(store, name: str, after: User | None) -> None:
    """Refuse to leave users without an active admin (nobody could then manage them from the
    studio); removing the very last user is allowed: the studio is then open on 127.0.0.1 only,
    as on a laptop. Called inside the change's ``store.transaction()``, under the store's lock:
    two admins lowering each other at once could otherwise both pass it."""
    users = store.list("users")
    target = store.get("users", name)
    rest = [u for u in users if u.id != target.id] + ([after] if after else [])
    if rest and not any(u.role == "admin" and u.status == "active" for u in rest):
        raise Conflict(f"{target.name!r} is the last active admin: make someone else admin first")


def set_role(store, name: str, role: str, *, source="cli") -> User:
    if role not in ROLES:
        raise StudioError(f"Role: one of {', '.join(ROLES)}, not {role!r}")
    with store.transaction():  # the check and the change in one step: see _keeps_an_admin
        _keeps_an_admin(store, name, store.get("users", name).model_copy(update={"role": role}))
        return store.modify(
            "users", name, lambda u: u.model_copy(update={"role": role}), source=source
        )


def set_user_status(store, name: str, status: str, *, source="cli") -> User:
    """Disable (no sign-in, sessions and tokens end at once) or activate a user."""
    with store.transaction():
        _keeps_an_admin(store, name, store.get("users", name).model_copy(update={"status": status}))
        return store.set_status("users", name, status, source=source)


def remove_user(store, name: str, *, source="cli") -> User:
    with store.transaction():
        _keeps_an_admin(store, name, None)
        return store.delete("users", name, source=source)


def reset_password(store, name: str, password: str, *, source="cli") -> User:
    """A new password; it also lifts a lock, as an admin resetting one means, and ends the
    user's sessions (a reset is what one does when a password leaked)."""
    hashed = _HASHER.hash(_checked(password))
    now = datetime.now(UTC)
    update = {"password_hash": hashed, "failures": 0, "locked_until": None, "sessions_since": now}
    return store.modify("users", name, lambda u: u.model_copy(update=update), source=source)


def sign_in(
    store,
    name: str,
    password: str,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> User:
    """The user ``name`` if ``password`` is theirs and the account is open; else
    ``SignInRefused`` with one sentence for every wrong name or password.

    The tries of one name are taken one at a time (a lock per name), so guesses sent in
    parallel all count before the next is checked: a burst gets ``MAX_FAILURES`` tries, not
    one per thread. A name that is no user, or a disabled one, is answered exactly like a user
    with a wrong password (a password check as long, the same slowdown and the same lock,
    counted in this process), so neither the words nor the time tell which names exist."""
    key = (str(store.path), name.casefold())
    with _lock_of(key):
        user = next((u for u in store.list("users") if u.name.casefold() == name.casefold()), None)
        real = user is not None and user.status == "active"
        failures, locked_until = (
            (user.failures, user.locked_until) if real else _phantoms.get(key, (0, None))
        )
        if locked_until and locked_until > now():
            raise SignInRefused(
                f"Too many failed sign-ins: try again after {locked_until:%H:%M} UTC, or ask "
                "an admin to reset the password"
            )
        if real and _verified(user.password_hash, password):
            update: dict = {"failures": 0, "locked_until": None}
            if _HASHER.check_needs_rehash(user.password_hash):
                update["password_hash"] = _HASHER.hash(password)
            if user.failures or user.locked_until or "password_hash" in update:
                store.modify(
                    "users", user.id, lambda u: u.model_copy(update=update), source="studio"
                )
            return user
        if not real:
            _verified(_dummy_hash(), password)  # as long as a real check
        failures += 1
        locked = now() + timedelta(minutes=LOCK_MINUTES) if failures >= MAX_FAILURES else None
        update = {"failures": 0 if locked else failures, "locked_until": locked}
        if real:
            store.modify("users", user.id, lambda u: u.model_copy(update=update), source="studio")
        else:
            _remember_phantom(key, (update["failures"], locked), now())
    sleep(min(SLOWDOWN * failures, 2.0))
    raise SignInRefused("Wrong name or password")


# The tries of names that are no user (or a disabled one), by (store, name): as a user's
# ``failures`` and ``locked_until``, kept in this process only (the studio's, which alone signs
# people in); at most ``_PHANTOMS`` of them, the oldest forgotten first.
_PHANTOMS = 100_000
_phantoms: dict[tuple[str, str], tuple[int, datetime | None]] = {}
_phantoms_lock = threading.Lock()
_dummy: list[str] = []
# The tries of one name one at a time: a lock of these stripes per name (two names may share
# one, which only makes one wait for the other's password check).
_stripes = [threading.Lock() for _ in range(64)]


def _lock_of(key: tuple[str, str]) -> threading.Lock:
    return _stripes[hash(key) % len(_stripes)]


def _remember_phantom(key, value: tuple[int, datetime | None], now: datetime) -> None:
    with _phantoms_lock:
        _phantoms.pop(key, None)
        _phantoms[key] = value  # the newest last
        if len(_phantoms) > _PHANTOMS:
            for k in [k for k, (_n, until) in _phantoms.items() if until and until <= now]:
                del _phantoms[k]
            while len(_phantoms) > _PHANTOMS:
                del _phantoms[next(iter(_phantoms))]


def _verified(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _dummy_hash() -> str:
    if not _dummy:
        _dummy.append(_HASHER.hash("not anyone's password"))
    return _dummy[0]


def end_sessions(store, name: str, *, source="studio") -> User:
    """Sign ``name`` out everywhere: every session made before now ends at its next click."""
    now = datetime.now(UTC)
    return store.modify(
        "users", name, lambda u: u.model_copy(update={"sessions_since": now}), source=source
    )
