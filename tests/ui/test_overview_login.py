"""The clinic overview shows patients' initials and vitals: with accounts it opens only after a
login by someone who may review (nurses, attendings, supervisors); an admin is refused, and the
refusal is in the audit trail. Without accounts (one chair, the demo) it opens as before."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from infusion_monitor.errors import PermissionDeniedError
from infusion_monitor.session.auth import Access, Role
from infusion_monitor.store import Database
from infusion_monitor.store.audit import AuditLog
from infusion_monitor.ui.qt_login import LoginDialog
from infusion_monitor.ui.qt_overview import overview_login
from tests.ui.test_users_ui import ACCOUNTS, add_accounts, cheap_hashes, log_in

__all__ = ["cheap_hashes"]  # its fixture: cheap argon2 costs


def answering(qtbot: QtBot, act: Callable[[LoginDialog], None]) -> None:
    """Act on the login dialog as soon as it is up (it runs its own modal loop)."""
    def act_when_up() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, LoginDialog):
            QTimer.singleShot(20, act_when_up)
            return
        act(dialog)
    QTimer.singleShot(0, act_when_up)


def test_without_accounts_it_opens_without_a_login(database: Database) -> None:
    assert overview_login(Access(database.engine)) is True
    assert AuditLog(database.engine).entries() == []


def test_a_nurse_logs_in_and_it_opens(qtbot: QtBot, database: Database) -> None:
    add_accounts(database)
    user, name, password = ACCOUNTS[Role.NURSE]
    answering(qtbot, lambda d: log_in(qtbot, d, user, password))
    access = Access(database.engine)
    assert overview_login(access) is True
    assert access.principal is not None and access.principal.display_name == name
    last = AuditLog(database.engine).entries()[-1]
    assert (last.action, last.actor) == ("login", name)


def test_an_admin_is_refused_and_it_is_recorded(qtbot: QtBot, database: Database) -> None:
    add_accounts(database)
    user, name, password = ACCOUNTS[Role.ADMIN]
    answering(qtbot, lambda d: log_in(qtbot, d, user, password))
    with pytest.raises(PermissionDeniedError) as info:
        overview_login(Access(database.engine))
    assert str(info.value) == (f"{name} (admin) may not see the clinic overview: only nurses, "
                               "attendings and supervisors may")
    last = AuditLog(database.engine).entries()[-1]
    assert (last.action, last.actor, last.reason) == ("denied", name, str(info.value))


def test_cancelling_the_login_opens_nothing(qtbot: QtBot, database: Database) -> None:
    add_accounts(database)
    answering(qtbot, lambda d: d.reject())
    assert overview_login(Access(database.engine)) is False
