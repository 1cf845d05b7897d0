"""What a remote client reads: the state and notice JSON that MQTT and the page share.

One place, so that Home Assistant and the page can never disagree on a field,
and the session's end time is computed one way for both.
"""

import dataclasses
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from matpi.core.events import ButtonGesture, Notice, Snapshot, State

ENDS_AT_TOLERANCE_S = 2.0
"""`ends_at` moves only when the end moves by more than this: Home Assistant records
every change, and rounding alone would shift it by a second now and then."""

_SNAPSHOT_FIELDS = tuple(f.name for f in dataclasses.fields(Snapshot) if f.compare)
_MOMENT_FIELDS = tuple(f.name for f in dataclasses.fields(Snapshot) if not f.compare)
_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")


def state_payload(snapshot: Snapshot, ends_at: str | None, *, moment: bool = False) -> str:
    """The state: every Snapshot field, plus `ends_at` (ISO 8601) while running.

    `moment` adds the fields that change at every step (`breath_s`): the page draws
    with them; MQTT leaves them out, as it publishes only what a person would see change.
    """
    fields = _SNAPSHOT_FIELDS + _MOMENT_FIELDS if moment else _SNAPSHOT_FIELDS
    values: dict[str, Any] = {name: getattr(snapshot, name) for name in fields}
    values["ends_at"] = ends_at
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def notice_payload(notice: Notice) -> str:
    """A core notice as JSON: `{"event": "session_ended", "reason": "completed", ...}`."""
    name = _WORD_START.sub("_", type(notice).__name__).lower()
    return json.dumps({"event": name, **dataclasses.asdict(notice)}, ensure_ascii=False)


def button_gestures(notices: list[Notice]) -> list[str]:
    """The button gestures among the notices, as Home Assistant event types."""
    return [n.gesture.value for n in notices if isinstance(n, ButtonGesture)]


def iso_time(epoch_s: float) -> str:
    """Local time with its UTC offset, as Home Assistant's timestamp sensor wants."""
    return datetime.fromtimestamp(epoch_s, tz=UTC).astimezone().isoformat(timespec="seconds")


class SessionEnd:
    """When the running session ends, as ISO text that holds still while it runs.

        ends_at = SessionEnd(clock.wall)
        state_payload(snapshot, ends_at(snapshot))
    """

    def __init__(self, wall: Callable[[], float]) -> None:
        self._wall = wall
        self._last: tuple[float, str] | None = None

    def __call__(self, snapshot: Snapshot) -> str | None:
        if snapshot.state is not State.RUNNING:
            self._last = None
            return None
        ends_at_s = self._wall() + snapshot.remaining_s
        if self._last is None or abs(ends_at_s - self._last[0]) > ENDS_AT_TOLERANCE_S:
            self._last = (ends_at_s, iso_time(ends_at_s))
        return self._last[1]
