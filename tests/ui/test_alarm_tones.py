"""Alarm tone synthesis (pure numpy): length, pulse count, pitches, WAV framing."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from infusion_monitor.ui.alarm_tones import (
    A4,
    C5,
    F4,
    REPEAT_S,
    SAMPLE_RATE,
    pattern,
    synthesize,
    tone_wav,
)


def pulse_spans(samples: np.ndarray, rate: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """(start, end) sample indices of each pulse, from a 5-ms RMS envelope."""
    win = rate // 200
    x = samples.astype(float) / 32767
    n = len(x) // win
    rms = np.sqrt((x[: n * win].reshape(n, win) ** 2).mean(axis=1))
    on = rms > 0.25 * rms.max()
    edges = np.diff(on.astype(int), prepend=0, append=0)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(s * win, e * win) for s, e in zip(starts, ends, strict=True)]


def fundamental(segment: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n=1 << 16))
    return float(np.fft.rfftfreq(1 << 16, 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize(("priority", "pulses", "notes"), [
    ("high", 10, [C5, A4, F4, A4, F4] * 2),
    ("medium", 3, [C5, A4, F4]),
    ("low", 2, [A4 / 2, F4 / 2]),
])
def test_each_priority_has_its_pulses_and_pitches(priority: str, pulses: int,
                                                  notes: list[float]) -> None:
    samples = synthesize(pattern(priority))
    assert samples.dtype == np.int16
    spans = pulse_spans(samples)
    assert len(spans) == pulses
    for (start, end), note in zip(spans, notes, strict=True):
        assert fundamental(samples[start:end]) == pytest.approx(note, rel=0.01)
    # Duration: ends with the last pulse.
    last = pattern(priority)[-1]
    assert len(samples) / SAMPLE_RATE == pytest.approx(last.start_s + last.duration_s, abs=0.01)


def test_high_is_two_bursts_of_five_with_the_c_a_f_dash_a_f_rhythm() -> None:
    starts = [p.start_s for p in pattern("high")]
    gaps = np.diff(starts)
    # Within a burst: even spacing, except the dash between the 3rd and 4th pulse.
    assert gaps[0] == pytest.approx(gaps[1]) == pytest.approx(gaps[3])
    assert gaps[2] == pytest.approx(2 * gaps[0])
    assert gaps[4] > gaps[2]  # the pause between the two bursts is the longest
    assert all(0.075 <= p.duration_s <= 0.2 for p in pattern("high"))  # IEC 60601-1-8 t_d


def test_tones_are_harmonic_rich_and_never_clip() -> None:
    samples = synthesize(pattern("medium"))
    assert np.abs(samples).max() < 32767
    start, end = pulse_spans(samples)[0]
    spectrum = np.abs(np.fft.rfft(samples[start:end].astype(float)))
    freqs = np.fft.rfftfreq(end - start, 1 / SAMPLE_RATE)
    peak = spectrum.max()
    for k in range(2, 6):  # four harmonics within 15 dB of the fundamental
        near = spectrum[np.abs(freqs - k * C5) < 15].max()
        assert 20 * np.log10(near / peak) > -15


def test_repeat_intervals_and_wav_framing() -> None:
    assert REPEAT_S == {"high": 10.0, "medium": 25.0, "low": None}
    with wave.open(io.BytesIO(tone_wav("high"))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SAMPLE_RATE)
        assert w.getnframes() == len(synthesize(pattern("high")))
    with pytest.raises(ValueError, match="unknown alarm priority"):
        pattern("urgent")
