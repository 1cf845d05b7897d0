"""Each safety ceiling and each piece of guard wiring has a test that fails without it.

`scripts/mutate.py` raises or removes every guard in a copy of the repo and
runs the tests its table names; the ones here cover what no other test did.

The ceilings are written out as numbers (docs/SAFETY.md), never read from
`matpi.core.limits` or `matpi.core.rules`: a test that read them would move with a
raised ceiling and prove nothing.
"""

import math
import queue
import re
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from conftest import HandClock, Mat, wait_for
from matpi.config.settings import Config
from matpi.core.errors import DriverError, HistoryError
from matpi.core.events import (
    DriverFault,
    EndReason,
    Event,
    FaultCleared,
    FaultRaised,
    HeatStopped,
    LongPress,
    Notice,
    PreheatEnded,
    Press,
    Reading,
    Readings,
    Refused,
    Snapshot,
    Source,
    Start,
    State,
)
from matpi.core.padmodel import PadModel
from matpi.core.patterns import Pattern
from matpi.core.programs import HeatLevel, Program
from matpi.core.rules import BOUNDS, PAD_BOUNDS, CeilingError, Rules
from matpi.core.session import SessionMachine
from matpi.drivers.base import MatDrivers
from matpi.drivers.clock import Clock
from matpi.drivers.polling import ThermometerPoller
from matpi.drivers.sim import SimulatedMat
from matpi.service.app import Mat as Assembled
from matpi.service.app import assemble
from matpi.service.controller import Controller
from matpi.store.history import HISTORY_FILENAME, WRITE_FAILED_FAULT, History, SessionRow
from test_faults import STEP_S, Rig

WAIT_S = 5.0
"""Longest any wait here lasts: a missing guard fails a test, it never hangs it."""

DOCUMENTED: dict[str, tuple[float, float]] = {
    "session_max_min": (1.0, 30.0),
    "trip_c": (38.0, 45.0),
    "dose_max_cem43": (0.1, 9.0),
    "daily_dose_max_cem43": (0.1, 9.0),
    "cooldown_min": (5.0, 240.0),
    "daily_max_min": (0.0, 120.0),
    "preheat_max_min": (1.0, 10.0),
    "reset_below_c": (20.0, 35.0),
    "hysteresis_c": (0.1, 3.0),
    "min_on_s": (1.0, 300.0),
    "min_off_s": (1.0, 300.0),
    "ssr_window_s": (2.0, 30.0),
    "ssr_band_c": (0.5, 5.0),
    "check_gain_c": (0.5, 5.0),
    "check_window_s": (10.0, 120.0),
    "check_band_c": (0.0, 2.0),
    "check_max_error_cs": (10.0, 300.0),
    "runaway_settle_s": (0.0, 120.0),
    "runaway_window_s": (10.0, 300.0),
    "runaway_rise_c": (0.3, 2.0),
    "vacated_grace_s": (5.0, 300.0),
}
"""The range of every setting of `Rules`: 30 min a session, trip at 45 °C, 9 CEM43 a
session and a day, 120 min a day, 10 min of preheat, reset below 35 °C, 120 s and
300 °C·s for the not-heating check, 2 °C for the runaway check, 300 s for a session
to wait for its person."""

PAD_DOCUMENTED: dict[str, tuple[float, float]] = {
    "heater_w": (5.0, 1000.0),
    "capacity_j_per_k": (50.0, 100000.0),
    "room_loss_w_per_k": (0.1, 100.0),
    "body_w_per_k": (0.0, 100.0),
    "room_c": (5.0, 35.0),
    "body_c": (30.0, 37.0),
}

OUTSIDE = 0.01
"""How far past a bound the refused value lies: a bound raised by any step is caught."""

NON_FINITE = (math.nan, math.inf, -math.inf)


def _readings(machine: SessionMachine, value_c: float) -> list[Reading]:
    """One reading from every sensor the machine watches: heat needs them all fresh."""
    return [Reading(name, value_c) for name in machine.rules.sensors]


def _rules_with(name: str, value: float) -> Rules:
    """Rules with one setting (`pad …` for the pad model) at `value`.

    The relay's own 10 s minimum would also refuse a small min_on_s or min_off_s:
    an SSR leaves the bound alone in charge.
    """
    if name.startswith("pad "):
        return Rules(pad=PadModel(**{name.removeprefix("pad "): value}))
    kind = "ssr" if name in ("min_on_s", "min_off_s") else "relay"
    return Rules(heater_kind=kind, **{name: value})  # type: ignore[arg-type]


def _every_bound() -> list[tuple[str, float, float]]:
    """(setting, documented low, documented high) of every setting."""
    return [(prefix + name, low, high)
            for names, prefix in ((DOCUMENTED, ""), (PAD_DOCUMENTED, "pad "))
            for name, (low, high) in names.items()]


def _assert_refused(name: str, value: float, low: float, high: float) -> None:
    expected = rf"^{re.escape(name)} = \S+ must be {low:g} to {high:g} \(matpi bounds\)$"
    with pytest.raises(CeilingError, match=expected):
        _rules_with(name, value)


# --- the ceilings and bounds of Rules --------------------------------------------------


def test_every_bound_has_its_documented_number_here() -> None:
    """A new bound must be pinned here too, or nothing fails when it is raised."""
    assert set(BOUNDS) == set(DOCUMENTED)
    assert set(PAD_BOUNDS) == set(PAD_DOCUMENTED)


@pytest.mark.parametrize(("name", "low", "high"), _every_bound())
def test_a_value_above_a_ceiling_is_refused(name: str, low: float, high: float) -> None:
    _assert_refused(name, high + OUTSIDE, low, high)


@pytest.mark.parametrize(("name", "low", "high"), _every_bound())
def test_a_value_below_a_floor_is_refused(name: str, low: float, high: float) -> None:
    _assert_refused(name, low - OUTSIDE, low, high)


@pytest.mark.parametrize("value", NON_FINITE, ids=repr)
@pytest.mark.parametrize("name", [*DOCUMENTED, *(f"pad {n}" for n in PAD_DOCUMENTED)])
def test_a_value_that_is_not_finite_is_refused(name: str, value: float) -> None:
    expected = rf"^{re.escape(name)} = {re.escape(repr(value))} must be a finite number$"
    with pytest.raises(CeilingError, match=expected):
        _rules_with(name, value)


def _levels(low: float, medium: float, high: float) -> dict[HeatLevel, float]:
    return {HeatLevel.LOW: low, HeatLevel.MEDIUM: medium, HeatLevel.HIGH: high}


def test_setpoints_stay_between_25_and_42_and_a_degree_under_the_trip() -> None:
    with pytest.raises(CeilingError, match=r"^setpoint high = 42.01 must be 25 to 42 "):
        Rules(setpoints_c=_levels(37.0, 39.0, 42.01))
    with pytest.raises(CeilingError, match=r"^setpoint low = 24.99 must be 25 to 42 "):
        Rules(setpoints_c=_levels(24.99, 39.0, 41.0))
    with pytest.raises(CeilingError, match=r"^setpoint high = 41 must be 25 to 40.5 "):
        Rules(trip_c=41.5)


def _program(duration_min: float, **progression: float) -> dict[str, Program]:
    grows = bool(progression)
    return {"p": Program("p", duration_min, HeatLevel.LOW, Pattern.STEADY, 30.0,
                         progression=grows, **progression)}


def test_a_program_longer_than_the_session_ceiling_is_refused() -> None:
    with pytest.raises(CeilingError, match=r"^program p duration_min = 30.01 must be 1 to 30 "):
        Rules(programs=_program(30.01), default_program="p")
    with pytest.raises(CeilingError, match=r"^program p duration_min = 20 must be 1 to 15 "):
        Rules(session_max_min=15.0, programs=_program(20.0), default_program="p")
    with pytest.raises(CeilingError, match=r"^program p max_duration_min = 30.01 must be 5 to 30"):
        Rules(programs=_program(5.0, step_min=1.0, max_duration_min=30.01), default_program="p")


def test_a_relay_is_held_at_least_10_s() -> None:
    with pytest.raises(CeilingError, match=r"^min_on_s = 9.9 must be at least 10 for a relay"):
        Rules(min_on_s=9.9)
    with pytest.raises(CeilingError, match=r"^min_off_s = 9.9 must be at least 10 for a relay"):
        Rules(min_off_s=9.9)


def test_a_relay_held_on_long_enough_to_overshoot_1_degree_is_refused() -> None:
    Rules(min_on_s=36.0)  # 0.9 °C over the 37 °C setpoint on the pad model
    with pytest.raises(CeilingError, match=r"overshoots the 37 °C setpoint by 1.1 °C .*"
                                           r"\(at most 1 °C allowed\)"):
        Rules(min_on_s=40.0)


# --- the wiring of the running mat -----------------------------------------------------


class _Thread:
    """A controller loop in a thread that is always stopped and joined."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.thread = threading.Thread(target=controller.run, name="test-controller")

    def __enter__(self) -> "_Thread":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.request_stop("test over")
        self.thread.join(timeout=WAIT_S)
        assert not self.thread.is_alive(), "controller did not stop"


def test_the_assembled_heater_switches_itself_off_unless_refreshed(tmp_path: Path) -> None:
    """The dead-man between the controller and the heater: off within 3 s, latched,
    told to the core as a fault, and rearmed only by the reset at the mat."""
    mat = assemble(Config(), tmp_path, simulate=True)
    sim = mat.sim
    assert sim is not None
    machine = mat.controller.machine
    try:
        mat.drivers.heater.on()  # a demand nobody refreshes: the loop is stalled
        asked = time.monotonic()
        assert sim.heater_demand
        wait_for(lambda: not sim.heater_demand, timeout_s=3.0 + WAIT_S)
        assert time.monotonic() - asked >= 2.5  # 3 s, not at once
        with pytest.raises(DriverError, match="tripped"):
            mat.drivers.heater.on()
        assert not sim.heater_demand
        with _Thread(mat.controller):
            wait_for(lambda: machine.state is State.FAULT)
            assert "not refreshed" in (machine.fault or "")
            for reading in _readings(machine, 25.0):
                mat.controller.post(reading)
            mat.controller.post(LongPress())
            mat.controller.post(Press())
            wait_for(lambda: sim.heater_demand)
            assert machine.state is State.RUNNING
    finally:
        mat.close()


def test_a_simulated_mat_reads_its_sensors_on_the_controllers_thread_one_step_a_poll(
    tmp_path: Path,
) -> None:
    """No thread of its own to wake, and one step for both sensors: the sensors are read by
    the loop's timer, and a poll is one `Readings`, never one `Reading` per sensor."""
    mat = assemble(Config(), tmp_path, simulate=True)
    machine = mat.controller.machine
    stepped: list[tuple[Event, int]] = []
    step = machine.step

    def spy(event: Event, now: float, today: date) -> list[Notice]:
        stepped.append((event, threading.get_ident()))
        return step(event, now, today)

    machine.step = spy  # type: ignore[method-assign]
    read_on: set[int] = set()
    for thermometer in mat.drivers.thermometers:
        def read(read: Callable[[], Reading] = thermometer.read) -> Reading:
            read_on.add(threading.get_ident())
            return read()

        thermometer.read = read  # type: ignore[method-assign]
    try:
        with _Thread(mat.controller) as running:
            mat.start_edges()
            wait_for(lambda: sum(isinstance(e, Readings) for e, _ in stepped) >= 3)
            assert not [t for t in threading.enumerate() if t.name == "matpi-thermometers"]
            polls = [e for e, _ in stepped if isinstance(e, Readings)]
            assert all([r.sensor for r in e.readings] == list(machine.rules.sensors)
                       for e in polls)
            assert not [e for e, _ in stepped if isinstance(e, Reading)]
            assert read_on == {running.thread.ident}
            assert machine.snapshot(mat.clock.now()).temperature_c is not None
    finally:
        mat.close()


def _boot_drivers() -> tuple[SimulatedMat, MatDrivers]:
    """A simulated mat whose heater, motor and power relay were left on before boot."""
    sim = SimulatedMat(HandClock())
    drivers = sim.drivers()
    drivers.heater.on()
    drivers.motor.set_duty(0.8)
    assert drivers.power is not None
    drivers.power.on()
    return sim, drivers


def _outputs(sim: SimulatedMat) -> tuple[bool, float, bool]:
    return sim.heater_demand, sim.motor_duty, sim.power


def test_every_output_is_off_before_the_first_event() -> None:
    sim, drivers = _boot_drivers()
    clock = Clock()
    machine = SessionMachine(Rules(), clock.now(), clock.today())
    at_first_event: list[tuple[bool, float, bool]] = []
    step = machine.step

    def spy(event: Event, now: float, today: date) -> list[Notice]:
        at_first_event.append(_outputs(sim))
        return step(event, now, today)

    machine.step = spy  # type: ignore[method-assign]
    controller = Controller(machine, drivers, clock)
    controller.request_stop("stop at once")
    with _Thread(controller):
        pass
    assert at_first_event, "the loop never stepped"
    assert at_first_event[0] == (False, 0.0, False)


class _Recorder:
    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def __call__(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        self.notices += notices


def test_a_failing_heater_switches_every_output_off_and_latches_a_fault() -> None:
    """A relay that closed and then reported an error: all off before the core is told."""
    clock = Clock()
    sim = SimulatedMat(clock)
    drivers = sim.drivers()

    def half_done() -> None:
        sim.set_heater(True)
        raise OSError("relay board not answering")

    drivers.heater.on = half_done  # type: ignore[method-assign]
    machine = SessionMachine(Rules(), clock.now(), clock.today())
    when_told: list[tuple[bool, float, bool]] = []
    step = machine.step

    def spy(event: Event, now: float, today: date) -> list[Notice]:
        if isinstance(event, DriverFault):
            when_told.append(_outputs(sim))
        return step(event, now, today)

    machine.step = spy  # type: ignore[method-assign]
    controller = Controller(machine, drivers, clock)
    with _Thread(controller) as running:
        for reading in _readings(machine, 25.0):
            controller.post(reading)
        controller.post(Press())
        wait_for(lambda: machine.state is State.FAULT)
        assert "output failed: relay board not answering" in (machine.fault or "")
        assert when_told == [(False, 0.0, False)]
        assert _outputs(sim) == (False, 0.0, False)
        assert running.thread.is_alive()


def test_a_refused_board_reset_latches_the_fault_again() -> None:
    clock = Clock()
    sim = SimulatedMat(clock)
    drivers = sim.drivers()

    def refuse() -> None:
        raise DriverError("board still hot")

    drivers.reset = refuse
    machine = SessionMachine(Rules(), clock.now(), clock.today())
    told = _Recorder()
    controller = Controller(machine, drivers, clock, [told])
    with _Thread(controller):
        controller.post(DriverFault("board: over-temperature"))
        wait_for(lambda: machine.state is State.FAULT)
        for reading in _readings(machine, 25.0):
            controller.post(reading)
        controller.post(LongPress())
        wait_for(lambda: any(isinstance(n, FaultRaised) and "reset refused" in n.reason
                             for n in told.notices))
        assert any(isinstance(n, FaultCleared) for n in told.notices)
        assert machine.state is State.FAULT
        assert "reset refused: board still hot" in (machine.fault or "")
        assert not sim.heater_demand


class _BrokenThermometer:
    name = "mat"
    reads_at_once = False

    def read(self) -> Reading:
        raise OSError("1-wire bus gone")

    def close(self) -> None:
        pass


def test_a_thermometer_that_raises_is_reported_and_the_poller_goes_on() -> None:
    inbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
    poller = ThermometerPoller([_BrokenThermometer()], inbox.put, Clock(), 0.05)
    poller.start()
    try:
        first = inbox.get(timeout=WAIT_S)
        second = inbox.get(timeout=WAIT_S)  # the thread is still alive
    finally:
        poller.close()
    expected = Reading("mat", None, "driver error: 1-wire bus gone")
    assert first == expected and second == expected


def test_a_damaged_history_leaves_no_daily_allowance(tmp_path: Path) -> None:
    """Without its history the mat cannot know today's use: no session, even after a reset."""
    (tmp_path / HISTORY_FILENAME).write_bytes(b"garbage, not sqlite" * 200)
    mat = assemble(Config(), tmp_path, simulate=True)
    machine = mat.controller.machine
    try:
        now, today = mat.clock.now(), mat.clock.today()
        snapshot = machine.snapshot(now)
        assert snapshot.state is State.FAULT and snapshot.daily_remaining_min == 0.0
        for reading in _readings(machine, 25.0):
            machine.step(reading, now, today)
        for gesture in (LongPress(), Press()):
            said = machine.step(gesture, now, today)
            assert isinstance(said[-1], Refused) and machine.state is State.FAULT
        # Were the fault cleared, the rules it runs by would still start nothing.
        cleared = SessionMachine(machine.rules, now, today)
        for reading in _readings(cleared, 25.0):
            cleared.step(reading, now, today)
        said = cleared.step(Press(), now, today)
        assert isinstance(said[-1], Refused) and "daily limit of 0 min" in said[-1].reason
        assert cleared.state is State.IDLE and not cleared.outputs(now).heater
    finally:
        mat.close()


# --- session limits no other test reaches ----------------------------------------------


def test_the_preheat_dose_counts_towards_the_session_limit() -> None:
    """A confirmed preheat's dose is part of the session's: the heat stops at the limit
    of both together, not at a full limit more after the press."""
    rig = Rig(rules=Rules(dose_max_cem43=0.3))
    rig.run(2.0)
    rig.send(Start(Source.REMOTE, "deep"))
    rig.run(9 * 60)
    preheat_dose = rig.machine.snapshot(rig.now).dose_cem43
    assert preheat_dose > 0.05  # enough to tell the two limits apart
    rig.send(Press())
    assert rig.machine.state is State.RUNNING
    end = rig.now + 25 * 60
    while not any(isinstance(n, HeatStopped) for n in rig.notices):
        assert rig.now < end, "the heat never stopped"
        rig.run(STEP_S)
    assert rig.machine.snapshot(rig.now).dose_cem43 <= 0.3 + 0.005


def test_a_preheat_ends_where_the_day_runs_out() -> None:
    """27 of 30 min used: a remote start preheats 3 min, not its 10."""
    mat = Mat(rules=Rules(daily_max_min=30.0))
    mat.read(30.0)
    mat.machine.usage.minutes_today = 27.0
    mat.send(Start(Source.REMOTE))
    assert mat.machine.snapshot(mat.now).state is State.PREHEAT and mat.heater
    mat.run_for(5 * 60)
    ended = [n for n in mat.notices if isinstance(n, PreheatEnded)]
    assert [(n.reason, n.elapsed_s) for n in ended] == [(EndReason.DAILY_LIMIT, 180.0)]
    assert mat.machine.state is State.COOLDOWN and not mat.heater
    assert mat.machine.snapshot(mat.now).today_min == 30.0


def test_an_output_failure_reaches_the_core_even_when_switching_off_fails_too() -> None:
    """The fault must be latched (and so recorded) whatever the outputs do next."""
    clock = Clock()
    sim = SimulatedMat(clock)
    drivers = sim.drivers()

    gone = threading.Event()
    working_off = drivers.heater.off

    def broken_on() -> None:
        gone.set()
        raise OSError("relay board gone")

    def broken_off() -> None:  # fine at boot, gone with the board
        if gone.is_set():
            raise OSError("relay board gone")
        working_off()

    drivers.heater.on = broken_on  # type: ignore[method-assign]
    drivers.heater.off = broken_off  # type: ignore[method-assign]
    machine = SessionMachine(Rules(), clock.now(), clock.today())
    recorder = _Recorder()
    controller = Controller(machine, drivers, clock, listeners=[recorder])
    with _Thread(controller) as running:
        for reading in _readings(machine, 25.0):
            controller.post(reading)
        controller.post(Press())
        wait_for(lambda: machine.state is State.FAULT)
        wait_for(lambda: any(isinstance(n, FaultRaised) for n in recorder.notices))
        assert "output failed: relay board gone" in (machine.fault or "")
        assert running.thread.is_alive()
        gone.clear()  # the board is back: the controller's last all-off may succeed


def test_a_starting_mat_settles_what_it_restored_in_its_clocks_terms(tmp_path: Path) -> None:
    """Fourth review: a restore that is not written back is lost at the next restart."""
    mat = assemble(Config(), tmp_path, simulate=True)
    mat.close()
    history = History.open(tmp_path / HISTORY_FILENAME)
    try:
        state = history._one("SELECT carried_day, carried_wall, mark_boot_id FROM state")
    finally:
        history.close()
    assert state is not None and state[0] == mat.clock.today().isoformat()
    assert state[1] == pytest.approx(mat.clock.wall(), abs=60.0)
    assert state[2]  # the boot's id, to time the next restart by the boot clock


def _running(mat: Assembled) -> threading.Thread:
    thread = threading.Thread(target=mat.controller.run, name="controller")
    thread.start()
    mat.start_edges()
    return thread


def test_the_daemons_history_failure_is_a_fault_that_stops_the_heat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: `assemble` wires the writer's failures to the controller; a test that wires
    its own never saw it removed."""
    mat = assemble(Config(), tmp_path, simulate=True)
    assert mat.sim is not None

    def failing(self: History, *args: object, **kwargs: object) -> None:
        raise HistoryError(f"history {self.path}: could not save the history: I/O error")

    thread = _running(mat)
    try:
        monkeypatch.setattr(History, "record_session", failing)
        mat.controller.post(Press())
        wait_for(lambda: mat.controller.machine.fault == WRITE_FAILED_FAULT)
        wait_for(lambda: mat.sim is not None and not mat.sim.heater_demand)
    finally:
        mat.controller.request_stop()
        thread.join(WAIT_S)
        mat.close()
    assert not thread.is_alive()


def test_a_clean_stop_waits_for_the_session_end_on_a_slow_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: nothing failed when `Mat.close` stopped waiting for the writer: on a fast
    disk the end is saved before the history is closed anyway."""
    mat = assemble(Config(), tmp_path, simulate=True)
    assert mat.sim is not None
    thread = _running(mat)
    record = History.record_session

    def slow(self: History, row: SessionRow, **kwargs: float | None) -> SessionRow:
        time.sleep(0.3)  # a slow disk: every commit of a row takes this long
        return record(self, row, **kwargs)

    try:
        mat.controller.post(Press())
        wait_for(lambda: mat.sim is not None and mat.sim.heater_demand)
        monkeypatch.setattr(History, "record_session", slow)
        mat.controller.request_stop("SIGTERM")
        thread.join(WAIT_S)
    finally:
        mat.close()
    history = History.open(tmp_path / HISTORY_FILENAME)
    try:
        [row] = history.sessions(1, mat.clock.today())
    finally:
        history.close()
    assert row.end_reason == "stopped"
