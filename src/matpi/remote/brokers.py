"""Which broker the MQTT bridge tries next, and how long it waits first.

paho reconnects only to the host it was given, and its backoff doubles without
jitter: fifty mats that lose one broker would all come back at the same instants.
`Reconnect` picks the next address of `[mqtt] hosts` (in order, wrapping, or a
random other one) and a delay with full jitter: uniform between 0 and a ceiling
that doubles from `RECONNECT_MIN_S` up to `RECONNECT_MAX_S` with each failed
try, and starts again once a connection has stayed up for `STABLE_S`.

    reconnect = Reconnect(config.brokers, config.host_order)
    address, delay_s = reconnect.next_attempt()   # after a failure or a loss
    reconnect.wait(delay_s)                       # returns at once after `stop`
"""

import random
import threading
import time
from collections.abc import Callable

from matpi.config.settings import BrokerAddress

RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 60.0
STABLE_S = 60.0
"""A connection that lasted this long was a real one: the next loss starts over at 1 s."""


class Backoff:
    """Full jitter: each delay is uniform in [0, ceiling], the ceiling doubling per try."""

    def __init__(self, first_s: float = RECONNECT_MIN_S, max_s: float = RECONNECT_MAX_S,
                 uniform: Callable[[float, float], float] = random.uniform) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._uniform = uniform
        self._ceiling_s = first_s

    def next_s(self) -> float:
        """The delay before the next try; the one after may be up to twice as long."""
        ceiling_s = self._ceiling_s
        self._ceiling_s = min(ceiling_s * 2.0, self.max_s)
        return self._uniform(0.0, ceiling_s)

    def reset(self) -> None:
        self._ceiling_s = self.first_s


class Reconnect:
    """The broker address and delay for each try. One thread at a time: the bridge's
    connector while it tries, the loop's when a connection is lost (`stop` from any)."""

    def __init__(self, brokers: tuple[BrokerAddress, ...], order: str, *,
                 backoff: Backoff | None = None, rng: random.Random | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._brokers = brokers
        self._random = rng or random.Random()
        self._shuffle = order == "random"
        self._index = self._random.randrange(len(brokers)) if self._shuffle else 0
        self.backoff = backoff or Backoff(uniform=self._random.uniform)
        """May be replaced before the bridge starts (tests shorten it)."""
        self._monotonic = monotonic
        self._up_since: float | None = None
        self._stop = threading.Event()

    @property
    def address(self) -> BrokerAddress:
        """The broker being tried or used now."""
        return self._brokers[self._index]

    def connected(self) -> None:
        self._up_since = self._monotonic()

    def next_attempt(self) -> tuple[BrokerAddress, float]:
        """After a failed try or a lost connection: the next broker and how long to wait."""
        if self._up_since is not None and self._monotonic() - self._up_since >= STABLE_S:
            self.backoff.reset()
        self._up_since = None
        count = len(self._brokers)
        if count > 1:
            step = self._random.randrange(1, count) if self._shuffle else 1
            self._index = (self._index + step) % count
        return self.address, self.backoff.next_s()

    def wait(self, delay_s: float) -> None:
        """Sleep `delay_s`, cut short by `stop`."""
        self._stop.wait(delay_s)

    def stop(self) -> None:
        self._stop.set()
