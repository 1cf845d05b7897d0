"""A count that reaches the journal without flooding it: the first event at once, then
what came since, once per interval, and what is left when it closes."""

import threading
from collections.abc import Callable
from typing import Any


class Tally:
    """Counts one kind of event; `report(n)` writes one line for n of them.

        refused = Tally(lambda n: log.warning("%d refused", n), 60.0, loop.call_later)
        refused.count()
        refused.close()
    """

    def __init__(self, report: Callable[[int], None], interval_s: float,
                 call_later: Callable[[float, Callable[[], None]], Any]) -> None:
        self._report = report
        self._interval_s = interval_s
        self._call_later = call_later
        self.total = 0
        self._pending = 0
        self._waiting = False
        self._lock = threading.Lock()
        """count() may come from several threads (paho's, the controller's, timers)."""

    def count(self) -> None:
        with self._lock:
            self.total += 1
            self._pending += 1
            if not self._waiting:
                self._flush_locked()

    def close(self) -> None:
        """Reports what is still pending (the server is stopping)."""
        with self._lock:
            if self._pending:
                self._report(self._pending)
                self._pending = 0

    def _flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        """Reports what is pending and waits an interval; with nothing pending, stops waiting
        so that the next event is reported at once."""
        if not self._pending:
            self._waiting = False
            return
        self._report(self._pending)
        self._pending = 0
        self._waiting = True
        self._call_later(self._interval_s, self._flush)
