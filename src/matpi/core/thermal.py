"""Heat control and thermal dose: pure, clock injected.

Two ways to hold a setpoint: on/off with hysteresis and minimum on and off
times for a mechanical relay, or time-proportioning over a short window for
an SSR. The guards that decide whether heat may be on at all live in
`supervision`; these only say how much heat is wanted.
"""

import math
from typing import Protocol

from matpi.core import limits


def cem43_per_min(temp_c: float) -> float:
    """Thermal dose rate in CEM43 per minute at `temp_c` (Sapareto & Dewey 1984)."""
    r = 0.5 if temp_c >= 43.0 else 0.25
    return math.pow(r, 43.0 - temp_c)


class Thermostat:
    """On/off control with hysteresis and minimum on and off times.

    A mechanical relay wears out when switched often (SAFETY.md: 100,000
    operations), so the thermostat holds each state for its minimum time.
    Safety never waits for it: `force_off` switches off at once.
    """

    def __init__(self, hysteresis_c: float, min_on_s: float, min_off_s: float) -> None:
        self._hysteresis_c = hysteresis_c
        self._min_on_s = min_on_s
        self._min_off_s = min_off_s
        self.on = False
        self._changed_at = -math.inf

    def update(self, temp_c: float, setpoint_c: float, now: float) -> bool:
        """Heater demand for this moment."""
        if self.on:
            want = temp_c < setpoint_c
        else:
            want = temp_c < setpoint_c - self._hysteresis_c
        if want != self.on and now >= self.earliest_change():
            self.on = want
            self._changed_at = now
        return self.on

    def force_off(self, now: float) -> None:
        if self.on:
            self.on = False
            self._changed_at = now

    @property
    def demanding(self) -> bool:
        """Heat is being asked for (the relay is on)."""
        return self.on

    def earliest_change(self) -> float:
        return self._changed_at + (self._min_on_s if self.on else self._min_off_s)


class TimeProportioning:
    """Heat for a share of each window, in proportion to how far below the setpoint.

    For an SSR, which does not wear: within each `window_s` the heater is on
    for duty × window, where duty rises from 0 at the setpoint to 1 at
    `band_c` below it.
    """

    def __init__(self, window_s: float, band_c: float) -> None:
        self._window_s = window_s
        self._band_c = band_c
        self._window_start = -math.inf
        self._duty = 0.0
        self.on = False

    def update(self, temp_c: float, setpoint_c: float, now: float) -> bool:
        if now - self._window_start >= self._window_s:
            self._window_start = now
            self._duty = min(max((setpoint_c - temp_c) / self._band_c, 0.0), 1.0)
        self.on = now - self._window_start < self._duty * self._window_s
        return self.on

    def force_off(self, now: float) -> None:
        self.on = False
        self._duty = 0.0
        self._window_start = -math.inf

    @property
    def demanding(self) -> bool:
        """Heat is being asked for in this window, even while the SSR rests in it."""
        return self._duty > 0.0

    def earliest_change(self) -> float:
        return self._window_start + self._duty * self._window_s


class HeatControl(Protocol):
    """What the session machine needs of a controller: a demand, and off at once."""

    on: bool

    @property
    def demanding(self) -> bool: ...

    def update(self, temp_c: float, setpoint_c: float, now: float) -> bool: ...

    def force_off(self, now: float) -> None: ...


class DoseMeter:
    """Integrates CEM43 from the measured temperature over one session."""

    def __init__(self) -> None:
        self.total = 0.0
        self.peak_c: float | None = None
        self._last: tuple[float, float] | None = None

    def add(self, temp_c: float | None, now: float) -> None:
        """Account the time since the last sample at the last sample's temperature."""
        if self._last is not None:
            at, last_c = self._last
            dt_s = min(max(now - at, 0.0), limits.STALE_FAULT_S)
            self.total += cem43_per_min(last_c) * dt_s / 60.0
        self._last = None if temp_c is None else (now, temp_c)
        if temp_c is not None and (self.peak_c is None or temp_c > self.peak_c):
            self.peak_c = temp_c
