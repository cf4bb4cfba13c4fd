"""Alarm tones through QtMultimedia: the most urgent unacknowledged alarm sounds, and repeats.

The tones are generated in code (``alarm_tones``) and played with ``QSoundEffect`` from WAV
files written once to a private temporary directory. Without an audio output (a PC with no
sound device, CI) nothing can sound, and the window says so plainly instead of staying silent
without a word. The audio pause is the alarm engine's (1, 2 or 3 minutes, then it ends by itself:
there is no permanent mute); this class only follows its countdown.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QTimer, QUrl, Signal

from infusion_monitor.ui.alarm_tones import REPEAT_S, tone_wav

log = logging.getLogger(__name__)

PAUSE_MINUTES = (1, 2, 3)
DEFAULT_PAUSE_MIN = 2
# Symbols from DejaVu Sans, which every Linux desktop has: emoji fonts are not a given, and
# a missing glyph would show as an empty box.
NO_DEVICE_TEXT = "⚠ No audio device — alarm tones cannot sound"
PRIORITY_RANK = {"high": 3, "medium": 2, "low": 1}


def tone_priority(priority: str) -> str:
    """The tone pattern for an alarm of ``priority`` (technical alarms use medium's or low's)."""
    return priority if priority in PRIORITY_RANK else "medium"


def format_countdown(seconds: float) -> str:
    """``m:ss`` for a pause countdown, rounded up so it never shows 0:00 while still paused."""
    s = max(0, int(-(-seconds // 1)))
    return f"{s // 60}:{s % 60:02d}"


class TonePlayer(Protocol):
    """Plays one burst of a priority's tone (``QSoundEffect`` in the app, a fake in tests)."""

    def play(self, priority: str) -> None: ...

    def stop(self) -> None: ...


def system_outputs() -> list[str]:
    """Descriptions of the audio outputs Qt can use (empty without a sound server, or when
    QtMultimedia cannot load: e.g. no libpulse on the machine; the window then says "no
    audio device" instead of failing to open)."""
    try:
        from PySide6.QtMultimedia import QMediaDevices
    except ImportError as exc:
        log.warning("no alarm tones: QtMultimedia cannot load (%s)", exc)
        return []
    return [d.description() for d in QMediaDevices.audioOutputs()]


class SoundEffectPlayer(QObject):
    """One ``QSoundEffect`` per priority, loaded from generated WAV files."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from PySide6.QtMultimedia import QSoundEffect

        self._dir = Path(tempfile.mkdtemp(prefix="infusion-monitor-tones-"))
        self._effects: dict[str, QSoundEffect] = {}
        for priority in PRIORITY_RANK:
            path = self._dir / f"{priority}.wav"
            path.write_bytes(tone_wav(priority))
            effect = QSoundEffect(self)
            effect.setSource(QUrl.fromLocalFile(str(path)))
            effect.setVolume(1.0)
            self._effects[priority] = effect

    def play(self, priority: str) -> None:
        self.stop()
        self._effects[tone_priority(priority)].play()

    def stop(self) -> None:
        for effect in self._effects.values():
            effect.stop()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


class AlarmSound(QObject):
    """Decides what sounds and when: the top unacknowledged priority, its repeat, the pause.

    ``update(sounding)`` takes ``(alarm key, priority)`` of every active, unacknowledged alarm.
    A new or more urgent alarm sounds at once; high repeats every ~10 s, medium every ~25 s,
    low sounds once per alarm. ``changed`` fires when the pause starts or ends.
    """

    changed = Signal()

    def __init__(
        self,
        *,
        outputs: Callable[[], Sequence[str]] = system_outputs,
        make_player: Callable[[QObject], TonePlayer] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._outputs = outputs
        self.devices = list(outputs())
        self._player: TonePlayer | None = None
        if self.devices:
            self._player = (make_player or SoundEffectPlayer)(self)
        self._pause_left = 0.0
        self._sounding: dict[str, str] = {}
        self._played_low: set[str] = set()
        self.current: str | None = None  # the priority whose tone is repeating, if any
        self.played: list[str] = []  # every burst started, for the record and for tests
        self._repeat = QTimer(self)
        self._repeat.setSingleShot(True)
        self._repeat.timeout.connect(self._on_repeat)

    # -- device -----------------------------------------------------------------------------
    @property
    def available(self) -> bool:
        return self._player is not None

    def device_text(self) -> str:
        """What the window shows about sound: no device, or the device tones go to."""
        if not self.available:
            return NO_DEVICE_TEXT
        return f"♪ Alarm tones on {self.devices[0]}"

    # -- pause (the alarm engine owns it: 1, 2 or 3 min, ended early by a new high alarm) ----
    def set_pause_remaining(self, seconds: float) -> None:
        """The engine's countdown; 0 = sound on. Tones stop while paused and resume after."""
        was = self.paused
        self._pause_left = max(0.0, seconds)
        if self.paused and not was:
            self._stop_tone()
            self.changed.emit()
        elif was and not self.paused:
            self.changed.emit()
            self._restart()

    @property
    def paused(self) -> bool:
        return self._pause_left > 0

    def pause_text(self) -> str:
        """``❚❚ Audio paused 1:43`` while paused, else ""."""
        return f"❚❚ Audio paused {format_countdown(self._pause_left)}" if self.paused else ""

    # -- sounding ---------------------------------------------------------------------------
    def update(self, sounding: Iterable[tuple[str, str]]) -> None:
        """The alarms that should sound now, as ``(key, priority)``."""
        previous = self._sounding
        self._sounding = dict(sounding)
        self._played_low &= set(self._sounding)
        new = {k: p for k, p in self._sounding.items() if k not in previous}
        top = self._top()
        if top is None:
            self._stop_tone()
            return
        if self.paused:
            return
        was = self.current
        if was is None or PRIORITY_RANK[top] > PRIORITY_RANK[was] or (
                top == "low" and any(tone_priority(p) == "low" for p in new.values())):
            self._start(top)
        elif PRIORITY_RANK[top] < PRIORITY_RANK[was]:
            self._stop_tone()  # the urgent one was acknowledged: the next sounds in its turn
            self._start(top)

    def _top(self) -> str | None:
        candidates = [tone_priority(p) for k, p in self._sounding.items()
                      if tone_priority(p) != "low" or k not in self._played_low]
        return max(candidates, key=PRIORITY_RANK.__getitem__, default=None)

    def _start(self, priority: str) -> None:
        self.played.append(priority)
        if priority == "low":
            self._played_low |= {k for k, p in self._sounding.items()
                                 if tone_priority(p) == "low"}
            self.current = None
        else:
            self.current = priority
        if self._player is not None:
            self._player.play(priority)
        repeat = REPEAT_S[priority]
        if repeat is None:
            self._repeat.stop()
        else:
            self._repeat.start(int(repeat * 1000))

    def _stop_tone(self) -> None:
        self.current = None
        self._repeat.stop()
        if self._player is not None:
            self._player.stop()

    def _restart(self) -> None:
        self.current = None
        top = self._top()
        if top is not None:
            self._start(top)

    def _on_repeat(self) -> None:
        if self.paused:
            return
        self._restart()

    @property
    def repeat_interval_ms(self) -> int | None:
        """The interval of the running repeat timer (None when nothing repeats)."""
        return self._repeat.interval() if self._repeat.isActive() else None

    def close(self) -> None:
        """Stop every tone and timer; remove the generated files."""
        self._stop_tone()
        closer = getattr(self._player, "close", None)
        if callable(closer):
            closer()
