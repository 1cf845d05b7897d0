"""The tactile button on the mat, decoded into press, long press and double press."""

import threading
from typing import Any

from gpiozero import DigitalInputDevice
from gpiozero.pins import Factory

from matpi.core.errors import DriverError
from matpi.core.events import DoublePress, Event, LongPress, Press
from matpi.drivers.base import Post
from matpi.drivers.gpio import ClosedByWith, Pin, build_device, released_on_error
from matpi.drivers.oneshot import OneShot


class ButtonGestures(ClosedByWith):
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
        self._settle = OneShot()
        self._gesture = OneShot()
        self._closed = False
        self._input: Any = build_device(
            self.ROLE,
            pin,
            lambda: DigitalInputDevice(
                pin, pull_up=pull_up, bounce_time=None, pin_factory=pin_factory
            ),
        )
        with released_on_error(self._input):
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


