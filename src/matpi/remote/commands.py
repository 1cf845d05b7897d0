"""What a remote request may do: parse, validate and rate-limit it into core events.

Shared by every remote edge (MQTT now, the web page later), so it knows no
transport: a request is a command name, a payload and whether it was retained.
A payload is either raw text (`str` or `bytes`, as MQTT delivers it) or a value
already decoded from JSON (the web page's API). The answer is a list of core
events to post, or a `Rejection` that names the field, the value and what is
allowed. A rejected request changes nothing.

Validation here is the friendly first line; the core checks every value again
and refuses what it must (a remote command never clears a fault or raises a
limit). Starts are rate-limited so a looping automation cannot cycle the
heater; a stop is never refused, it is the safe direction.

    commands = RemoteCommands(rules)
    commands.handle("intensity", b"70")     # [Adjust(Source.REMOTE, intensity_pct=70.0)]
    commands.handle("intensity", b"170")    # Rejection(field="intensity_pct", ...)
"""

import json
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from matpi.core.events import Adjust, Event, SelectProgram, Source, Start, Stop
from matpi.core.patterns import MAX_BREATHS_PER_MIN, MIN_BREATHS_PER_MIN, Pattern
from matpi.core.programs import HeatLevel
from matpi.core.rules import Rules
from matpi.core.session import MIN_SESSION_MIN
from matpi.remote.jsontext import JsonError, load_json

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 1024
"""Nothing a command needs comes close; anything larger is a mistake or an attack."""

STARTS_PER_WINDOW = 6
RATE_WINDOW_S = 60.0
"""At most this many remote starts in any window: a person never needs more. Stops are
never counted: a stream of them must not use up the starts."""

SHOWN_VALUE_CHARS = 64
"""An echoed bad value is cut to this, so an error reply stays small."""

_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
"""Plain decimal text only: no 'nan', 'inf', '1e999' or '1_000' that float() would take."""

JsonValue = None | bool | int | float | str | list[Any] | dict[str, Any]
Payload = bytes | bytearray | JsonValue
"""Raw text (str, bytes) or a value already decoded from JSON."""


class Command(StrEnum):
    """The commands a remote client may send; MQTT puts each on `<base>/<command>/set`."""

    SESSION = "session"
    START = "start"
    STOP = "stop"
    PROGRAM = "program"
    HEAT = "heat"
    PATTERN = "pattern"
    INTENSITY = "intensity"
    DURATION = "duration"
    BREATHS = "breaths"


PRESS_PAYLOAD = "PRESS"
"""What a Home Assistant button sends."""


@dataclass(frozen=True)
class Rejection:
    """Why a request was not carried out: the field, the value given, and what is allowed."""

    command: str
    field: str
    value: str
    allowed: str
    retry_after_s: int | None = None
    """For a rate limit: when to try again (the page's Retry-After)."""

    @property
    def message(self) -> str:
        return f"{self.command}: {self.field} = {self.value}: {self.allowed}"

    def as_dict(self) -> dict[str, str]:
        return {"command": self.command, "field": self.field, "value": self.value,
                "allowed": self.allowed, "message": self.message}


class _Invalid(Exception):
    """Raised inside parsing; turned into a Rejection at the one entry point."""

    def __init__(self, field: str, value: str, allowed: str,
                 retry_after_s: int | None = None) -> None:
        super().__init__(field)
        self.field = field
        self.value = value
        self.allowed = allowed
        self.retry_after_s = retry_after_s


class StartLimiter:
    """Sliding-window limit on remote starts; stops neither count nor wait.

    Thread-safe, so MQTT and the web page can share one and a flood from
    either is limited.
    """

    def __init__(
        self,
        max_per_window: int = STARTS_PER_WINDOW,
        window_s: float = RATE_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_per_window = max_per_window
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque(maxlen=max_per_window)
        self._lock = threading.Lock()

    def wait_s(self) -> float:
        """Seconds until a start would be allowed; 0 when it is allowed now."""
        with self._lock:
            if len(self._times) < self.max_per_window:
                return 0.0
            return max(self._times[0] + self.window_s - self._clock(), 0.0)

    def record(self) -> None:
        with self._lock:
            self._times.append(self._clock())


class RemoteCommands:
    """Turns remote requests into core events for one mat's rules. See module docstring."""

    def __init__(self, rules: Rules, *, limiter: StartLimiter | None = None) -> None:
        self._rules = rules
        self._limiter = limiter or StartLimiter()
        self._programs = tuple(rules.programs)

    def handle(self, command: str, payload: Payload, *, retained: bool = False) -> (
        list[Event] | Rejection
    ):
        """Parse and check one request.

        Args:
            command: a `Command` value, like "intensity".
            payload: raw text (str, bytes) or a value decoded from JSON.
            retained: the message was a retained one (MQTT): always refused, since
                a retained "start" would start the mat again at every reconnect.
        Returns:
            the events to post (possibly none), or a Rejection; never raises.
        """
        try:
            events = self._parse(command, payload, retained)
        except _Invalid as bad:
            rejection = Rejection(command[:SHOWN_VALUE_CHARS], bad.field, bad.value, bad.allowed,
                                  bad.retry_after_s)
            log.warning("remote command rejected: %s", rejection.message)
            return rejection
        return events

    def _parse(self, command: str, payload: Payload, retained: bool) -> list[Event]:
        try:
            name = Command(command)
        except ValueError:
            raise _Invalid("command", _shown(command),
                           f"one of: {', '.join(Command)}") from None
        if retained:
            raise _Invalid("retain", "true", "commands must be sent without retain (a retained "
                           "command would replay at every reconnect)")
        _check_size(payload)
        match name:
            case Command.SESSION:
                return self._limited(self._session(payload))
            case Command.START:
                return self._limited(self._start(payload))
            case Command.STOP:
                _press(payload, "stop")
                return self._limited(Stop(Source.REMOTE))
            case Command.PROGRAM:
                program = _choice(payload, "program", self._programs)
                return [SelectProgram(program, Source.REMOTE)]
            case Command.HEAT:
                heat = HeatLevel(_choice(payload, "heat", tuple(HeatLevel)))
                return [Adjust(Source.REMOTE, heat=heat)]
            case Command.PATTERN:
                pattern = Pattern(_choice(payload, "pattern", tuple(Pattern)))
                return [Adjust(Source.REMOTE, pattern=pattern)]
            case Command.INTENSITY:
                intensity = _number(payload, "intensity_pct", 0.0, 100.0)
                return [Adjust(Source.REMOTE, intensity_pct=intensity)]
            case Command.BREATHS:
                pace = _number(payload, "breaths_per_min", MIN_BREATHS_PER_MIN,
                               MAX_BREATHS_PER_MIN)
                return [Adjust(Source.REMOTE, breaths_per_min=pace)]
            case Command.DURATION:
                duration = _number(payload, "duration_min", MIN_SESSION_MIN,
                                   self._rules.session_max_min)
                return [Adjust(Source.REMOTE, duration_min=duration)]

    def _session(self, payload: Payload) -> Start | Stop:
        """The session switch: ON starts (a preheat, by the rules), OFF stops."""
        if isinstance(payload, bool):
            return Start(Source.REMOTE) if payload else Stop(Source.REMOTE)
        text = _text(payload, "session")
        if text == "ON":
            return Start(Source.REMOTE)
        if text == "OFF":
            return Stop(Source.REMOTE)
        raise _Invalid("session", _shown(text), "ON or OFF")

    def _start(self, payload: Payload) -> Start:
        """Empty or PRESS, or an object with `program` and/or `duration_min`."""
        if isinstance(payload, str | bytes | bytearray):
            text = _text(payload, "start")
            if text in ("", PRESS_PAYLOAD):
                return Start(Source.REMOTE)
            try:
                payload = load_json(text)
            except JsonError as exc:
                raise _Invalid("start", _shown(text), f'empty, PRESS, or JSON like '
                               f'{{"program": "back", "duration_min": 15}} ({exc})') from None
        if payload is None:
            return Start(Source.REMOTE)
        if not isinstance(payload, dict):
            raise _Invalid("start", _shown(payload), "an object with program and/or duration_min")
        unknown = sorted(set(payload) - {"program", "duration_min"})
        if unknown:
            raise _Invalid(_shown(unknown[0]), _shown(payload[unknown[0]]),
                           "unknown key; allowed keys: program, duration_min")
        program = payload.get("program")
        if program is not None:
            program = _choice(program, "program", self._programs)
        duration = payload.get("duration_min")
        if duration is not None:
            duration = _number(duration, "duration_min", MIN_SESSION_MIN,
                               self._rules.session_max_min)
        return Start(Source.REMOTE, program, duration)

    def _limited(self, event: Start | Stop) -> list[Event]:
        """Counts starts and refuses one over the limit. A stop always passes and is not
        counted: before, a stream of stops made every later start "rate limited"."""
        if isinstance(event, Start):
            limiter = self._limiter
            wait_s = limiter.wait_s()
            if wait_s > 0:
                raise _Invalid("rate", f"{limiter.max_per_window} starts in "
                               f"{limiter.window_s:g} s", f"at most {limiter.max_per_window} "
                               f"in {limiter.window_s:g} s; try again in {math.ceil(wait_s)} s",
                               math.ceil(wait_s))
            limiter.record()
        return [event]


def _check_size(payload: Payload) -> None:
    if isinstance(payload, bytes | bytearray):
        size = len(payload)
    elif isinstance(payload, str):
        size = len(payload.encode("utf-8", "surrogatepass"))
    else:
        try:
            size = len(json.dumps(payload))
        except (TypeError, ValueError, RecursionError):
            raise _Invalid("payload", type(payload).__name__, "a JSON value") from None
    if size > MAX_PAYLOAD_BYTES:
        raise _Invalid("payload", f"{size} bytes", f"at most {MAX_PAYLOAD_BYTES} bytes")


def _text(payload: Payload, field: str) -> str:
    """The payload as stripped text: raw text, or a JSON string."""
    if isinstance(payload, bytes | bytearray):
        raw = bytes(payload)
        try:
            payload = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Invalid(field, _shown(raw), "UTF-8 text") from None
    if not isinstance(payload, str):
        raise _Invalid(field, _shown(payload), "text")
    return payload.strip()


def _press(payload: Payload, field: str) -> None:
    if payload is None:
        return
    text = _text(payload, field)
    if text not in ("", PRESS_PAYLOAD):
        raise _Invalid(field, _shown(text), f"empty or {PRESS_PAYLOAD}")


def _choice(payload: Payload, field: str, options: tuple[str, ...]) -> str:
    text = _text(payload, field)
    if text not in options:
        raise _Invalid(field, _shown(text), f"one of: {', '.join(options)}")
    return text


def _number(payload: Payload, field: str, low: float, high: float) -> float:
    """A finite number from low to high, from decimal text or a JSON number."""
    allowed = f"a number from {low:g} to {high:g}"
    if isinstance(payload, str | bytes | bytearray):
        text = _text(payload, field)
        if not _NUMBER.fullmatch(text):
            raise _Invalid(field, _shown(text), allowed)
        value = float(text)
    elif isinstance(payload, int | float) and not isinstance(payload, bool):
        text = _shown(payload)
        try:
            value = float(payload)
        except OverflowError:
            value = math.inf
    else:
        raise _Invalid(field, _shown(payload), allowed)
    if not math.isfinite(value) or not low <= value <= high:
        raise _Invalid(field, _shown(text), allowed)
    return value


def _shown(value: object) -> str:
    """A bad value as it is echoed back: text as is, anything else as JSON, cut short."""
    if value == "":
        return '""'
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, default=repr)
        except (ValueError, RecursionError):
            text = type(value).__name__
    if len(text) > SHOWN_VALUE_CHARS:
        return text[:SHOWN_VALUE_CHARS] + "…"
    return text
