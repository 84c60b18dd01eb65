"""Users of the studio (issue 16, first part): Argon2 hashes, roles, failed sign-ins slowed and
locked, and ``runner users`` as a subprocess. The store is a real one in a temporary home."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

from studio.apitokens import create_token
from studio.errors import Conflict, StudioError
from studio.users import (
    LOCK_MINUTES,
    MAX_FAILURES,
    SignInRefused,
    add_user,
    remove_user,
    reset_password,
    set_role,
    set_user_status,
    sign_in,
)
from studio.vault import MASK
from tests.helpers import ROOT

PASSWORD = "correct horse battery"


def test_a_password_is_kept_only_as_an_argon2_hash(store):
    user = add_user(store, "ana", PASSWORD, "editor", "ana@example.com")
    assert user.password_hash.startswith("$argon2id$")
    text = (store.home / "configs.json").read_text()
    assert PASSWORD not in text and "$argon2id$" in text
    assert sign_in(store, "ANA", PASSWORD, sleep=lambda _s: None).role == "editor"
    with pytest.raises(StudioError, match="at least 10 characters"):
        add_user(store, "bo", "short")
    with pytest.raises(StudioError, match="Role: one of viewer, editor, admin"):
        add_user(store, "bo", PASSWORD, "root")
    with pytest.raises(Conflict, match="a user called 'ana' exists already"):
        add_user(store, "Ana", PASSWORD)  # names are unique, whatever their case
    assert "users" not in [k for k, kind in store.kinds.items() if kind.exported]


def test_a_wrong_name_or_password_says_the_same_is_slowed_and_locks_after_a_few(store):
    add_user(store, "ana", PASSWORD)
    clock = [datetime(2026, 11, 23, 9, 0, tzinfo=UTC)]
    waits: list[float] = []

    def attempt(name: str, password: str):
        return sign_in(store, name, password, now=lambda: clock[0], sleep=waits.append)

    with pytest.raises(SignInRefused) as nobody:
        attempt("nobody", PASSWORD)
    for n in range(MAX_FAILURES):
        with pytest.raises(SignInRefused) as wrong:
            attempt("ana", "not the password")
        if n == 0:
            assert str(wrong.value) == str(nobody.value) == "Wrong name or password"
    # slower and slower, at most 2 s; a name that is no user waits as long as a real one
    assert waits == [0.5, 0.5, 1.0, 1.5, 2.0, 2.0]
    with pytest.raises(SignInRefused, match="Too many failed sign-ins: try again after 09:15"):
        attempt("ana", PASSWORD)  # even the right password, while locked
    clock[0] += timedelta(minutes=LOCK_MINUTES, seconds=1)
    assert attempt("ana", PASSWORD).name == "ana"
    assert store.get("users", "ana").failures == 0


def test_roles_and_a_reset_that_lifts_the_lock(store):
    add_user(store, "ana", PASSWORD)
    assert set_role(store, "ana", "admin").role == "admin"
    for _ in range(MAX_FAILURES):
        with pytest.raises(SignInRefused):
            sign_in(store, "ana", "not the password", sleep=lambda _s: None)
    reset_password(store, "ana", "another good password")
    assert sign_in(store, "ana", "another good password").role == "admin"
    store.set_status("users", "ana", "disabled", source="cli")
    with pytest.raises(SignInRefused, match="Wrong name or password"):
        sign_in(store, "ana", "another good password", sleep=lambda _s: None)
    actions = [e["action"] for e in store.audit("users", "ana")]
    assert actions[-1] == "create" and "disable" in actions


def cli(home, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {"STUDIO_HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "runner", "users", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_runner_users_adds_lists_sets_roles_resets_and_removes(store):
    home = store.home
    out = cli(home, "add", "ana", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert out.returncode == 0 and out.stdout.strip() == "added admin 'ana'", out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    listed = json.loads(cli(home, "list", "--json").stdout)
    assert listed == [
        {"name": "ana", "role": "admin", "email": "", "status": "active", "locked_until": None}
    ]
    assert "argon2" not in cli(home, "list").stdout
    last = cli(home, "set-role", "ana", "viewer")  # nobody could manage the users any more
    assert last.returncode != 0 and "'ana' is the last active admin" in last.stderr
    cli(home, "add", "cy", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert cli(home, "set-role", "ana", "viewer").stdout.strip() == "'ana' is viewer"
    out = cli(home, "reset-password", "ana", "--password-stdin", stdin="a new long password\n")
    assert out.returncode == 0, out.stderr
    assert sign_in(store, "ana", "a new long password").role == "viewer"
    bad = cli(home, "add", "bo", "--password-stdin", stdin="short\n")
    assert bad.returncode != 0 and "at least 10 characters" in bad.stderr
    assert cli(home, "remove", "ana").stdout.strip() == "removed 'ana'"
    assert cli(home, "remove", "cy").stdout.strip() == "removed 'cy'"  # the last one may go
    assert json.loads(cli(home, "list", "--json").stdout) == []


def test_up_opens_the_studio_to_the_network_only_with_someone_to_sign_in(store, monkeypatch):
    from runner.up import refusal
    from tests.helpers import runner

    monkeypatch.setenv("HOME", str(store.home.parent))  # no ~/.streamlit/secrets.toml of ours
    out = runner("up", "--host", "0.0.0.0", "--no-demo", "--no-sandbox", home=store.home)
    assert out.returncode == 2
    assert "open to anyone who reaches it" in out.stderr
    assert "python -m runner users add NAME --role admin" in out.stderr
    assert refusal(store, "127.0.0.1") is None and refusal(store, "localhost") is None
    assert refusal(store, "") is not None  # Streamlit's own default listens everywhere
    (store.home / "secrets.toml").write_text(
        '[auth]\nredirect_uri = "https://studio.example.com/oauth2callback"\n'
        'cookie_secret = "0123456789abcdef0123456789abcdef"\nclient_id = "studio"\n'
        'client_secret = "s"\nserver_metadata_url = "https://sso.example.com/.well-known/x"\n'
    )
    assert refusal(store, "0.0.0.0") is None  # single sign-on: people sign in
    (store.home / "secrets.toml").unlink()
    add_user(store, "ana", PASSWORD, "admin")
    assert refusal(store, "0.0.0.0") is None


def test_two_admins_lowering_each_other_at_once_leave_one_admin(store):
    """The last-admin check and the change are one step: two admins made viewers (or disabled,
    or removed) by two sessions at the same moment leave an active admin, whichever change
    comes second is refused."""
    changes = (
        lambda name: set_role(store, name, "viewer", source="studio"),
        lambda name: set_user_status(store, name, "disabled", source="studio"),
        lambda name: remove_user(store, name, source="studio"),
    )
    for n in range(30):
        a, b = f"a{n}", f"b{n}"
        for name in (a, b):
            add_user(store, name, PASSWORD, "admin")
        change = changes[n % len(changes)]
        start = threading.Barrier(2)

        def lower(name: str, change=change, start=start) -> None:
            start.wait()
            with contextlib.suppress(Conflict):
                change(name)

        threads = [threading.Thread(target=lower, args=(name,)) for name in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        users = store.list("users")
        # (removing both is allowed, as one after the other is: no users is a laptop's studio)
        assert not users or any(u.role == "admin" and u.status == "active" for u in users), n
        for u in store.list("users"):  # the next round starts with no users
            store.delete("users", u.id, source="cli")


def test_the_audit_trail_says_a_password_or_token_changed_but_never_keeps_its_hash(store):
    add_user(store, "ana", PASSWORD, "admin")
    reset_password(store, "ana", "another good password")
    create_token(store, "ci", user="ana")
    trail = store.audit()
    assert "$argon2" not in json.dumps(trail)
    token_hash = store.list("api_tokens")[0].hash
    assert token_hash not in json.dumps(trail)
    reset = next(e for e in trail if e["kind"] == "users" and e["action"] == "update")
    assert {"field": "password_hash", "old": MASK, "new": MASK} in reset["changes"]
