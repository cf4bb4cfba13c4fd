"""A dark, glare-free look for dim infusion rooms: near-black ground, bright numerics only."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from infusion_monitor.vitals import Vital

BACKGROUND = "#0b0d10"  # near black: a bright screen dazzles in a darkened room
PANEL = "#14181d"
BORDER = "#262c33"
TEXT = "#c9d0d8"  # off-white: no pure white large areas
MUTED = "#8a939d"
GREYED = "#5b636c"  # stale / artifact / invalid values: readable but plainly not current
ALERT_RED = "#e5484d"
ERROR_TEXT = "#ffd7d7"  # on the dark red error banner
AMBER = "#e8a33d"
OK_GREEN = "#3ddc84"

VITAL_COLOURS: dict[Vital, str] = {
    Vital.HR: "#3ddc84",  # green, as on most patient monitors
    Vital.PR: "#6cb6ff",
    Vital.SPO2: "#2fd3f0",  # cyan
    Vital.NIBP_SYS: "#ff6b6b",  # red
    Vital.NIBP_DIA: "#ff9b9b",
    Vital.NIBP_MEAN: "#e6e9ec",  # whitish
    Vital.RR: "#f2d15a",
}

#: Every state is shown by a symbol and text as well as colour (colour-blind staff, glare).
#: Alarm priority colours after IEC 60601-1-8: high red, medium and low yellow, technical cyan.
PRIORITY_COLOURS = {
    "high": "#e5484d",
    "medium": "#f5d90a",
    "low": "#f5d90a",
    "technical": "#3ec6e0",
}
#: Flash frequency (Hz) by priority: high 1.4–2.8, medium 0.4–0.8, low steady (clinical.md).
PRIORITY_FLASH_HZ = {"high": 2.0, "medium": 0.5, "low": 0.0}
PRIORITY_SYMBOLS = {"high": "***", "medium": "**", "low": "*"}


def flash_interval_ms(priority: str) -> int:
    """Half a flash period (a timer toggles on and off), 0 for a steady priority."""
    hz = PRIORITY_FLASH_HZ.get(priority, 0.0)
    return round(500 / hz) if hz else 0

SYMBOL_STALE = "⚠"
SYMBOL_ARTIFACT = "?"
SYMBOL_INVALID = "⊘"
SYMBOL_DEMO = "◇"

STYLESHEET = f"""
QMainWindow, QWidget#central {{ background: {BACKGROUND}; }}
QFrame#tile {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 4px; }}
QLabel#banner {{ background: {PANEL}; color: {MUTED}; padding: 3px 8px;
                 border-bottom: 1px solid {BORDER}; }}
QFrame#errorBanner {{ background: #4a1214; border: 1px solid {ALERT_RED}; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid {BORDER}; }}
QToolTip {{ background: {PANEL}; color: {TEXT}; border: 1px solid {BORDER}; }}
"""


def colour(vital: Vital) -> str:
    """The trace and numeric colour of a vital."""
    return VITAL_COLOURS[vital]


def dark_palette() -> QPalette:
    """The application palette; labels take their text colour from it (no QLabel stylesheet)."""
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: PANEL,
        QPalette.ColorRole.AlternateBase: BACKGROUND,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: "#1c2128",
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.Highlight: "#2d4f6e",
        QPalette.ColorRole.HighlightedText: TEXT,
        QPalette.ColorRole.ToolTipBase: PANEL,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: GREYED,
    }
    for role, value in roles.items():
        p.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(GREYED))
    return p


def configure_pyqtgraph() -> None:
    """Plot defaults: dark ground, muted axes, no antialiasing (cheap redraws, crisp 1-px pens)."""
    pg.setConfigOptions(antialias=False, background=BACKGROUND, foreground=MUTED)


def apply_theme(app: QApplication) -> None:
    """Apply the dark palette, style sheet and plot defaults to the whole application."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(STYLESHEET)
    configure_pyqtgraph()
