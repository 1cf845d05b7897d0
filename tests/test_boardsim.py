"""`--board-sim`: the mat runs through the real firmware, in-process behind a pty.

Every wait is bounded: a subprocess's output is read with select against a
deadline, threads are joined with a timeout.
"""

import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

from conftest import wait_for
from matpi.core.events import Event, Press, State
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.drivers.boardsim import simulated_board
from matpi.drivers.clock import Clock
from matpi.drivers.sim import SimulatedMat
from matpi.service.controller import Controller


class LineReader:
    """A subprocess's output line by line, never waiting past a deadline.

    It reads the pipe's file descriptor itself (select, then os.read), so a
    process that goes silent fails the test instead of hanging it.
    """

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self._fd = stream.fileno()
        self._pending = b""
        self.lines: list[str] = []

    def until(self, wanted: Callable[[str], bool], timeout_s: float) -> str:
        """The next line `wanted` accepts; the lines before it are kept in `lines`."""
        deadline = time.monotonic() + timeout_s
        while True:
            while b"\n" in self._pending:
                raw, self._pending = self._pending.split(b"\n", 1)
                self.lines.append(raw.decode())
                if wanted(self.lines[-1]):
                    return self.lines[-1]
            left_s = deadline - time.monotonic()
            assert left_s > 0, f"no such line within {timeout_s} s; last: {self.lines[-5:]}"
            ready, _, _ = select.select([self._fd], [], [], left_s)
            if ready:
                chunk = os.read(self._fd, 4096)
                assert chunk, f"output ended before such a line; last: {self.lines[-5:]}"
                self._pending += chunk

    def text(self) -> str:
        """Everything read so far, a partial last line included."""
        return "".join(line + "\n" for line in self.lines) + self._pending.decode()


def test_a_session_heats_the_pad_through_the_board_firmware() -> None:
    clock = Clock()
    pad = SimulatedMat(clock)
    inbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
    drivers = simulated_board(pad, inbox.put, sensor="mat")
    machine = SessionMachine(Rules(), clock.now(), clock.today())
    controller = Controller(machine, drivers, clock, inbox=inbox)
    thread = threading.Thread(target=controller.run)
    thread.start()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            controller.post(drivers.thermometers[0].read())  # the board's NTC
            controller.post(pad.sense("mat2"))  # the second sensor, on the Pi
            stop.wait(0.25)

    poller = threading.Thread(target=poll)
    try:
        # The firmware's first telemetry can be slow on a busy machine: three readings
        # without it would (rightly) latch a sensor fault, so sampling starts once it is there.
        wait_for(lambda: drivers.thermometers[0].read().value_c is not None)
        poller.start()
        wait_for(lambda: machine.snapshot(clock.now()).temperature_c is not None)
        start_c = pad.surface_c()
        controller.post(Press())
        wait_for(lambda: machine.state is not State.IDLE)
        assert machine.state is State.RUNNING, machine.fault
        wait_for(lambda: pad.heater_demand)  # the firmware's SSR output drives the pad
        wait_for(lambda: pad.surface_c() > start_c + 0.1)
        assert machine.fault is None
        controller.request_stop()
        thread.join(timeout=10)
        wait_for(lambda: not pad.heater_demand)  # the controller's last word: off
    finally:
        stop.set()
        if poller.ident is not None:
            poller.join(timeout=5)
        controller.request_stop()
        thread.join(timeout=10)
        drivers.close()
    assert not poller.is_alive() and not thread.is_alive()


def test_run_simulate_board_sim_starts_and_stops_cleanly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "matpi", "run", "--simulate", "--board-sim", "--start", "neck"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    reader = LineReader(process.stdout)
    try:
        assert "through the simulated mat board" in reader.until(lambda line: True, 30)
        reader.until(lambda line: "] running" in line, 30)
        time.sleep(3.0)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "FAULT" not in reader.text() + out
