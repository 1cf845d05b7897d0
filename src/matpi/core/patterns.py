"""Vibration patterns as pure functions of elapsed time.

A pattern gives a level between 0 and 1; the session scales it by the chosen
intensity. Relay-driven motors only see on/off, and their driver enforces the
minimum toggle period, so every pattern here changes at most every 2 s.

`breathe` follows a breath at a per-program pace (4-8 breaths/min): smooth on a
PWM motor; for an on/off motor its on/off form is on for the whole inhale and
off for the whole exhale, each longer than the relay's 2 s at every pace.
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
    BREATHE = "breathe"


MIN_BREATHS_PER_MIN = 4.0
MAX_BREATHS_PER_MIN = 8.0
"""Slow breathing around 6/min (about 0.1 Hz, resonance-frequency breathing) is the
best-studied pace for relaxation; 4..8 keeps every inhale and exhale past 2 s."""

DEFAULT_BREATHS_PER_MIN = 6.0

INHALE_SHARE = 0.4
"""Inhale:exhale 4:6, a longer exhale, as slow-breathing guides pace it."""


def _off(elapsed_s: float, breaths_per_min: float) -> float:
    return 0.0


def _steady(elapsed_s: float, breaths_per_min: float) -> float:
    return 1.0


def _pulse(elapsed_s: float, breaths_per_min: float) -> float:
    """4 s on, 4 s off: slow enough for a relay-driven motor."""
    return 1.0 if elapsed_s % 8.0 < 4.0 else 0.0


def _wave(elapsed_s: float, breaths_per_min: float) -> float:
    """Swells between 30 % and 100 % over 20 s."""
    return 0.65 + 0.35 * math.sin(2 * math.pi * elapsed_s / 20.0)


def _slow(elapsed_s: float, breaths_per_min: float) -> float:
    """A gentle swell between 20 % and 60 % over 60 s, for winding down."""
    return 0.4 + 0.2 * math.sin(2 * math.pi * elapsed_s / 60.0)


def breath_phase(elapsed_s: float, breaths_per_min: float) -> tuple[bool, float]:
    """Where `elapsed_s` falls in a breath: (inhaling, share 0..1 of that half done).

    Args:
        elapsed_s: seconds since the session started; a breath starts at 0.
        breaths_per_min: the pace, `MIN_BREATHS_PER_MIN`..`MAX_BREATHS_PER_MIN`.
    Returns:
        (True, share of the inhale) or (False, share of the exhale).
    """
    period_s = 60.0 / breaths_per_min
    inhale_s = INHALE_SHARE * period_s
    into_s = breath_into_s(elapsed_s, breaths_per_min)
    if into_s < inhale_s:
        return True, into_s / inhale_s
    return False, (into_s - inhale_s) / (period_s - inhale_s)


def breath_level(elapsed_s: float, breaths_per_min: float) -> float:
    """Raised-cosine halves: 0 at the start of a breath, 1 at the end of the inhale.

    The motor's `breathe` level before intensity, and what a PWM status LED shows."""
    inhaling, share = breath_phase(elapsed_s, breaths_per_min)
    rising = share if inhaling else 1.0 - share
    return (1.0 - math.cos(math.pi * rising)) / 2.0


_LEVELS: dict[Pattern, Callable[[float, float], float]] = {
    Pattern.OFF: _off,
    Pattern.STEADY: _steady,
    Pattern.PULSE: _pulse,
    Pattern.WAVE: _wave,
    Pattern.SLOW: _slow,
    Pattern.BREATHE: breath_level,
}


def vibration_duty(
    pattern: Pattern,
    intensity_pct: float,
    elapsed_s: float,
    *,
    breaths_per_min: float,
    on_off: bool = False,
) -> float:
    """Motor duty (0..1) for a pattern at an intensity, `elapsed_s` into the session.

    Args:
        pattern: which pattern.
        intensity_pct: 0..100, the user's intensity.
        elapsed_s: seconds since the session started.
        breaths_per_min: the program's pace, used by `breathe` only.
        on_off: the form an on/off (relay) motor can show: `breathe` is on at the
            intensity for the whole inhale and off for the whole exhale, since a relay
            reads any duty above 0 as on. The other patterns are the same either way.
    Returns:
        duty rounded to 0.01, so that a steady pattern gives one constant value.
    """
    elapsed_s = max(elapsed_s, 0.0)
    if on_off and pattern is Pattern.BREATHE:
        level = 1.0 if breath_phase(elapsed_s, breaths_per_min)[0] else 0.0
    else:
        level = _LEVELS[pattern](elapsed_s, breaths_per_min)
    return round(max(0.0, min(1.0, level * intensity_pct / 100.0)), 2)


def breath_into_s(elapsed_s: float, breaths_per_min: float) -> float:
    """Seconds into the breath under way, `elapsed_s` into the session (0 = inhale starts)."""
    return max(elapsed_s, 0.0) % (60.0 / breaths_per_min)


def next_breath_edge(elapsed_s: float, breaths_per_min: float) -> float:
    """Seconds after the session start of the next inhale/exhale switch after `elapsed_s`.

    An on/off motor changes there, so the controller wakes for it rather than up to
    one tick late.
    """
    period_s = 60.0 / breaths_per_min
    start_s = math.floor(max(elapsed_s, 0.0) / period_s) * period_s
    for edge_s in (start_s + INHALE_SHARE * period_s, start_s + period_s,
                   start_s + (1.0 + INHALE_SHARE) * period_s):
        if edge_s > elapsed_s:
            return edge_s
    return start_s + 2.0 * period_s
