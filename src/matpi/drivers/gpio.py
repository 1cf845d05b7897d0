"""The mat wired straight to the Pi's header, through gpiozero.

Relays, the vibration motor, the button and the status LED each get one small
class. Every class takes its pin first, options keyword-only, and the pin
factory last, so tests pass gpiozero's `MockFactory` and no test needs a Pi.
Outputs are off when built and when closed; gpiozero's errors come back as
`DriverError`s that name the part and the pin.
"""

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Self, TypeVar

from gpiozero import (
    PWMLED,
    Buzzer,
    DigitalInputDevice,
    OutputDevice,
    PWMOutputDevice,
)
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

from matpi.drivers.base import DriverError, Post
from matpi.events import DoublePress, Event, Led, LongPress, Press

Pin = int | str
"""A pin as gpiozero names it: 17, "GPIO17", "BOARD11" or "J8:11"."""

PIN_FACTORY_NAMES = ("auto", "lgpio", "rpigpio", "mock")

_PIN_LIBRARIES = {
    "lgpio": ("lgpio", "sudo apt install python3-lgpio (or pip install lgpio)"),
    "rpigpio": ("RPi.GPIO", "sudo apt install python3-rpi.gpio (or pip install RPi.GPIO)"),
}
_START_HINTS = {
    "lgpio": "could not open the GPIO chip; check that /dev/gpiochip0 exists and that "
    "this user is in the gpio group",
    "rpigpio": "could not start RPi.GPIO; it does not work on a Pi 5, use 'lgpio' there",
}

IDLE_BLIP_ON_S = 0.1
IDLE_BLIP_EVERY_S = 3.0
AWAITING_PRESS_BLINK_S = 0.25
FAULT_BLINK_S = 0.08
COOLDOWN_FADE_S = 1.0
FAULT_BEEP_S = 0.15
FAULT_BEEPS = 3

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
            f"unknown pin factory {name!r}: choose one of {', '.join(PIN_FACTORY_NAMES)}"
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
def _released_on_error(device: Any) -> Iterator[None]:
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


def _off_and_close(device: Any) -> None:
    try:
        device.off()
    finally:
        device.close()


def _clamp_duty(duty: float) -> float:
    """Duty limited to 0..1; NaN means stop, never full power."""
    if math.isnan(duty):
        return 0.0
    return min(max(duty, 0.0), 1.0)


class _ClosedByWith:
    """Lets a driver be used in a with-block that closes it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Output(_ClosedByWith):
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
            _off_and_close(out)

    def _open_device(self, wanted: str) -> Any:
        if self._out is None:
            raise DriverError(f"{self.ROLE} on pin {self._pin} is closed; it cannot {wanted}")
        return self._out


class HeaterRelay(_Output):
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


class RelayMotor(_Output):
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
        super().__init__(
            pin,
            lambda: OutputDevice(
                pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
            ),
        )

    @property
    def is_on(self) -> bool:
        return self._out is not None and bool(self._out.is_active)

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


class _OneShot:
    """A restartable timer whose late firing, after a cancel or restart, is recognised."""

    def __init__(self) -> None:
        self._timer: threading.Timer | None = None
        self._generation = 0

    def start(self, delay_s: float, fire: Callable[[int], None]) -> None:
        self.cancel()
        self._timer = threading.Timer(delay_s, fire, args=(self._generation,))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._generation += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def is_current(self, generation: int) -> bool:
        return generation == self._generation


class ButtonGestures(_ClosedByWith):
    """Turns the mat's tactile button into Press, LongPress and DoublePress events.

    Wire the button from the pin to GND (pull_up=True, the default). A level
    counts only once it has held steady for bounce_s, so contact bounce and a
    spike from the heater relay cannot make a press. LongPress fires while the
    button is still held once hold_s has passed; the release after it posts
    nothing. A short press is posted only when double_press_s passes without a
    second press; a second short press inside that window posts one DoublePress
    and no Press, and a second press held for hold_s one LongPress only. A
    button held at start-up counts for nothing until released.
    The controller gives them their meaning: Press starts or stops a session
    and confirms a remote start, LongPress stops, or clears a fault once the
    mat is cool, DoublePress cycles the program while idle.

        button = ButtonGestures(23, queue.put, pin_factory=factory)
        ...  # events arrive on the queue from gpiozero's and the timers' threads
        button.close()
    """

    ROLE = "button"

    def __init__(
        self,
        pin: Pin,
        post: Post,
        *,
        pull_up: bool = True,
        bounce_s: float = 0.05,
        hold_s: float = 2.0,
        double_press_s: float = 0.35,
        pin_factory: Factory | None = None,
    ) -> None:
        if not 0 <= bounce_s < hold_s or not double_press_s > 0:
            raise DriverError(
                f"{self.ROLE}: need 0 <= bounce_s < hold_s and double_press_s > 0, got "
                f"bounce_s={bounce_s}, hold_s={hold_s}, double_press_s={double_press_s}"
            )
        self._post = post
        self._bounce_s = bounce_s
        self._hold_s = hold_s
        self._double_press_s = double_press_s
        self._lock = threading.Lock()
        self._settle = _OneShot()
        self._gesture = _OneShot()
        self._closed = False
        self._input: Any = build_device(
            self.ROLE,
            pin,
            lambda: DigitalInputDevice(
                pin, pull_up=pull_up, bounce_time=None, pin_factory=pin_factory
            ),
        )
        with _released_on_error(self._input):
            self._pressed = bool(self._input.is_active)
            self._hold_done = self._pressed
            self._first_released = False
            self._second_down = False
            self._input.when_activated = self._on_edge
            self._input.when_deactivated = self._on_edge

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._settle.cancel()
            self._gesture.cancel()
        self._input.close()

    def _on_edge(self) -> None:
        with self._lock:
            if not self._closed:
                self._settle.start(self._bounce_s, self._on_settled)

    def _on_settled(self, generation: int) -> None:
        with self._lock:
            if self._closed or not self._settle.is_current(generation):
                return
            pressed = bool(self._input.is_active)
            if pressed == self._pressed:
                return
            self._pressed = pressed
            if pressed:
                self._pressed_down()
                return
            event = self._released()
        if event is not None:
            self._post(event)

    def _pressed_down(self) -> None:
        self._second_down = self._first_released
        self._first_released = False
        self._hold_done = False
        self._gesture.start(self._hold_s, self._on_hold_elapsed)

    def _released(self) -> Event | None:
        self._gesture.cancel()
        if self._hold_done:
            self._hold_done = False
            return None
        if self._second_down:
            self._second_down = False
            return DoublePress()
        self._first_released = True
        self._gesture.start(self._double_press_s, self._on_window_elapsed)
        return None

    def _on_hold_elapsed(self, generation: int) -> None:
        with self._lock:
            if self._closed or not self._gesture.is_current(generation) or not self._pressed:
                return
            self._hold_done = True
            self._second_down = False
        self._post(LongPress())

    def _on_window_elapsed(self, generation: int) -> None:
        with self._lock:
            if self._closed or not self._gesture.is_current(generation) or not self._first_released:
                return
            self._first_released = False
        self._post(Press())


class StatusLed(_ClosedByWith):
    """The status LED, one pattern per Led value, with an optional fault buzzer.

    Patterns: idle a short blip every few seconds, awaiting_press a fast blink,
    running solid on, cooldown a slow pulse, fault a rapid blink (and three
    beeps on entering it). gpiozero's own blink threads run them, which is fine
    for a light but never for heater or motor. The pin needs PWM, which lgpio,
    RPi.GPIO and the 'mock' factory all give.

        led = StatusLed(24, pin_factory=factory)
        led.show(Led.RUNNING)
        led.close()
    """

    ROLE = "status LED"

    def __init__(
        self,
        pin: Pin,
        *,
        active_high: bool = True,
        buzzer_pin: Pin | None = None,
        buzzer_active_high: bool = True,
        pin_factory: Factory | None = None,
    ) -> None:
        self._showing: Led | None = None
        self._closed = False
        self._led: Any = build_device(
            self.ROLE,
            pin,
            lambda: PWMLED(
                pin, active_high=active_high, initial_value=0.0, pin_factory=pin_factory
            ),
        )
        self._buzzer: Any = None
        if buzzer_pin is not None:
            with _released_on_error(self._led):
                self._buzzer = build_device(
                    "buzzer",
                    buzzer_pin,
                    lambda: Buzzer(
                        buzzer_pin,
                        active_high=buzzer_active_high,
                        initial_value=False,
                        pin_factory=pin_factory,
                    ),
                )

    @property
    def showing(self) -> Led | None:
        return self._showing

    @property
    def closed(self) -> bool:
        return self._closed

    def show(self, led: Led) -> None:
        """Start the pattern for `led`; the same value again leaves the running pattern alone."""
        if self._closed:
            raise DriverError(f"{self.ROLE} is closed; it cannot show {led}")
        if led == self._showing:
            return
        self._showing = led
        match led:
            case Led.IDLE:
                self._led.blink(on_time=IDLE_BLIP_ON_S, off_time=IDLE_BLIP_EVERY_S - IDLE_BLIP_ON_S)
            case Led.AWAITING_PRESS:
                self._led.blink(on_time=AWAITING_PRESS_BLINK_S, off_time=AWAITING_PRESS_BLINK_S)
            case Led.RUNNING:
                self._led.on()
            case Led.COOLDOWN:
                self._led.pulse(fade_in_time=COOLDOWN_FADE_S, fade_out_time=COOLDOWN_FADE_S)
            case Led.FAULT:
                self._led.blink(on_time=FAULT_BLINK_S, off_time=FAULT_BLINK_S)
        if self._buzzer is not None:
            if led == Led.FAULT:
                self._buzzer.beep(on_time=FAULT_BEEP_S, off_time=FAULT_BEEP_S, n=FAULT_BEEPS)
            else:
                self._buzzer.off()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._buzzer is not None:
                _off_and_close(self._buzzer)
        finally:
            _off_and_close(self._led)
