"""A level that counts once it has held: the occupancy sensor's debounce, shared by the
GPIO sensor and the simulated one, with no gpiozero behind it."""

import threading
from collections.abc import Callable

from matpi.core.events import Occupancy
from matpi.drivers.base import Post
from matpi.drivers.oneshot import OneShot


class SettledLevel:
    """Posts Occupancy once a level has held for `debounce_s`, and only when it changed.

    Shared by the GPIO sensor and the simulated one: both call `changed` on every
    edge and give `read` for the level now. The first settled level is posted too,
    so the core learns the mat's state at start-up (it counts the mat as empty until
    then).
    """

    def __init__(self, read: Callable[[], bool], post: Post, debounce_s: float) -> None:
        self._read = read
        self._post = post
        self._debounce_s = debounce_s
        self._lock = threading.Lock()
        self._settle = OneShot()
        self._posted: bool | None = None
        self._closed = False

    def changed(self) -> None:
        """An edge, or the first look: wait for the level to hold."""
        with self._lock:
            if not self._closed:
                self._settle.start(self._debounce_s, self._on_settled)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._settle.cancel()

    def _on_settled(self, generation: int) -> None:
        # Posted under the lock: a timer thread held up after its read must not let a
        # later level overtake it in the controller's queue (posting never blocks).
        with self._lock:
            if not self._settle.is_current(generation):  # restarted, or closed since
                return
            occupied = self._read()
            if occupied != self._posted:
                self._posted = occupied
                self._post(Occupancy(occupied))
