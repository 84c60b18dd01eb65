"""Turn a pasted cURL command into a call: method, URL, query, headers and body.

Analysts copy requests from API docs, Postman or the browser's "Copy as cURL". The call keeps
the path relative to the connection's base URL when the URL starts with it, and the headers that
carry credentials are set apart so that the studio can offer to move them into the connection,
where they are encrypted, instead of leaving them in the job.
"""

from __future__ import annotations

import base64
import json
import shlex
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from studio.config.base import SENSITIVE_HEADER
from studio.errors import StudioError

_IGNORED_FLAGS = {
    "--compressed",
    "-s",
    "--silent",
    "-S",
    "--show-error",
    "-L",
    "--location",
    "-k",
    "--insecure",
    "-i",
    "--include",
    "-v",
    "--verbose",
    "-f",
    "--fail",
}
_DATA_FLAGS = {
    "-d",
    "--data",
    "--data-raw",
    "--data-binary",
    "--data-ascii",
    "--data-urlencode",
    "--json",
}


@dataclass
class ParsedCurl:
    call: dict
    secret_headers: list[dict] = field(default_factory=list)
    url: str = ""


@dataclass
class _Options:
    """What the command's options say, before it is turned into a call."""

    method: str | None = None
    url: str | None = None
    headers: list[dict] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    get: bool = False
    user: str | None = None


def _words(command: str) -> list[str]:
    text = command.replace("\\\r\n", " ").replace("\\\n", " ").strip()
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise StudioError(f"cURL command: {e} (an unclosed quote?)") from None
    if not words or words[0] != "curl":
        raise StudioError("cURL command: must start with curl")
    return words


def _options(words: list[str]) -> _Options:
    o = _Options()
    i = 1
    while i < len(words):
        word = words[i]
        value = words[i + 1] if i + 1 < len(words) else None
        i += 2  # most options take a value; the others step back one
        if word in ("-X", "--request"):
            o.method = (value or "GET").upper()
        elif word in ("-H", "--header"):
            name, _, val = (value or "").partition(":")
            o.headers.append({"name": name.strip(), "value": val.strip()})
        elif word in _DATA_FLAGS:
            o.data.append(value or "")
            if word == "--json":
                o.headers.append({"name": "Content-Type", "value": "application/json"})
        elif word in ("-u", "--user"):
            o.user = value
        elif word == "--url":
            o.url = value
        elif word in ("-G", "--get"):
            o.get, i = True, i - 1
        elif word in _IGNORED_FLAGS:
            i -= 1
        elif word.startswith("-"):
            raise StudioError(f"cURL command: the option {word} is not supported")
        else:
            o.url, i = word, i - 1
    return o


def _body(data: list[str], headers: list[dict]) -> tuple[dict, list[dict]]:
    """The body the data options make (JSON, a form, or raw text), and the headers left: a
    Content-Type that the body type already says goes."""
    joined = "&".join(data)
    content_type = next((h["value"] for h in headers if h["name"].lower() == "content-type"), "")
    try:
        parsed = json.loads(joined)
    except json.JSONDecodeError:
        parsed = None
    if parsed is not None and ("json" in content_type or not content_type):
        body = {"type": "json", "content": json.dumps(parsed, indent=2)}
    elif "=" in joined and "json" not in content_type:
        body = {"type": "form", "fields": [{"name": k, "value": v} for k, v in parse_qsl(joined)]}
    else:
        body = {"type": "raw", "content": joined, "content_type": content_type}
    kept = [h for h in headers if h["name"].lower() != "content-type" or body["type"] == "raw"]
    return body, kept


def parse_curl(command: str, base_url: str = "") -> ParsedCurl:
    """Parse ``command``; raises ``StudioError`` saying what it could not read."""
    o = _options(_words(command))
    if not o.url:
        raise StudioError("cURL command: no URL found")
    parts = urlsplit(o.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StudioError(f"cURL command: {o.url!r} is not an http(s) URL")
    query = [{"name": k, "value": v} for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    body: dict = {"type": "none"}
    headers = o.headers
    if o.data and o.get:
        query += [{"name": k, "value": v} for d in o.data for k, v in parse_qsl(d)]
    elif o.data:
        body, headers = _body(o.data, headers)
    if o.user:
        encoded = base64.b64encode(o.user.encode()).decode()
        headers.append({"name": "Authorization", "value": f"Basic {encoded}"})
    bare = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    base = base_url.rstrip("/")
    path = bare[len(base) :] or "/" if base and bare.startswith(base) else bare
    secret = [h for h in headers if SENSITIVE_HEADER.search(h["name"])]
    call = {
        "method": o.method or ("POST" if o.data and not o.get else "GET"),
        "path": path,
        "query": query,
        "headers": [h for h in headers if h not in secret],
        "body": body,
    }
    return ParsedCurl(call=call, secret_headers=secret, url=bare)
