"""Masking secrets in what a trace shows of requests and responses.

The rule is documented in docs/jobs.md ("Secrets in requests and traces"): by exact value
wherever a secret is a whole value, as a substring in free text only when it is long enough
not to be found in data by chance, and credential-named JSON fields whatever they hold.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote, quote_plus

from studio.vault import MASK

# JSON fields that hold credentials whatever their value: an endpoint hands tokens out before
# the masker knows them, and a server may echo the request's Authorization header.
CREDENTIAL_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "password",
        "authorization",
        "proxy-authorization",
        "api_key",
        "apikey",
        "x-api-key",
        "session_token",
        "sessionid",
        "session_id",
    }
)
_TOKEN_FIELD = re.compile(
    r'("(?:' + "|".join(map(re.escape, sorted(CREDENTIAL_KEYS))) + r')"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.I,
)
_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_PAIR = re.compile(r"([?&;]|^)([^=&;?#\s]+)=([^&;#\s\"]*)")
_SCHEME = re.compile(r"\b(Bearer|Basic|Token|Digest)(\s+)([A-Za-z0-9._~+/=-]+)", re.I)
MIN_SECRET_IN_TEXT = 8
_SENSITIVE_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie")


def basic_credentials(user: str, password: str) -> str:
    """What ``Authorization: Basic …`` carries (requests encodes it as Latin-1)."""
    raw = f"{user}:{password}".encode("latin-1", "replace")
    return base64.b64encode(raw).decode()


class Masker:
    """Masks secrets in what a trace shows of requests and responses; records and rows are
    data and are never masked.

    The rule, documented in docs/jobs.md: a secret (and each form it takes on the wire:
    percent-encoded, or base64 in a basic ``Authorization``) is masked **by exact value**, at
    any length, wherever it is a whole value: a header, a query or form parameter, a JSON
    string, the credential after an auth scheme. Inside free text (a URL path, an error
    message, a body that is neither JSON nor a form) only secrets of at least
    ``MIN_SECRET_IN_TEXT`` characters are masked as substrings: a shorter one would mask data
    that happens to contain it, and tell an onlooker what the secret is by what gets masked.
    JSON fields named like credentials (``access_token``, ``password``, ``authorization``…) are
    masked whatever their value."""

    def __init__(self, secrets: list[str]):
        self._exact: set[str] = set()
        self._text: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if not secret:
            return
        forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
        self._exact |= forms
        if len(secret) >= MIN_SECRET_IN_TEXT:
            self._text = sorted(set(self._text) | forms, key=len, reverse=True)

    def is_secret(self, value: str) -> bool:
        return value in self._exact

    def value(self, value: str) -> str:
        """One whole value (a header, a parameter, a JSON string)."""
        if value in self._exact:
            return MASK
        m = _SCHEME.fullmatch(value)
        if m and m.group(3) in self._exact:
            return f"{m.group(1)}{m.group(2)}{MASK}"
        return self(value)

    def json(self, value: Any) -> Any:
        """A parsed response with the secrets masked by exact value, and credential fields
        masked whatever they hold: for the documents a preview keeps."""
        if isinstance(value, str):
            return self.value(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                credential = isinstance(v, str) and v and str(k).lower() in CREDENTIAL_KEYS
                out[k] = MASK if credential else self.json(v)
            return out
        return value

    def __call__(self, text: str) -> str:
        """Free text: whole values found in it (JSON strings, ``name=value`` pairs, the
        credential after an auth scheme) by exact value, then long secrets as substrings."""
        if not text:
            return text
        exact = self._exact
        if exact:

            def string(m: re.Match) -> str:
                inner = m.group(1)
                if inner in exact or ("\\" in inner and _unescape(inner) in exact):
                    return f'"{MASK}"'
                return m.group(0)

            def pair(m: re.Match) -> str:
                if m.group(3) in exact:
                    return f"{m.group(1)}{m.group(2)}={MASK}"
                return m.group(0)

            def scheme(m: re.Match) -> str:
                if m.group(3) in exact:
                    return f"{m.group(1)}{m.group(2)}{MASK}"
                return m.group(0)

            text = _JSON_STRING.sub(string, text)
            text = _PAIR.sub(pair, text)
            text = _SCHEME.sub(scheme, text)
        for secret in self._text:
            if secret in text:
                text = text.replace(secret, MASK)
        return _TOKEN_FIELD.sub(lambda m: f'{m.group(1)}"{MASK}"', text)

    def headers(self, headers: dict) -> dict[str, str]:
        return {
            k: MASK if k.lower() in _SENSITIVE_HEADERS else self.value(str(v))
            for k, v in headers.items()
        }


def _unescape(inner: str) -> str:
    try:
        return json.loads(f'"{inner}"')
    except ValueError:
        return inner
