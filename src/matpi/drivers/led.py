"""The status LED (and optional buzzer): one pattern per state, run by gpiozero."""

from typing import Any

from gpiozero import PWMLED, Buzzer
from gpiozero.pins import Factory

from matpi.core.errors import DriverError
from matpi.core.events import Led
from matpi.drivers.gpio import ClosedByWith, Pin, build_device, off_and_close, released_on_error

IDLE_BLIP_ON_S = 0.1
IDLE_BLIP_EVERY_S = 3.0
AWAITING_PRESS_BLINK_S = 0.25
FAULT_BLINK_S = 0.08
COOLDOWN_FADE_S = 1.0
FAULT_BEEP_S = 0.15
FAULT_BEEPS = 3


class StatusLed(ClosedByWith):
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
                off_and_close(self._buzzer)
        finally:
            off_and_close(self._led)
