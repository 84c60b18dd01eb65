"""The base of every config model: strict fields, secrets marked for the vault, identity
and timestamps, and the checks several kinds share.

Every config that the studio, the CLI and the REST API accept passes through pydantic models
built on ``ConfigModel``, so a rule written once holds everywhere. Fields carry a human title
because validation errors are shown as sentences naming the field (``studio.errors``), and
secret fields carry the ``SECRET`` marker because the store encrypts them and every view masks
them (``studio.vault``).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _SecretMarker:
    """Field metadata that marks a value as a secret: encrypted at rest, masked when shown."""

    def __repr__(self) -> str:
        return "SECRET"


SECRET = _SecretMarker()

# Not writeOnly: views return the mask, which a PUT may send back to keep the stored secret.
Secret = Annotated[str, SECRET, Field(json_schema_extra={"format": "password"})]
Status = Literal["active", "disabled"]
Name = Annotated[str, Field(min_length=1, max_length=120, title="Name")]

# Header names that almost always carry credentials; their values are treated as secrets.
SENSITIVE_HEADER = re.compile(r"auth|token|key|secret|pass|cookie|session|signature", re.I)


def one_line(v: str) -> str:
    """A header value travels on one line: CR, LF or NUL would end it (or smuggle another)."""
    if any(c in v for c in "\r\n\x00"):
        raise ValueError("must not contain line breaks")
    return v


def new_id() -> str:
    """A short random id: stable across renames, unlike the name, and safe in URLs."""
    return uuid.uuid4().hex[:16]


class ConfigModel(BaseModel):
    """Base of every config: unknown keys are refused so that a typo is an error, not a no-op."""

    # Fields named after the seed manuals' API (Celigo's camelCase debugUntil) have that name as
    # their alias: the REST API and exports use it, and either name is accepted.
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        validate_default=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    def secret_fields(self) -> list[str]:
        """Names of this model's own fields holding secrets (nested models report their own)."""
        return [name for name, f in type(self).model_fields.items() if SECRET in f.metadata]


def check_http_url(v: str) -> str:
    """Refuse what ``requests`` would choke on later, with the reason an analyst can fix."""
    if not v:
        raise ValueError("is required")
    if any(c.isspace() for c in v):
        raise ValueError("must not contain spaces")
    parts = urlsplit(v)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("has no host name after the scheme")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "must not hold a user name or password (user:password@host): it would be stored "
            "and shown in clear; use Basic authentication instead"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError as e:
        raise ValueError("has an invalid port") from e
    return v


class Stamped(ConfigModel):
    """Identity, status and timestamps that every stored config carries."""

    id: str = Field(default_factory=new_id, title="ID", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    name: Name
    status: Status = Field(default="active", title="Status")
    created_at: datetime | None = Field(default=None, title="Created")
    updated_at: datetime | None = Field(default=None, title="Updated")

    @field_validator("name")
    @classmethod
    def _printable(cls, v: str) -> str:
        if any(not c.isprintable() for c in v):
            raise ValueError("must not contain control characters")
        return v
