"""A browser (Playwright's page, as the other browser tests use) through the test OpenID Connect
provider (``oidc_provider`` in tests/conftest.py, ``oidc-provider-mock`` from PyPI), and the
``[auth]`` section that points Streamlit's ``st.login`` at it.

The provider's authorize page asks only for a subject (``sub``); what the ID token says of that
subject (e-mail, ``email_verified``, a roles claim) is set beforehand with its
``PUT /users/<sub>``. Without that it would say ``{"email": sub}`` and nothing else.
``sign_in_with_provider`` does both, the way a person picks an account at a real provider.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

import requests

AUTHORIZE = re.compile(r"^https?://[^/]+/oauth2/authorize\?")
END_SESSION = re.compile(r"^https?://[^/]+/oauth2/end_session\?")
TIMEOUT_MS = 30_000


def auth_secrets(issuer: str, app_url: str, access: Mapping | None = None) -> str:
    """The text of a secrets.toml with an ``[auth]`` section for the provider at ``issuer``
    and an app served at ``app_url`` (``http://127.0.0.1:PORT``), and ``access`` as the
    ``[access]`` section (studio/sso.py) if given. Give it to Streamlit with
    ``--secrets.files PATH``: any path works, the file need not be in the project."""
    auth = {
        "redirect_uri": f"{app_url}/oauth2callback",
        "cookie_secret": "a cookie secret only the tests use, 32+ characters",
        "client_id": "connector-studio",  # any id and secret: the provider registers none
        "client_secret": "connector-studio-secret",
        "server_metadata_url": f"{issuer}/.well-known/openid-configuration",
    }
    text = "[auth]\n" + _toml(auth)
    return text + ("\n[access]\n" + _toml(access) if access is not None else "")


def _toml(section: Mapping) -> str:
    # JSON's strings and lists of strings are TOML's too.
    return "".join(f"{key} = {json.dumps(value)}\n" for key, value in section.items())


def sign_in_with_provider(
    page, email: str, claims: Mapping | None = None, *, sub: str | None = None
) -> None:
    """On the provider's authorize page, where ``st.login`` sends ``page``: sign in as ``sub``
    (the e-mail if not given) with the claims ``email``, ``email_verified: true`` and
    ``claims`` (which may override them: ``{"email_verified": False}``, ``{"roles": [...]}``).
    ``email=""`` sends no e-mail at all. Returns once the browser has left the provider."""
    page.wait_for_url(AUTHORIZE, timeout=TIMEOUT_MS)
    issuer = _origin(page.url)
    sub = sub or email
    if not sub:
        raise ValueError("sign_in_with_provider needs an e-mail or a sub")
    said = ({"email": email, "email_verified": True} if email else {}) | dict(claims or {})
    requests.put(f"{issuer}/users/{quote(sub, safe='')}", json=said, timeout=10).raise_for_status()
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize", exact=True).click()
    _left(page, issuer)


def deny_at_provider(page) -> None:
    """On the provider's authorize page: refuse, as a person who cancels the sign-in."""
    page.wait_for_url(AUTHORIZE, timeout=TIMEOUT_MS)
    issuer = _origin(page.url)
    page.get_by_role("button", name="Deny", exact=True).click()
    _left(page, issuer)


def end_session_at_provider(page) -> None:
    """After ``st.logout``, which sends the browser to the provider's end-session page (it
    announces one): confirm, and come back to the app."""
    page.wait_for_url(END_SESSION, timeout=TIMEOUT_MS)
    issuer = _origin(page.url)
    page.get_by_role("button", name="End session", exact=True).click()
    _left(page, issuer)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _left(page, issuer: str) -> None:
    page.wait_for_url(lambda url: not url.startswith(issuer + "/"), timeout=TIMEOUT_MS)
