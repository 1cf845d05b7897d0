"""The one line `systemctl status matpi` shows: what the mat is doing, right now.

    running back, 12:30 left, 38.4 °C / 40 °C, dose 3.1/9
    idle
    fault: over-temperature — hold the button on the mat to reset

Sent as sd_notify `STATUS=` by a controller listener, at once when the state
changes, and otherwise (a countdown, a new reading) at most once per
`MIN_INTERVAL_S`, so that a second-by-second countdown costs one datagram a
second and a burst of readings no more. A line held back by that limit, or lost
on a full socket, goes out later on the controller's loop: the last line sent is
never left standing for a state that has moved on.
"""

import time
from collections.abc import Callable
from typing import Any

from matpi.core.events import Notice, Snapshot, State

MIN_INTERVAL_S = 1.0


def _minutes(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _temperatures(s: Snapshot) -> str:
    reading = "no reading" if s.temperature_c is None else f"{s.temperature_c:.1f} °C"
    return reading if s.setpoint_c is None else f"{reading} / {s.setpoint_c:g} °C"


def status_text(s: Snapshot, *, dose_max_cem43: float, fault_clearable: bool = True) -> str:
    """The snapshot as a person at `systemctl status` wants it: state first, then the
    numbers that matter in that state."""
    match s.state:
        case State.RUNNING:
            paused = ", paused: nobody on the mat" if s.occupied is False else ""
            return (f"running {s.program}{paused}, {_minutes(s.remaining_s)} left, "
                    f"{_temperatures(s)}, dose {s.dose_cem43:.1f}/{dose_max_cem43:g}")
        case State.PREHEAT:
            return f"preheat {s.program}, waiting for a press at the mat, {_temperatures(s)}"
        case State.COOLDOWN:
            return f"cooldown, next session in {_minutes(s.cooldown_remaining_s)}"
        case State.FAULT:
            hint = "hold the button on the mat to reset" if fault_clearable else (
                "see journalctl -u matpi")
            return f"fault: {s.fault} — {hint}"
    if s.daily_remaining_min <= 0:
        return f"idle, today's {s.today_min:.0f} min used up"
    return "idle"


class ServiceStatus:
    """A controller listener that keeps systemd's STATUS= line current; never blocks
    (`send` is the non-blocking sd_notify)."""

    def __init__(
        self,
        send: Callable[[str], bool],
        *,
        dose_max_cem43: float,
        fault_clearable: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        min_interval_s: float = MIN_INTERVAL_S,
        call_later: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        """`send` says whether the line got through; `call_later` (the controller's loop)
        sends a held or lost line later; without it, with the next snapshot."""
        self._send = send
        self._dose_max = dose_max_cem43
        self._fault_clearable = fault_clearable
        self._monotonic = monotonic
        self._min_interval_s = min_interval_s
        self._call_later = call_later
        self._latest: tuple[State, str] | None = None
        self._sent: tuple[State, str] | None = None
        self._sent_at = float("-inf")
        self._retry_planned = False

    def __call__(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        text = status_text(snapshot, dose_max_cem43=self._dose_max,
                           fault_clearable=self._fault_clearable)
        self._latest = (snapshot.state, text)
        if self._sent is not None:
            state, sent_text = self._sent
            if text == sent_text:
                return
            wait_s = self._sent_at + self._min_interval_s - self._monotonic()
            if state is snapshot.state and wait_s > 0:
                self._retry_in(wait_s)
                return
        self._send_latest()

    def _send_latest(self) -> None:
        assert self._latest is not None
        if self._send(self._latest[1]):
            self._sent = self._latest
            self._sent_at = self._monotonic()
        else:
            self._retry_in(self._min_interval_s)

    def _retry_in(self, delay_s: float) -> None:
        if self._call_later is not None and not self._retry_planned:
            self._retry_planned = True
            self._call_later(delay_s, self._retry)

    def _retry(self) -> None:
        self._retry_planned = False
        if self._latest != self._sent:
            self._send_latest()
