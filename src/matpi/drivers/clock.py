"""The one clock of a running mat, scaled in simulation.

The pure core only ever sees the numbers this returns. At `speed` 60 one real
second is one simulated minute for everything: sessions, cooldowns, the
thermal model and the calendar day. At speed 1 the calendar follows the real
wall clock, so a Pi that boots without a clock battery and is set by NTP
later moves to the right day; `stepped` tells the controller when that
happened, so the core carries the day's use over instead of forgetting it.
"""

import ctypes
import functools
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from matpi.core.clockmark import STEP_TOLERANCE_S, ClockMark


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
        self._wall = wall
        self._mono_start = monotonic()
        self._wall_start = wall()
        self._offset_s = self.wall() - self.now()

    def now(self) -> float:
        """Seconds on the (scaled) monotonic clock."""
        return self._mono_start + (self._monotonic() - self._mono_start) * self.speed

    def wall(self) -> float:
        """Epoch seconds: the real wall clock at speed 1, a scaled one in simulation."""
        if self.speed == 1.0:
            return self._wall()
        return self._wall_start + (self.now() - self._mono_start)

    def today(self) -> date:
        """The local calendar day of `wall`, for the daily limit."""
        return datetime.fromtimestamp(self.wall()).date()

    def stepped(self) -> bool:
        """True once after the wall clock was set (moved against the monotonic clock)."""
        offset_s = self.wall() - self.now()
        last_s, self._offset_s = self._offset_s, offset_s
        return abs(offset_s - last_s) > STEP_TOLERANCE_S

    def real_seconds(self, clock_s: float) -> float:
        """How long to really wait for `clock_s` to pass on this clock."""
        return max(clock_s, 0.0) / self.speed


def clock_mark(wall: float) -> ClockMark:
    """This moment's mark: the kernel's boot id, CLOCK_BOOTTIME and the sync state.

    Taken on the controller's thread with each history write (a session's start, end and
    checkpoints every few seconds), so what cannot change while this process lives is
    read once."""
    return ClockMark(wall, _boot_id(), time.clock_gettime(time.CLOCK_BOOTTIME), _synced())


@functools.cache
def _boot_id() -> str:
    """The kernel's id of this boot: a process never outlives it."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


@functools.cache
def _libc() -> ctypes.CDLL:
    """This process's C library, for adjtimex: opened once, not at every clock mark."""
    return ctypes.CDLL(None, use_errno=True)


_STA_UNSYNC = 0x0040


class _Timex(ctypes.Structure):
    """Enough of the kernel's struct timex for adjtimex(2) to fill in; the rest is padding."""

    _fields_ = [("modes", ctypes.c_uint), ("_offset_to_esterror", ctypes.c_long * 4),
                ("status", ctypes.c_int), ("_after", ctypes.c_long * 32)]


def _synced() -> bool | None:
    """systemd-timesyncd's flag, else the kernel's STA_UNSYNC bit; None if neither answers."""
    if Path("/run/systemd/timesync/synchronized").exists():
        return True
    try:
        timex = _Timex()
        if _libc().adjtimex(ctypes.byref(timex)) < 0:
            return None
    except (OSError, AttributeError):
        return None
    return not timex.status & _STA_UNSYNC
