"""HTTP for one run: authentication, transport retries, size limits and a masked trace.

One ``HttpClient`` (one ``requests.Session``) per run or preview. Transport retries are
urllib3's ``Retry`` mounted through requests' ``HTTPAdapter``: 429, 502, 503, 504, timeouts and
dropped connections are retried with exponential backoff and jitter, honouring ``Retry-After``
up to a cap; every other 4xx/5xx fails at once with the status and a body excerpt. OAuth 2.0
tokens are cached per connection (process-wide) until shortly before they expire and fetched
again once when the API answers 401. Every exchange is reported to ``on_exchange`` with every
secret of the connection masked, whatever header, parameter or body it travelled in.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from studio.config.connections import ApiConnection, OAuth2Auth
from studio.errors import StudioError
from studio.masking import Masker, basic_credentials
from studio.readers import parse_json
from studio.vault import secret_slots

RETRY_STATUSES = (429, 502, 503, 504)
EXCERPT = 2000
TOKEN_SKEW = 30.0  # refresh this many seconds before the token expires


class HttpError(StudioError):
    """A request that failed for good: the message says what, where and why, in one sentence."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class Exchange:
    """One request and its response as the trace shows them (secrets already masked)."""

    label: str
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int | None = None
    reason: str = ""
    elapsed_ms: float = 0.0
    size: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    body_excerpt: str = ""
    retries: list[str] = field(default_factory=list)
    attempts: int = 1  # the request and its transport retries
    error: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Response:
    status: int
    reason: str
    headers: requests.structures.CaseInsensitiveDict
    content: bytes
    url: str
    links: dict
    exchange: Exchange

    def json(self, label: str) -> Any:
        """Parse the body; a malformed body names the call, the offset and a snippet."""
        try:
            return parse_json(self.content)
        except UnicodeDecodeError as e:
            raise HttpError(f"{label}: the response is not UTF-8 text (byte {e.start})") from None
        except json.JSONDecodeError as e:
            start = max(0, e.pos - 40)
            snippet = self.content[start : e.pos + 40].decode("utf-8", "replace")
            raise HttpError(
                f"{label}: the response is not valid JSON at offset {e.pos} ({e.msg}): …{snippet}…"
            ) from None


def same_origin(url: str, other: str) -> bool:
    """Same scheme, host and port: where a connection's credentials may go."""
    a, b = urlsplit(url), urlsplit(other)
    return (a.scheme.lower(), a.hostname, a.port) == (b.scheme.lower(), b.hostname, b.port)


class _CredentialSafeSession(requests.Session):
    """requests drops ``Authorization`` when a redirect leaves the host (or goes from https to
    http); this drops every header the connection or the call added: secret custom headers,
    an API key, and call headers that may carry a token an earlier call returned
    (``X-Session: {session}``). A download that answers 302 to a signed file URL elsewhere
    gets none of them."""

    KEEP = frozenset(
        {"user-agent", "accept", "accept-encoding", "connection", "content-type", "content-length"}
    )

    def rebuild_auth(self, prepared_request, response) -> None:
        super().rebuild_auth(prepared_request, response)
        if not same_origin(response.request.url, prepared_request.url):
            for name in [h for h in prepared_request.headers if h.lower() not in self.KEEP]:
                del prepared_request.headers[name]


@dataclass
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """OAuth 2.0 tokens per connection and credentials, shared by the threads of a process.
    ``clock`` tells the time (seconds, like ``time.time``): a test moves it instead of waiting."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()
        self.clock = clock

    @staticmethod
    def key(auth: OAuth2Auth) -> str:
        parts = [
            auth.token_url,
            auth.client_id,
            auth.client_secret,
            auth.username,
            auth.password,
            auth.scope,
            auth.client_auth,
        ]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            token = self._tokens.get(key)
            if token and token.expires_at > self.clock():
                return token.value
            return None

    def put(self, key: str, value: str, expires_in: float) -> None:
        with self._lock:
            self._tokens[key] = _Token(value, self.clock() + max(0.0, expires_in - TOKEN_SKEW))

    def drop(self, key: str) -> None:
        with self._lock:
            self._tokens.pop(key, None)


TOKENS = TokenCache()


class _CountedRetry(Retry):
    """urllib3's ``Retry``, telling the client of every retry it makes: a request that fails
    for good raises an exception that carries no history, yet it must say how many attempts
    it made and over how long."""

    on_retry: Callable[[str], None] | None = None

    def new(self, **kw):
        new = super().new(**kw)
        new.on_retry = self.on_retry
        return new

    def increment(self, method=None, url=None, response=None, error=None, *args, **kwargs):
        if self.on_retry is not None:
            status = getattr(response, "status", None)
            self.on_retry(str(status) if status else type(error).__name__ if error else "?")
        return super().increment(method, url, response, error, *args, **kwargs)


def connection_secrets(conn: ApiConnection) -> list[str]:
    return [getattr(owner, name) for _p, owner, name in secret_slots(conn) if getattr(owner, name)]


def describe_failure(exc: Exception, url: str, timeout: float) -> str:
    """What went wrong below HTTP, in the analyst's words: DNS, refused, TLS, timeout."""
    host = urlsplit(url).netloc or url
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = (
            e.__cause__
            or e.__context__
            or (e.args[0] if e.args and isinstance(e.args[0], BaseException) else None)
        )
    text = " ".join(str(x) for x in chain)
    if isinstance(exc, requests.exceptions.SSLError) or any(
        isinstance(x, ssl.SSLError) for x in chain
    ):
        reason = next((str(x) for x in chain if isinstance(x, ssl.SSLError)), str(exc))
        return f"the TLS handshake with {host} failed ({reason[:200]})"
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text.lower():
        return f"{host} did not answer within {timeout:g} s (timeout)"
    if (
        any(isinstance(x, socket.gaierror) for x in chain)
        or "NameResolutionError" in text
        or "Name or service not known" in text
        or "nodename nor servname" in text
    ):
        return f"the host name in {host} cannot be resolved (DNS)"
    if any(isinstance(x, ConnectionRefusedError) for x in chain) or "Connection refused" in text:
        return f"{host} refused the connection (is the server running and the port right?)"
    if "RemoteDisconnected" in text or "Connection aborted" in text or "reset by peer" in text:
        return f"{host} dropped the connection before answering"
    return f"the request to {host} failed: {str(exc)[:300]}"


class HttpClient:
    """Calls one API connection for the length of a run."""

    def __init__(
        self,
        conn: ApiConnection,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        retry_after_max: float = 60.0,
        on_exchange: Callable[[Exchange], None] | None = None,
        tokens: TokenCache = TOKENS,
    ):
        self.conn = conn
        self.max_response_bytes = int(conn.max_response_mb * 1024 * 1024)
        self.on_exchange = on_exchange or (lambda _e: None)
        self.tokens = tokens
        self.max_download_bytes = int(conn.max_download_mb * 1024 * 1024)
        self.mask = Masker(connection_secrets(conn))
        self._retried: list[str] = []  # the retries of the request being sent
        auth = conn.auth
        if auth.type == "basic":
            self.mask.add(basic_credentials(auth.username, auth.password))
        elif auth.type == "oauth2" and auth.client_auth == "basic":
            self.mask.add(basic_credentials(auth.client_id, auth.client_secret))
        self.session = _CredentialSafeSession()
        self._proxy_cache: dict[tuple[str, str], dict[str, str]] = {}
        # JSONPaths (anything with ``values(doc)``) of secret variables the current call takes:
        # their values are masked in the very response that hands them out.
        self.secret_fields: list = []
        self.session.verify = conn.verify_tls
        self.session.headers["User-Agent"] = "ConnectorStudio/0.1"
        # retry_after_max caps Retry-After: a server asking for an hour must not stall a run.
        retry = _CountedRetry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # the statuses above mean "not processed": retry any method
            backoff_factor=backoff,
            backoff_jitter=backoff,
            backoff_max=30.0,
            retry_after_max=retry_after_max,
            respect_retry_after_header=True,
            raise_on_status=False,
            redirect=5,
        )
        retry.on_retry = self._retried.append
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=8)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- auth --------------------------------------------------------------------------------

    def _token(self, auth: OAuth2Auth, force: bool = False) -> str:
        key = TokenCache.key(auth)
        if not force and (cached := self.tokens.get(key)):
            self.mask.add(cached)
            return cached
        form = {"grant_type": auth.grant}
        if auth.grant == "password":
            form |= {"username": auth.username, "password": auth.password}
        if auth.scope:
            form["scope"] = auth.scope
        basic = None
        if auth.client_auth == "basic":
            basic = (auth.client_id, auth.client_secret)
        else:
            form |= {"client_id": auth.client_id, "client_secret": auth.client_secret}
        # Never redirected: a 307 would send the client secret and the password elsewhere.
        response = self._send(
            "token", "POST", auth.token_url, data=form, auth=basic, allow_redirects=False
        )
        label = f"the token endpoint {auth.token_url}"
        if 300 <= response.status < 400:
            where = response.headers.get("Location", "(no Location)")
            raise HttpError(
                f"{label} redirected to {self.mask(where)} ({response.status}); credentials are "
                "never sent after a redirect: give the final token URL",
                response.status,
            )
        if response.status >= 400:
            body = self.mask(response.content[:500].decode("utf-8", "replace"))
            raise HttpError(
                f"{label} answered {response.status} {response.reason}: {body}", response.status
            )
        try:
            data = response.json(label)
            value = str(data["access_token"])
        except (KeyError, TypeError):
            raise HttpError(f"{label} answered without an access_token") from None
        try:
            expires_in = float(data.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600.0
        self.mask.add(value)
        self.tokens.put(key, value, expires_in)
        return value

    def _auth(self, headers: dict, params: list, force_token: bool = False):
        auth = self.conn.auth
        if auth.type == "oauth2":
            headers["Authorization"] = f"Bearer {self._token(auth, force_token)}"
        elif auth.type == "bearer":
            headers["Authorization"] = f"Bearer {auth.token}"
        elif auth.type == "api_key":
            if auth.placement == "header":
                headers[auth.name] = auth.value
            else:
                params.append((auth.name, auth.value))
        elif auth.type == "basic":
            return (auth.username, auth.password)
        return None

    # --- requests ----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.conn.base_url.rstrip("/") + "/" + path.lstrip("/")

    def request(
        self,
        label: str,
        method: str,
        url: str,
        *,
        params: dict | list | None = None,
        headers: dict | None = None,
        json_body: Any = None,
        data: Any = None,
        stream_to: Path | None = None,
        fail: bool = True,
        authenticate: bool = True,
        note: str = "",
        scope: str | None = None,
    ) -> Response:
        """Send one request with the connection's auth and headers. ``fail``: raise on a
        4xx/5xx answer (after transport retries) instead of returning it. ``authenticate``:
        off for URLs on other hosts (a signed file URL), which must not see credentials.
        ``scope``: the URL ``headers`` and ``params`` were written for (a call's own URL)."""
        # Credentials go only to the connection's own origin: a next link, a download URL or a
        # whole-URL variable that names another host (or plain http) gets none of them. A
        # call's own headers and query follow the same rule against the call's own URL, so a
        # token an earlier call returned (X-Session: {session}) stays where it was meant to go.
        authenticate = authenticate and same_origin(url, self.conn.base_url)
        if scope is not None and not same_origin(url, scope):
            headers, params = {}, []
            note = f"{note} (another origin: no call headers)".strip()
        base_headers = {h.name: h.value for h in self.conn.headers} if authenticate else {}
        all_headers = {**base_headers, **(headers or {})}
        all_params = list(params.items() if isinstance(params, dict) else params or [])

        def send(force_token: bool = False) -> Response:
            sent_headers, sent_params = dict(all_headers), list(all_params)
            basic = self._auth(sent_headers, sent_params, force_token) if authenticate else None
            return self._send(
                label,
                method,
                url,
                params=sent_params,
                headers=sent_headers,
                json_body=json_body,
                data=data,
                auth=basic,
                stream_to=stream_to,
                note=note,
            )

        response = send()
        if response.status == 401 and authenticate and self.conn.auth.type == "oauth2":
            # The token may have been revoked or expired early: fetch a new one, once.
            self.tokens.drop(TokenCache.key(self.conn.auth))
            response = send(force_token=True)
        if fail and response.status >= 400:
            body = self.mask(response.content[:500].decode("utf-8", "replace")).strip()
            tries = (
                f" (after {len(response.exchange.retries) + 1} attempts)"
                if response.exchange.retries
                else ""
            )
            raise HttpError(
                f"{label}: {method} {self.mask(response.url)} answered {response.status} "
                f"{response.reason}{tries}: {body or '(empty body)'}",
                response.status,
            )
        return response

    def _send(
        self,
        label,
        method,
        url,
        *,
        params=None,
        headers=None,
        json_body=None,
        data=None,
        auth=None,
        stream_to=None,
        note="",
        allow_redirects=True,
    ) -> Response:
        timeout = self.conn.timeout
        request = requests.Request(
            method, url, params=params, headers=headers, json=json_body, data=data, auth=auth
        )
        try:
            prepared = self.session.prepare_request(request)
        except (ValueError, requests.exceptions.RequestException) as e:
            # A header value holding a line break (a variable's value), a URL that is not one.
            raise HttpError(f"{label}: the request cannot be sent: {self.mask(str(e))}") from None
        body = prepared.body
        body_text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
        exchange = Exchange(
            label=label,
            method=method,
            url=self.mask(prepared.url or url),
            request_headers=self.mask.headers(dict(prepared.headers)),
            request_body=self.mask(body_text[:EXCERPT]),
            note=note,
        )
        started = time.perf_counter()
        self._retried.clear()
        try:
            raw = self.session.send(
                prepared,
                timeout=(min(10.0, timeout), timeout),
                stream=True,
                allow_redirects=allow_redirects,
                proxies=self._proxies(prepared),
            )
        except requests.exceptions.RequestException as e:
            elapsed = time.perf_counter() - started
            exchange.elapsed_ms = elapsed * 1000
            exchange.retries = list(self._retried[:-1])
            exchange.attempts = max(1, len(self._retried))
            error = describe_failure(e, prepared.url or url, timeout)
            if exchange.attempts > 1:
                error += f"; {exchange.attempts} attempts over {elapsed:.0f} s"
            exchange.error = self.mask(error)
            self.on_exchange(exchange)
            raise HttpError(f"{label}: {exchange.error}") from None
        try:
            content, size = self._read(raw, label, stream_to)
        except requests.exceptions.RequestException as e:  # dropped while reading the body
            exchange.error = self.mask(describe_failure(e, prepared.url or url, timeout))
            self.on_exchange(exchange)
            raise HttpError(f"{label}: {exchange.error}") from None
        finally:
            raw.close()
        if self.secret_fields and content:
            self._learn_secrets(content)
        exchange.elapsed_ms = (time.perf_counter() - started) * 1000
        exchange.status, exchange.reason = raw.status_code, raw.reason or ""
        exchange.size = size
        exchange.response_headers = self.mask.headers(dict(raw.headers))
        exchange.body_excerpt = self.mask(content[:EXCERPT].decode("utf-8", "replace"))
        history = getattr(getattr(raw.raw, "retries", None), "history", ()) or ()
        exchange.retries = [
            str(h.status) if h.status else (type(h.error).__name__ if h.error else "redirect")
            for h in history
        ]
        exchange.attempts = len(exchange.retries) + 1
        self.on_exchange(exchange)
        return Response(
            raw.status_code, raw.reason or "", raw.headers, content, raw.url, raw.links, exchange
        )

    def _proxies(self, prepared: requests.PreparedRequest) -> dict[str, str]:
        """The proxies for the request's origin, from the environment (``HTTPS_PROXY``,
        ``NO_PROXY``…) as requests reads them, once per origin and run: requests reads the
        whole environment again for every request (0.5 ms, a tenth of a page's cost)."""
        parts = urlsplit(prepared.url or "")
        origin = (parts.scheme, parts.netloc)
        if origin not in self._proxy_cache:
            self._proxy_cache[origin] = requests.utils.resolve_proxies(
                prepared, self.session.proxies, self.session.trust_env
            )
        return dict(self._proxy_cache[origin])

    def _learn_secrets(self, content: bytes) -> None:
        try:
            doc = parse_json(content)
        except ValueError:
            return
        for path in self.secret_fields:
            for value in path.values(doc):
                if isinstance(value, str | int | float) and not isinstance(value, bool):
                    self.mask.add(str(value))

    def _read(self, raw: requests.Response, label: str, stream_to: Path | None):
        """The body, bounded by ``max_response_bytes``; or streamed to ``stream_to`` under
        ``max_download_bytes`` (files go to disk, never to memory)."""
        if stream_to is not None and raw.status_code < 400:
            size = 0
            with open(stream_to, "wb") as f:
                # 16 KB steps: one step of a gzip bomb cannot inflate far past the limit.
                for chunk in _bounded(raw, label, self.max_download_bytes, "download", 1 << 14):
                    f.write(chunk)
                    size += len(chunk)
            return b"", size
        chunks = list(_bounded(raw, label, self.max_response_bytes, "response", 1 << 16))
        return b"".join(chunks), sum(map(len, chunks))


# What a body that grows past its limit is told, by kind of body.
_GROWN = {
    "download": "the download is larger than {limit:,} bytes once decompressed (max download size)",
    "response": "the response is larger than the maximum of {limit:,} bytes (max response "
    "size); use a Download or smaller pages",
}


def _bounded(raw: requests.Response, label: str, limit: int, what: str, step: int):
    """The body's chunks, counted after decoding (1 MB of gzip on the wire may be 1 GB): a
    ``Content-Length`` over ``limit`` fails before reading, a body that grows past it fails as
    soon as it does."""
    declared = raw.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HttpError(
            f"{label}: the {what} is {int(declared):,} bytes, more than the maximum of "
            f"{limit:,} (max {what} size)"
        )
    size = 0
    for chunk in raw.iter_content(step):
        size += len(chunk)
        if size > limit:
            raise HttpError(f"{label}: " + _GROWN[what].format(limit=limit))
        yield chunk
