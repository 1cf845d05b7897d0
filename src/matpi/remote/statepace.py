"""When the mat's retained MQTT state goes out: at once when anything a person would see
changes, at most every `STATE_EVERY_S` while only counting numbers move, and again after
`HEARTBEAT_S` of quiet.

Home Assistant's recorder stores every state it receives: a state a second is ~1,800 rows
a session, and `ends_at` already lets it count the time left down by itself (issue #17).
Runs on the loop's thread: the timer is the loop's, and so is every call of `publish`.
"""

import dataclasses
import math
import time
from collections.abc import Callable

from matpi.core.events import Snapshot
from matpi.remote.netloop import TimerHandle
from matpi.remote.payloads import state_payload

HEARTBEAT_S = 60.0
"""The retained state is published again after this long without a change."""

STATE_EVERY_S = 10.0
"""A state whose only changes are counting numbers goes out at most this often."""

COUNTING_FIELDS = frozenset({
    "elapsed_s", "remaining_s", "cooldown_remaining_s", "preheat_remaining_s",
    "temperature_c", "vibration", "dose_cem43", "dose_today_cem43", "today_min",
    "daily_remaining_min",
})
"""Snapshot fields that move on by themselves while a session runs or the mat cools:
their changes alone wait for `STATE_EVERY_S`. Any other field (state, program, heat,
heater, fault, occupancy, the end time...) goes out at once."""

_SHOWN_FIELDS = tuple(f.name for f in dataclasses.fields(Snapshot)
                      if f.compare and f.name not in COUNTING_FIELDS)

CallLater = Callable[[float, Callable[[], None]], TimerHandle]
Publish = Callable[[str], bool]
"""Sends the state's JSON, retained; False when it could not (no connection)."""


class StatePacer:
    """Holds the newest state and decides when it is published.

        pacer = StatePacer(loop.call_later, publish)
        pacer.update(snapshot, ends_at)
        if connected:
            pacer.offer()      # now, or planned for when it is due
        pacer.publish_now()    # on every connection
        pacer.cancel()         # on a lost connection
    """

    def __init__(self, call_later: CallLater, publish: Publish, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._call_later = call_later
        self._publish = publish
        self._monotonic = monotonic
        self.heartbeat_s = HEARTBEAT_S
        self.every_s = STATE_EVERY_S
        """Both may be shortened before the first state (tests do)."""
        self._latest: str | None = None
        self._shown: tuple[object, ...] = ()
        """What a person sees in `_latest`: the fields outside COUNTING_FIELDS."""
        self._shown_sent: tuple[object, ...] | None = None
        self._sent_at = -math.inf
        self._timer: TimerHandle | None = None
        """A timer that is cancelled is always set to None, so one that is set is live."""

    def update(self, snapshot: Snapshot, ends_at: str | None) -> None:
        """The newest state, kept for when it is due or a connection comes."""
        self._latest = state_payload(snapshot, ends_at)
        self._shown = (*(getattr(snapshot, name) for name in _SHOWN_FIELDS), ends_at)

    def offer(self) -> bool:
        """Publishes the newest state if it is due, else plans it; True when published."""
        if (self._shown != self._shown_sent
                or self._monotonic() - self._sent_at >= self.every_s):
            return self.publish_now()
        self._plan(self._sent_at + self.every_s)
        return False

    def publish_now(self) -> bool:
        """The newest state now, and the heartbeat counted from now; True when sent."""
        if self._latest is None or not self._publish(self._latest):
            return False
        self._sent_at = self._monotonic()
        self._shown_sent = self._shown
        self.cancel()
        self._plan(self._sent_at + self.heartbeat_s)
        return True

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None

    def _plan(self, when: float) -> None:
        """The state goes out again at `when`, or earlier if already planned so."""
        if self._timer is not None:
            if self._timer.when <= when:
                return
            self._timer.cancel()
        self._timer = self._call_later(max(when - self._monotonic(), 0.0), self._due)

    def _due(self) -> None:
        """A held state or the heartbeat."""
        self._timer = None
        self.publish_now()
