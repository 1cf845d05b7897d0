"""The mat wired straight to the Pi's header, through gpiozero: pin factory and outputs.

Relays and the vibration motor each get one small class here; the button is
in `button`, the status LED in `led`. Every class takes its pin first, options
keyword-only, and the pin factory last, so tests pass gpiozero's `MockFactory`
and no test needs a Pi.
Outputs are off when built and when closed; gpiozero's errors come back as
`DriverError`s that name the part and the pin.
"""

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Self, TypeVar

from gpiozero import OutputDevice, PWMOutputDevice
from gpiozero.exc import (
    BadPinFactory,
    GPIOPinInUse,
    GPIOZeroError,
    PinInvalidPin,
    PinPWMUnsupported,
    PinUnknownPi,
)
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory, MockPWMPin

from matpi.config.settings import PIN_FACTORIES
from matpi.core.errors import DriverError

Pin = int | str
"""A pin as gpiozero names it: 17, "GPIO17", "BOARD11" or "J8:11"."""


_PIN_LIBRARIES = {
    "lgpio": ("lgpio", "sudo apt install python3-lgpio (or pip install lgpio)"),
    "rpigpio": ("RPi.GPIO", "sudo apt install python3-rpi.gpio (or pip install RPi.GPIO)"),
}
_START_HINTS = {
    "lgpio": "could not open the GPIO chip; check that /dev/gpiochip0 exists and that "
    "this user is in the gpio group",
    "rpigpio": "could not start RPi.GPIO; it does not work on a Pi 5, use 'lgpio' there",
}


T = TypeVar("T")


def make_pin_factory(name: str) -> Factory | None:
    """The gpiozero pin factory the config names; None lets gpiozero choose.

    "lgpio" suits a Pi 5 and Raspberry Pi OS Bookworm, "rpigpio" older Pis,
    "mock" runs anywhere with PWM-capable mock pins. The caller closes the
    factory after every device on it.

    Raises:
        DriverError: unknown name, library missing, not a Pi, or GPIO chip not opened.
    """
    if name == "auto":
        return None
    if name == "mock":
        return MockFactory(pin_class=MockPWMPin)
    if name not in _PIN_LIBRARIES:
        raise DriverError(
            f"unknown pin factory {name!r}: choose one of {', '.join(PIN_FACTORIES)}"
        )
    library, install = _PIN_LIBRARIES[name]
    factory = None
    try:
        if name == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            factory = LGPIOFactory()
        else:
            from gpiozero.pins.rpigpio import RPiGPIOFactory

            factory = RPiGPIOFactory()
        _ = factory.board_info  # finds the Pi's revision now rather than at the first pin
    except ImportError as exc:
        raise DriverError(
            f"pin factory {name!r} needs the {library} library, which is not installed "
            f"({exc}): {install}"
        ) from exc
    except PinUnknownPi as exc:
        _close_quietly(factory)
        raise DriverError(
            f"pin factory {name!r} ({library}) finds no Raspberry Pi here ({exc}); "
            "off a Pi use pin factory 'mock'"
        ) from exc
    except Exception as exc:
        _close_quietly(factory)
        raise DriverError(f"pin factory {name!r} ({library}) {_START_HINTS[name]}: {exc}") from exc
    return factory


def build_device(role: str, pin: object, build: Callable[[], T]) -> T:
    """Builds a gpiozero device, turning its errors into a DriverError naming role and pin."""
    try:
        return build()
    except GPIOPinInUse as exc:
        raise DriverError(
            f"{role}: pin {pin} is already in use ({exc}); give every part its own pin"
        ) from exc
    except PinInvalidPin as exc:
        raise DriverError(f"{role}: {pin!r} is not a pin on this board ({exc})") from exc
    except PinPWMUnsupported as exc:
        raise DriverError(
            f"{role}: pin {pin} cannot do PWM with this pin factory; use 'lgpio' or 'rpigpio'"
        ) from exc
    except PinUnknownPi as exc:
        raise DriverError(
            f"{role}: pin {pin}: no Raspberry Pi found ({exc}); off a Pi use pin factory 'mock'"
        ) from exc
    except BadPinFactory as exc:
        raise DriverError(
            f"{role}: pin {pin}: no GPIO library could be loaded ({exc}); install "
            f"{_PIN_LIBRARIES['lgpio'][1]}, or use pin factory 'mock' off a Pi"
        ) from exc
    except GPIOZeroError as exc:
        raise DriverError(f"{role}: pin {pin}: {exc}") from exc


@contextmanager
def released_on_error(device: Any) -> Iterator[None]:
    """Closes a device already holding its pin when the rest of a constructor fails."""
    try:
        yield
    except BaseException:
        device.close()
        raise


def _close_quietly(resource: Any) -> None:
    if resource is not None:
        with suppress(Exception):  # already failing; the first error is the one to report
            resource.close()


def off_and_close(device: Any) -> None:
    try:
        device.off()
    finally:
        device.close()


def _clamp_duty(duty: float) -> float:
    """Duty limited to 0..1; NaN means stop, never full power."""
    if math.isnan(duty):
        return 0.0
    return min(max(duty, 0.0), 1.0)


class ClosedByWith:
    """Lets a driver be used in a with-block that closes it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Output(ClosedByWith):
    """One gpiozero output device that is switched off before it is released."""

    ROLE = "output"

    def __init__(self, pin: Pin, build: Callable[[], Any]) -> None:
        self._pin = pin
        self._out: Any = build_device(self.ROLE, pin, build)

    @property
    def closed(self) -> bool:
        return self._out is None

    def off(self) -> None:
        """Off at once; nothing to do once closed, since a closed output is already off."""
        if self._out is not None:
            self._out.off()

    def close(self) -> None:
        out, self._out = self._out, None
        if out is not None:
            off_and_close(out)

    def _open_device(self, wanted: str) -> Any:
        if self._out is None:
            raise DriverError(f"{self.ROLE} on pin {self._pin} is closed; it cannot {wanted}")
        return self._out


class _OnOffOutput(_Output):
    """An on/off output pin (relay, SSR), built off."""

    def __init__(
        self, pin: Pin, *, active_high: bool = True, pin_factory: Factory | None = None
    ) -> None:
        super().__init__(
            pin,
            lambda: OutputDevice(
                pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
            ),
        )

    @property
    def is_on(self) -> bool:
        return self._out is not None and bool(self._out.is_active)


class HeaterRelay(_OnOffOutput):
    """A relay or SSR feeding the heating pad: off when built and when closed.

    Most relay boards switch on when their input is low: pass active_high=False.
    The Pi boots with every pin an input and close() returns the pin to one, so
    pick a pin whose boot pull keeps the relay off (on most Pis GPIO 0-8 pull
    up at boot and 9-27 down) and a board that is off with its input floating.

        heater = HeaterRelay(17, active_high=False, pin_factory=factory)
        heater.on()
        heater.close()
    """

    ROLE = "heater relay"

    def on(self) -> None:
        self._open_device("switch on").on()


class PowerRelay(HeaterRelay):
    """The master power relay ahead of the heater: a second way to cut heat.

    It is what still cuts heat when the heater relay welds shut. Wire it so that
    it is off unpowered (normally open contacts), with the same pin advice as
    `HeaterRelay`.

        power = PowerRelay(27, active_high=False, pin_factory=factory)
        power.on()
        power.close()
    """

    ROLE = "power relay"


class PwmMotor(_Output):
    """The vibration motor on a MOSFET driven by PWM: still when built and when closed.

    Use a logic-level MOSFET on the motor's low side with a flyback diode across
    the motor; duty outside 0..1 is clamped, NaN stops it.

        motor = PwmMotor(18, frequency_hz=200, pin_factory=factory)
        motor.set_duty(0.6)
        motor.close()
    """

    ROLE = "vibration motor"

    def __init__(
        self,
        pin: Pin,
        *,
        frequency_hz: float = 100.0,
        active_high: bool = True,
        pin_factory: Factory | None = None,
    ) -> None:
        if not frequency_hz > 0:
            raise DriverError(f"{self.ROLE}: frequency_hz must be above 0, not {frequency_hz}")
        super().__init__(
            pin,
            lambda: PWMOutputDevice(
                pin,
                active_high=active_high,
                initial_value=0.0,
                frequency=frequency_hz,
                pin_factory=pin_factory,
            ),
        )

    @property
    def duty(self) -> float:
        return 0.0 if self._out is None else float(self._out.value)

    def set_duty(self, duty: float) -> None:
        duty = _clamp_duty(duty)
        if duty == 0.0:
            self.off()
        else:
            self._open_device("run").value = duty


class RelayMotor(_OnOffOutput):
    """The vibration motor on a plain relay: any duty above 0 is on.

    A relay wears with every operation (about 100,000 for a Songle SRD), so it
    never switches within min_toggle_s of its last switch: such a request waits
    in `pending` and the first set_duty after the window applies the latest
    wish. off() never waits, because stopping beats relay wear.

        motor = RelayMotor(22, active_high=False, pin_factory=factory)
        motor.set_duty(1.0)
        motor.off()
    """

    ROLE = "vibration relay"

    def __init__(
        self,
        pin: Pin,
        *,
        active_high: bool,
        min_toggle_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        pin_factory: Factory | None = None,
    ) -> None:
        if not min_toggle_s >= 0:
            raise DriverError(f"{self.ROLE}: min_toggle_s must be 0 or more, not {min_toggle_s}")
        self._min_toggle_s = min_toggle_s
        self._clock = clock
        self._last_switch_s: float | None = None
        self._pending: bool | None = None
        super().__init__(pin, active_high=active_high, pin_factory=pin_factory)

    @property
    def pending(self) -> bool | None:
        """The state a request inside the window asked for; None when nothing waits."""
        return self._pending

    def set_duty(self, duty: float) -> None:
        want_on = _clamp_duty(duty) > 0.0
        if not want_on and self._out is None:
            return
        out = self._open_device("run")
        if want_on == self.is_on:
            self._pending = None
            return
        now_s = self._clock()
        if self._last_switch_s is not None and now_s - self._last_switch_s < self._min_toggle_s:
            self._pending = want_on
            return
        self._pending = None
        self._last_switch_s = now_s
        out.value = want_on

    def off(self) -> None:
        self._pending = None
        if self.is_on:
            self._last_switch_s = self._clock()
            self._out.off()
