"""The controller thread with simulated drivers: boot off, run, fail safe, stop off."""

import threading
import time
from collections.abc import Iterator
from datetime import date

import pytest

from conftest import wait_for
from matpi.core.events import Event, FaultRaised, Notice, Press, Reading, Snapshot, State
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.drivers.clock import Clock
from matpi.drivers.sim import SimulatedMat
from matpi.service.controller import Controller


class Running:
    """A controller on a simulated mat in its own thread."""

    def __init__(self, machine_type: type[SessionMachine] = SessionMachine) -> None:
        self.clock = Clock()
        self.mat = SimulatedMat(self.clock)
        self.drivers = self.mat.drivers()
        self.machine = machine_type(Rules(), self.clock.now(), self.clock.today())
        self.notices: list[Notice] = []
        self.snapshots: list[Snapshot] = []
        self.controller = Controller(self.machine, self.drivers, self.clock,
                                     [self._listen])
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run)

    def _listen(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        self.snapshots.append(snapshot)
        self.notices += notices

    def _run(self) -> None:
        try:
            self.controller.run()
        except BaseException as exc:
            self.error = exc

    def start(self) -> "Running":
        self.thread.start()
        return self

    def post(self, event: Event) -> None:
        self.controller.post(event)

    def read(self, value_c: float) -> None:
        """One reading from every sensor, as the poller posts them."""
        for name in self.machine.rules.sensors:
            self.post(Reading(name, value_c))

    def stop(self) -> None:
        self.controller.request_stop()
        self.thread.join(timeout=5.0)
        assert not self.thread.is_alive()


@pytest.fixture
def running() -> Iterator[Running]:
    r = Running()
    yield r
    if r.thread.is_alive():
        r.stop()


def test_outputs_are_off_at_boot(running: Running) -> None:
    running.mat.set_heater(True)
    running.mat.motor_duty = 0.8
    running.start()
    wait_for(lambda: bool(running.snapshots))
    assert not running.mat.heater_demand and running.mat.motor_duty == 0.0


def test_press_heats_and_stop_request_switches_everything_off(running: Running) -> None:
    running.start()
    running.read(25.0)
    running.post(Press())
    wait_for(lambda: running.mat.heater_demand and running.mat.motor_duty > 0)
    running.stop()
    assert not running.mat.heater_demand and running.mat.motor_duty == 0.0


def test_a_failing_output_latches_a_fault_with_heat_off(running: Running) -> None:
    def broken() -> None:
        raise OSError("relay board not answering")

    running.drivers.motor.set_duty = lambda duty: broken()  # type: ignore[method-assign]
    running.start()
    running.read(25.0)
    running.post(Press())
    wait_for(lambda: running.machine.state is State.FAULT)
    assert any(isinstance(n, FaultRaised) and "relay board not answering" in n.reason
               for n in running.notices)
    assert not running.mat.heater_demand
    assert running.thread.is_alive()


def test_an_exception_in_the_core_switches_off_and_propagates() -> None:
    class Exploding(SessionMachine):
        def step(self, event: Event, now: float, today: date) -> list[Notice]:
            if isinstance(event, Press):
                raise RuntimeError("bug")
            return super().step(event, now, today)

    running = Running(Exploding).start()
    running.read(25.0)
    running.read(25.0)
    wait_for(lambda: bool(running.snapshots))
    running.mat.set_heater(True)  # as if it had been heating
    running.post(Press())
    running.thread.join(timeout=5.0)
    assert isinstance(running.error, RuntimeError)
    assert not running.mat.heater_demand


def test_a_failing_listener_does_not_stop_the_mat(running: Running) -> None:
    def bad(snapshot: Snapshot, notices: list[Notice]) -> None:
        raise ValueError("listener bug")

    running.controller.add_listener(bad)
    running.start()
    running.read(25.0)
    running.post(Press())
    wait_for(lambda: running.mat.heater_demand)


def test_idle_loop_sleeps_until_its_deadline(running: Running) -> None:
    steps: list[float] = []
    original = running.machine.step

    def counting(event: Event, now: float, today: date) -> list[Notice]:
        steps.append(now)
        return original(event, now, today)

    running.machine.step = counting  # type: ignore[method-assign]
    running.start()
    running.read(25.0)
    time.sleep(1.0)
    assert len(steps) <= 3  # boot tick and the reading; no polling


def test_a_wedged_loop_loses_its_heat_to_the_dead_man() -> None:
    """The controller stops stepping; the driver layer switches the heater off by itself."""
    from matpi.drivers.deadman import RefreshedHeater

    running = Running()
    expired = threading.Event()
    running.drivers.heater = RefreshedHeater(running.drivers.heater, max_on_s=0.5,
                                             on_expired=expired.set)
    running.controller = Controller(running.machine, running.drivers, running.clock,
                                    [running._listen])
    wedge = threading.Event()
    original = running.machine.step

    def step(event: Event, now: float, today: date) -> list[Notice]:
        if isinstance(event, Reading) and event.value_c == 26.0:
            wedge.wait(timeout=10.0)  # the loop hangs here
        return original(event, now, today)

    running.machine.step = step  # type: ignore[method-assign]
    running.start()
    running.read(25.0)
    running.post(Press())
    wait_for(lambda: running.mat.heater_demand)
    running.read(26.0)
    assert expired.wait(timeout=5.0)
    assert not running.mat.heater_demand
    wedge.set()
    running.stop()


def test_alive_rides_on_an_event_within_its_slack_and_is_on_time_without_one() -> None:
    """An idle mat wakes every second for a reading: the watchdog's ping goes with it and
    does not wake the loop on its own, yet never comes later than every plus slack."""
    every_s, slack_s = 0.3, 1.5
    beats: list[float] = []
    running = Running()
    running.controller = Controller(running.machine, running.drivers, running.clock,
                                    [running._listen], alive=lambda: beats.append(time.monotonic()),
                                    alive_every_s=every_s, alive_slack_s=slack_s)
    running.start()
    try:
        wait_for(lambda: len(beats) >= 1)  # the first, at start
        time.sleep(2 * every_s)
        posted_at = time.monotonic()
        running.read(25.0)  # due since every_s, within the slack
        wait_for(lambda: len(beats) >= 2)
        wait_for(lambda: len(beats) >= 3, timeout_s=every_s + slack_s + 5.0)  # no event
    finally:
        running.stop()
    assert posted_at <= beats[1] < beats[0] + every_s + slack_s  # with the reading
    assert every_s <= beats[2] - beats[1] < every_s + slack_s + 1.0  # then due, and on time


def test_alive_is_told_from_the_loop_and_stops_when_it_wedges() -> None:
    beats: list[float] = []
    running = Running()
    running.controller = Controller(running.machine, running.drivers, running.clock,
                                    [running._listen], alive=lambda: beats.append(time.monotonic()),
                                    alive_every_s=0.1)
    wedge = threading.Event()
    original = running.machine.step

    def step(event: Event, now: float, today: date) -> list[Notice]:
        if isinstance(event, Press):
            wedge.wait(timeout=10.0)
        return original(event, now, today)

    running.machine.step = step  # type: ignore[method-assign]
    running.start()
    wait_for(lambda: len(beats) >= 5)
    running.post(Press())
    time.sleep(0.3)
    count = len(beats)
    time.sleep(0.5)
    assert len(beats) == count  # wedged: no more heartbeats
    wedge.set()
    wait_for(lambda: len(beats) > count)
    running.stop()
