"""``runner users …`` and ``runner api-token …``: the people who sign in to the studio, from the
command line (the way to make the first admin), and the REST API tokens that act for them.
Passwords are read from a prompt, or from standard input with ``--password-stdin`` (for
scripts), never from the command line, where ``ps`` and the shell's history would show them.
Handlers only parse and print; ``studio.users`` and ``studio.apitokens`` do the rest."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime

from runner.output import print_list, when
from studio.config.store import ConfigStore
from studio.errors import StudioError
from studio.users import ROLES, add_user, remove_user, reset_password, set_role


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("the two passwords differ")
    return first


def users_add(store: ConfigStore, args: argparse.Namespace) -> int:
    user = add_user(store, args.name, _password(args), args.role, args.email or "")
    print(f"added {user.role} {user.name!r}")
    return 0


def users_list(store: ConfigStore, args: argparse.Namespace) -> int:
    def record(u) -> dict:  # never the password's hash
        return {
            "name": u.name,
            "role": u.role,
            "email": u.email,
            "status": u.status,
            "locked_until": u.locked_until.isoformat() if u.locked_until else None,
        }

    def row(u) -> dict:
        return {
            "NAME": u.name,
            "ROLE": u.role,
            "E-MAIL": u.email,
            "STATUS": u.status,
            "LOCKED UNTIL": when(u.locked_until),
        }

    print_list(args, store.list("users"), row, record)
    return 0


def users_set_role(store: ConfigStore, args: argparse.Namespace) -> int:
    user = set_role(store, args.name, args.role)
    print(f"{user.name!r} is {user.role}")
    return 0


def users_reset_password(store: ConfigStore, args: argparse.Namespace) -> int:
    user = reset_password(store, args.name, _password(args))
    print(f"new password for {user.name!r} (and no lock)")
    return 0


def users_remove(store: ConfigStore, args: argparse.Namespace) -> int:
    user = remove_user(store, args.name)
    print(f"removed {user.name!r}")
    return 0


def add_user_commands(sub, group, command) -> None:
    """``runner users add|list|set-role|reset-password|remove``; ``group`` and ``command`` are
    the CLI's own helpers."""
    actions = group(sub, "users", "add, list, set-role, reset-password, remove studio users")
    c = command(actions, "add", "add a user (the password is asked for)", users_add)
    c.add_argument("name", metavar="NAME", help="the name they sign in with")
    c.add_argument(
        "--role", choices=ROLES, default="viewer", help="viewer (default), editor, admin"
    )
    c.add_argument("--email", help="their e-mail address")
    c.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    c = command(actions, "list", "a table of users (never their passwords)", users_list)
    c.add_argument("--json", action="store_true", help="print JSON")
    c = command(actions, "set-role", "give a user another role", users_set_role)
    c.add_argument("name", metavar="NAME")
    c.add_argument("role", choices=ROLES)
    c = command(
        actions, "reset-password", "a new password (it also lifts a lock)", users_reset_password
    )
    c.add_argument("name", metavar="NAME")
    c.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    c = command(actions, "remove", "remove a user", users_remove)
    c.add_argument("name", metavar="NAME")


def _token_create(store: ConfigStore, args: argparse.Namespace) -> int:
    """A token for ``--user``. Without it, only while the studio has no users: such a token is
    an admin (as the studio is on a laptop with no users), which a shared studio should not
    hand out by forgetting an option."""
    from studio.apitokens import create_token, parse_expiry

    if not args.user and store.list("users"):
        raise StudioError(
            "--user: give the user the token acts for (its role is theirs); "
            "runner users list shows them"
        )
    expires = parse_expiry(args.expires) if args.expires else None
    token = create_token(store, args.name, user=args.user or "", expires_at=expires)
    print(token)
    made = store.get("api_tokens", args.name)
    acts = f"acts for {made.user!r}" if made.user else "acts as an admin (no user)"
    until = f", expires {made.expires_at:%Y-%m-%d %H:%M} UTC" if made.expires_at else ""
    print(f"token {args.name!r} created; it {acts}{until}; it is shown only now", file=sys.stderr)
    return 0


def _token_revoke(store: ConfigStore, args: argparse.Namespace) -> int:
    store.delete("api_tokens", args.name, source="cli")
    print(f"token {args.name!r} revoked")
    return 0


def _token_list(store: ConfigStore, args: argparse.Namespace) -> int:
    """Names, prefixes, users, their roles now and expiries: never the token (it is not kept)
    nor its hash. A token whose user is gone or disabled has no role: it opens nothing."""
    from studio.apitokens import token_role

    users = store.list("users")
    now = datetime.now(UTC)

    def role(t) -> str:
        return token_role(store, t, users) or "none (user gone or disabled)"

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    print_list(
        args,
        store.list("api_tokens"),
        lambda t: {
            "name": t.name,
            "prefix": t.prefix + "…",
            "user": t.user or "(none: admin)",
            "role": role(t),
            "expires": when(t.expires_at) or "never",
            "expired": "yes" if t.expired(now) else "",
            "status": t.status,
            "created": when(t.created_at),
        },
        lambda t: {
            "name": t.name,
            "prefix": t.prefix,
            "user": t.user,
            "role": token_role(store, t, users),
            "status": t.status,
            "expires_at": iso(t.expires_at),
            "expired": t.expired(now),
            "created_at": iso(t.created_at),
        },
    )
    return 0


def add_token_commands(sub, group, command) -> None:
    """``runner api-token create|revoke|list``."""
    actions = group(sub, "api-token", "create, revoke or list REST API tokens")
    t = command(
        actions, "create", "make a token; it is printed once, only its hash is kept", _token_create
    )
    t.add_argument("name", metavar="NAME", help="token name")
    t.add_argument(
        "--user",
        metavar="USER",
        help="the user it acts for, with their role (needed once the studio has users)",
    )
    t.add_argument(
        "--expires",
        metavar="WHEN",
        help="30d, 12h or 90m from now, a date (2027-01-31, from 00:00 UTC) or an ISO time; "
        "default: never",
    )
    t = command(actions, "revoke", "delete a token", _token_revoke)
    t.add_argument("name", metavar="NAME", help="token name")
    t = command(
        actions,
        "list",
        "the tokens: user, role, expiry (names and prefixes, never the tokens)",
        _token_list,
    )
    t.add_argument(
        "--json", action="store_true", help="print a JSON array (never the tokens nor their hashes)"
    )
