"""Shared test helpers: a session machine driven by a hand-advanced clock."""

import os
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from hypothesis import settings

from matpi.events import Event, Notice, Reading, Tick
from matpi.rules import Rules
from matpi.session import SessionMachine

settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=1000, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")

DAY = date(2026, 3, 2)


@dataclass
class Mat:
    """A SessionMachine, its time and calendar day, and what it said."""

    rules: Rules = field(default_factory=Rules)
    now: float = 1000.0
    today: date = DAY
    notices: list[Notice] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.machine = SessionMachine(self.rules, self.now, self.today)

    def send(self, event: Event) -> list[Notice]:
        said = self.machine.step(event, self.now, self.today)
        self.notices += said
        return said

    def read(self, value_c: float | None, sensor: str = "mat", error: str | None = None) -> None:
        self.send(Reading(sensor, value_c, error))

    def run_for(self, seconds: float, *, temp_c: float | None = 30.0, every_s: float = 1.0) -> None:
        """Let time pass, with a reading every `every_s` (none when temp_c is None)."""
        end = self.now + seconds
        while self.now + every_s <= end + 1e-9:
            self.now += every_s
            if temp_c is None:
                self.send(Tick())
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
