"""What a person reads of a running mat: one line per state change, and each notice."""

import logging
from collections.abc import Callable

from matpi.core.events import (
    Adjusted,
    ButtonGesture,
    ClockSet,
    FaultCleared,
    FaultRaised,
    HeatSteppedDown,
    HeatStopped,
    Notice,
    PreheatEnded,
    PreheatStarted,
    ProgramSelected,
    Refused,
    SessionEnded,
    SessionStarted,
    Snapshot,
    State,
)


def clock_text(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 60:2d}:{seconds % 60:02d}"


def describe(s: Snapshot) -> str:
    """The snapshot as one line of text."""
    temp = "--.-" if s.temperature_c is None else f"{s.temperature_c:4.1f}"
    target = f" → {s.setpoint_c:g} °C" if s.setpoint_c is not None else ""
    parts = [f"{s.state.value:<8}", f"{s.program:<8}"]
    if s.state is State.RUNNING:
        parts.append(f"{clock_text(s.remaining_s)} left")
    elif s.state is State.COOLDOWN:
        parts.append(f"cooldown {clock_text(s.cooldown_remaining_s)}")
    elif s.state is State.PREHEAT:
        parts.append("waiting for a press at the mat")
    parts += [
        f"{temp} °C{target}",
        f"heater {'on ' if s.heater_on else 'off'}",
        f"vibration {s.vibration * 100:3.0f} %",
        f"dose {s.dose_cem43:.3f} CEM43",
        f"today {s.today_min:.0f} min",
    ]
    if s.occupied is not None:
        paused = s.state is State.RUNNING and not s.occupied
        parts.append("PAUSED: nobody on the mat" if paused
                     else "someone on the mat" if s.occupied else "mat empty")
    if s.fault:
        parts.append(f"FAULT: {s.fault} (hold the button on the mat to reset)")
    return "  ".join(parts)


def describe_notice(n: Notice) -> str:
    match n:
        case ButtonGesture():
            return f"button: {n.gesture.value.replace('_', ' ')}"
        case SessionStarted():
            return f"session started: {n.program}, {n.planned_min:g} min ({n.source})"
        case PreheatStarted():
            return (f"preheat for {n.program}: press the button at the mat "
                    f"within {n.until_min:g} min")
        case SessionEnded():
            peak = "" if n.peak_c is None else f", peak {n.peak_c:.1f} °C"
            return (f"session ended ({n.reason}): {n.program} after {clock_text(n.elapsed_s)}"
                    f", dose {n.dose_cem43:.3f} CEM43{peak}")
        case PreheatEnded():
            return (f"preheat ended ({n.reason}): {n.program} after {clock_text(n.elapsed_s)}"
                    f", dose {n.dose_cem43:.3f} CEM43")
        case ClockSet():
            return (f"clock set: {n.minutes_today:.1f} min and {n.dose_today:.2f} CEM43 of use "
                    f"carried over to {n.day}")
        case FaultRaised():
            return f"FAULT: {n.reason}"
        case FaultCleared():
            return "fault cleared at the mat"
        case HeatStopped():
            return f"heat stopped: {n.reason}"
        case HeatSteppedDown():
            return f"heat stepped down to {n.level}: {n.reason}"
        case ProgramSelected():
            return f"program selected: {n.program}"
        case Adjusted():
            return (f"settings: heat {n.heat}, {n.pattern} at {n.intensity_pct:g} %, "
                    f"{n.planned_min:g} min")
        case Refused():
            return f"refused {n.command}: {n.reason}"
    raise AssertionError(n)


def notice_level(n: Notice) -> int:
    """How much a notice weighs in the log: a fault is an error, a refusal or a heat cut a
    warning (journalctl -p warning finds them), the rest information."""
    match n:
        case FaultRaised():
            return logging.ERROR
        case Refused() | HeatStopped() | HeatSteppedDown():
            return logging.WARNING
    return logging.INFO


class StateLinePrinter:
    """A controller listener printing each state change and notice as one line, with its
    logging level (a latched fault's state line is an error too)."""

    def __init__(self, elapsed: Callable[[], float], write: Callable[[str, int], None]) -> None:
        self._elapsed = elapsed
        self._write = write
        self._last_state: State | None = None

    def __call__(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        stamp = clock_text(self._elapsed())
        for notice in notices:
            self._write(f"[{stamp}] {describe_notice(notice)}", notice_level(notice))
        if snapshot.state is not self._last_state:
            self._last_state = snapshot.state
            level = logging.ERROR if snapshot.state is State.FAULT else logging.INFO
            self._write(f"[{stamp}] {describe(snapshot)}", level)
