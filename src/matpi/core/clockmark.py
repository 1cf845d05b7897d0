"""What the core and the history know of clocks: no clock is read here.

`drivers.clock` reads the system's clocks; these are the numbers and the
record it hands on, so that the history (a layer beside the drivers, not
above them) can judge a clock step without reading a clock itself.
"""

from dataclasses import dataclass
from datetime import date
from typing import Protocol

STEP_TOLERANCE_S = 2.0
"""A wall clock moving this much against the monotonic clock was set, not slewed."""


@dataclass(frozen=True)
class ClockMark:
    """Where the wall clock stood against this boot's own clock, saved with the history,
    so that a restart can tell a wall clock set while matpi was down from time passing."""

    wall: float
    boot_id: str
    since_boot_s: float
    synced: bool | None
    """Whether NTP (or an RTC) had set the wall clock; None when it cannot be told."""


class TimeSource(Protocol):
    """What a layer above the drivers may ask of `drivers.clock.Clock`, without importing it."""

    def now(self) -> float:
        """Seconds on the (scaled) monotonic clock."""
        ...

    def wall(self) -> float:
        """Epoch seconds."""
        ...

    def today(self) -> date:
        """The local calendar day of `wall`."""
        ...
