"""The board's own safety guards, independent of the host.

Pure and valid MicroPython. Each guard is one small object; BoardCore runs
them all and latches the first fault any of them reports. The numbers match
matpi.core.limits on the host, so the board is a second line, not a looser one.
"""

TRIP_C = 45.0  # heat-pain threshold; 9 CEM43 in 2.3 min
SENSOR_MIN_C = 5.0  # colder means an open sensor wire or a sensor off the mat
SENSOR_MAX_C = 60.0  # hotter means a shorted sensor: no mat surface reads it
CLEAR_BELOW_C = 35.0  # a fault clears only once the mat has cooled below this
HOST_TIMEOUT_MS = 2000  # outputs need the host to refresh them this often
READINGS_TO_TRIP = 3  # consecutive bad readings, so one noisy sample cannot latch


def heat_allowed_at(temp_c):
    """Whether one reading lets the heater run: heat stops at once, a fault latches later."""
    return SENSOR_MIN_C <= temp_c < TRIP_C


class InARow:
    """Counts consecutive true conditions: true once `needed` arrived in a row."""

    def __init__(self, needed=READINGS_TO_TRIP):
        self._needed = needed
        self._count = 0

    def update(self, condition):
        self._count = self._count + 1 if condition else 0
        return self._count >= self._needed


class OverTempGuard:
    """Trips at TRIP_C: the mat is too hot to lie on, whatever the host says."""

    def __init__(self):
        self._hot = InARow()

    def check(self, temp_c):
        """Returns "OVER_TEMP" when this reading confirms the trip, else None."""
        return "OVER_TEMP" if self._hot.update(temp_c >= TRIP_C) else None


class SensorRangeGuard:
    """Trips outside SENSOR_MIN_C..SENSOR_MAX_C: an open or shorted NTC reads there."""

    def __init__(self):
        self._low = InARow()
        self._high = InARow()

    def check(self, temp_c):
        """Returns "SENSOR_LOW" or "SENSOR_HIGH" when this reading confirms it, else None."""
        if self._low.update(temp_c < SENSOR_MIN_C):
            return "SENSOR_LOW"
        if self._high.update(temp_c > SENSOR_MAX_C):
            return "SENSOR_HIGH"
        return None


class Deadline:
    """Expires `timeout_ms` after the last refresh; expired until first refreshed."""

    def __init__(self, timeout_ms=HOST_TIMEOUT_MS):
        self._timeout_ms = timeout_ms
        self._refreshed_ms = None

    def refresh(self, now_ms):
        self._refreshed_ms = now_ms

    def expired(self, now_ms):
        return self._refreshed_ms is None or now_ms - self._refreshed_ms >= self._timeout_ms


class FaultLatch:
    """Holds the first fault until a clear is asked for and the mat is cool and sensed."""

    def __init__(self):
        self.code = None

    def latch(self, code):
        """True when `code` is a new fault; a latched fault keeps its first code."""
        if self.code is not None:
            return False
        self.code = code
        return True

    def clear(self, temp_c):
        """None once cleared (or nothing latched), else why not: "HOT" or "SENSOR"."""
        if self.code is None:
            return None
        if not SENSOR_MIN_C <= temp_c <= SENSOR_MAX_C:
            return "SENSOR"
        if temp_c >= CLEAR_BELOW_C:
            return "HOT"
        self.code = None
        return None
