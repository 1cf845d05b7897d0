"""The occupancy sensor: is someone lying on the mat? Debounced, posted as events.

A contact mat (a pressure switch under the cover) or a force-sensitive resistor
through a comparator, on one GPIO. The core decides what an empty mat means
(no heat, no vibration, the session ends after a grace time); this only says
when the level has settled.
"""

from typing import Any

from gpiozero import DigitalInputDevice
from gpiozero.pins import Factory

from matpi.drivers.base import Post
from matpi.drivers.gpio import ClosedByWith, Pin, build_device, released_on_error
from matpi.drivers.settled import SettledLevel


class OccupancySensor(ClosedByWith):
    """A mat switch on a GPIO. Active low by default: a contact from the pin to GND, with
    the Pi's pull-up; `active_high=True` for a comparator that drives the pin high (the
    pull-down then holds it low if a wire comes off, which reads as an empty mat).

        sensor = OccupancySensor(17, queue.put, pin_factory=factory)
        ...  # Occupancy events arrive from the debounce timer's thread
        sensor.close()
    """

    ROLE = "occupancy sensor"

    def __init__(
        self,
        pin: Pin,
        post: Post,
        *,
        active_high: bool = False,
        debounce_s: float = 0.3,
        pin_factory: Factory | None = None,
    ) -> None:
        self._closed = False
        self._input: Any = build_device(
            self.ROLE,
            pin,
            lambda: DigitalInputDevice(pin, pull_up=not active_high, bounce_time=None,
                                       pin_factory=pin_factory),
        )
        with released_on_error(self._input):
            self._level = SettledLevel(lambda: bool(self._input.is_active), post, debounce_s)
            self._input.when_activated = self._level.changed
            self._input.when_deactivated = self._level.changed
            self._level.changed()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._level.close()
        self._input.close()
