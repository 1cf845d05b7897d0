"""`--board-sim`: the mat board's real firmware, run in-process behind a pty.

The firmware loop (firmware/runner.py and all under it, unchanged) runs in a
thread on simulated pins, its NTC reading the simulated pad; matpi talks to it
over the pty with the same BoardLink that drives a real Pico. It needs the
source checkout: firmware/ is not part of the installed package.
"""

import importlib
import sys
from pathlib import Path
from typing import Any

import matpi
from matpi.core.errors import DriverError
from matpi.drivers.base import MatDrivers, Post
from matpi.drivers.hardware import build_board_link_mat
from matpi.drivers.sim import SimIndicator, SimulatedMat

FIRMWARE_DIR = Path(matpi.__file__).resolve().parents[2] / "firmware"


class _PadForFirmware:
    """The simulated pad as the firmware's thermal model sees it."""

    def __init__(self, pad: SimulatedMat) -> None:
        self._pad = pad

    @property
    def temp_c(self) -> float:
        return self._pad.surface_c()

    def advance(self, heater_on: bool, dt_s: float) -> None:
        self._pad.set_heater(heater_on)  # the pad keeps its own time


def simulated_board(pad: SimulatedMat, post: Post, *, sensor: str) -> MatDrivers:
    """Start the firmware on `pad` and connect to it as to a real board."""
    if not (FIRMWARE_DIR / "sim" / "boardsim.py").is_file():
        raise DriverError(f"--board-sim needs the source checkout: no firmware in {FIRMWARE_DIR}")
    if str(FIRMWARE_DIR) not in sys.path:
        sys.path.insert(0, str(FIRMWARE_DIR))
    boardsim: Any = importlib.import_module("sim.boardsim")
    board = boardsim.SimulatedBoard(model=_PadForFirmware(pad)).start()
    try:
        drivers = build_board_link_mat(board.port, 115200, post, sensor=sensor,
                                       indicator=SimIndicator(pad))
    except Exception:
        board.stop()
        raise
    drivers.closers.insert(0, board.stop)  # closers run last-first: the link, then the board
    return drivers
