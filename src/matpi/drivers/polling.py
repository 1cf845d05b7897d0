"""The edge that samples thermometers and hands each reading to the controller."""

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from matpi.core.events import Reading, Readings
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
    """Reads every thermometer each `interval_s` (clock seconds).

    With `timers`, the thermometers that answer at once (`reads_at_once`: the
    simulator's, the mat board's latest telemetry) are read on the controller's
    own thread, all in one `Readings` event: no thread of their own to wake, and
    one step a second instead of one per sensor. The others (a DS18B20 blocks
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
        timers: Timers | None = None,
    ) -> None:
        self._at_once = [t for t in thermometers if timers is not None and t.reads_at_once]
        self._thermometers = [t for t in thermometers if t not in self._at_once]
        self._post = post
        self._clock = clock
        self._interval_s = interval_s
        self._timers = timers
        self._timer: Cancellable | None = None
        self._closed = False
        # Held until `close`: the wait between polls is a try to take it. A bare lock, not an
        # Event, whose wait runs a dozen Python calls every second of an idle mat.
        self._open = threading.Lock()
        self._open.acquire()
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
        with contextlib.suppress(RuntimeError):  # released already: closed twice
            self._open.release()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=CLOSE_TIMEOUT_S)

    def _sample_at_once(self) -> None:
        """On the controller's thread: the next sample is due first, whatever this one does.
        `close` cancels the next; one that runs after `close` all the same (the first, or
        one this scheduled while `close` ran) stops here."""
        if self._closed:
            return
        assert self._timers is not None
        self._timer = self._timers.call_later(self._clock.real_seconds(self._interval_s),
                                              self._sample_at_once)
        readings = tuple(r for r in map(self._read, self._at_once) if r is not None)
        if readings:
            self._post(Readings(readings))

    def _run(self) -> None:
        while True:
            started = self._clock.now()
            for thermometer in self._thermometers:
                reading = self._read(thermometer)
                if reading is not None:
                    self._post(reading)
            spent = self._clock.now() - started
            if self._open.acquire(timeout=self._clock.real_seconds(self._interval_s - spent)):
                return  # closed

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
