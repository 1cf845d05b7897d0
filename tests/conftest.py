"""Shared test helpers: a session machine driven by a hand-advanced clock."""

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
from gpiozero.pins.mock import MockFactory
from hypothesis import settings

from broker import Broker
from matpi.core.events import ButtonGesture, Event, Notice, Reading, Tick
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.drivers.clock import Clock
from matpi.drivers.sim import SimulatedMat

if TYPE_CHECKING:
    from test_board import ScriptedBoard
    from test_web import Served

settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=1000, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")

DAY = date(2026, 3, 2)

T = TypeVar("T")
WAIT_S = 10.0
"""The longest `wait_for` waits by default: a missing behaviour fails a test, never hangs it."""


def wait_for(condition: Callable[[], T], timeout_s: float = WAIT_S, what: str = "") -> T:
    """Polls `condition` until it is truthy and returns its value; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not met within {timeout_s} s: {what or condition}"
        time.sleep(0.005)
    return value


class HandClock(Clock):
    """A Clock whose time moves only when the test says so."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start
        super().__init__(monotonic=lambda: self.t, wall=lambda: 1_700_000_000.0 + self.t)


SIMULATED = -1.0
"""`run_for(temp_c=SIMULATED)`: readings come from a simulated pad the heater warms."""


@dataclass
class Mat:
    """A SessionMachine, its time and calendar day, what it said, and a simulated pad."""

    rules: Rules = field(default_factory=Rules)
    now: float = 1000.0
    today: date = DAY
    notices: list[Notice] = field(default_factory=list)
    pad_c: float = 30.0
    """Where the simulated pad starts: the fixture's first reading."""

    def __post_init__(self) -> None:
        self.machine = SessionMachine(self.rules, self.now, self.today)
        self.clock = HandClock(self.now)
        self.pad = SimulatedMat(self.clock, start_c=self.pad_c)

    def send(self, event: Event) -> list[Notice]:
        """Step the machine; returns what it said beyond echoing a button gesture."""
        said = self.machine.step(event, self.now, self.today)
        self.notices += said
        self.clock.t = self.now
        self.pad.set_heater(self.machine.outputs(self.now).heater)
        return [n for n in said if not isinstance(n, ButtonGesture)]

    def read(
        self, value_c: float | None, sensor: str | None = None, error: str | None = None
    ) -> None:
        """One reading of `sensor`, or of every sensor (all the same) when None."""
        for name in self.rules.sensors if sensor is None else (sensor,):
            self.send(Reading(name, value_c, error))

    def run_for(
        self, seconds: float, *, temp_c: float | None = SIMULATED, every_s: float = 1.0
    ) -> None:
        """Let time pass with a reading every `every_s`: of the simulated pad, of `temp_c`,
        or none at all when temp_c is None."""
        end = self.now + seconds
        while self.now + every_s <= end + 1e-9:
            self.now += every_s
            self.clock.t = self.now
            if temp_c is None:
                self.send(Tick())
            elif temp_c == SIMULATED:
                for name in self.rules.sensors:
                    self.send(self.pad.sense(name))
            else:
                self.read(temp_c)
        self.now = end
        self.send(Tick())

    def next_day(self) -> None:
        self.today += timedelta(days=1)

    @property
    def heater(self) -> bool:
        return self.machine.outputs(self.now).heater


@pytest.fixture
def mat() -> Mat:
    m = Mat()
    m.read(30.0)
    return m


def read_all(
    machine: SessionMachine, value_c: float | None, now: float, today: date
) -> list[Notice]:
    """The same reading from every sensor of `machine`, as a working mat sends them."""
    notices: list[Notice] = []
    for name in machine.rules.sensors:
        notices += machine.step(Reading(name, value_c), now, today)
    return notices


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A mosquitto of this test's own, on a free loopback port (tests/broker.py)."""
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """Plain mock pins: on release they keep their last level, so histories end at off."""
    mock = MockFactory()
    yield mock
    mock.close()


@pytest.fixture
def scripted() -> "Iterator[ScriptedBoard]":
    """A scripted mat board behind a pty (tests/test_board.py); imported here, when a test
    asks for it, so that other tests do not load the board's protocol."""
    from test_board import ScriptedBoard

    board = ScriptedBoard()
    yield board
    board.close()


@pytest.fixture
def locked(tmp_path: Path) -> "Iterator[Served]":
    """The mat's page served with a password, `correct horse` (tests/test_web.py); imported
    here, when a test asks for it, so that other tests do not load tornado."""
    from matpi.remote.web.security import PasswordFile
    from test_web import serving

    password_file = tmp_path / "web-password"
    PasswordFile(password_file).write("correct horse")
    with serving(tmp_path, password_file=str(password_file)) as served:
        yield served
