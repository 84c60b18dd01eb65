"""The roles of people signed in by single sign-on (studio/sso.py): a user of the store, then
the role claim, then the allow-lists; a disabled user, an unverified e-mail and a stranger are
refused. The claims are dicts as ``st.user`` holds them; the store is a real one."""

from __future__ import annotations

import re

import pytest

from studio.access import Forbidden, Who
from studio.errors import StudioError
from studio.sso import rules_problems, sso_configured, sso_providers, who_from_sso
from studio.users import add_user

RULES = {
    "role_claim": "roles",
    "admin": ["Ana@Example.com"],
    "editor": ["@example.com"],
    "viewer": ["guest@partner.org", "@example.com"],
}


def claims(email="bo@example.com", **more):
    return {"sub": "sub-1", "email": email, "email_verified": True, **more}


def test_the_allow_lists_give_the_highest_role_that_matches_whatever_the_case(store):
    assert who_from_sso(claims("ana@EXAMPLE.com"), RULES, store) == Who(
        name="ana@EXAMPLE.com", role="admin", via="sso", email="ana@EXAMPLE.com"
    )
    assert who_from_sso(claims("bo@example.com"), RULES, store).role == "editor"  # not viewer
    assert who_from_sso(claims("Guest@Partner.org"), RULES, store).role == "viewer"
    # A domain is the whole domain after the @, not a suffix of it.
    for stranger in ("bo@sub.example.com", "bo@notexample.com", "example.com"):
        with pytest.raises(Forbidden, match=f"{re.escape(stranger)} may not use this studio"):
            who_from_sso(claims(stranger), RULES, store)


def test_a_user_of_the_store_with_that_email_decides_before_claim_and_lists(store):
    add_user(store, "ana", "correct horse battery", "viewer", "ANA@example.com")
    who = who_from_sso(claims("ana@example.com", roles=["admin"]), RULES, store)
    assert (who.role, who.name, who.via) == ("viewer", "ana@example.com", "sso")
    store.set_status("users", "ana", "disabled", source="cli")
    with pytest.raises(Forbidden, match=r"The user ana \(ana@example.com\) is disabled"):
        who_from_sso(claims("ana@example.com", roles=["admin"]), RULES, store)


def test_the_role_claim_decides_before_the_lists_highest_role_wins(store):
    rules = {"role_claim": "roles", "viewer": ["@example.com"]}
    assert who_from_sso(claims(roles="Editor"), rules, store).role == "editor"
    assert who_from_sso(claims(roles=["viewer", "admin", "staff"]), rules, store).role == "admin"
    # Values that are no role (a provider's groups) are ignored: the lists answer.
    assert who_from_sso(claims(roles=["staff", 7]), rules, store).role == "viewer"
    assert who_from_sso(claims(), rules, store).role == "viewer"  # no claim at all
    # No role_claim configured: a roles claim means nothing.
    assert who_from_sso(claims(roles=["admin"]), {"viewer": ["@example.com"]}, store).role == (
        "viewer"
    )
    # A dotted name reaches into an object (Keycloak's realm_access.roles)...
    nested = {"role_claim": "realm_access.roles"}
    assert who_from_sso(claims(realm_access={"roles": ["editor"]}), nested, store).role == "editor"
    # ...unless a claim has that whole name (Auth0's "https://example.com/roles" style).
    dotted = claims(**{"realm_access.roles": "admin", "realm_access": {"roles": ["viewer"]}})
    assert who_from_sso(dotted, nested, store).role == "admin"


def test_an_unverified_email_matches_no_list_and_no_user_only_the_claim(store):
    add_user(store, "ana", "correct horse battery", "admin", "ana@example.com")
    for flag in (False, "false", "False"):
        unverified = claims("ana@example.com", email_verified=flag)
        with pytest.raises(Forbidden, match=r"ana@example\.com is not verified by the sign-in"):
            who_from_sso(unverified, RULES, store)
    unverified = claims("ana@example.com", email_verified=False, roles="viewer")
    assert who_from_sso(unverified, RULES, store).role == "viewer"
    # A provider that says nothing of verification is taken at its word.
    no_flag = {"sub": "s", "email": "bo@example.com"}
    assert who_from_sso(no_flag, RULES, store).role == "editor"
    # Unless [access] requires the provider to say so (one whose users set their own address).
    strict = RULES | {"require_verified_email": True}
    with pytest.raises(Forbidden, match=r"bo@example\.com is not verified"):
        who_from_sso(no_flag, strict, store)
    assert who_from_sso(claims(), strict, store).role == "editor"
    assert rules_problems({"require_verified_email": "yes"}) == [
        "[access] require_verified_email: true or false"
    ]


def test_without_an_email_the_subject_names_them_and_only_the_claim_can_let_them_in(store):
    who = who_from_sso({"sub": "u-42", "roles": ["editor"]}, RULES, store)
    assert (who.name, who.email, who.role) == ("u-42", "", "editor")
    with pytest.raises(Forbidden, match="u-42 may not use this studio: ask an admin"):
        who_from_sso({"sub": "u-42"}, RULES, store)
    with pytest.raises(Forbidden, match="neither an e-mail nor a subject"):
        who_from_sso({"email": ""}, RULES, store)


def test_no_rules_let_nobody_in_but_users_of_the_store(store):
    for rules in (None, {}):
        with pytest.raises(Forbidden, match=r"bo@example\.com may not use this studio"):
            who_from_sso(claims(roles=["admin"]), rules, store)
    add_user(store, "bo", "correct horse battery", "editor", "bo@example.com")
    assert who_from_sso(claims(), None, store).role == "editor"


def test_rules_problems_name_each_mistake_and_a_misconfigured_section_lets_nobody_in(store):
    assert rules_problems(RULES) == []
    assert rules_problems(None) == rules_problems({}) == []
    assert rules_problems(["admin"]) == [
        "[access] must be a section of its own, not a single value"
    ]
    bad = {
        "role_claim": "",
        "owner": ["ana@example.com"],
        "admin": "ana@example.com",
        "editor": ["ana", "@", "example.com", "@example.com", 3, "a b@example.com"],
    }
    assert rules_problems(bad) == [
        '[access] role_claim: the name of a claim, such as "roles"',
        "[access] owner: not a role; the keys are role_claim, require_verified_email, viewer, "
        "editor, admin",
        '[access] admin: a list, such as ["ana@example.com", "@example.com"]',
        "[access] editor: 'ana' is neither an e-mail address nor \"@domain\"",
        "[access] editor: '@' is neither an e-mail address nor \"@domain\"",
        "[access] editor: 'example.com' is neither an e-mail address nor \"@domain\"",
        '[access] editor: 3 is neither an e-mail address nor "@domain"',
        "[access] editor: 'a b@example.com' is neither an e-mail address nor \"@domain\"",
    ]
    # A string where a list belongs would otherwise match letter by letter: refuse everyone.
    with pytest.raises(StudioError, match=r"Single sign-on is misconfigured: .*admin: a list"):
        who_from_sso(claims("a@example.com"), {"admin": "ana@example.com"}, store)


AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "a long random secret",
}
PROVIDER = {
    "client_id": "studio",
    "client_secret": "s3cret",
    "server_metadata_url": "https://id.example.com/.well-known/openid-configuration",
}


def test_sso_is_configured_when_streamlit_can_send_someone_to_a_provider():
    assert sso_providers({"auth": AUTH | PROVIDER}) == ["default"]
    assert sso_providers({"auth": AUTH | {"corp": PROVIDER, "client_kwargs": {"a": 1}}}) == ["corp"]
    both = {"auth": AUTH | PROVIDER | {"corp": PROVIDER, "my_idp": PROVIDER}}
    assert sso_providers(both) == ["default", "corp"]  # Streamlit refuses an underscore
    assert sso_configured({"auth": AUTH | PROVIDER, "access": RULES})
    for secrets in (
        {},
        {"access": RULES},
        {"auth": "yes"},
        {"auth": PROVIDER},  # no redirect_uri nor cookie_secret
        {"auth": AUTH},  # no provider
        {"auth": AUTH | PROVIDER | {"client_secret": ""}},
        {"auth": AUTH | {"corp": PROVIDER | {"server_metadata_url": ""}}},
    ):
        assert not sso_configured(secrets), secrets
