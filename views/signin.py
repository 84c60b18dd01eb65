"""The sign-in page and the gate in front of the studio's pages: HTTP routes that Streamlit's
own server serves beside the app (``app.py`` hands them to ``st.App``). Not a Streamlit page.

A password sign-in must end in an HttpOnly cookie, and a Streamlit script cannot set one: only
an HTTP answer can. So the form posts to ``/signin`` here, which checks the password
(``studio.users.sign_in``: slowed down and locked after repeated failures) and answers with the
signed session cookie of ``studio.sessions``. Single sign-on goes through Streamlit's own
``st.login`` routes (``/auth/login``, ``/oauth2callback``); this page only links to them.

The gate redirects a page load that has no session to this page, before the app's JavaScript
even loads; the script checks the session again on every run (``views.access``), since the
websocket is where the pages really run. ``/auth/logout`` (``st.logout``) also ends the
password session (on the server, and its cookie in the browser), so one Sign out ends either
kind.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from urllib.parse import quote

import streamlit as st
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocketClose

from studio.config.store import ConfigStore
from studio.sessions import (
    COOKIE,
    end_session,
    issue,
    lifetime,
    open_access,
    who_from_token,
)
from studio.sso import sso_configured, sso_providers
from studio.users import SignInRefused, sign_in

SSO_COOKIE = "_streamlit_user"  # Streamlit's signed cookie after st.login
_PAGES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "assets"), autoescape=select_autoescape()
)
_NOT_PAGES = ("/_stcore", "/static", "/component", "/media", "/auth/", "/oauth2callback")
_store: ConfigStore | None = None
NOBODY = (
    "This studio has no users yet, so it lets nobody in from elsewhere (it is open only to "
    "this machine's browser). On its machine, add the first admin: python -m runner users add "
    "NAME --role admin"
)


def store() -> ConfigStore:
    """One store for the process's routes (it reopens its file on every read anyway)."""
    global _store
    if _store is None:
        _store = ConfigStore()
    return _store


def secrets() -> dict:
    """Streamlit's secrets as a dict ({} without a secrets file)."""
    try:
        return st.secrets.to_dict()
    except FileNotFoundError:
        return {}


def _provider_link(provider: str) -> str:
    # st.login's own route, with the signed provider token st.login would send the browser
    from streamlit.auth_util import encode_provider_token

    return f"/auth/login?provider={quote(encode_provider_token(provider))}"


def _bind_address() -> str:
    return str(st.get_option("server.address") or "")


def _safe_next(target: str) -> str:
    """Only a path of this site: a sign-in must never send its user to another one."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _page(target: str, *, error: str = "", name: str = "", status: int = 200) -> Response:
    links = [
        ("single sign-on" if p == "default" else p, _provider_link(p))
        for p in sso_providers(secrets())
    ]
    users = bool(store().list("users"))
    html = _PAGES.get_template("signin.html").render(
        error=error or ("" if users or links else NOBODY),
        name=name,
        next=_safe_next(target),
        providers=links,
        passwords=users,
    )
    return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})


async def signin_page(request: Request) -> Response:
    target = request.query_params.get("next", "/")
    if await run_in_threadpool(_open, request.headers):  # nobody to sign in as: open
        return RedirectResponse(_safe_next(target), status_code=303)
    return _page(target)


def _open(headers) -> bool:
    """Whether the studio is open to this request (no users, this machine: a laptop's)."""
    return open_access(store(), _bind_address(), sso_configured(secrets()), headers) is not None


async def signin_post(request: Request) -> Response:
    form = await request.form()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    target = str(form.get("next", "/"))
    if not same_origin(request.headers.get("origin"), request.headers.get("host")):
        return _page(target, error="Sign in from the studio's own page", status=403)
    waits: list[float] = []  # the slowdown is waited here, not in a thread of the pool
    try:
        user = await run_in_threadpool(
            functools.partial(sign_in, store(), name, password, sleep=waits.append)
        )
    except SignInRefused as e:
        await asyncio.sleep(sum(waits))
        return _page(target, error=str(e), name=name, status=401)
    response = RedirectResponse(_safe_next(target), status_code=303)
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(
        COOKIE,
        issue(store(), user),
        max_age=lifetime(),
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
    return response


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a browser's request comes from a page of the studio itself (or names no page:
    not a browser, which then has no one's cookie either), or of an origin the operator lists
    in ``server.corsAllowedOrigins``."""
    if origin is None:
        return True
    allowed = {o.strip() for o in st.get_option("server.corsAllowedOrigins") or ()}
    return origin.partition("://")[2] == host or origin in allowed


def signed_in(request: Request) -> bool:
    """Whether a page load may go on to the app: open access, a valid password session, or
    Streamlit's single sign-on cookie (whose holder the script checks against the roles)."""
    cookies = request.cookies
    if _open(request.headers):
        return True
    if sso_configured(secrets()) and any(k.startswith(SSO_COOKIE) for k in cookies):
        return True
    return who_from_token(store(), cookies.get(COOKIE)) is not None


class SignInGate:
    """ASGI middleware: page loads without a session go to ``/signin``; ``/auth/logout`` also
    drops the password session's cookie; the websocket opens only to the studio's own pages."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            # Where the pages run, with the session's cookie: a browser sends it with a
            # websocket opened by any page of the same site (the host's other ports are), and
            # Streamlit lets any port of the machine's own names in. Only the studio's pages.
            headers = Headers(scope=scope)
            if not same_origin(headers.get("origin"), headers.get("host")):
                return await WebSocketClose(code=1008)(scope, receive, send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path == "/auth/logout":
            token = Request(scope).cookies.get(COOKIE)
            await run_in_threadpool(end_session, store(), token)
            return await self.app(scope, receive, _dropping_session(send))
        if scope["method"] in ("GET", "HEAD") and _is_page(path):
            request = Request(scope)
            if not await run_in_threadpool(signed_in, request):
                query = scope["query_string"].decode()
                target = path + (f"?{query}" if query else "")
                redirect = RedirectResponse(f"/signin?next={quote(target)}", status_code=303)
                return await redirect(scope, receive, send)
        return await self.app(scope, receive, send)


def _is_page(path: str) -> bool:
    last = path.rsplit("/", 1)[-1]
    return not path.startswith(_NOT_PAGES) and path != "/signin" and "." not in last


def _dropping_session(send):
    async def wrapped(message):
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers.append("set-cookie", f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=lax")
        await send(message)

    return wrapped


ROUTES = [
    Route("/signin", signin_page, methods=["GET"]),
    Route("/signin", signin_post, methods=["POST"]),
]
