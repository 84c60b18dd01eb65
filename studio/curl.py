"""Turn a pasted cURL command into a call: method, URL, query, headers and body.

Analysts copy requests from API docs, Postman or the browser's "Copy as cURL". The call keeps
the path relative to the connection's base URL when the URL starts with it, and the headers that
carry credentials are set apart so that the studio can offer to move them into the connection,
where they are encrypted, instead of leaving them in the job.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from studio.errors import StudioError
from studio.models import SENSITIVE_HEADER

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


def parse_curl(command: str, base_url: str = "") -> ParsedCurl:
    """Parse ``command``; raises ``StudioError`` saying what it could not read."""
    text = command.replace("\\\r\n", " ").replace("\\\n", " ").strip()
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise StudioError(f"cURL command: {e} (an unclosed quote?)") from None
    if not words or words[0] != "curl":
        raise StudioError("cURL command: must start with curl")
    method, url, headers, data, get, user = None, None, [], [], False, None
    i = 1
    while i < len(words):
        word = words[i]
        value = words[i + 1] if i + 1 < len(words) else None
        if word in ("-X", "--request"):
            method, i = (value or "GET").upper(), i + 2
        elif word in ("-H", "--header"):
            name, _, val = (value or "").partition(":")
            headers.append({"name": name.strip(), "value": val.strip()})
            i += 2
        elif word in _DATA_FLAGS:
            data.append(value or "")
            if word == "--json":
                headers.append({"name": "Content-Type", "value": "application/json"})
            i += 2
        elif word in ("-u", "--user"):
            user, i = value, i + 2
        elif word in ("-G", "--get"):
            get, i = True, i + 1
        elif word == "--url":
            url, i = value, i + 2
        elif word in _IGNORED_FLAGS:
            i += 1
        elif word.startswith("-"):
            raise StudioError(f"cURL command: the option {word} is not supported")
        else:
            url, i = word, i + 1
    if not url:
        raise StudioError("cURL command: no URL found")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StudioError(f"cURL command: {url!r} is not an http(s) URL")
    query = [{"name": k, "value": v} for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    body: dict = {"type": "none"}
    if data and get:
        query += [{"name": k, "value": v} for d in data for k, v in parse_qsl(d)]
    elif data:
        joined = "&".join(data)
        content_type = next(
            (h["value"] for h in headers if h["name"].lower() == "content-type"), ""
        )
        try:
            parsed = json.loads(joined)
        except json.JSONDecodeError:
            parsed = None
        if parsed is not None and ("json" in content_type or not content_type):
            body = {"type": "json", "content": json.dumps(parsed, indent=2)}
        elif "=" in joined and "json" not in content_type:
            body = {
                "type": "form",
                "fields": [{"name": k, "value": v} for k, v in parse_qsl(joined)],
            }
        else:
            body = {"type": "raw", "content": joined, "content_type": content_type}
        headers = [
            h for h in headers if h["name"].lower() != "content-type" or body["type"] == "raw"
        ]
    if user:
        import base64

        headers.append(
            {"name": "Authorization", "value": "Basic " + base64.b64encode(user.encode()).decode()}
        )
    bare = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    base = base_url.rstrip("/")
    path = bare[len(base) :] or "/" if base and bare.startswith(base) else bare
    secret = [h for h in headers if SENSITIVE_HEADER.search(h["name"])]
    plain = [h for h in headers if h not in secret]
    call = {
        "method": method or ("POST" if data and not get else "GET"),
        "path": path,
        "query": query,
        "headers": plain,
        "body": body,
    }
    return ParsedCurl(call=call, secret_headers=secret, url=bare)
