"""The one clock of a running mat, scaled in simulation.

The pure core only ever sees the numbers this returns. At `speed` 60 one real
second is one simulated minute for everything: sessions, cooldowns, the
thermal model and the calendar day.
"""

import time
from collections.abc import Callable
from datetime import date, datetime


class Clock:
    """Monotonic seconds and the calendar day, optionally running faster than real time."""

    def __init__(
        self,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be above 0, got {speed}")
        self.speed = speed
        self._monotonic = monotonic
        self._mono_start = monotonic()
        self._wall_start = wall()

    def now(self) -> float:
        """Seconds on the (scaled) monotonic clock."""
        return self._mono_start + (self._monotonic() - self._mono_start) * self.speed

    def wall(self) -> float:
        """Epoch seconds on the (scaled) wall clock."""
        return self._wall_start + (self.now() - self._mono_start)

    def today(self) -> date:
        """The local calendar day of the (scaled) wall clock, for the daily limit."""
        return datetime.fromtimestamp(self.wall()).date()

    def real_seconds(self, clock_s: float) -> float:
        """How long to really wait for `clock_s` to pass on this clock."""
        return max(clock_s, 0.0) / self.speed
