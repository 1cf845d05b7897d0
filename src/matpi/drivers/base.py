"""The protocols every driver implements, and the bundle the controller drives.

The controller cannot tell a GPIO relay from the mat board's SSR or from the
simulator: each is a `Switch`, a `Dimmer`, a `Thermometer` or an `Indicator`.
Inputs (button, board telemetry) do not appear here: they are edges that turn
what happens into events and hand them to a `Post` callback.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from matpi.core.errors import DriverError
from matpi.core.events import Breath, Event, Led, Reading

Post = Callable[[Event], None]
"""Puts an event on the controller's queue; safe to call from any thread."""


class Switch(Protocol):
    """An output that is on or off: heater relay or SSR, master power relay."""

    def on(self) -> None: ...

    def off(self) -> None: ...

    def close(self) -> None:
        """Switch off and release the hardware; safe to call twice."""


class Dimmer(Protocol):
    """An output with a duty between 0 and 1: the vibration motor."""

    def set_duty(self, duty: float) -> None: ...

    def off(self) -> None: ...

    def close(self) -> None: ...


class SensorUnreadable(DriverError, OSError):
    """The sensor could not be read this time for want of this process's resources; says
    nothing about the mat. The poller skips the reading (see `drivers.thermometers`)."""


class Thermometer(Protocol):
    """A temperature sensor. `read` may block for a conversion (a DS18B20 takes 750 ms)."""

    name: str
    reads_at_once: bool
    """`read` returns at once, with no I/O wait (a value kept in memory, a model): it may be
    read on the controller's own thread, which must never block."""

    def read(self) -> Reading:
        """One sample; a failure is a Reading with value None and the error, never a raise."""
        ...

    def close(self) -> None: ...


class Indicator(Protocol):
    """The status LED (and buzzer): shows one pattern per state."""

    def show(self, led: Led, breath: Breath | None = None) -> None:
        """`breath`: while `breathe` runs, the pace a PWM LED follows (Led.RUNNING)."""
        ...

    def close(self) -> None: ...


@dataclass
class MatDrivers:
    """Every output and sensor of one mat, as the controller sees them.

    `closers` are extra resources (pin factory, button, serial link) released
    at shutdown after the devices, last registered first.
    """

    heater: Switch
    motor: Dimmer
    indicator: Indicator
    thermometers: list[Thermometer]
    poll_interval_s: float = 1.0
    power: Switch | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
    pin_factory: Any = None
    """The gpiozero pin factory the devices share, if any (tests drive its mock pins)."""
    reset: Callable[[], None] | None = None
    """Clears a latch the hardware keeps itself (the mat board's fault) after a local reset."""

    def all_off(self) -> None:
        """Heat and motion off, power relay dropped; each tried even if another fails."""
        errors: list[BaseException] = []
        for action in (self.heater.off, self.motor.off, *(
            [self.power.off] if self.power is not None else []
        )):
            try:
                action()
            except Exception as exc:  # keep switching the rest off
                errors.append(exc)
        if errors:
            raise DriverError(f"could not switch every output off: {errors}")

    def close(self) -> None:
        """Outputs off, then release the devices, then `closers` in reverse order."""
        try:
            self.all_off()
        finally:
            closes = [self.indicator.close, self.motor.close, self.heater.close,
                      *(t.close for t in self.thermometers)]
            if self.power is not None:
                closes.append(self.power.close)
            for close in closes:
                close()
            for closer in reversed(self.closers):
                closer()
