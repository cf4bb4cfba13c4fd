"""Alarm tones generated in code, shaped after IEC 60601-1-8: pure numpy, no Qt, no I/O.

A pattern is a list of pulses (start, pitch, duration). Each pulse is a harmonic-rich tone (the
standard asks for at least four harmonics, so a tone stays locatable and audible to ears with
high-frequency loss) with a short rise and fall, rendered as 16-bit mono PCM and wrapped as WAV.

=========  =======================================  ==========================  =============
priority   pulses                                   pulse / spacing             repeats every
=========  =======================================  ==========================  =============
high       2 bursts of 5: c a f – a f, twice         150 ms / 100 ms             ~10 s
medium     3: c a f                                  200 ms / 150 ms             ~25 s
low        2: a f, an octave lower, softer           220 ms / 180 ms             once
=========  =======================================  ==========================  =============

A technical alarm sounds with the pattern of its priority: the tone says how urgent, the bar
says what.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 22_050
C5, A4, F4 = 523.25, 440.0, 349.23
HARMONICS = (1.0, 0.55, 0.4, 0.3, 0.2)  # fundamental strongest; 4 harmonics within -15 dB
RISE_FRACTION = 0.15  # rise and fall each take this share of a pulse (IEC: 10–20 % for high)

#: Seconds between the starts of two tone bursts while an alarm sounds; None = plays once.
REPEAT_S: dict[str, float | None] = {"high": 10.0, "medium": 25.0, "low": None}


@dataclass(frozen=True, slots=True)
class Pulse:
    """One tone pulse: when it starts (s from the burst start), its pitch and length."""

    start_s: float
    freq_hz: float
    duration_s: float
    level: float = 1.0


def _sequence(notes: list[float | None], pulse_s: float, spacing_s: float,
              level: float = 1.0) -> tuple[Pulse, ...]:
    """Pulses one after another; a ``None`` note is a silent slot (the dash in ``c a f – a f``)."""
    pulses: list[Pulse] = []
    t = 0.0
    for note in notes:
        if note is not None:
            pulses.append(Pulse(round(t, 6), note, pulse_s, level))
        t += pulse_s + spacing_s
    return tuple(pulses)


def pattern(priority: str) -> tuple[Pulse, ...]:
    """The pulses of one burst for ``priority`` ("high", "medium" or "low")."""
    if priority == "high":
        half = [C5, A4, F4, None, A4, F4]  # c a f – a f
        first = _sequence(half, 0.15, 0.10)
        # The second group starts 0.6 s after the first group's last pulse ends.
        offset = first[-1].start_s + first[-1].duration_s + 0.6
        second = tuple(Pulse(round(p.start_s + offset, 6), p.freq_hz, p.duration_s, p.level)
                       for p in first)
        return first + second
    if priority == "medium":
        return _sequence([C5, A4, F4], 0.20, 0.15)
    if priority == "low":
        return _sequence([A4 / 2, F4 / 2], 0.22, 0.18, level=0.6)
    raise ValueError(f"unknown alarm priority {priority!r}")


def _pulse_wave(pulse: Pulse, rate: int) -> np.ndarray:
    n = round(pulse.duration_s * rate)
    t = np.arange(n) / rate
    tone = sum(a * np.sin(2 * np.pi * pulse.freq_hz * (k + 1) * t)
               for k, a in enumerate(HARMONICS))
    ramp = max(1, round(n * RISE_FRACTION))
    envelope = np.ones(n)
    envelope[:ramp] = np.linspace(0.0, 1.0, ramp)
    envelope[-ramp:] = np.linspace(1.0, 0.0, ramp)
    return np.asarray(tone * envelope * pulse.level / sum(HARMONICS))


def synthesize(pulses: tuple[Pulse, ...], rate: int = SAMPLE_RATE,
               volume: float = 0.8) -> np.ndarray:
    """Render pulses as 16-bit PCM (mono int16), ending with the last pulse."""
    if not pulses:
        return np.zeros(0, dtype=np.int16)
    end = max(p.start_s + p.duration_s for p in pulses)
    out = np.zeros(round(end * rate) + 1)
    for p in pulses:
        w = _pulse_wave(p, rate)
        i = round(p.start_s * rate)
        out[i:i + len(w)] += w[: len(out) - i]
    return np.asarray(np.clip(out * volume, -1.0, 1.0) * 32767, dtype=np.int16)


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """A complete mono 16-bit WAV file holding ``samples``."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return buf.getvalue()


def tone_wav(priority: str, rate: int = SAMPLE_RATE) -> bytes:
    """The WAV file of one burst for ``priority``."""
    return wav_bytes(synthesize(pattern(priority), rate), rate)
