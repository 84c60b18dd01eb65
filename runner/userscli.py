"""``runner users …``: the people who sign in to the studio, from the command line (the way to
make the first admin). Passwords are read from a prompt, or from standard input with
``--password-stdin`` (for scripts), never from the command line, where ``ps`` and the shell's
history would show them. Handlers only parse and print; ``studio.users`` does the rest."""

from __future__ import annotations

import argparse
import getpass
import sys

from runner.output import print_list, when
from studio.config.store import ConfigStore
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
