"""The role of a person signed in by single sign-on (issue 16): OpenID Connect through
Streamlit's own ``st.login``, which keeps the provider's claims in ``st.user``.

Streamlit reads the provider from the ``[auth]`` section of its secrets file (the documented
way: ``.streamlit/secrets.toml``, or any file named by ``--secrets.files``); who may come in,
and as what, is read from an ``[access]`` section of the same file::

    [access]
    role_claim = "roles"          # optional: a claim holding viewer/editor/admin, or a list
    admin = ["ana@example.com"]   # e-mail addresses, or "@example.com" for a whole domain
    editor = ["@example.com"]
    viewer = []

The order, first that answers wins: a user of the store with that e-mail (an admin can give
one person a role, or disable them); the role claim (the highest role it names); the
allow-lists (the highest role whose list matches). Nobody else comes in: a provider that signs
in the whole world must not give the whole world a viewer. An e-mail the provider says it has
not verified (``email_verified`` false) is not the person's: it never matches a user of the
store nor an allow-list, only the role claim (the provider's own word) can let them in.

No Streamlit import here: the gate of the studio passes ``st.user`` and ``st.secrets``, and the
tests pass plain dicts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from studio.access import ROLES, Forbidden, Who
from studio.errors import StudioError

KEYS = ("role_claim", "require_verified_email", *ROLES)
# What an allow-list holds: an address, or "@domain" for everyone of a domain.
_ADDRESS = re.compile(r"^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
_DOMAIN = re.compile(r"^@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
# What Streamlit needs of a provider before ``st.login`` can send anyone to it.
_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


def sso_providers(secrets: Mapping) -> list[str]:
    """The names ``st.login`` accepts with these secrets: "default" for a provider written in
    ``[auth]`` itself, and each ``[auth.NAME]`` that is complete; [] when SSO is off."""
    auth = secrets.get("auth")
    if not isinstance(auth, Mapping) or not all(
        auth.get(key) for key in ("redirect_uri", "cookie_secret")
    ):
        return []
    names = ["default"] if all(auth.get(key) for key in _PROVIDER_KEYS) else []
    return names + [
        name
        for name, section in auth.items()
        if isinstance(section, Mapping)
        and "_" not in name  # Streamlit refuses such a provider name
        and all(section.get(key) for key in _PROVIDER_KEYS)
    ]


def sso_configured(secrets: Mapping) -> bool:
    """Whether the secrets name a provider that ``st.login`` can use."""
    return bool(sso_providers(secrets))


def rules_problems(rules: Mapping | None) -> list[str]:
    """One sentence for each thing wrong with an ``[access]`` section; [] when it is sound."""
    if rules is None:
        return []
    if not isinstance(rules, Mapping):
        return ["[access] must be a section of its own, not a single value"]
    problems = []
    for key, value in rules.items():
        if key == "role_claim":
            if not isinstance(value, str) or not value.strip():
                problems.append('[access] role_claim: the name of a claim, such as "roles"')
        elif key == "require_verified_email":
            if not isinstance(value, bool):
                problems.append("[access] require_verified_email: true or false")
        elif key not in ROLES:
            problems.append(
                f"[access] {key}: not a role; the keys are role_claim, require_verified_email, "
                f"{', '.join(ROLES)}"
            )
        elif not isinstance(value, list | tuple):
            problems.append(f'[access] {key}: a list, such as ["ana@example.com", "@example.com"]')
        else:
            problems += [
                f'[access] {key}: {entry!r} is neither an e-mail address nor "@domain"'
                for entry in value
                if not isinstance(entry, str) or not (_ADDRESS.match(entry) or _DOMAIN.match(entry))
            ]
    return problems


def who_from_sso(claims: Mapping, rules: Mapping | None, store) -> Who:
    """The ``Who`` of a person the provider signed in with ``claims``; ``Forbidden`` when no
    user, claim or allow-list lets them in (or their user is disabled)."""
    problems = rules_problems(rules)
    if problems:
        raise StudioError("Single sign-on is misconfigured: " + "; ".join(problems))
    rules = rules or {}
    email = str(claims.get("email") or "").strip()
    name = email or str(claims.get("sub") or "").strip()
    if not name:
        raise Forbidden("The sign-in provider sent neither an e-mail nor a subject: ask an admin")
    # A provider that sends no email_verified is taken at its word, unless [access] says
    # require_verified_email: providers whose users can set their own address (Entra ID's
    # "mail") should be run with it, or matched by a role claim only.
    said = claims.get("email_verified", None if rules.get("require_verified_email") else True)
    verified = bool(email) and said is not None and _verified(said)
    role = (
        (_store_role(store, email) if verified else None)
        or _claim_role(claims, rules.get("role_claim"))
        or (_listed_role(email, rules) if verified else None)
    )
    if role is None:
        if email and not verified:
            raise Forbidden(
                f"{email} is not verified by the sign-in provider: verify it there, or ask an "
                "admin to give you a role"
            )
        raise Forbidden(f"{name} may not use this studio: ask an admin to give you a role")
    return Who(name=name, role=role, via="sso", email=email)


def _verified(value: object) -> bool:
    """``email_verified`` as providers send it: a boolean, or (Cognito) the text "false"."""
    return not (value is False or str(value).strip().casefold() == "false")


def _store_role(store, email: str) -> str | None:
    """The role of the store's user with this e-mail; ``Forbidden`` if that user is disabled."""
    key = email.casefold()
    user = next((u for u in store.list("users") if u.email.strip().casefold() == key), None)
    if user is None:
        return None
    if user.status != "active":
        raise Forbidden(f"The user {user.name} ({email}) is disabled: ask an admin")
    return user.role


def _claim_role(claims: Mapping, claim: str | None) -> str | None:
    """The highest role named by the claim (a text or a list of texts); other values, such as
    a provider's group names, are ignored. A dotted name reaches into an object
    (``realm_access.roles``) when no claim has that whole name."""
    if not claim:
        return None
    value = claims.get(claim)
    if value is None and "." in claim:
        value = claims
        for part in claim.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    named = {v.strip().casefold() for v in values if isinstance(v, str)}
    return _highest(role for role in ROLES if role in named)


def _listed_role(email: str, rules: Mapping) -> str | None:
    """The highest role whose allow-list holds this address or its domain."""
    address = email.casefold()
    domain = "@" + address.rpartition("@")[2] if "@" in address else address
    return _highest(
        role
        for role in ROLES
        if any(entry.casefold() in (address, domain) for entry in rules.get(role) or ())
    )


def _highest(roles) -> str | None:
    found = list(roles)
    return max(found, key=ROLES.index) if found else None
