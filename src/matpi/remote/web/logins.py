"""How often, and how, a password may be tried on the page.

Every try is counted before the password is hashed, so parallel requests cannot
all slip past the check while the first hash runs (40 did, before); and the
hashes run one at a time in one thread, so 200 parallel logins cost one scrypt's
memory (16 MiB), not 200 of them (100 MiB that stayed, before).

Counted per client address, so a guessing guest does not lock the owner's
phone out, and for everyone together at a slower rate, so a guesser who
changes address is still held to it. Of that shared budget one address may
use at most its own five: a single guesser, however patient, never fills it
(six addresses guessing at once do). A right password takes its try back.
"""

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

TRIES_PER_CLIENT = 5
CLIENT_WINDOW_S = 60.0
"""Five tries a minute from one address: a person who mistypes, not a script."""
TRIES_FROM_ALL = 30
ALL_WINDOW_S = 600.0
"""Thirty tries in ten minutes from all addresses together."""
MAX_CLIENTS = 256
"""Addresses remembered at once; the one seen longest ago is forgotten first."""


class LoginLimiter:
    """Counts login tries per client and in all; thread-safe. See the module docstring.

        wait_s = limiter.try_login(address)     # counted now, before the hash
        if wait_s == 0 and password_right:
            limiter.succeeded(address)          # the try is not held against anyone
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._clients: dict[str, deque[float]] = {}
        self._all: deque[tuple[float, str]] = deque()
        self._lock = threading.Lock()

    def try_login(self, client: str) -> float:
        """0 when this try may go on, and it is counted; else the seconds to wait."""
        now = self._clock()
        with self._lock:
            tries = self._clients.pop(client, None) or deque()
            self._clients[client] = tries  # now the most recently seen
            _forget_before(tries, now - CLIENT_WINDOW_S)
            while self._all and self._all[0][0] <= now - ALL_WINDOW_S:
                self._all.popleft()
            wait_s = max(_wait_s(tries, TRIES_PER_CLIENT, CLIENT_WINDOW_S, now),
                         self._shared_wait_s(now))
            if wait_s == 0.0:
                tries.append(now)
                self._all.append((now, client))
            while len(self._clients) > MAX_CLIENTS:
                del self._clients[next(iter(self._clients))]
            return wait_s

    def _shared_wait_s(self, now: float) -> float:
        """The shared budget, in which each address counts for at most TRIES_PER_CLIENT of
        its tries in the window; 0 when another try may go on."""
        counted: dict[str, int] = {}
        kept: list[float] = []
        for at, who in self._all:
            if counted.get(who, 0) < TRIES_PER_CLIENT:
                counted[who] = counted.get(who, 0) + 1
                kept.append(at)
        if len(kept) < TRIES_FROM_ALL:
            return 0.0
        return max(kept[-TRIES_FROM_ALL] + ALL_WINDOW_S - now, 0.0)

    def succeeded(self, client: str) -> None:
        """The right password: its try is taken back."""
        with self._lock:
            tries = self._clients.get(client)
            if tries:
                tries.pop()
            for index in range(len(self._all) - 1, -1, -1):
                if self._all[index][1] == client:
                    del self._all[index]
                    break


def _forget_before(tries: deque[float], since: float) -> None:
    while tries and tries[0] <= since:
        tries.popleft()


def _wait_s(tries: deque[float], most: int, window_s: float, now: float) -> float:
    return 0.0 if len(tries) < most else max(tries[-most] + window_s - now, 0.0)


class Hasher:
    """Runs password checks one at a time, in one thread: scrypt's memory is used once,
    in one allocator arena, however many logins arrive together."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="matpi-login")

    def submit(self, check: Callable[[], bool]) -> "Future[bool]":
        return self._pool.submit(check)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
