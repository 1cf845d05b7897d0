"""`--board-sim`: the mat runs through the real firmware, in-process behind a pty."""

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from matpi.boardsim import simulated_board
from matpi.clock import Clock
from matpi.controller import Controller
from matpi.drivers.sim import SimulatedMat
from matpi.events import Event, Press, State
from matpi.rules import Rules
from matpi.session import SessionMachine


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


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
            controller.post(drivers.thermometers[0].read())
            stop.wait(0.25)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        wait_for(lambda: machine.snapshot(clock.now()).temperature_c is not None)
        start_c = pad.surface_c()
        controller.post(Press())
        wait_for(lambda: machine.state is State.RUNNING)
        wait_for(lambda: pad.heater_demand)  # the firmware's SSR output drives the pad
        wait_for(lambda: pad.surface_c() > start_c + 0.1)
        assert machine.fault is None
        controller.request_stop()
        thread.join(timeout=10)
        wait_for(lambda: not pad.heater_demand)  # the controller's last word: off
    finally:
        stop.set()
        poller.join()
        controller.request_stop()
        drivers.close()


def test_run_simulate_board_sim_starts_and_stops_cleanly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "matpi", "run", "--simulate", "--board-sim", "--start", "neck"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    try:
        assert "through the simulated mat board" in process.stdout.readline()
        for line in process.stdout:
            if "] running" in line:
                break
        time.sleep(3.0)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "FAULT" not in out
