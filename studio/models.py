"""The config model: what a connection is, validated once, at the edge.

Every config that the studio, the CLI and the REST API accept passes through these pydantic
models, so a rule written here holds everywhere. Fields carry a human title because validation
errors are shown to analysts as sentences naming the field (see ``studio.errors``), and secret
fields carry the ``SECRET`` marker because the store encrypts them and every view masks them
(see ``studio.vault``).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _SecretMarker:
    """Field metadata that marks a value as a secret: encrypted at rest, masked when shown."""

    def __repr__(self) -> str:
        return "SECRET"


SECRET = _SecretMarker()

Secret = Annotated[str, SECRET, Field(json_schema_extra={"format": "password", "writeOnly": True})]
Status = Literal["active", "disabled"]
Name = Annotated[str, Field(min_length=1, max_length=120, title="Name")]

# Header names that almost always carry credentials; their values are treated as secrets.
SENSITIVE_HEADER = re.compile(r"auth|token|key|secret|pass|cookie|session|signature", re.I)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HOST = re.compile(r"^[A-Za-z0-9.\-_:\[\]]+$")


def new_id() -> str:
    """A short random id: stable across renames, unlike the name, and safe in URLs."""
    return uuid.uuid4().hex[:16]


class ConfigModel(BaseModel):
    """Base of every config: unknown keys are refused so that a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_default=True)

    def secret_fields(self) -> list[str]:
        """Names of this model's own fields holding secrets (nested models report their own)."""
        return [name for name, f in type(self).model_fields.items() if SECRET in f.metadata]


# --- API connections ---------------------------------------------------------------------------


class Header(ConfigModel):
    """A custom header sent on every call of a connection."""

    name: str = Field(title="Header name", min_length=1)
    value: str = Field(default="", title="Header value")
    secret: bool = Field(
        default=False,
        title="Secret",
        description="Encrypt and mask the value. Defaults to true for names such as "
        "Authorization, X-API-Key or Cookie.",
    )

    @model_validator(mode="before")
    @classmethod
    def _guess_secret(cls, data: object) -> object:
        if isinstance(data, dict) and "secret" not in data:
            data = {**data, "secret": bool(SENSITIVE_HEADER.search(str(data.get("name", ""))))}
        return data

    @field_validator("name")
    @classmethod
    def _token(cls, v: str) -> str:
        if not _HEADER_NAME.match(v):
            raise ValueError("may hold letters, digits and - _ . only, no spaces or colons")
        return v

    def secret_fields(self) -> list[str]:
        return ["value"] if self.secret else []


class NoAuth(ConfigModel):
    type: Literal["none"] = "none"


class OAuth2Auth(ConfigModel):
    """OAuth 2.0: the client-credentials grant, or the password grant when a username is set."""

    type: Literal["oauth2"] = "oauth2"
    token_url: str = Field(title="Access token URL")
    client_id: str = Field(title="Client ID", min_length=1)
    client_secret: Secret = Field(title="Client secret", min_length=1)
    username: str = Field(default="", title="Username")
    password: Secret = Field(default="", title="Password")
    scope: str = Field(default="", title="Scope")
    client_auth: Literal["body", "basic"] = Field(
        default="body",
        title="Client authentication",
        description="Send the client id and secret in the token request body, or as HTTP basic.",
    )

    @field_validator("token_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_http_url(v)

    @model_validator(mode="after")
    def _password_needs_username(self) -> OAuth2Auth:
        if self.password and not self.username:
            raise ValueError("Username: is required when a password is given (password grant)")
        return self

    @property
    def grant(self) -> str:
        return "password" if self.username else "client_credentials"


class BasicAuth(ConfigModel):
    type: Literal["basic"] = "basic"
    username: str = Field(title="Username", min_length=1)
    password: Secret = Field(default="", title="Password")


class BearerAuth(ConfigModel):
    type: Literal["bearer"] = "bearer"
    token: Secret = Field(title="Bearer token", min_length=1)


class ApiKeyAuth(ConfigModel):
    type: Literal["api_key"] = "api_key"
    name: str = Field(title="API key name", min_length=1)
    value: Secret = Field(title="API key value", min_length=1)
    placement: Literal["header", "query"] = Field(default="header", title="Send API key in")


Auth = Annotated[
    NoAuth | OAuth2Auth | BasicAuth | BearerAuth | ApiKeyAuth,
    Field(discriminator="type", title="Authentication"),
]

AUTH_LABELS = {
    "none": "No auth",
    "oauth2": "OAuth 2.0",
    "basic": "Basic",
    "bearer": "Bearer token",
    "api_key": "API key",
}


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


class ApiConnection(Stamped):
    """A REST API: a base URL, an authentication method and headers sent on every call."""

    # Where the secrets go: a change here means the stored secrets must be typed again.
    secret_bound: ClassVar[tuple[str, ...]] = ("base_url", "auth.token_url")

    kind: Literal["api"] = "api"
    base_url: str = Field(title="Base URL")
    auth: Auth = Field(default_factory=NoAuth)
    headers: list[Header] = Field(default_factory=list, title="Custom headers")
    timeout: float = Field(default=30.0, gt=0, le=3600, title="Timeout (seconds)")
    verify_tls: bool = Field(default=True, title="Verify TLS certificates")
    max_response_mb: float = Field(
        default=100.0,
        gt=0,
        le=10_000,
        title="Max response size (MB)",
        description="A larger response fails clearly instead of exhausting memory; downloads "
        "stream to disk and are not limited.",
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_http_url(v)

    @field_validator("headers")
    @classmethod
    def _unique_headers(cls, v: list[Header]) -> list[Header]:
        seen: set[str] = set()
        for h in v:
            if h.name.lower() in seen:
                raise ValueError(f"header {h.name!r} is given twice")
            seen.add(h.name.lower())
        return v

    @property
    def target(self) -> str:
        return self.base_url

    @property
    def auth_label(self) -> str:
        return AUTH_LABELS[self.auth.type]


DEFAULT_PORTS = {"ftp": 21, "ftps": 21, "sftp": 22}


class FileServerConnection(Stamped):
    """An FTP, FTPS (explicit TLS) or SFTP server; every path is taken relative to ``root``."""

    secret_bound: ClassVar[tuple[str, ...]] = ("protocol", "host", "port")

    kind: Literal["file_server"] = "file_server"
    protocol: Literal["ftp", "ftps", "sftp"] = Field(default="sftp", title="Protocol")
    host: str = Field(title="Host", min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535, title="Port")
    username: str = Field(title="Username", min_length=1)
    password: Secret = Field(default="", title="Password")
    private_key: Secret = Field(default="", title="Private key (SFTP)")
    passive: bool = Field(default=True, title="Passive mode (FTP)")
    verify_tls: bool = Field(default=True, title="Verify the TLS certificate (FTPS)")
    root: str = Field(default="/", title="Root folder")

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if "://" in v:
            raise ValueError("give the host name only, without ftp:// or sftp://")
        if not _HOST.match(v):
            raise ValueError("may hold letters, digits, dots and dashes only, no path")
        return v

    @field_validator("root")
    @classmethod
    def _root(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("must not contain NUL bytes")
        return v or "/"

    @model_validator(mode="after")
    def _defaults(self) -> FileServerConnection:
        if self.port is None:
            self.port = DEFAULT_PORTS[self.protocol]
        if self.private_key and self.protocol != "sftp":
            raise ValueError("Private key (SFTP): only SFTP connections use a private key")
        return self

    @property
    def target(self) -> str:
        return f"{self.protocol}://{self.host}:{self.port}{self.root}"

    @property
    def auth_label(self) -> str:
        return "Private key" if self.private_key else "Password"


Connection = Annotated[ApiConnection | FileServerConnection, Field(discriminator="kind")]

KIND_LABELS = {"api": "API", "file_server": "File server"}
