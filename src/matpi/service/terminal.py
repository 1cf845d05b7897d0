"""The simulator in a terminal: keys act on the mat, a status block redraws live.

Apart from matpi.service.console, which every daemon uses: only a simulation run in a
terminal needs termios and its keys.
"""

import os
import select
import sys
import termios
import threading
import tty
from collections.abc import Callable

from matpi.core.events import DoublePress, LongPress, Notice, Press, Snapshot
from matpi.drivers.base import Post
from matpi.drivers.sim import SimFault, SimulatedMat
from matpi.service.console import describe, describe_notice

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
