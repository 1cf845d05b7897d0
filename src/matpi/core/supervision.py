"""Heater supervision: the guards that decide whether heat may be on at all.

Each guard is a small object with one concern and one fault reason, in the
manner of the 3D-printer firmwares that keep heaters from burning (Klipper's
verify_heater, Marlin's thermal protection): heat goes off at once on any
doubt, and a fault latches when the doubt persists. Numbers and their
reasons are in docs/SAFETY.md.
"""

from collections import deque
from dataclasses import dataclass, field
from typing import TypeGuard

from matpi.core import limits
from matpi.core.events import Reading

MEDIAN_OF = 3
"""Readings in the median filter: one outlier neither trips nor heats."""

OUT_OF_RANGE_IN_ROW = 3
"""Consecutive out-of-range readings that latch a sensor fault (Klipper uses 4)."""

DISAGREE_C = 5.0
"""Two sensors further apart than this: one of them is wrong (Marlin uses 10 °C)."""

BODY_WARMTH_C = 34.0
"""A person alone warms the pad at most to skin temperature; above it only the heater can."""

MODEL_GAP_C = 4.0
"""A reading this far below what the heater's on-time implies: the sensor reads low."""

MODEL_GAP_HOLD_S = 60.0
"""How long the gap must last, so that one slow reading does not latch it."""


@dataclass
class _Track:
    """What one sensor said lately."""

    valid_at: float
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=MEDIAN_OF))
    filtered_c: float | None = None
    """The median of `recent`, kept with it: a step reads it several times."""
    last_raw_c: float | None = None
    bad_in_row: int = 0
    last_error: str | None = None


class Supervisor:
    """Tracks every configured sensor and says whether heat may be on.

    Heat is allowed only while every sensor has a valid reading younger than
    `limits.STALE_HEAT_OFF_S` and no raw reading reached the trip temperature.
    Faults (returned as reason strings) come from a confirmed over-temperature,
    repeated out-of-range readings, two sensors disagreeing, or a reading
    missing for `STALE_FAULT_S`.
    """

    def __init__(self, sensors: tuple[str, ...], trip_c: float, now: float) -> None:
        self._trip_c = trip_c
        self._tracks = {name: _Track(valid_at=now) for name in sensors}
        self._hottest_c: float | None = None
        """The hottest filtered value, kept as each reading comes: a step reads it often."""

    def readings(self, readings: tuple[Reading, ...], now: float) -> str | None:
        """Take samples read at one moment; returns the first fault they confirm.

        Every sample is taken, even after one confirms a fault, so that each sensor's
        track is current. The sensors are compared once every sample is in: one sensor's
        new value is never set against another's old one from the same moment."""
        reasons = [self._take(reading, now) for reading in readings]
        return next((r for r in reasons if r), None) or self._disagreement(now)

    def _take(self, reading: Reading, now: float) -> str | None:
        track = self._tracks.get(reading.sensor)
        if track is None:
            return None
        value = reading.value_c
        if not in_sensor_range(value):
            track.bad_in_row += 1
            track.last_error = reading.error or (
                "no value" if value is None else f"{value:.1f} °C is out of range")
            track.last_raw_c = value
            if track.bad_in_row >= OUT_OF_RANGE_IN_ROW:
                return f"sensor {reading.sensor}: {track.last_error}"
            return None
        track.bad_in_row = 0
        track.last_error = None
        track.valid_at = now
        track.last_raw_c = value
        track.recent.append(value)
        track.filtered_c = _median(track.recent)
        self._hottest_c = max(t.filtered_c for t in self._tracks.values()
                              if t.filtered_c is not None)
        return self._over_temperature(reading.sensor, track)

    def _over_temperature(self, name: str, track: _Track) -> str | None:
        """The trip, confirmed by the median so that one spike does not latch it."""
        filtered = track.filtered_c
        if filtered is not None and filtered >= self._trip_c:
            return (f"over-temperature: sensor {name} reads {filtered:.1f} °C, "
                    f"trip at {self._trip_c:g} °C")
        return None

    def _disagreement(self, now: float) -> str | None:
        fresh = {
            name: value
            for name, track in self._tracks.items()
            if now - track.valid_at < limits.STALE_HEAT_OFF_S
            and (value := track.filtered_c) is not None
        }
        if len(fresh) < 2:
            return None
        cold, cold_c = min(fresh.items(), key=_value)
        hot, hot_c = max(fresh.items(), key=_value)
        if hot_c - cold_c > DISAGREE_C:
            return (f"sensors disagree: {hot} reads {hot_c:.1f} °C, {cold} {cold_c:.1f} °C "
                    f"(more than {DISAGREE_C:g} °C apart)")
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

    def fresh_temperature(self, now: float) -> float | None:
        """The hottest filtered value of the sensors read validly within STALE_HEAT_OFF_S:
        what the mat shows. None when no sensor has one; never a stale value."""
        fresh = [value for t in self._tracks.values()
                 if not t.bad_in_row and now - t.valid_at < limits.STALE_HEAT_OFF_S
                 and (value := t.filtered_c) is not None]
        return max(fresh, default=None)

    def temperature(self) -> float | None:
        """The hottest filtered sensor value: control and dose use the worst case."""
        return self._hottest_c

    def next_deadline(self) -> float:
        """When a missing reading next changes what is allowed."""
        soonest = min(t.valid_at for t in self._tracks.values())
        return soonest + limits.STALE_HEAT_OFF_S

    def fault_deadline(self) -> float:
        return min(t.valid_at for t in self._tracks.values()) + limits.STALE_FAULT_S


def in_sensor_range(value_c: float | None) -> TypeGuard[float]:
    """A value a mat's sensor can give: present, and neither open (below SENSOR_MIN_C) nor
    shorted (above SENSOR_MAX_C). Anything else the supervisor counts as a bad reading."""
    return value_c is not None and limits.SENSOR_MIN_C <= value_c <= limits.SENSOR_MAX_C


def _median(values: deque[float]) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]  # of two, the lower: one spike never trips


def _value(item: tuple[str, float]) -> float:
    return item[1]


class NotHeatingGuard:
    """With the heater on well below the setpoint, the temperature must climb.

    As Klipper's verify_heater: while approaching, each `gain_c` must come
    within `window_s`; once it does not, the shortfall below (setpoint −
    `band_c`) is integrated, at least 1 °C a second, and the fault latches at
    `max_error_cs`. Catches a heater that does not heat (open element, blown
    fuse) and a sensor that does not see it (fallen off, stuck). Worst case:
    window + max error ≈ 3 min of heating that the sensor did not see.
    """

    def __init__(self, gain_c: float, window_s: float, band_c: float, max_error_cs: float) -> None:
        self._gain_c = gain_c
        self._window_s = window_s
        self._band_c = band_c
        self._max_error_cs = max_error_cs
        self._reset()

    def _reset(self) -> None:
        self._goal: tuple[float, float] | None = None
        self._approaching = True
        self._error_cs = 0.0
        self._last_at: float | None = None

    def update(
        self, temp_c: float | None, setpoint_c: float | None, heater_on: bool, now: float
    ) -> str | None:
        if not heater_on or temp_c is None or setpoint_c is None or (
            temp_c >= setpoint_c - self._band_c
        ):
            self._reset()
            return None
        dt = 0.0 if self._last_at is None else now - self._last_at
        self._last_at = now
        if self._goal is None:
            self._goal = (temp_c + self._gain_c, now + self._window_s)
            return None
        if self._approaching:
            goal_c, goal_at = self._goal
            if temp_c >= goal_c:
                self._goal = (temp_c + self._gain_c, now + self._window_s)
            elif now >= goal_at:
                self._approaching = False
            return None
        self._error_cs += max(setpoint_c - self._band_c - temp_c, 1.0) * dt
        if self._error_cs >= self._max_error_cs:
            return (f"not heating: {temp_c:.1f} °C with the heater on, did not rise "
                    f"{self._gain_c:g} °C in {self._window_s:g} s towards {setpoint_c:g} °C "
                    "(heater, fuse or sensor placement)")
        return None


class RunawayGuard:
    """With the heater off, a pad above body warmth must not keep warming.

    A welded relay or a shorted SSR heats on regardless of the demand. After
    `settle_s` off (overshoot of the element), a rise of `rise_c` within any
    `window_s`, above `BODY_WARMTH_C`, latches the fault: the power relay
    drops, and the thermal fuse is the last line.
    """

    def __init__(self, settle_s: float, window_s: float, rise_c: float) -> None:
        self._settle_s = settle_s
        self._window_s = window_s
        self._rise_c = rise_c
        self._off_since: float | None = None
        self._lows: deque[tuple[float, float]] = deque()
        """(time, °C) of the window's readings that no later one is as low as, oldest
        first: its first is the window's lowest. One entry a step, so a flood of events
        costs no scan of the window (review: `min` over every step was 0.2 ms a step)."""

    def update(self, temp_c: float | None, heater_on: bool, now: float) -> str | None:
        if heater_on or temp_c is None:
            self._off_since = None
            self._lows.clear()
            return None
        if self._off_since is None:
            self._off_since = now
        if now - self._off_since < self._settle_s:
            return None
        while self._lows and self._lows[-1][1] >= temp_c:
            self._lows.pop()  # never the lowest again: this one is as low and stays longer
        self._lows.append((now, temp_c))
        while now - self._lows[0][0] > self._window_s:
            self._lows.popleft()
        lowest_c = self._lows[0][1]
        if temp_c > BODY_WARMTH_C and temp_c - lowest_c >= self._rise_c:
            return (f"heating with the heater off: {lowest_c:.1f} -> {temp_c:.1f} °C within "
                    f"{self._window_s:g} s (relay or SSR stuck on?)")
        return None


class ModelGapGuard:
    """The sensor must not read far below what the heater's on-time implies.

    One sensor that reads low is outvoted by the other (heat follows the
    hotter); this catches what both share: both lifted off the pad or under
    the same cold spot, a common offset, or an element that does not heat. The
    pad estimate (`matpi.core.padmodel.PadEstimate`) is a lower bound of a pad that
    matches its model, so a reading `gap_c` below it for `hold_s` latches a
    fault. Smaller gaps are covered by the core using the higher of reading and
    estimate.
    """

    def __init__(self, gap_c: float = MODEL_GAP_C, hold_s: float = MODEL_GAP_HOLD_S) -> None:
        self._gap_c = gap_c
        self._hold_s = hold_s
        self._since: float | None = None

    def update(self, reading_c: float | None, estimate_c: float | None, active: bool,
               now: float) -> str | None:
        if not active or reading_c is None or estimate_c is None or (
            estimate_c - reading_c < self._gap_c
        ):
            self._since = None
            return None
        if self._since is None:
            self._since = now
        if now - self._since < self._hold_s:
            return None
        return (f"reading below the pad model: {reading_c:.1f} °C where the heater's on-time "
                f"implies at least {estimate_c:.1f} °C (heater not heating; sensors off the pad, "
                "drifting or stuck; or a room colder than [pad] room_c)")


class OverheatGuard:
    """The surface must not rise past the setpoint in force: heat that the relay did not stop.

    The thermostat switches off at the setpoint; if the surface still climbs
    `margin_c` above it, the heater relay is welded (or something else heats)
    and only the power relay can stop it: a latched fault drops it. When the
    setpoint is lowered or heat stops, the allowance follows the surface down
    instead of jumping, so a pad that is merely still warm never trips it.
    """

    def __init__(self, margin_c: float) -> None:
        self._margin_c = margin_c
        self._allowed_c: float | None = None

    def update(self, surface_c: float | None, setpoint_c: float | None, active: bool) -> str | None:
        if not active or surface_c is None:
            self._allowed_c = None
            return None
        target_c = BODY_WARMTH_C if setpoint_c is None else setpoint_c
        held_c = surface_c if self._allowed_c is None else min(self._allowed_c, surface_c)
        self._allowed_c = max(target_c, held_c)
        if surface_c >= self._allowed_c + self._margin_c:
            return (f"overheating: the surface is at {surface_c:.1f} °C, more than "
                    f"{self._margin_c:g} °C above the {self._allowed_c:.1f} °C allowed "
                    "(heater relay stuck on?)")
        return None
