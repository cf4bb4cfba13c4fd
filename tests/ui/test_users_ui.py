"""Users in the GUI (issue 7): the login dialog, a quick user switch while a recording runs and
alarms, permission-aware buttons (with the core refusing what a shortcut still asks), the
sign-off with the password, and review windows that lock after inactivity while the live
window keeps alarming."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from charting_support import NURSE, T0, open_chart, to_infusion, vitals
from conftest import Harness, make_harness
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QWidget
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ManualClock
from infusion_monitor.export.record import load_session_record
from infusion_monitor.session import accounts
from infusion_monitor.session.auth import Access, Principal, Role
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.store import Database
from infusion_monitor.store.audit import AuditLog
from infusion_monitor.ui.app import login_for
from infusion_monitor.ui.qt_browser import SessionBrowser
from infusion_monitor.ui.qt_charting import ChartingPanel
from infusion_monitor.ui.qt_login import InactivityLock, LoginDialog
from infusion_monitor.ui.qt_review import ReviewWindow
from infusion_monitor.vitals import Reading, Vital

ACCOUNTS = {
    Role.ADMIN: ("boss", "B. Oss", "admin-secret-1"),
    Role.NURSE: ("r.nurse", "R. Nurse", "nurse-secret-1"),
    Role.ATTENDING: ("dr.a", "Dr A. Ttending", "attending-secret-1"),
    Role.SUPERVISOR: ("sup", "Dr S. Upervisor", "supervisor-secret-1"),
}
FAILED = "✖ login failed: unknown user or wrong password"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "HASHER",
                        PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))


def add_accounts(db: Database) -> dict[Role, Principal]:
    user, name, password = ACCOUNTS[Role.ADMIN]
    accounts.add_user(db.engine, None, username=user, display_name=name, role="admin",
                      password=password)
    admin = Principal(user, name, Role.ADMIN)
    for role, (user, name, password) in ACCOUNTS.items():
        if role is not Role.ADMIN:
            accounts.add_user(db.engine, admin, username=user, display_name=name,
                              role=role.value, password=password)
    return {role: Principal(u, n, role) for role, (u, n, _p) in ACCOUNTS.items()}


def log_in(qtbot: QtBot, dialog: LoginDialog, user: str, password: str) -> None:
    form = dialog.form
    form.username.setText(user)
    qtbot.keyClicks(form.password, password)
    qtbot.keyClick(form.password, Qt.Key.Key_Return)


# -- the login dialog ---------------------------------------------------------------------------
def test_login_dialog_says_nothing_about_which_part_was_wrong(qtbot: QtBot,
                                                              database: Database) -> None:
    assert login_for(Access(database.engine)) is None  # no accounts: no login at all
    add_accounts(database)
    authenticate = login_for(Access(database.engine))
    assert authenticate is not None
    dialog = LoginDialog(authenticate)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.mouseClick(dialog.login_button, Qt.MouseButton.LeftButton)  # empty
    assert dialog.form.message.text() == "Enter your username and password."
    log_in(qtbot, dialog, "r.nurse", "wrong-password")
    assert dialog.form.message.text() == FAILED and dialog.isVisible()
    assert dialog.form.password.text() == ""  # cleared after every try
    log_in(qtbot, dialog, "nobody", "nurse-secret-1")
    assert dialog.form.message.text() == FAILED
    accounts.set_disabled(database.engine, Principal("boss", "B. Oss", Role.ADMIN), "r.nurse")
    log_in(qtbot, dialog, "r.nurse", "nurse-secret-1")
    assert "is disabled: ask an admin" in dialog.form.message.text()
    log_in(qtbot, dialog, "dr.a", "attending-secret-1")
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.principal == Principal("dr.a", "Dr A. Ttending", Role.ATTENDING)
    actions = [(e.action, e.actor) for e in AuditLog(database.engine).entries()
               if e.action.startswith("login")]
    assert actions == [("login_failed", "R. Nurse"), ("login_failed", "(unknown user)"),
                       ("login_failed", "R. Nurse"), ("login", "Dr A. Ttending")]


# -- switching user while recording ---------------------------------------------------------
@pytest.fixture
def chair(qtbot: QtBot, clock: ManualClock, database: Database) -> Iterator[Harness]:
    """The live window with accounts, the nurse logged in, a (fake) recording running whose
    alarm monitor checks the same ``Access`` as the window."""
    people = add_accounts(database)
    database.repository.create_session(source="gui", protocol="datex-s5", started=clock.now(),
                                       by="ws")  # session 1: where refusals are recorded
    access = Access(database.engine, people[Role.NURSE])
    h = make_harness(qtbot, clock, access=access, authenticate=login_for(access, "switch"))
    assert h.window.connect_to("datex-s5", "/dev/ttyUSB0", 19200)
    h.recording.alarms.access = access  # as LiveRecording wires it
    yield h


def desaturate(h: Harness, value: float = 85, seconds: int = 12) -> None:
    for _ in range(seconds + 1):
        h.recording.deliver([Reading(Vital.SPO2, value), Reading(Vital.HR, 80)])
        h.clock.advance(1)
    h.recording.tick()


def press_f2(qtbot: QtBot, window: QWidget) -> None:
    """F2 as the nurse presses it: an application shortcut, once the dialog has gone."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(window, Qt.Key.Key_F2)


def test_switching_user_keeps_the_recording_and_alarms_running(
        chair: Harness, qtbot: QtBot, database: Database) -> None:
    w, rec = chair.window, chair.recording
    assert w.user == "R. Nurse" and "R. Nurse (nurse)" in w.user_label.text()
    desaturate(chair)
    qtbot.waitUntil(lambda: w.alarm_bar.text.startswith("*** SpO2 85 < 88"))
    assert w.alarm_bar.ack_button.isEnabled()

    w.switch_action.trigger()  # Ctrl+U
    dialog = w.switch_dialog
    assert dialog is not None and dialog.isVisible()
    log_in(qtbot, dialog, "sup", "wrong-password")
    assert dialog.form.message.text() == FAILED and w.user == "R. Nurse"
    log_in(qtbot, dialog, "SUP", "supervisor-secret-1")
    qtbot.waitUntil(lambda: w.user == "Dr S. Upervisor")
    assert w.access is not None and w.access.principal is not None
    assert w.access.principal.role is Role.SUPERVISOR
    assert "Dr S. Upervisor (supervisor)" in w.user_label.text()
    # The recording was never touched, and it still records and alarms.
    assert w.recording is rec and rec.started and not rec.stopped
    assert w.alarm_bar.top is not None and w.alarm_sound.current == "high"
    rec.deliver([Reading(Vital.HR, 131)])
    qtbot.waitUntil(lambda: w.tiles[Vital.HR].value_text == "131")

    # The supervisor may not acknowledge: the button says who may...
    why = "Dr S. Upervisor (supervisor) may not acknowledge alarms: only nurses and attendings may"
    assert not w.alarm_bar.ack_button.isEnabled() and w.alarm_bar.ack_button.toolTip() == why
    assert not w.alarm_bar.pause_button.isEnabled()
    assert not w.charting.checkin.isEnabled()
    assert w.charting.checkin.toolTip().endswith("may not chart: only nurses and attendings may")
    # ...and F2, which still reaches the core, is refused there and recorded.
    press_f2(qtbot, w)
    qtbot.waitUntil(lambda: w.alarm_bar.message.text() == f"✖ {why}")
    assert not w.alarm_bar.top.acknowledged  # type: ignore[union-attr]
    last = max(AuditLog(database.engine).entries(), key=lambda e: e.id)
    assert (last.action, last.actor, last.reason) == ("denied", "Dr S. Upervisor", why)

    # Back to a nurse: F2 works and the alarm log names her.
    w.switch_user()
    log_in(qtbot, w.switch_dialog, "dr.a", "attending-secret-1")  # type: ignore[arg-type]
    qtbot.waitUntil(lambda: w.user == "Dr A. Ttending")
    assert w.alarm_bar.ack_button.isEnabled() and w.alarm_bar.ack_button.toolTip() == ""
    press_f2(qtbot, w)
    qtbot.waitUntil(lambda: w.alarm_bar.top is not None and w.alarm_bar.top.acknowledged)
    assert w.alarm_bar.top.acknowledged_by == "Dr A. Ttending"  # type: ignore[union-attr]
    switches = [e.actor for e in AuditLog(database.engine).entries()
                if e.action == "login" and e.detail.get("purpose") == "switch"]
    assert switches == ["Dr S. Upervisor", "Dr A. Ttending"]


# -- the sign-off tab with accounts ---------------------------------------------------------------
@pytest.fixture
def finished(db: Database) -> tuple[ManualClock, int]:
    """A discharged, stopped session charted before the accounts existed."""
    clock = ManualClock(T0)
    chart = open_chart(db, clock)
    to_infusion(chart, clock)
    vitals(chart, clock, 120)
    chart.end_infusion(NURSE)
    chart.discharge(NURSE, reason="attending reviewed")
    db.repository.end_session(chart.session_id, clock.now())
    clock.advance(60)
    return clock, chart.session_id


def test_sign_off_tab_follows_the_logged_in_user(qtbot: QtBot, db: Database,
                                                  finished: tuple[ManualClock, int]) -> None:
    clock, sid = finished
    people = add_accounts(db)
    access = Access(db.engine, people[Role.NURSE])
    panel = ChartingPanel(clock, user=lambda: "typed", role=lambda: "supervisor")
    qtbot.addWidget(panel)
    panel.set_chart(SessionChart.open(db, sid, clock, access=access))
    panel.set_permissions(access.principal, True)
    panel.show_tab("Sign-off")
    tab = panel.signoff
    assert not tab.sign_button.isEnabled()
    assert tab.sign_button.toolTip() == "R. Nurse (nurse) may not sign off: only supervisors may"
    assert tab.password.isVisibleTo(panel) and tab.printed_name.isReadOnly()

    access.principal = people[Role.SUPERVISOR]
    panel.set_permissions(access.principal, True)
    assert tab.sign_button.isEnabled() and tab.printed_name.text() == "Dr S. Upervisor"
    qtbot.keyClicks(tab.password, "wrong-password")
    qtbot.mouseClick(tab.sign_button, Qt.MouseButton.LeftButton)
    assert "does not match Dr S. Upervisor's account: nothing was signed" in tab.message.text()
    assert tab.password.text() == "" and tab.chart.signoffs() == []  # type: ignore[union-attr]
    qtbot.keyClicks(tab.password, "supervisor-secret-1")
    qtbot.mouseClick(tab.sign_button, Qt.MouseButton.LeftButton)
    assert tab.message.text().startswith("Signed off by Dr S. Upervisor on ")
    (done,) = tab.chart.signoffs()  # type: ignore[union-attr]
    assert (done.signed_by, done.role) == ("sup", "supervisor")


# -- review windows lock; the live window does not ------------------------------------------
def test_review_windows_lock_after_inactivity_while_the_live_view_alarms(
        qtbot: QtBot, harness: Harness, database: Database) -> None:
    people = add_accounts(database)
    clock = ManualClock(T0)
    sid = database.repository.create_session(source="gui", protocol="datex-s5", started=T0,
                                             by="ws")
    database.repository.end_session(sid, T0)
    access = Access(database.engine, people[Role.SUPERVISOR])
    record = load_session_record(database, sid, clock, access=access)
    review = ReviewWindow(record, clock)
    browser = SessionBrowser(database.engine, lambda _sid: None)
    for window in (review, browser):
        qtbot.addWidget(window)
        window.show()
    logins: list[Principal] = []

    def on_login(principal: Principal) -> None:
        access.principal = principal
        logins.append(principal)

    lock = InactivityLock(clock, 300, login_for(access, "unlock"),  # type: ignore[arg-type]
                          on_login=on_login, username=lambda: access.principal.username
                          if access.principal else "", poll_ms=20, parent=browser)
    lock.add(browser)
    lock.add(review)
    live = harness.window
    assert live.connect_to("datex-s5", "/dev/ttyUSB0", 19200)

    clock.advance(290)
    qtbot.keyClick(review.minute_table, Qt.Key.Key_Down)  # input re-arms the lock
    clock.advance(290)
    qtbot.wait(60)
    assert not lock.locked
    clock.advance(11)
    qtbot.waitUntil(lambda: lock.locked)
    for window in (review, browser):
        overlay = lock.overlays[window]
        assert overlay.isVisible() and overlay.geometry() == window.rect()
        assert not window.centralWidget().isEnabled() and not window.menuBar().isEnabled()
        assert overlay.form.username.text() == "sup"
    assert live.centralWidget().isEnabled()  # the live window is never locked

    # While the review is locked, the live window records and alarms as ever.
    for _ in range(13):
        harness.recording.deliver([Reading(Vital.SPO2, 85), Reading(Vital.HR, 80)])
        harness.clock.advance(1)
    harness.recording.tick()
    qtbot.waitUntil(lambda: live.alarm_bar.text.startswith("*** SpO2 85 < 88"))
    assert live.isEnabled() and live.alarm_bar.ack_button.isEnabled()

    form = lock.overlays[review].form
    qtbot.keyClicks(form.password, "wrong-password")
    qtbot.keyClick(form.password, Qt.Key.Key_Return)
    assert form.message.text() == FAILED and lock.locked
    qtbot.keyClicks(form.password, "supervisor-secret-1")
    qtbot.keyClick(form.password, Qt.Key.Key_Return)
    assert not lock.locked and lock.overlays == {}
    assert review.centralWidget().isEnabled() and browser.menuBar().isEnabled()
    assert logins == [people[Role.SUPERVISOR]]
    unlock = max(AuditLog(database.engine).entries(), key=lambda e: e.id)
    assert (unlock.action, unlock.actor, unlock.detail["purpose"]) == (
        "login", "Dr S. Upervisor", "unlock")
    assert unlock.what == "unlocked (logged in)"
    lock.stop()
