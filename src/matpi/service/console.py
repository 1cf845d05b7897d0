"""What a person reads in a terminal: one line per state change, and the live simulator."""

import logging
import os
import select
import sys
import termios
import threading
import tty
from collections.abc import Callable

from matpi.core.events import (
    Adjusted,
    ButtonGesture,
    ClockSet,
    DoublePress,
    FaultCleared,
    FaultRaised,
    HeatSteppedDown,
    HeatStopped,
    LongPress,
    Notice,
    PreheatEnded,
    PreheatStarted,
    Press,
    ProgramSelected,
    Refused,
    SessionEnded,
    SessionStarted,
    Snapshot,
    State,
)
from matpi.drivers.base import Post
from matpi.drivers.sim import SimFault, SimulatedMat


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


HELP = ("space press · h long press · d double press · b person on/off · "
        "f sensor fault · w weld relay · o sensor off heater · s sensor stuck · "
        "x occupancy stuck occupied · e occupancy stuck empty · q quit")

_FAULT_KEYS = {
    "f": SimFault.SENSOR_DISCONNECTED,
    "w": SimFault.RELAY_WELDED,
    "o": SimFault.SENSOR_OFF_HEATER,
    "s": SimFault.SENSOR_STUCK,
    "x": SimFault.OCCUPANCY_STUCK_OCCUPIED,
    "e": SimFault.OCCUPANCY_STUCK_EMPTY,
}


class InteractiveMat:
    """The simulator in a terminal: keys act on the mat, a status block redraws live."""

    def __init__(
        self, post: Post, mat: SimulatedMat, *, links: Callable[[], str] = lambda: ""
    ) -> None:
        """`links` says how the mat's connections (the MQTT broker) are doing."""
        self._post = post
        self._mat = mat
        self._links = links
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._log: list[str] = []

    def listener(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        with self._lock:
            self._snapshot = snapshot
            self._log = (self._log + [describe_notice(n) for n in notices])[-6:]

    def run(self) -> None:
        """Read keys until q; needs a terminal on stdin."""
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        try:
            while True:
                self._draw()
                ready, _, _ = select.select([fd], [], [], 0.2)
                if ready and not self._key(os.read(fd, 1).decode(errors="ignore")):
                    return
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
            sys.stdout.write("\n")

    def _key(self, key: str) -> bool:
        if key == "q":
            return False
        if key == " ":
            self._post(Press())
        elif key == "h":
            self._post(LongPress())
        elif key == "d":
            self._post(DoublePress())
        elif key == "b":
            self._mat.set_person(not self._mat.person_lying)
        elif key in _FAULT_KEYS:
            fault = _FAULT_KEYS[key]
            self._mat.inject(fault, fault not in self._mat.faults)
        return True

    def _draw(self) -> None:
        with self._lock:
            snapshot, log = self._snapshot, list(self._log)
        lines = ["matpi simulator", HELP, ""]
        if snapshot is not None:
            lines.append(describe(snapshot))
        mat = self._mat
        faults = ", ".join(sorted(mat.faults)) or "none"
        lines.append(
            f"mat: heater {'ON' if mat.heating else 'off'}  motor {mat.motor_duty * 100:3.0f} %  "
            f"LED {mat.led}  person {'lying' if mat.person_lying else 'away'}  "
            f"injected: {faults}"
        )
        links = self._links()
        if links:
            lines.append(links)
        lines += ["", *log]
        sys.stdout.write("\x1b[H\x1b[J" + "\n".join(lines) + "\n")
        sys.stdout.flush()
