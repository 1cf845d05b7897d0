"""Thermostat, heater supervision and thermal dose: pure, clock injected.

Guards follow the 3D-printer firmwares that keep heaters from burning: heat
goes off on any doubt at once, and a fault latches when the doubt persists.
"""

import math
from collections import deque
from dataclasses import dataclass, field

from matpi import limits
from matpi.events import Reading

MEDIAN_OF = 3
"""Readings in the median filter: one outlier neither trips nor heats."""

OUT_OF_RANGE_IN_ROW = 3
"""Consecutive out-of-range readings that latch a sensor fault (Klipper uses 4)."""


def cem43_per_min(temp_c: float) -> float:
    """Thermal dose rate in CEM43 per minute at `temp_c` (Sapareto & Dewey 1984)."""
    r = 0.5 if temp_c >= 43.0 else 0.25
    return math.pow(r, 43.0 - temp_c)


@dataclass
class _Track:
    """What one sensor said lately."""

    valid_at: float
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=MEDIAN_OF))
    last_raw_c: float | None = None
    bad_in_row: int = 0
    last_error: str | None = None


class Supervisor:
    """Tracks every configured sensor and says whether heat may be on.

    Heat is allowed only while every sensor has a valid reading younger than
    `limits.STALE_HEAT_OFF_S` and no raw reading reached the trip temperature.
    Faults (returned as reason strings) come from a confirmed over-temperature,
    repeated out-of-range readings, or a reading missing for `STALE_FAULT_S`.
    """

    def __init__(self, sensors: tuple[str, ...], trip_c: float, now: float) -> None:
        self._trip_c = trip_c
        self._tracks = {name: _Track(valid_at=now) for name in sensors}

    def restart_clocks(self, now: float) -> None:
        """Forget past readings, as after a fault was cleared."""
        for name in self._tracks:
            self._tracks[name] = _Track(valid_at=now)

    def reading(self, reading: Reading, now: float) -> str | None:
        """Take one sample; returns a fault reason if it confirms a fault."""
        track = self._tracks.get(reading.sensor)
        if track is None:
            return None
        value = reading.value_c
        if value is None or not limits.SENSOR_MIN_C <= value <= limits.SENSOR_MAX_C:
            track.bad_in_row += 1
            track.last_error = reading.error or f"{value:.1f} °C is out of range"
            track.last_raw_c = value
            if track.bad_in_row >= OUT_OF_RANGE_IN_ROW:
                return f"sensor {reading.sensor}: {track.last_error}"
            return None
        track.bad_in_row = 0
        track.last_error = None
        track.valid_at = now
        track.last_raw_c = value
        track.recent.append(value)
        filtered = self._filtered(track)
        if filtered is not None and filtered >= self._trip_c:
            return (
                f"over-temperature: sensor {reading.sensor} reads {filtered:.1f} °C, "
                f"trip at {self._trip_c:g} °C"
            )
        return None

    def check(self, now: float) -> str | None:
        """Time-based guards; returns a fault reason when a reading is missing too long."""
        for name, track in self._tracks.items():
            silent_s = now - track.valid_at
            if silent_s >= limits.STALE_FAULT_S:
                detail = f" ({track.last_error})" if track.last_error else ""
                return f"sensor {name}: no valid reading for {silent_s:.0f} s{detail}"
        return None

    def heat_allowed(self, now: float) -> bool:
        """True only when every sensor is fresh, valid and below the trip."""
        for track in self._tracks.values():
            if not track.recent or track.bad_in_row:
                return False
            if now - track.valid_at >= limits.STALE_HEAT_OFF_S:
                return False
            if track.last_raw_c is not None and track.last_raw_c >= self._trip_c:
                return False
        return True

    def temperature(self) -> float | None:
        """The hottest filtered sensor value: control and dose use the worst case."""
        values = [self._filtered(t) for t in self._tracks.values()]
        known = [v for v in values if v is not None]
        return max(known) if known else None

    def next_deadline(self) -> float:
        """When a missing reading next changes what is allowed."""
        soonest = min(t.valid_at for t in self._tracks.values())
        return soonest + limits.STALE_HEAT_OFF_S

    def fault_deadline(self) -> float:
        return min(t.valid_at for t in self._tracks.values()) + limits.STALE_FAULT_S

    @staticmethod
    def _filtered(track: _Track) -> float | None:
        if not track.recent:
            return None
        ordered = sorted(track.recent)
        return ordered[(len(ordered) - 1) // 2]  # of two, the lower: one spike never trips


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

    def earliest_change(self) -> float:
        return self._changed_at + (self._min_on_s if self.on else self._min_off_s)


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
