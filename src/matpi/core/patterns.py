"""Vibration patterns as pure functions of elapsed time.

A pattern gives a level between 0 and 1; the session scales it by the chosen
intensity. Relay-driven motors only see on/off, and their driver enforces the
minimum toggle period, so every pattern here changes at most every 2 s.
"""

import math
from collections.abc import Callable
from enum import StrEnum


class Pattern(StrEnum):
    """The vibration patterns a program or a remote command can pick."""

    OFF = "off"
    STEADY = "steady"
    PULSE = "pulse"
    WAVE = "wave"
    SLOW = "slow"


def _off(elapsed_s: float) -> float:
    return 0.0


def _steady(elapsed_s: float) -> float:
    return 1.0


def _pulse(elapsed_s: float) -> float:
    """4 s on, 4 s off: slow enough for a relay-driven motor."""
    return 1.0 if elapsed_s % 8.0 < 4.0 else 0.0


def _wave(elapsed_s: float) -> float:
    """Swells between 30 % and 100 % over 20 s."""
    return 0.65 + 0.35 * math.sin(2 * math.pi * elapsed_s / 20.0)


def _slow(elapsed_s: float) -> float:
    """A gentle swell between 20 % and 60 % over 60 s, for winding down."""
    return 0.4 + 0.2 * math.sin(2 * math.pi * elapsed_s / 60.0)


_LEVELS: dict[Pattern, Callable[[float], float]] = {
    Pattern.OFF: _off,
    Pattern.STEADY: _steady,
    Pattern.PULSE: _pulse,
    Pattern.WAVE: _wave,
    Pattern.SLOW: _slow,
}


def vibration_duty(pattern: Pattern, intensity_pct: float, elapsed_s: float) -> float:
    """Motor duty (0..1) for a pattern at an intensity, `elapsed_s` into the session.

    Args:
        pattern: which pattern.
        intensity_pct: 0..100, the user's intensity.
        elapsed_s: seconds since the session started.
    Returns:
        duty rounded to 0.01, so that a steady pattern gives one constant value.
    """
    level = _LEVELS[pattern](max(elapsed_s, 0.0))
    return round(max(0.0, min(1.0, level * intensity_pct / 100.0)), 2)
