"""A restartable timer for debouncing inputs, on its own thread."""

import threading
from collections.abc import Callable


class OneShot:
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
