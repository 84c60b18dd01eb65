"""Tokens for the REST API: made by the CLI, shown once, stored only as a hash.

A token is ``cs_`` and 32 random bytes in URL-safe base64; the store keeps its SHA-256. The API
hashes what a caller sends and compares it with every active token's hash in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from pydantic import Field

from studio.config.base import Stamped


class ApiToken(Stamped):
    kind: Literal["api_token"] = "api_token"
    hash: str = Field(title="SHA-256 of the token", pattern=r"^[0-9a-f]{64}$")
    prefix: str = Field(default="", title="First characters, to recognise it")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store, name: str) -> str:
    """A new token named ``name``; the only time it is ever shown is this return value."""
    token = "cs_" + secrets.token_urlsafe(32)
    store.create(
        "api_tokens", {"name": name, "hash": _digest(token), "prefix": token[:7]}, source="cli"
    )
    return token


def verify(store, token: str) -> str | None:
    """The name of the active token ``token`` is, or None."""
    if not token:
        return None
    digest = _digest(token)
    found = None
    for t in store.list("api_tokens"):
        if hmac.compare_digest(t.hash, digest) and t.status == "active":
            found = t.name
    return found
