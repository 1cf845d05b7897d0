"""The edge that samples thermometers and hands each reading to the controller."""

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from matpi.core.events import Notice, Reading, Readings, Snapshot
from matpi.core.supervision import in_sensor_range
from matpi.core.transitions import RESTING
from matpi.drivers.base import Post, SensorUnreadable, Thermometer
from matpi.drivers.clock import Clock

log = logging.getLogger(__name__)

UNREADABLE_LOG_S = 60.0
"""A sensor that stays unreadable for want of resources is logged once a minute at most."""
CLOSE_TIMEOUT_S = 5.0
"""How long `close` waits for a read under way (a 1-wire read takes up to ~1 s)."""


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Timers(Protocol):
    """Runs a call on the controller's own thread later: the daemon's `NetLoop`."""

    def call_later(self, delay_s: float, action: Callable[[], None]) -> Cancellable: ...


class ThermometerPoller:
    """Reads every thermometer each `interval_s` (clock seconds) while a session can
    heat, and each `resting_s` otherwise, once `pace` hears what the controller does. A
    read that the core will count as bad (no value, or one out of the sensor range) is
    tried again `interval_s` later, at rest too: one CRC error must not leave a resting
    mat without a fresh temperature, nor a broken sensor latch its fault later.

    With `timers`, the thermometers that answer at once (`reads_at_once`: the
    simulator's, the mat board's latest telemetry) are read on the controller's
    own thread, all in one `Readings` event: no thread of their own to wake, and
    one step a poll instead of one per sensor. The others (a DS18B20 blocks
    750 ms to convert) are read in a thread of this poller's, each posted as
    soon as it is read.

    A sensor that raises instead of returning an error Reading is reported as
    one: the poller never dies, so a stale reading is always the sensor's
    fault and never a crashed thread's. The exception is `SensorUnreadable`
    (this process is out of descriptors or memory): nothing is posted, so the
    core sees a stale reading, heat off at once and a fault only if it lasts.
    """

    def __init__(
        self, thermometers: list[Thermometer], post: Post, clock: Clock, interval_s: float,
        timers: Timers | None = None, *, resting_s: float | None = None,
    ) -> None:
        """`resting_s`: the slower pace of a mat that cannot heat; None keeps
        `interval_s` throughout."""
        self._at_once = [t for t in thermometers if timers is not None and t.reads_at_once]
        self._thermometers = [t for t in thermometers if t not in self._at_once]
        self._post = post
        self._clock = clock
        self._interval_s = interval_s
        self._resting_s = interval_s if resting_s is None else resting_s
        self._pace_s = interval_s
        """The pace now: the full one until the controller first says it rests."""
        self._timers = timers
        self._timer: Cancellable | None = None
        self._sampled_at: float | None = None
        self._closed = False
        # Held while the thread may wait out its pace; released to end the wait early, by
        # `close` or by a faster pace. A bare lock, not an Event or a Condition, whose wait
        # runs a dozen Python calls on every wake of an idle mat. Without a thread it is
        # released by the first faster pace and stays so, which nothing waits on.
        self._nudge = threading.Lock()
        self._nudge.acquire()
        self._unreadable_logged_at = float("-inf")
        self._thread = threading.Thread(target=self._run, name="matpi-thermometers", daemon=True)

    def start(self) -> None:
        if self._thermometers:
            self._thread.start()
        if self._at_once:
            assert self._timers is not None
            # Not kept: the loop may run it, and keep the next, before this returns.
            self._timers.call_later(0.0, self._sample_at_once)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._wake_thread()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=CLOSE_TIMEOUT_S)

    def pace(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        """A controller listener: the full pace while a session can heat, the resting one
        otherwise. A session's next reading is due `interval_s` after the last one, not
        at the end of a resting wait."""
        # The core's resting states, named rather than its heating ones: a state added
        # later gets the full pace unless the core itself calls it resting.
        pace_s = self._resting_s if snapshot.state in RESTING else self._interval_s
        faster = pace_s < self._pace_s
        self._pace_s = pace_s
        if faster:
            self._wake_thread()
            self._rearm(pace_s)

    def _rearm(self, pace_s: float) -> None:
        """On the controller's thread: the loop's next sample `pace_s` after the last one,
        at once if that is past."""
        if self._timer is None or self._sampled_at is None:
            return  # no sample yet: the first is due at once
        assert self._timers is not None
        self._timer.cancel()
        due_s = max(self._sampled_at + pace_s - self._clock.now(), 0.0)
        self._timer = self._timers.call_later(self._clock.real_seconds(due_s),
                                              self._sample_at_once)

    def _sample_at_once(self) -> None:
        """On the controller's thread: the next sample is due first, whatever this one does.
        `close` cancels the next; one that runs after `close` all the same (the first, or
        one this scheduled while `close` ran) stops here."""
        if self._closed:
            return
        assert self._timers is not None
        self._sampled_at = self._clock.now()
        self._timer = self._timers.call_later(self._clock.real_seconds(self._pace_s),
                                              self._sample_at_once)
        taken = [self._read(thermometer) for thermometer in self._at_once]
        if self._pace_s > self._interval_s and _missed(taken):
            self._rearm(self._interval_s)
        readings = tuple(r for r in taken if r is not None)
        if readings:
            self._post(Readings(readings))

    def _wake_thread(self) -> None:
        with contextlib.suppress(RuntimeError):  # released already: a wake is pending
            self._nudge.release()

    def _run(self) -> None:
        while True:
            started = self._clock.now()
            taken: list[Reading | None] = []
            for thermometer in self._thermometers:
                taken.append(reading := self._read(thermometer))
                if reading is not None:
                    self._post(reading)  # at once, not after the other sensors' conversions
            missed = _missed(taken)
            # Woken early: closed, or the pace is faster and the wait is measured anew.
            while self._nudge.acquire(timeout=self._clock.real_seconds(
                    started + (self._interval_s if missed else self._pace_s) - self._clock.now())):
                if self._closed:
                    return

    def _read(self, thermometer: Thermometer) -> Reading | None:
        try:
            return thermometer.read()
        except SensorUnreadable as exc:
            now = self._clock.now()
            if now - self._unreadable_logged_at >= UNREADABLE_LOG_S:
                self._unreadable_logged_at = now
                log.warning("thermometer %s skipped: %s (heat stays off while no reading "
                            "comes; logged once a minute)", thermometer.name, exc)
            return None
        except Exception as exc:
            log.exception("thermometer %s failed", thermometer.name)
            return Reading(thermometer.name, None, f"driver error: {exc}")


def _missed(taken: list[Reading | None]) -> bool:
    """Whether a sample has a read the core counts as bad: a sensor unreadable (None), read
    with an error, or out of the range a mat's sensor can read."""
    return any(reading is None or not in_sensor_range(reading.value_c) for reading in taken)
