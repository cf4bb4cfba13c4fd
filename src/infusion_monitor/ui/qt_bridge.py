"""The one path from worker threads (serial link, recorder, store) to widgets: queued signals."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal

from infusion_monitor.devices.base import Event, WaveformBlock


class LiveFeed(QObject):
    """Relays recorder events and link states to the GUI thread.

    Create it in the GUI thread; ``push_events`` and ``push_state`` may then be called from any
    thread, and Qt queues the emissions to receivers living in the GUI thread.
    """

    events = Signal(object)  # list[Reading | DeviceEvent]
    waveforms = Signal(object)  # list[WaveformBlock]: kept apart, most receivers want values
    state = Signal(str, str)  # (LinkState value, detail)
    alarms = Signal(object)  # the alarm engine's state after a change (an immutable snapshot)

    def push_events(self, events: Sequence[Event]) -> None:
        """Recorder subscriber: hand a batch of stamped events to the GUI thread.

        Waveform blocks go out on ``waveforms``, everything else on ``events``, in order.
        """
        blocks = [e for e in events if isinstance(e, WaveformBlock)]
        if not blocks:
            self.events.emit(list(events))
            return
        others = [e for e in events if not isinstance(e, WaveformBlock)]
        if others:
            self.events.emit(others)
        self.waveforms.emit(blocks)

    def push_state(self, state: str, detail: str) -> None:
        """Link state listener: hand a state change to the GUI thread."""
        self.state.emit(str(state), detail)

    def push_alarms(self, snapshot: object) -> None:
        """Alarm engine listener: hand its new state to the GUI thread."""
        self.alarms.emit(snapshot)
