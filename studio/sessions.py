"""A signed-in session: the studio's cookie after a password sign-in, and who it belongs to.

The cookie holds the user's id, signed and timestamped with ``itsdangerous`` (the signer
Flask's sessions use) under a key derived from the home's secret key, so nothing but the
studio can make one, and it is HttpOnly, so no script of the page can read it. It carries no
role: every script run looks the user up again, so a changed role applies at once and a removed
or disabled user is out at their next click. A password reset (or "sign out everywhere") moves
the user's ``sessions_since`` forward, which ends every session made before it; Sign out ends
its own session on the server too (``end_session``), not only the browser's copy of the cookie.

Sessions last ``STUDIO_SESSION_HOURS`` (12 by default, a working day): the signature's
timestamp is checked on every read, the cookie's own ``Max-Age`` only tidies the browser.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer

from studio.access import LOCAL, Who, acting
from studio.errors import NotFound
from studio.vault import load_key

COOKIE = "studio_session"
_SALT = "studio-session"


def lifetime() -> int:
    """Seconds a session lasts."""
    try:
        hours = float(os.environ.get("STUDIO_SESSION_HOURS", "") or 12)
    except ValueError:
        hours = 12
    return max(60, int(hours * 3600))


def _serializer(store) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(load_key(store.home), salt=_SALT)


def issue(store, user) -> str:
    """A session token for ``user`` (a ``User`` just signed in)."""
    # "t" to the microsecond: a reset in the same second as a sign-in must still tell them apart
    return _serializer(store).dumps({"u": user.id, "t": time.time()})


def who_from_token(store, token: str | None) -> Who | None:
    """The signed-in person ``token`` stands for, or None when it is missing, forged, expired,
    older than its user's ``sessions_since``, or its user is gone or disabled."""
    if not token:
        return None
    try:
        data = _serializer(store).loads(token, max_age=lifetime())
        user, issued = store.get("users", str(data["u"])), float(data["t"])
    except (BadSignature, NotFound, KeyError, TypeError, ValueError):
        return None
    if user.status != "active":
        return None
    if user.sessions_since and issued <= user.sessions_since.timestamp():
        return None
    if issued in user.signed_out:
        return None
    return Who(name=user.name, role=user.role, via="password", email=user.email)


def end_session(store, token: str | None) -> None:
    """Sign-out: the session ``token`` stands for ends for good, so that a copy of its cookie
    taken before (a proxy's log, another browser) opens nothing any more. The user keeps the
    sign-in times of their ended sessions for as long as a session lasts; other sessions of
    theirs go on."""
    who = who_from_token(store, token)
    if who is None:
        return
    data = _serializer(store).loads(token, max_age=lifetime())
    oldest = time.time() - lifetime()
    acting.set(who)  # the audit trail says who signed out (this thread's context only)
    store.modify(
        "users",
        str(data["u"]),
        lambda u: u.model_copy(
            update={"signed_out": [t for t in u.signed_out if t > oldest] + [float(data["t"])]}
        ),
        source="studio",
    )


def has_users(store) -> bool:
    return bool(store.list("users"))


def is_local(address: str) -> bool:
    """Whether a bind address only answers this machine (a laptop's studio needs no sign-in)."""
    if address == "localhost":
        return True
    try:  # "" (Streamlit's default) and 0.0.0.0 answer every network
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# Headers a reverse proxy adds: a request carrying one came from wherever the proxy faces.
FORWARDED = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip")


def from_this_machine(headers: Mapping[str, str]) -> bool:
    """Whether a request to a studio on the loopback comes from a browser of this machine:
    addressed to one of its own names (not to a name of elsewhere that its DNS turned into
    127.0.0.1, DNS rebinding, whose pages would then be the studio's own origin) and not
    forwarded by a reverse proxy. No headers at all is no request (a test's script run)."""
    if not headers:
        return True
    names = {k.lower(): v for k, v in headers.items()}
    if any(h in names for h in FORWARDED):
        return False
    return is_local(urlsplit("//" + names.get("host", "")).hostname or "")


def open_access(store, address: str, sso: bool, headers: Mapping[str, str]) -> Who | None:
    """``LOCAL`` (everyone an admin, as on a laptop) when the studio listens on this machine
    only, has neither users nor single sign-on, and the request (``headers``) comes from this
    machine; else None: people must sign in."""
    if sso or has_users(store) or not is_local(address) or not from_this_machine(headers):
        return None
    return LOCAL
