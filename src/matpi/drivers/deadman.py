"""The heater switches itself off when the controller stops asking for heat.

As Klipper's `max_duration` for heaters on the MCU: the controller refreshes
its heat demand at least once a second while heating; if no `on()` arrives for
`max_on_s`, this driver layer switches the heater off by itself and reports
it, so a wedged controller loop cannot leave the heat on.

Once it has expired it stays tripped, as a latched fault does: a controller
that wakes up again must not simply heat on, so `on()` raises until `rearm()`
is called, which the controller does only after a local fault reset.

    heater = RefreshedHeater(HeaterRelay(5), max_on_s=3.0, on_expired=report)
    heater.on()        # must be repeated within 3 s to stay on
    heater.rearm()     # after it tripped: only once the fault was reset at the mat
"""

import logging
import threading
import time
from collections.abc import Callable

from matpi.core import limits
from matpi.core.errors import DriverError
from matpi.drivers.base import Switch

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0
"""How long `close` waits for the watching thread before it releases the pin."""


class RefreshedHeater:
    """A Switch wrapper: on() holds for `max_on_s` (real seconds) only, then latches off.

    Thread-safe. After an expiry `on()` raises DriverError and the switch stays
    off until `rearm()`.
    """

    def __init__(
        self,
        switch: Switch,
        *,
        max_on_s: float = limits.STALE_HEAT_OFF_S,
        on_expired: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._switch = switch
        self._max_on_s = max_on_s
        self._on_expired = on_expired
        self._clock = clock
        self._changed = threading.Condition()
        self._deadline: float | None = None
        self._closed = False
        self._tripped = False
        self._thread = threading.Thread(target=self._watch, name="matpi-heater-deadman",
                                        daemon=True)
        self._thread.start()

    @property
    def tripped(self) -> bool:
        """True from an expiry until `rearm()`: heat is refused meanwhile."""
        with self._changed:
            return self._tripped

    def on(self) -> None:
        """Heat, for `max_on_s` from now.

        Raises:
            DriverError: the dead-man has tripped and was not rearmed; the heater stays off.
        """
        with self._changed:
            if self._closed:
                return
            if self._tripped:
                self._switch.off()
                raise DriverError(
                    f"heater dead-man tripped (heat demand not refreshed within "
                    f"{self._max_on_s:g} s): the heater stays off until the fault is reset "
                    "at the mat"
                )
            self._switch.on()  # passed on every time: a driver below may have a dead-man too
            if self._deadline is None:
                self._changed.notify()
            self._deadline = self._clock() + self._max_on_s

    def off(self) -> None:
        with self._changed:
            self._deadline = None
            self._switch.off()

    def rearm(self) -> None:
        """Allows heat again after a trip; call it only after a local fault reset."""
        with self._changed:
            if self._tripped:
                log.info("heater dead-man rearmed")
            self._tripped = False

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._deadline = None
            self._changed.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=CLOSE_TIMEOUT_S)
        self._switch.close()

    def _watch(self) -> None:
        """Sleeps while the heater is off; wakes at the deadline while it is on."""
        with self._changed:
            while not self._closed:
                if self._deadline is None:
                    self._changed.wait()
                    continue
                left_s = self._deadline - self._clock()
                if left_s > 0:
                    self._changed.wait(left_s)
                    continue
                self._deadline = None
                self._tripped = True
                self._switch.off()
                log.error("heater demand not refreshed for %.1f s: heater switched off "
                          "until a local reset",
                          self._max_on_s)
                if self._on_expired is not None:
                    self._on_expired()
