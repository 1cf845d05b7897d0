"""What open pages see live: the latest state, this session's temperature curve, and
one Server-Sent Events queue per open page.

Everything here runs in the web server's event loop thread: the controller's
listener only hands snapshots over (`WebServer.listener`), so nothing here
needs a lock. The state JSON is the MQTT `state` payload, so a script reads
the same fields from either, plus `breath_s`, which `state_json` moves on to the
moment it is read.

Stream events, each `event: NAME` and one line of JSON:

- `state`: the state, on every change;
- `notice`: a core notice (`{"event": "refused", ...}`), as on MQTT's `event` topic;
- `curve`: the whole curve of the current or last session, on connect and when one begins;
- `point`: one more point of it, `[seconds, temperature_c, setpoint_c]`.
"""

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from tornado.ioloop import IOLoop

from matpi.core.events import Notice, Snapshot, State
from matpi.core.patterns import breath_into_s
from matpi.remote.payloads import SessionEnd, notice_payload, state_payload
from matpi.remote.tally import Tally

log = logging.getLogger(__name__)

CURVE_STEP_S = 5.0
"""Session seconds between two points of the curve (at least)."""
CURVE_MAX_POINTS = 720
"""A bound on memory: 30 min of session and 15 of preheat need 540 points."""
REFUSED_LOG_S = 60.0
MAX_SUBSCRIBERS = 8
"""Open pages at once; each holds one connection and one queue."""
MAX_PENDING = 256
"""Messages a page may fall behind by before it is dropped (its browser reconnects)."""
RETRY_MS = 2000
"""How soon a browser reconnects a dropped stream."""

_ACTIVE = (State.PREHEAT, State.RUNNING)


def sse(event: str, data: str) -> str:
    """One Server-Sent Event; `data` is one line of JSON."""
    return f"event: {event}\ndata: {data}\n\n"


class Subscriber:
    """One open page's queue of messages, and a flag that wakes its writer."""

    def __init__(self) -> None:
        self.pending: deque[str] = deque()
        self.wake = asyncio.Event()
        self.closed = False

    def send(self, message: str) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.close()
            return
        self.pending.append(message)
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.pending.clear()
        self.wake.set()


@dataclass
class Curve:
    """Mat temperature and setpoint over one session, preheat included."""

    program: str = ""
    started_at: float = 0.0
    points: list[tuple[float, float, float | None]] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps({"program": self.program, "points": self.points},
                          separators=(",", ":"))


class LiveState:
    """The latest state and curve, and every open page's stream. Event-loop thread only.

        live = LiveState(now=clock.now, wall=clock.wall)
        live.update(snapshot, notices)      # from the controller's listener, via the loop
        subscriber = live.subscribe()       # None when MAX_SUBSCRIBERS pages are open
    """

    def __init__(self, *, now: Callable[[], float], wall: Callable[[], float]) -> None:
        self._now = now
        self._state_json: str | None = None
        self._snapshot: Snapshot | None = None
        self._ends_at_text: str | None = None
        self._built_at = 0.0
        self._state: State | None = None
        self.curve = Curve()
        self._ends_at = SessionEnd(wall)
        self._subscribers: set[Subscriber] = set()

    def update(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        """A new snapshot from the controller: keep it, extend the curve, tell every page."""
        messages: list[str] = []
        now = self._now()
        if snapshot.state in _ACTIVE and self._state not in _ACTIVE:
            self.curve = Curve(snapshot.program, now)
            messages.append(sse("curve", self.curve.as_json()))
        self._state = snapshot.state
        point = self._point(snapshot, now)
        if point is not None:
            messages.append(sse("point", json.dumps(point)))
        messages += [sse("notice", notice_payload(n)) for n in notices]
        self._snapshot, self._ends_at_text, self._built_at = snapshot, self._ends_at(snapshot), now
        self._state_json = state_payload(snapshot, self._ends_at_text, moment=True)
        messages.append(sse("state", self._state_json))
        message = "".join(messages)
        for subscriber in list(self._subscribers):
            subscriber.send(message)
            if subscriber.closed:
                self._subscribers.discard(subscriber)

    @property
    def state_json(self) -> str | None:
        """The latest state, None before the first; `breath_s` is moved on to now.

        A page that polls /api/state gets it seconds after the snapshot; without the move
        its breathing guide would lag the motor by that much until the next poll.
        """
        snapshot = self._snapshot
        if snapshot is None or snapshot.breath_s is None:
            return self._state_json
        since_s = self._now() - self._built_at
        breath_s = round(breath_into_s(snapshot.breath_s + since_s, snapshot.breaths_per_min), 3)
        return state_payload(replace(snapshot, breath_s=breath_s), self._ends_at_text, moment=True)

    def subscribe(self) -> Subscriber | None:
        """A new stream, primed with the curve and the state; None if too many are open."""
        if len(self._subscribers) >= MAX_SUBSCRIBERS:
            return None
        subscriber = Subscriber()
        subscriber.send(f"retry: {RETRY_MS}\n\n" + sse("curve", self.curve.as_json()))
        if self.state_json is not None:
            subscriber.send(sse("state", self.state_json))
        self._subscribers.add(subscriber)
        return subscriber

    def start_counting(self) -> None:
        """In the page's loop, before the first request: the tally of refused streams."""
        self.refused = Tally(
            lambda n: log.info("web page: %d page(s) refused the live stream (%d open, the "
                               "most); they poll /api/state instead", n, MAX_SUBSCRIBERS),
            REFUSED_LOG_S, IOLoop.current().call_later)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def close_all(self) -> None:
        """End every stream (the server is stopping)."""
        for subscriber in self._subscribers:
            subscriber.close()
        self._subscribers.clear()

    def _point(self, snapshot: Snapshot, now: float) -> list[float | None] | None:
        """The curve's next point, if one is due; it is also kept in the curve."""
        if snapshot.state not in _ACTIVE or snapshot.temperature_c is None:
            return None
        points = self.curve.points
        at_s = round(now - self.curve.started_at, 1)
        if len(points) >= CURVE_MAX_POINTS or (points and at_s - points[-1][0] < CURVE_STEP_S):
            return None
        points.append((at_s, snapshot.temperature_c, snapshot.setpoint_c))
        return [at_s, snapshot.temperature_c, snapshot.setpoint_c]

