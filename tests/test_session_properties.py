"""Invariants of the session machine over random event sequences (Hypothesis).

Each rule is something that can happen to a mat; after every step the
invariants of the one rule must hold: heat only when every guard says yes,
no session beyond its limit, no start when not allowed, faults stay latched.
"""

from datetime import date, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from matpi.core import limits
from matpi.core.events import (
    Adjust,
    Adjusted,
    ClockStepped,
    DoublePress,
    DriverFault,
    EndReason,
    LongPress,
    Notice,
    PreheatEnded,
    PreheatStarted,
    Press,
    Reading,
    Readings,
    SessionStarted,
    Source,
    Start,
    State,
    Stop,
    Tick,
)
from matpi.core.programs import HeatLevel
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine

PROGRAMS = ["beginner", "neck", "back", "evening", "deep"]
SENSORS = Rules().sensors
"""Heat needs every one of them fresh: a model that read only one would never see heat."""


class MatModel(RuleBasedStateMachine):
    """Drives a SessionMachine and keeps, beside it, what the world has seen."""

    @initialize(
        cooldown_min=st.floats(5.0, 20.0),
        daily_max_min=st.floats(10.0, 120.0),
        ssr=st.booleans(),
    )
    def build(self, cooldown_min: float, daily_max_min: float, ssr: bool) -> None:
        self.rules = Rules(
            cooldown_min=cooldown_min, daily_max_min=daily_max_min,
            heater_kind="ssr" if ssr else "relay", min_on_s=10.0, min_off_s=10.0,
        )
        self.now = 0.0
        self.today = date(2026, 5, 1)
        self.machine = SessionMachine(self.rules, self.now, self.today)
        self.last_valid: dict[str, float] = {}
        self.last_raw: dict[str, float | None] = {}
        self.started_at: float | None = None
        self.planned_s = 0.0
        self.fault_raised = False
        self.cleared_by_long_press = False
        self.used_today = 0.0
        self.state_before = State.IDLE
        self.notices: list[Notice] = []
        self.preheat_started_at: float | None = None
        self.unconfirmed: list[float] = []

    def _read(self, readings: list[Reading], *, together: bool) -> None:
        """The sensors' readings, as one `Readings` event or one step each, at `now`."""
        for reading in readings:
            self.last_raw[reading.sensor] = value = reading.value_c
            if value is not None and limits.SENSOR_MIN_C <= value <= limits.SENSOR_MAX_C:
                self.last_valid[reading.sensor] = self.now
        if together:
            self._send(Readings(tuple(readings)))
        else:
            for reading in readings:
                self._send(reading)

    def _send(self, event: object) -> list[Notice]:
        self.state_before = self.machine.state
        was_fault = self.machine.state is State.FAULT
        said = self.machine.step(event, self.now, self.today)  # type: ignore[arg-type]
        self.notices = said
        if was_fault and self.machine.state is not State.FAULT:
            assert isinstance(event, LongPress), f"fault left on {event!r}"
        for notice in said:
            if isinstance(notice, PreheatStarted):
                self.preheat_started_at = self.now
                self.unconfirmed.append(self.now)
            if isinstance(notice, PreheatEnded) and notice.reason is EndReason.CONFIRMED:
                self.unconfirmed.remove(self.unconfirmed[-1])
            if isinstance(notice, SessionStarted):
                self.started_at = self.now
                self.planned_s = notice.planned_min * 60.0
                assert self.state_before in (State.IDLE, State.PREHEAT), self.state_before
            if isinstance(notice, Adjusted) and self.machine.state is State.RUNNING:
                self.planned_s = notice.planned_min * 60.0
        if self.machine.state is not State.RUNNING:
            self.started_at = None
        return said

    # --- what can happen ------------------------------------------------------

    @rule(dt=st.floats(0.01, 30.0))
    def time_passes_silently(self, dt: float) -> None:
        self.now += dt
        self._send(Tick())

    @rule(dt=st.floats(1.0, 1500.0), temp_c=st.floats(20.0, 44.0), together=st.booleans())
    def time_passes_with_readings(self, dt: float, temp_c: float, together: bool) -> None:
        """Minutes go by with working sensors, sampled every 9 s (under the fault limit)."""
        end = self.now + dt
        while self.now < end:
            self.now = min(self.now + 9.0, end)
            self._read([Reading(name, temp_c) for name in SENSORS], together=together)
            self.no_session_outlives_its_limit()
            self.heat_only_when_every_guard_says_yes()

    @rule()
    def midnight(self) -> None:
        self.today += timedelta(days=1)
        self._send(Tick())

    @rule(days=st.integers(-3, 3))
    def clock_stepped(self, days: int) -> None:
        """NTP or a person sets the wall clock: the use counted so far is never freed."""
        used = self.machine.snapshot(self.now).today_min
        dose = self.machine.usage.dose_today
        self.today += timedelta(days=days)
        self._send(ClockStepped())
        assert self.machine.snapshot(self.now).today_min >= used - 0.05
        assert self.machine.usage.dose_today >= dose

    @rule(value=st.one_of(st.floats(15.0, 50.0), st.sampled_from([None, 2.0, 85.0, 44.9, 45.0])),
          sensors=st.sampled_from([SENSORS[:1], SENSORS[1:], SENSORS]), together=st.booleans())
    def reading(self, value: float | None, sensors: tuple[str, ...], together: bool) -> None:
        """One sensor's reading, or every sensor's of the same value."""
        self.now += 0.5
        error = None if value is not None else "no response"
        self._read([Reading(name, value, error) for name in sensors], together=together)

    @rule(event=st.sampled_from([Press(), LongPress(), DoublePress()]))
    def button(self, event: object) -> None:
        self._send(event)

    @rule(program=st.one_of(st.none(), st.sampled_from(PROGRAMS)),
          duration=st.one_of(st.none(), st.floats(0.0, 60.0)),
          source=st.sampled_from(Source))
    def start(self, program: str | None, duration: float | None, source: Source) -> None:
        state = self.machine.state
        self._send(Start(source, program, duration))
        if state in (State.COOLDOWN, State.FAULT, State.RUNNING):
            assert self.machine.state is state, "a start changed a busy machine"

    @rule(heat=st.one_of(st.none(), st.sampled_from(HeatLevel)),
          intensity=st.one_of(st.none(), st.floats(-10.0, 150.0)),
          duration=st.one_of(st.none(), st.floats(0.0, 60.0)))
    def adjust(self, heat: HeatLevel | None, intensity: float | None,
               duration: float | None) -> None:
        self._send(Adjust(Source.REMOTE, heat=heat, intensity_pct=intensity,
                          duration_min=duration))

    @rule(source=st.sampled_from(Source))
    def stop(self, source: Source) -> None:
        self._send(Stop(source))
        assert self.machine.state not in (State.RUNNING, State.PREHEAT)

    @rule()
    def driver_fault(self) -> None:
        self._send(DriverFault("injected"))
        assert self.machine.state is State.FAULT

    @precondition(lambda self: self.machine.state is State.FAULT)
    @rule()
    def remote_cannot_clear(self) -> None:
        for event in (Stop(Source.REMOTE), Start(Source.REMOTE)):
            self._send(event)
            assert self.machine.state is State.FAULT

    # --- what must always hold ------------------------------------------------

    @invariant()
    def heat_only_when_every_guard_says_yes(self) -> None:
        if not self.machine.outputs(self.now).heater:
            return
        assert self.machine.state in (State.PREHEAT, State.RUNNING)
        assert set(self.last_valid) == set(SENSORS)
        assert all(self.now - t < limits.STALE_HEAT_OFF_S for t in self.last_valid.values())
        for name in SENSORS:
            raw = self.last_raw[name]
            assert raw is not None and raw < self.rules.trip_c, (name, raw)
        snap = self.machine.snapshot(self.now)
        assert snap.temperature_c is not None and snap.temperature_c < self.rules.trip_c
        assert snap.setpoint_c is not None and snap.dose_cem43 < self.rules.dose_max_cem43
        session = self.machine._session  # the dose since the preheat was confirmed
        assert session is not None
        assert self.machine.usage.dose_today + session.dose.total < self.rules.daily_dose_max_cem43
        assert snap.temperature_c < snap.setpoint_c + limits.OVERSHOOT_CUT_C

    @invariant()
    def no_heat_without_a_press_at_the_mat(self) -> None:
        """Remote starts only preheat, each bounded in time and few in any hour."""
        if self.machine.state is State.PREHEAT:
            assert self.preheat_started_at is not None
            assert self.now - self.preheat_started_at < self.rules.preheat_max_min * 60 + 1e-6
        recent = [t for t in self.unconfirmed if self.now - t < 3600.0]
        assert len(recent) <= limits.MAX_PREHEATS_PER_HOUR

    @invariant()
    def no_session_outlives_its_limit(self) -> None:
        if self.machine.state is not State.RUNNING:
            return
        assert self.started_at is not None
        assert self.now - self.started_at < self.planned_s + 1.0  # planned_min has 0.01 steps
        assert self.now - self.started_at < limits.MAX_SESSION_MIN * 60

    @invariant()
    def daily_cap_holds(self) -> None:
        # today_min is shown to 0.1 min
        assert self.machine.snapshot(self.now).today_min <= self.rules.daily_max_min + 0.05

    @invariant()
    def outputs_rest_outside_a_session(self) -> None:
        out = self.machine.outputs(self.now)
        if self.machine.state not in (State.PREHEAT, State.RUNNING):
            assert not out.heater and out.vibration == 0.0

    @invariant()
    def cooldown_means_waiting(self) -> None:
        if self.machine.state is State.COOLDOWN:
            assert self.machine.cooldown_until > self.now


def test_the_model_heats_so_that_its_heat_invariant_is_put_to_the_test() -> None:
    """The invariant returns at once while the heater is off: with one sensor of two read,
    as this model once did, it never saw heat and could not fail."""
    model = MatModel()
    model.build(cooldown_min=5.0, daily_max_min=60.0, ssr=False)
    model.time_passes_with_readings(dt=1.0, temp_c=25.0, together=True)
    model.button(Press())
    model.time_passes_with_readings(dt=1.0, temp_c=25.0, together=False)
    assert model.machine.outputs(model.now).heater
    model.heat_only_when_every_guard_says_yes()
    model.last_raw["mat2"] = model.rules.trip_c  # as if the core had missed the trip
    with pytest.raises(AssertionError):
        model.heat_only_when_every_guard_says_yes()


# The loaded profile decides the count: 1,000 examples in CI (see conftest.py).
MatModel.TestCase.settings = settings(settings.default, stateful_step_count=60)
TestMatInvariants = MatModel.TestCase


def test_a_fresh_machine_runs_nothing() -> None:
    """A restart is a freshly built machine: nothing resumes by itself."""
    for fault in (None, "over-temperature"):
        machine = SessionMachine(Rules(), 123.0, date(2026, 1, 1), cooldown_until=400.0,
                                 fault=fault)
        for t in (123.0, 130.0, 500.0):
            machine.step(Reading("mat", 30.0), t, date(2026, 1, 1))
            out = machine.outputs(t)
            assert not out.heater and out.vibration == 0.0
            assert machine.state in (State.IDLE, State.COOLDOWN, State.FAULT)
