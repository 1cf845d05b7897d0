"""Settings changes from MQTT, coalesced: a slider dragged in Home Assistant or a looping
automation sends hundreds of changes a second, and each used to be applied and published.

The first change goes to the controller at once (a single command is as quick as
ever). Those that follow within WINDOW_S wait, and of a run of the same change
(the same setting again and again, as a dragged slider sends it) only the latest
is applied when the window ends. Different changes keep their order and are
each applied, since the core judges each on its own (it refuses an `Adjust` as
a whole, and applies one to the program chosen before it). Any other event (a
start, a stop) first sends what is waiting, so that it acts on the settings as
they were asked for.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

from matpi.core.events import Adjust, Event, SelectProgram

WINDOW_S = 0.2
"""A dragged slider reaches the mat, and Home Assistant's recorder, five times a second."""

Post = Callable[[Event], None]
CallLater = Callable[[float, Callable[[], None]], Any]


def _fields(change: Adjust) -> frozenset[str]:
    """Which settings an Adjust changes. Only the same ones are merged: the core refuses an
    Adjust as a whole, so a merged heat and intensity could lose the intensity."""
    return frozenset(name for name, value in vars(change).items()
                     if value is not None and name != "source")


class SettingsCoalescer:
    """Posts events to the controller, coalescing settings changes; thread-safe.

        coalescer = SettingsCoalescer(controller.post, call_later=loop.call_later)
        coalescer.post(Adjust(Source.REMOTE, intensity_pct=40.0))
    """

    def __init__(self, post: Post, *, window_s: float = WINDOW_S,
                 call_later: CallLater,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._post = post
        self._window_s = window_s
        self._call_later = call_later
        self._monotonic = monotonic
        self._waiting: list[Event] = []
        self._window_open = False
        self._window_until = 0.0
        self._windows = 0
        """Windows opened so far: a window's timer that comes after the next window opened
        (a busy loop runs it late) must not end that one."""
        self._lock = threading.Lock()
        self.coalesced = 0
        """Changes merged into a later one (never applied on their own)."""

    def post(self, event: Event) -> None:
        with self._lock:
            if not isinstance(event, Adjust | SelectProgram):
                self._send_waiting()
                self._post(event)
                return
            if self._window_open and self._waiting and self._monotonic() >= self._window_until:
                # A stream whose window is over, its timer late (a busy loop): what waited
                # goes now, and this change waits for the next window, as it would have.
                self._send_waiting()
                self._open_window()
            elif not self._window_open or self._monotonic() >= self._window_until:
                self._post(event)  # after a quiet window: at once
                self._open_window()
                return
            self._add(event)

    def _add(self, event: Adjust | SelectProgram) -> None:
        last = self._waiting[-1] if self._waiting else None
        if isinstance(event, Adjust) and isinstance(last, Adjust) \
                and _fields(event) == _fields(last):
            self._waiting[-1] = event  # the same setting again: the latest wins
            self.coalesced += 1
        elif isinstance(event, SelectProgram) and isinstance(last, SelectProgram):
            self._waiting[-1] = event
            self.coalesced += 1
        else:
            self._waiting.append(event)

    def _open_window(self) -> None:
        self._window_open = True
        self._window_until = self._monotonic() + self._window_s
        self._windows += 1
        window = self._windows
        self._call_later(self._window_s, lambda: self._window_over(window))

    def _window_over(self, window: int) -> None:
        """Sends what waited; a new window follows only if something was sent, so that a
        steady stream is applied once per window and a lone change never waits."""
        with self._lock:
            if window != self._windows:
                return  # late: a change that came after it ended has opened the next
            self._window_open = False
            if self._waiting:
                self._send_waiting()
                self._open_window()

    def _send_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for event in waiting:
            self._post(event)
