"""One thread's wait: the controller's inbox, network sockets and timers in one `select`.

The controller thread waits here for its next event. While it waits, the MQTT
bridge's socket is read and written and its timers run, on the same thread: a
command read from the broker is posted and taken as the next event without a
thread switch, and a state the controller publishes is written to the socket
at once. That is the whole point: each hand-off between threads cost about
0.1-0.4 ms at the 99th percentile (see bench/bench_mqtt.py).

Only the thread that calls `get` or `drive` runs callbacks, one at a time.
Other threads may call `put`, `call_soon` and `call_later`; a signal handler
may call `put`. Nothing here blocks but the `select` itself, bounded by the
caller's timeout.

    loop = NetLoop()
    loop.put(event)                  # any thread
    loop.watch(sock, on_readable, on_writable, wants_write)
    handle = loop.call_later(1.0, work)
    item = loop.get(timeout=0.5)     # raises queue.Empty when nothing came
"""

import heapq
import itertools
import logging
import math
import queue
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Action = Callable[[], None]
WAKE_READ_BYTES = 4096
"""Wakes (one byte each) read at once; more come only from a loop that did not turn."""


@dataclass(order=True)
class TimerHandle:
    """A call due at `when` (monotonic seconds); `cancel` stops it from running."""

    when: float
    order: int
    action: Action = field(compare=False)
    slack_s: float = field(default=0.0, compare=False)
    """How much later it may run, so that it runs when the loop wakes anyway."""
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class _Watch:
    on_readable: Action
    on_writable: Action
    wants_write: Callable[[], bool]
    events: int


@dataclass(frozen=True)
class _Call:
    action: Action


class NetLoop:
    """An inbox of items with sockets and timers served while waiting: see the module."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._items: deque[Any] = deque()
        self._timers: list[TimerHandle] = []
        self._timers_lock = threading.Lock()
        self._order = itertools.count()
        self._selector = selectors.DefaultSelector()
        self._wake_in, self._wake_out = socket.socketpair()
        for end in (self._wake_in, self._wake_out):
            end.setblocking(False)
        self._selector.register(self._wake_in, selectors.EVENT_READ)
        self._watches: dict[socket.socket, _Watch] = {}
        self._owner: int | None = None
        self._selecting = False

    # --- any thread -------------------------------------------------------------

    def put(self, item: Any) -> None:
        """Hand `item` to the thread that calls `get`; safe from any thread or signal handler."""
        self._items.append(item)
        # Outside `_turn` the loop's thread has yet to look at its items; inside, a wait may
        # begin or be under way: another thread's put, or a signal handler's (which Python
        # runs inside select, then resumes it), must wake it.
        if self._selecting:
            self._wake()

    def call_soon(self, action: Action) -> None:
        """Run `action` on the loop's thread, before the next item is handed out."""
        self.put(_Call(action))

    def call_later(self, delay_s: float, action: Action, *, slack_s: float = 0.0
                   ) -> TimerHandle:
        """Run `action` on the loop's thread `delay_s` from now, unless cancelled first.

        With `slack_s`, it runs at the first wake of the loop from `delay_s` on, and wakes
        the loop itself only `delay_s + slack_s` from now: a periodic check that can wait a
        little costs no wakeup of its own on a mat that wakes every 2 s anyway."""
        handle = TimerHandle(self._monotonic() + delay_s, next(self._order), action, slack_s)
        with self._timers_lock:
            heapq.heappush(self._timers, handle)
        if not self.on_loop_thread():
            self._wake()
        return handle

    def on_loop_thread(self) -> bool:
        """Whether the caller is the thread that runs this loop's callbacks now."""
        return self._owner == threading.get_ident()

    # --- the loop's thread ------------------------------------------------------

    def watch(self, sock: socket.socket, on_readable: Action, on_writable: Action,
              wants_write: Callable[[], bool]) -> None:
        """Call `on_readable` when `sock` has data, `on_writable` when it can take what
        `wants_write` says is waiting."""
        self._watches[sock] = _Watch(on_readable, on_writable, wants_write, selectors.EVENT_READ)
        self._selector.register(sock, selectors.EVENT_READ)

    def unwatch(self, sock: socket.socket) -> None:
        """Forget `sock` (it may be closed already); a socket not watched is ignored."""
        if self._watches.pop(sock, None) is not None:
            self._selector.unregister(sock)

    def get(self, timeout: float) -> Any:
        """The next item put, serving sockets, timers and calls until it comes.

        Raises:
            queue.Empty: nothing came within `timeout` seconds.
        """
        deadline = self._monotonic() + timeout
        self._owner = threading.get_ident()
        while True:
            while self._items:
                if self._timers and self._timers[0].when <= self._monotonic():
                    # A producer that never pauses must not starve the timers: the sensors
                    # are sampled by one, and readings that stop coming turn heat off. Read
                    # without the lock: other threads only push, and a look that misses a
                    # timer pushed this instant costs it one item's wait.
                    self._run_due_timers()
                item = self._items.popleft()
                if isinstance(item, _Call):
                    self._run(item.action)
                else:
                    return item
            now = self._monotonic()
            if now >= deadline:
                raise queue.Empty
            self._turn(deadline - now)

    def drive(self, until: Callable[[], bool], timeout_s: float) -> bool:
        """Serve sockets, timers and calls (items stay put) until `until()` or the timeout;
        for a caller that owns the loop after its usual thread stopped (a clean close).
        A call queued behind an item is left for the next `get`, in order."""
        deadline = self._monotonic() + timeout_s
        self._owner = threading.get_ident()
        while not until():
            while self._items and isinstance(self._items[0], _Call):
                self._run(self._items.popleft().action)
            now = self._monotonic()
            if now >= deadline:
                return until()
            self._turn(min(deadline - now, 0.05), for_items=False)
        return True

    def close(self) -> None:
        self._selector.close()
        self._wake_in.close()
        self._wake_out.close()

    # --- inside -----------------------------------------------------------------

    def _wake(self) -> None:
        # Not contextlib.suppress: three Python calls fewer, on every reading of an idle mat.
        try:  # noqa: SIM105
            self._wake_out.send(b"\0")
        except OSError:
            pass  # a wake is pending already (the buffer is full), or the loop is closed

    def _turn(self, wait_s: float, *, for_items: bool = True) -> None:
        """One wait in `select` (no longer than the next timer) and what it found.

        From here on a `put` on this thread is a signal handler's and wakes the wait: one
        that ran after the loop's look at its items and before `select` would otherwise
        wait out the whole timeout (a SIGTERM ignored for up to 5 s). `for_items`: any item
        ends the wait (`get`), else only a call (`drive`)."""
        self._selecting = True
        try:
            if self._items and (for_items or isinstance(self._items[0], _Call)):
                return  # put by a handler that ran since the loop looked
            for sock, watch in self._watches.items():
                wants = watch.wants_write()
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if wants else 0)
                if events != watch.events:
                    watch.events = events
                    self._selector.modify(sock, events)
            with self._timers_lock:
                if self._timers:
                    latest = min(timer.when + timer.slack_s for timer in self._timers)
                    wait_s = min(wait_s, latest - self._monotonic())
            ready = self._selector.select(None if math.isinf(wait_s) else max(wait_s, 0.0))
        finally:
            self._selecting = False
        for key, mask in ready:
            if key.fileobj is self._wake_in:
                self._drain_wakes()
                continue
            watch = self._watches.get(key.fileobj)  # type: ignore[call-overload]
            if watch is not None and mask & selectors.EVENT_READ:
                self._run(watch.on_readable)
            watch = self._watches.get(key.fileobj)  # type: ignore[call-overload]
            if watch is not None and mask & selectors.EVENT_WRITE:
                self._run(watch.on_writable)
        self._run_due_timers()

    def _drain_wakes(self) -> None:
        # One read takes every pending wake: a second would only raise BlockingIOError. Any
        # left over (more than WAKE_READ_BYTES) keep the socket readable for the next turn.
        # Not contextlib.suppress, as in `_wake`: this runs on every wake of an idle mat.
        try:  # noqa: SIM105
            self._wake_in.recv(WAKE_READ_BYTES)
        except OSError:
            pass  # nothing left to read, or the loop is closed

    def _run_due_timers(self) -> None:
        now = self._monotonic()
        while True:
            with self._timers_lock:
                if not self._timers or self._timers[0].when > now:
                    return
                handle = heapq.heappop(self._timers)
            if not handle.cancelled:
                self._run(handle.action)

    @staticmethod
    def _run(action: Action) -> None:
        """A failing callback is logged: it must never end the controller's loop."""
        try:
            action()
        except Exception:
            log.exception("%r failed", action)
