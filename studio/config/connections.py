"""Connections: REST APIs (an auth method and headers) and FTP, FTPS and SFTP servers."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from studio.broker import QUEUE, QUEUE_NAME, check_queue
from studio.config.base import (
    SENSITIVE_HEADER,
    ConfigModel,
    Secret,
    Stamped,
    check_http_url,
    one_line,
)

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HOST = re.compile(r"^[A-Za-z0-9.\-_:\[\]]+$")

# Where a connection's job runs go in distributed mode (studio.broker.route): both kinds have it.
RunQueue = Annotated[
    str,
    AfterValidator(check_queue),
    Field(
        title="Worker queue",
        description="Distributed mode (STUDIO_BROKER_URL) only: the queue the runs of this "
        "connection's jobs are sent to, which only the workers started with --queues naming "
        "it take (say onprem, for a worker inside the network that reaches this server). "
        f"Empty: the default queue, {QUEUE}. Letters, digits and - _ . only. A job's source "
        "connection decides, not its destination's. Runs on this machine (no "
        "STUDIO_BROKER_URL) ignore it.",
        json_schema_extra={"pattern": f"^$|^{QUEUE_NAME}$", "maxLength": 64},
    ),
]


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

    @field_validator("value")
    @classmethod
    def _one_line(cls, v: str) -> str:
        return one_line(v)

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


class ApiConnection(Stamped):
    """A REST API: a base URL, an authentication method and headers sent on every call."""

    # Where the secrets go: a change here means the stored secrets must be typed again.
    secret_bound: ClassVar[tuple[str, ...]] = ("base_url", "auth.token_url", "verify_tls")

    kind: Literal["api"] = "api"
    base_url: str = Field(title="Base URL")
    auth: Auth = Field(default_factory=NoAuth)
    headers: list[Header] = Field(default_factory=list, title="Custom headers")
    timeout: float = Field(default=30.0, gt=0, le=3600, title="Timeout (seconds)")
    verify_tls: bool = Field(default=True, title="Verify TLS certificates")
    test_path: str = Field(
        default="",
        title="Test path",
        description="A cheap authenticated GET that 'Test connection' calls to prove the "
        "credentials (e.g. /me or /products?limit=1): any 4xx or 5xx answer fails the test. "
        "Empty: the base URL, which many APIs answer without checking credentials.",
    )
    max_response_mb: float = Field(
        default=25.0,
        gt=0,
        le=10_000,
        title="Max response size (MB)",
        description="A response is read and parsed whole: a larger one fails clearly instead "
        "of exhausting memory (25 MB of JSON take about 150 MB once parsed). Downloads stream "
        "and have their own limit.",
    )
    max_download_mb: float = Field(
        default=2000.0,
        gt=0,
        le=1_000_000,
        title="Max download size (MB)",
        description="A download (a Download behavior), or one file inside a downloaded ZIP, "
        "larger than this once decompressed fails the run: a small gzip or ZIP bomb cannot "
        "fill the disk.",
    )
    run_queue: RunQueue = ""

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
IMPLICIT_FTPS_PORT = 990
_FINGERPRINT = re.compile(r"^(?:[0-9A-Fa-f]{2}:?){32}$")


def normal_fingerprint(v: str) -> str:
    """A SHA-256 certificate fingerprint as ``AB:CD:…``; accepts hex with or without colons
    (what browsers and ``openssl x509 -fingerprint -sha256`` print) and ``SHA256:`` base64."""
    import base64
    import binascii

    v = v.strip().removeprefix("sha256 Fingerprint=").removeprefix("SHA256 Fingerprint=")
    if v.upper().startswith("SHA256:"):
        try:
            raw = base64.b64decode(v[7:] + "=" * (-len(v[7:]) % 4), validate=True)
        except binascii.Error:
            raw = b""
    elif _FINGERPRINT.match(v):
        raw = bytes.fromhex(v.replace(":", ""))
    else:
        raw = b""
    if len(raw) != 32:
        raise ValueError(
            "is not a SHA-256 fingerprint (64 hex digits, with or without colons, "
            "or SHA256: followed by base64)"
        )
    return ":".join(f"{b:02X}" for b in raw)


class FileServerConnection(Stamped):
    """An FTP, FTPS (explicit or implicit TLS) or SFTP server; paths are taken from ``root``."""

    # Where the secrets go, and what decides whether that is the right server: a change in
    # any of these means the stored secrets must be typed again.
    secret_bound: ClassVar[tuple[str, ...]] = (
        "protocol",
        "host",
        "port",
        "ftps_mode",
        "verify_tls",
        "ca_certificate",
        "tls_fingerprint",
    )

    kind: Literal["file_server"] = "file_server"
    protocol: Literal["ftp", "ftps", "sftp"] = Field(default="sftp", title="Protocol")
    host: str = Field(title="Host", min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535, title="Port")
    username: str = Field(title="Username", min_length=1)
    password: Secret = Field(default="", title="Password")
    private_key: Secret = Field(default="", title="Private key (SFTP)")
    passive: bool = Field(default=True, title="Passive mode (FTP)")
    ftps_mode: Literal["explicit", "implicit"] = Field(
        default="explicit",
        title="FTPS mode",
        description="Explicit: connect in plain text and switch to TLS (AUTH TLS), usually on "
        "port 21. Implicit: TLS from the first byte, usually on port 990.",
    )
    verify_tls: bool = Field(
        default=True,
        title="Verify the TLS certificate (FTPS)",
        description="Check the server's certificate against the system's CAs and the CA "
        "certificate below. Turning it off accepts any server: prefer a CA certificate or a "
        "fingerprint for a self-signed server.",
    )
    ca_certificate: str = Field(
        default="",
        title="CA certificate (FTPS)",
        description="PEM text of the CA (or the self-signed certificate) that signed the "
        "server's certificate, trusted in addition to the system's CAs.",
    )
    tls_fingerprint: str = Field(
        default="",
        title="Certificate fingerprint (FTPS)",
        description="SHA-256 fingerprint of the server's certificate: when set, exactly this "
        "certificate is accepted, whoever signed it and whatever name it carries.",
    )
    root: str = Field(
        default="/",
        title="Root folder",
        description="The server folder every path of the connection's jobs is taken from; "
        "a job cannot read or write outside it.",
    )
    run_queue: RunQueue = ""

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
        if ".." in v.replace("\\", "/").split("/"):
            raise ValueError("must not contain '..': give the folder itself, e.g. /exports")
        return v or "/"

    @field_validator("ca_certificate")
    @classmethod
    def _pem(cls, v: str) -> str:
        if v:
            import ssl

            try:
                ssl.create_default_context().load_verify_locations(cadata=v)
            except (ssl.SSLError, ValueError, TypeError):  # TypeError: not ASCII
                raise ValueError(
                    "is not a PEM certificate (the text from -----BEGIN CERTIFICATE----- to "
                    "-----END CERTIFICATE-----)"
                ) from None
        return v

    @field_validator("tls_fingerprint")
    @classmethod
    def _fingerprint(cls, v: str) -> str:
        return normal_fingerprint(v) if v else v

    @model_validator(mode="after")
    def _defaults(self) -> FileServerConnection:
        if self.port is None:
            implicit = self.protocol == "ftps" and self.ftps_mode == "implicit"
            self.port = IMPLICIT_FTPS_PORT if implicit else DEFAULT_PORTS[self.protocol]
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
