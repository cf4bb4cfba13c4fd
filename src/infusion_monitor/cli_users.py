"""Logging in on the command line (``--as USERNAME``), and ``infusion-monitor users ...``.

A password is never an argument (it would show in the process list and the shell history)
nor an environment variable (inherited by every child process, and easily left in a script
or a CI log). It is asked for on the terminal without echo, or read from standard input
with ``--password-stdin``: one password per line, in the order the command needs them (the
``--as`` user's first, then a new password).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any, TextIO

from sqlalchemy import Engine

from infusion_monitor.clock import iso_z
from infusion_monitor.errors import ConfigError
from infusion_monitor.session import accounts
from infusion_monitor.session.auth import Access, Action, Role
from infusion_monitor.store.users import Account

AS_HELP = ("log in as this user (needed once the database has user accounts; the password "
           "is asked for, or read with --password-stdin)")
STDIN_HELP = ("read passwords from standard input, one per line: the --as user's first, "
              "then a new password")


def add_login_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """``--as`` and ``--password-stdin``, before the command (``suppress`` False) or after
    it (then an option given before it is kept)."""
    parser.add_argument("--as", dest="as_user", metavar="USERNAME",
                        default=argparse.SUPPRESS if suppress else None, help=AS_HELP)
    parser.add_argument("--password-stdin", action="store_true",
                        default=argparse.SUPPRESS if suppress else False, help=STDIN_HELP)


class Passwords:
    """Where passwords come from: the terminal (no echo), or standard input's lines."""

    def __init__(self, from_stdin: bool, stdin: TextIO | None = None) -> None:
        self.from_stdin = from_stdin
        self._stdin = stdin
        self._line = 0

    def _read_line(self, what: str) -> str:
        stream = self._stdin or sys.stdin
        self._line += 1
        line = stream.readline()
        if not line:
            raise ConfigError(f"--password-stdin: no line {self._line} on standard input "
                              f"(expected {what})")
        return line.removesuffix("\n").removesuffix("\r")

    def _terminal(self) -> None:
        if not sys.stdin.isatty():
            raise ConfigError("no terminal to ask for a password: pass it on standard input "
                              "with --password-stdin")

    def current(self, username: str) -> str:
        """The password of ``username``, to log in."""
        if self.from_stdin:
            return self._read_line(f"the password of {username}")
        self._terminal()
        return getpass.getpass(f"Password for {username}: ")

    def new(self, username: str) -> str:
        """A new password for ``username`` (typed twice on a terminal)."""
        if self.from_stdin:
            return self._read_line(f"the new password of {username}")
        self._terminal()
        first = getpass.getpass(f"New password for {username}: ")
        if getpass.getpass("Repeat it: ") != first:
            raise ConfigError("the two passwords differ: nothing was changed")
        return first


def passwords(args: argparse.Namespace) -> Passwords:
    return Passwords(bool(getattr(args, "password_stdin", False)))


def login(args: argparse.Namespace, engine: Engine, action: Action, *,
          session_id: int | None = None, what: str | None = None,
          source: Passwords | None = None) -> Access:
    """Who runs this command, checked for ``action`` before it reads or writes anything.

    With no account in the database nothing is checked (and ``--as`` is an error: it would
    check nothing). Otherwise ``--as`` is required: a wrong password is AuthenticationError,
    a role that may not is PermissionDeniedError; both are in the audit trail.
    """
    access = Access(engine)
    user = getattr(args, "as_user", None)
    if user is not None:
        if not access.accounts_exist():
            raise ConfigError("--as: this database has no user accounts, so there is nobody to "
                              "log in as; leave --as out (or add the first admin with "
                              "`infusion-monitor users add`)")
        secret = (source or passwords(args)).current(user)
        access.principal = accounts.authenticate(engine, user, secret, purpose="cli")
    access.check(action, session_id=session_id, what=what)
    return access


# -- infusion-monitor users ------------------------------------------------------------------
def add_users_parser(sub: Any) -> argparse.ArgumentParser:
    u = sub.add_parser("users", help="local user accounts: add, list, disable, enable, "
                       "reset-password (an admin's job, --as ADMIN)")
    users_sub = u.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = users_sub.add_parser("add", help="add an account (the first one, an admin, needs "
                               "no login)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--name", required=True, help="the name the record shows, e.g. "
                     "\"R. Nurse\" (unique)")
    users_sub.add_parser("list", help="list the accounts")
    dis = users_sub.add_parser("disable", help="disable an account (it can no longer log in)")
    dis.add_argument("username")
    ena = users_sub.add_parser("enable", help="enable a disabled account again")
    ena.add_argument("username")
    reset = users_sub.add_parser("reset-password", help="set a new password for an account")
    reset.add_argument("username")
    for sp in (u, *users_sub.choices.values()):
        sp.add_argument("--db", default=argparse.SUPPRESS, help="database URL or SQLite file")
        add_login_options(sp, suppress=True)
    return u


def cmd_users(args: argparse.Namespace, engine: Engine) -> int:
    source = passwords(args)
    command = args.users_command
    if command == "add" and getattr(args, "as_user", None) is None:
        principal = None  # the first admin (add_user refuses it once accounts exist)
    elif command != "add" and not Access(engine).accounts_exist():
        # Nobody could be allowed: say what to do, and record no refusal of nobody.
        raise ConfigError("this database has no user accounts yet: add the first admin with "
                          "`infusion-monitor users add USERNAME --role admin --name NAME`")
    else:
        name = getattr(args, "username", "")
        what = {"add": f"add the account {name!r}", "list": "list the user accounts",
                "disable": f"disable the account {name!r}",
                "enable": f"enable the account {name!r}",
                "reset-password": f"reset the password of {name!r}"}[command]
        principal = login(args, engine, Action.MANAGE_USERS, what=what,
                          source=source).principal
    if command == "list":
        return _list(accounts.list_users(engine, principal))
    if command == "add":
        done = accounts.add_user(engine, principal, username=args.username,
                                 display_name=args.name, role=args.role,
                                 password=_ask_new(source, args.username))
        print(f"added {done.username} ({done.display_name}, {done.role})", file=sys.stderr)
    elif command in ("disable", "enable"):
        done = accounts.set_disabled(engine, principal, args.username, command == "disable")
        print(f"{done.username}: {command}d", file=sys.stderr)
    else:
        done = accounts.reset_password(engine, principal, args.username,
                                       _ask_new(source, args.username))
        print(f"{done.username}: password changed", file=sys.stderr)
    return 0


def _ask_new(source: Passwords, username: str) -> Callable[[], str]:
    return lambda: source.new(username.strip().lower())


def _list(found: list[Account]) -> int:
    print(f"{'username':20} {'name':24} {'role':10} {'status':8} {'created (UTC)':20} "
          f"{'by':16} password changed (UTC)")
    for a in found:
        print(f"{a.username:20} {a.display_name:24} {a.role:10} "
              f"{'disabled' if a.disabled else 'active':8} {iso_z(a.created_at)[:19]:20} "
              f"{a.created_by:16} {iso_z(a.password_changed_at)[:19]}")
    return 0
