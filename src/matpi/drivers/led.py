"""The status LED (and optional buzzer): one pattern per state, run by gpiozero."""

import time
from collections.abc import Callable, Iterator
from typing import Any

from gpiozero import PWMLED, Buzzer
from gpiozero.pins import Factory

from matpi.core.errors import DriverError
from matpi.core.events import Breath, Led
from matpi.core.patterns import breath_level
from matpi.drivers.gpio import ClosedByWith, Pin, build_device, off_and_close, released_on_error

IDLE_BLIP_ON_S = 0.1
IDLE_BLIP_EVERY_S = 3.0
AWAITING_PRESS_BLINK_S = 0.25
FAULT_BLINK_S = 0.08
COOLDOWN_FADE_S = 1.0
FAULT_BEEP_S = 0.15
FAULT_BEEPS = 3
BREATH_STEP_S = 0.04
"""25 brightness updates a second: smooth to the eye at a few breaths a minute."""
NOBODY_FLASHES_S = ((0.0, 0.12), (0.3, 0.42))
"""Nobody on the mat: two short flashes (start, end) in every `NOBODY_EVERY_S`."""
NOBODY_EVERY_S = 1.2


class StatusLed(ClosedByWith):
    """The status LED, one pattern per Led value, with an optional fault buzzer.

    Patterns: idle a short blip every few seconds, awaiting_press a fast blink,
    running solid on, or breathing in step with the motor while `breathe` runs
    (a `Breath` given), nobody (on the mat) a double blink, cooldown a slow
    pulse, fault a rapid blink (and three beeps on entering it). gpiozero's
    own threads run them, which is fine for a light but never for heater or
    motor. The pin needs PWM, which lgpio, RPi.GPIO and the 'mock' factory
    all give.

    Breathing is gpiozero's `source`: a generator of levels read from `clock`
    every `BREATH_STEP_S`. It needs no thread of our own, and assigning
    `source` again stops and joins the previous one, so after a switch or
    `close()` nothing is left running and no stale level is written.

        led = StatusLed(24, pin_factory=factory)
        led.show(Led.RUNNING, Breath(origin=clock(), breaths_per_min=6.0))
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` must be the controller's, whose times a `Breath.origin` is given in."""
        self._clock = clock
        self._shown: tuple[Led, Breath | None] | None = None
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
            with released_on_error(self._led):
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
        return None if self._shown is None else self._shown[0]

    @property
    def closed(self) -> bool:
        return self._closed

    def show(self, led: Led, breath: Breath | None = None) -> None:
        """Start the pattern for `led` (breathing with `breath` while running).

        The same `led` and `breath` again leave the running pattern alone, so
        a blink or a breath is not restarted mid-way.
        """
        if self._closed:
            raise DriverError(f"{self.ROLE} is closed; it cannot show {led}")
        if (led, breath) == self._shown:
            return
        self._shown = (led, breath)
        self._led.source = None  # joins a breathing generator before anything else is written
        match led:
            case Led.IDLE:
                self._led.blink(on_time=IDLE_BLIP_ON_S, off_time=IDLE_BLIP_EVERY_S - IDLE_BLIP_ON_S)
            case Led.AWAITING_PRESS:
                self._led.blink(on_time=AWAITING_PRESS_BLINK_S, off_time=AWAITING_PRESS_BLINK_S)
            case Led.RUNNING if breath is not None:
                self._led.source_delay = BREATH_STEP_S
                self._led.source = self._breathing(breath)
            case Led.RUNNING:
                self._led.on()
            case Led.NOBODY:
                self._led.source_delay = BREATH_STEP_S
                self._led.source = _double_blink(self._clock)
            case Led.COOLDOWN:
                self._led.pulse(fade_in_time=COOLDOWN_FADE_S, fade_out_time=COOLDOWN_FADE_S)
            case Led.FAULT:
                self._led.blink(on_time=FAULT_BLINK_S, off_time=FAULT_BLINK_S)
        if self._buzzer is not None:
            if led == Led.FAULT:
                self._buzzer.beep(on_time=FAULT_BEEP_S, off_time=FAULT_BEEP_S, n=FAULT_BEEPS)
            else:
                self._buzzer.off()

    def _breathing(self, breath: Breath) -> Iterator[float]:
        """The LED's level at each step: the motor's `breathe` curve, read off the same clock."""
        while True:
            yield breath_level(self._clock() - breath.origin, breath.breaths_per_min)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._led.source = None  # stopped first, or it could light the LED again after off()
            if self._buzzer is not None:
                off_and_close(self._buzzer)
        finally:
            off_and_close(self._led)


def _double_blink(clock: Callable[[], float]) -> Iterator[float]:
    """Two short flashes and a pause, over and over: unlike any other state's pattern."""
    start = clock()
    while True:
        into_s = (clock() - start) % NOBODY_EVERY_S
        yield 1.0 if any(on <= into_s < off for on, off in NOBODY_FLASHES_S) else 0.0
