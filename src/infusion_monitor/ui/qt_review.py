"""Review of one finished session, read-only: trends, minute log, alarms, notes, audit trail.

The window is built from a ``SessionRecord`` (a snapshot loaded by ``load_session_record``) and
holds no database, store or chart object: it has no path by which it could write a reading, a
score or an alarm. Its only inputs are selections, the cursor and zoom/pan of the charts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape

import pyqtgraph as pg
from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from infusion_monitor.clock import Clock, ManualClock
from infusion_monitor.export.formats import FORMATS, ExportAudit
from infusion_monitor.export.record import SessionRecord
from infusion_monitor.session.resume import chart_order
from infusion_monitor.session.thresholds import ThresholdProfile
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_alarm_log import COLUMNS as ALARM_COLUMNS
from infusion_monitor.ui.qt_alarm_log import cells
from infusion_monitor.ui.qt_alarms import record_row
from infusion_monitor.ui.qt_export import ExportController
from infusion_monitor.ui.qt_minute_model import MinuteLogModel, hhmmss
from infusion_monitor.ui.qt_numeric import local_hms
from infusion_monitor.ui.qt_phase_bar import MARKER_LABELS
from infusion_monitor.ui.qt_pleth import PlethStrip
from infusion_monitor.ui.qt_rems import FIELDS, summary_texts
from infusion_monitor.ui.qt_trends import TrendPanel

NOT_COUNTED = ("notify_attending", "audio_paused")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> QTableWidget:
    """A read-only table: no edit triggers and items without ItemIsEditable."""
    table = QTableWidget(len(rows), len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().hide()
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    for i, row in enumerate(rows):
        for j, text in enumerate(row):
            item = QTableWidgetItem(text)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            table.setItem(i, j, item)
    return table


def audit_rows(record: SessionRecord) -> list[tuple[datetime, str, str, str]]:
    """The session's audit trail, oldest first: (time, who, what, why). Device-data batches
    are left out (``infusion-monitor audit show --all`` lists them)."""
    return [(e.t, e.actor, e.what, e.why) for e in record.audit if e.action != "record"]


class ReviewWindow(QMainWindow):
    """One session for the supervisor: nothing here can change the clinical record."""

    def __init__(self, record: SessionRecord, clock: Clock | None = None,
                 parent: QWidget | None = None, *,
                 export_audit: ExportAudit | None = None) -> None:
        super().__init__(parent)
        self.record = record
        info = record.info
        end = info.ended or record.exported_at
        self.t0 = info.started
        # The charts' "now" is the end of the session: the whole record stays in view.
        self._chart_clock = ManualClock(end)
        self._clock = clock
        ci = record.check_in
        who = f"{ci.patient_name} ({ci.patient_id})" if ci else (info.patient_id or "—")
        self.setWindowTitle(f"Review — session {info.id} — {who} — read-only")

        self.trends = TrendPanel(self._chart_clock, interactive=True,
                                 window_min=max(1.0, (end - self.t0).total_seconds() / 60))
        self.trends.start_session(self.t0)
        self.trends.add_events(chart_order((*record.readings, *record.device_events)))
        self.trends.set_markers([(m.t, MARKER_LABELS[m.phase], m.voided)
                                 for m in record.markers])
        self.trends.set_alarm_bands([
            (a.start, a.end or end, "technical" if a.technical else a.priority)
            for a in record.alarms if a.condition not in NOT_COUNTED])
        self.trends.redraw()
        self.infusion_start = record.minutes[0].vitals.start if record.minutes else None
        pen = pg.mkPen(theme.AMBER, width=1, style=Qt.PenStyle.DashLine)
        self.cursors = []
        for plot in self.trends.plots:
            line = pg.InfiniteLine(pos=0, angle=90, movable=False, pen=pen)
            line.setZValue(20)
            plot.addItem(line, ignoreBounds=True)
            self.cursors.append(line)
            plot.scene().sigMouseClicked.connect(
                lambda ev, p=plot: self._chart_clicked(p, ev))

        # The recorded pleth at the cursor, ±5 s (hidden for a monitor that sends none).
        self.pleth = PlethStrip(record.waveforms.get("pleth"))
        self._show_pleth(0.0)

        self.minute_model = MinuteLogModel()
        self.minute_model.set_rows(record.minutes, None)
        self.minute_table = QTableView()
        self.minute_table.setModel(self.minute_model)
        self.minute_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.minute_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.minute_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.minute_table.verticalHeader().hide()
        # Fixed widths: sizing to contents asks the model for every role of every cell.
        self.minute_table.horizontalHeader().setStretchLastSection(True)
        for col, width in enumerate((42, 52, 44, 104, 120, 44, 120, 60, 70)):
            self.minute_table.setColumnWidth(col, width)
        self.minute_table.verticalHeader().setDefaultSectionSize(24)
        self.minute_table.selectionModel().currentRowChanged.connect(self._row_changed)

        profile = ThresholdProfile.defaults()
        alarm_rows = [record_row(profile, a) for a in sorted(record.alarms, key=lambda a: a.start)]
        self.alarm_table = _table(ALARM_COLUMNS, [cells(r) for r in alarm_rows])
        self.events_table = _table(
            ("Time", "Event", "Vital", "Detail", "Count"),
            [(local_hms(e.t_received or e.t_device or self.t0), e.kind.value,
              e.vital.value if e.vital else "", e.detail, str(e.count))
             for e in record.device_events])
        self.audit_table = _table(("Time", "By", "What", "Why"),
                                  [(hhmmss(t), by, what, why)
                                   for t, by, what, why in audit_rows(record)])
        self.notes_view = QTextBrowser()
        self.notes_view.setHtml(self._notes_html())
        rems = QWidget()
        form = QFormLayout(rems)
        texts = summary_texts(record.rems) if record.rems else {}
        self.rems_values: dict[str, QLabel] = {}
        for key, label in FIELDS:
            value = QLabel(texts.get(key, "—"))
            value.setWordWrap(True)
            form.addRow(label, value)
            self.rems_values[key] = value

        self.tabs = QTabWidget()
        self.tabs.addTab(self.minute_table, "Minute log")
        self.tabs.addTab(self.alarm_table, f"Alarms ({len(alarm_rows)})")
        self.tabs.addTab(self.notes_view, f"Notes ({len(record.notes)})")
        self.tabs.addTab(self.events_table, f"Device events ({len(record.device_events)})")
        self.tabs.addTab(rems, "REMS summary")
        self.tabs.addTab(self.audit_table, "Audit trail")

        header = QLabel(self._header_text())
        header.setWordWrap(True)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.trends)
        split.addWidget(self.pleth)
        split.addWidget(self.tabs)
        split.setSizes([380, 110, 300] if not self.pleth.isHidden() else [380, 0, 300])
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(6, 6, 6, 6)
        column.addWidget(header)
        column.addWidget(split, 1)
        self.setCentralWidget(central)
        self._build_export_menu(export_audit)

    # -- exports (a pure function of the record; ``audit`` can only record that one happened) --
    def _build_export_menu(self, audit: ExportAudit | None) -> None:
        self.exporter = ExportController(self, self.record, audit=audit)
        self.exporter.finished.connect(lambda _ok, text: self.statusBar().showMessage(text))
        menu = self.menuBar().addMenu("&Export")
        self.export_actions: dict[str, QAction] = {}
        for fmt in FORMATS.values():
            action = menu.addAction(fmt.title)
            action.triggered.connect(lambda _checked=False, f=fmt.name: self.exporter.export(f))
            self.export_actions[fmt.name] = action

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.exporter.shutdown()
        super().closeEvent(event)

    # -- the linked cursor -------------------------------------------------------------------
    def minute_x(self, minute: int) -> float:
        """The chart x (minutes since session start) of the middle of an infusion minute."""
        assert self.infusion_start is not None
        return (self.infusion_start - self.t0).total_seconds() / 60 + minute + 0.5

    def minute_at(self, x: float) -> int | None:
        """The infusion minute shown at chart x, if the minute log has it."""
        if self.infusion_start is None:
            return None
        k = math.floor(x - (self.infusion_start - self.t0).total_seconds() / 60)
        return k if 0 <= k < len(self.record.minutes) else None

    def cursor_x(self) -> float:
        return float(self.cursors[0].value())

    def selected_minute(self) -> int | None:
        index = self.minute_table.currentIndex()
        return index.row() if index.isValid() else None

    def select_at(self, x: float) -> None:
        """What a click on the chart does: the cursor goes there, the minute row is selected."""
        for line in self.cursors:
            line.setValue(x)
        self._show_pleth(x)
        minute = self.minute_at(x)
        if minute is not None and minute != self.selected_minute():
            index = self.minute_model.index(minute, 0)
            self.minute_table.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows)
            self.minute_table.scrollTo(index)

    def _show_pleth(self, x: float) -> None:
        """The pleth strip follows the cursor (``x`` in minutes since the session start)."""
        self.pleth.show_at(self.t0 + timedelta(minutes=x))

    def _chart_clicked(self, plot: pg.PlotWidget, event: object) -> None:
        pos = event.scenePos()  # type: ignore[attr-defined]
        vb = plot.getPlotItem().getViewBox()
        if vb.sceneBoundingRect().contains(pos):
            self.select_at(vb.mapSceneToView(pos).x())

    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and self.infusion_start is not None:
            x = self.minute_x(current.row())
            if self.minute_at(self.cursor_x()) != current.row():
                for line in self.cursors:
                    line.setValue(x)
                self._show_pleth(x)

    # -- text --------------------------------------------------------------------------------
    def _header_text(self) -> str:
        r, ci = self.record, self.record.check_in
        end = r.info.ended
        dur = "open" if end is None else f"{(end - r.info.started).total_seconds() / 60:.0f} min"
        who = (f"{ci.patient_name} ({ci.patient_id}) · nurse {ci.nurse} · attending "
               f"{ci.attending}" if ci else "no check-in")
        return (f"<b>Session {r.info.id}</b> · {r.info.started.astimezone():%Y-%m-%d %H:%M} · "
                f"{dur} · {escape(who)} · <i>read-only review</i>")

    def _notes_html(self) -> str:
        parts = []
        for chain in self.record.notes:
            first, last = chain[0], chain[-1]
            minute = "" if first.minute is None else f" (minute {first.minute})"
            line = (f"<p><b>{hhmmss(first.t)}</b>{minute} {escape(first.entered_by)}: "
                    f"{escape(last.text)}")
            for i, n in enumerate(chain[1:], 1):
                line += (f"<br>&nbsp;&nbsp;✎ amendment {i} by {escape(n.entered_by)} at "
                         f"{hhmmss(n.entered_at)}: {escape(n.reason or '')}"
                         f" (was: {escape(chain[i - 1].text)})")
            parts.append(line + "</p>")
        return "".join(parts) or "<i>no notes</i>"
