"""The ways around the guards that the safety review reproduced (issue #13), one test each.

Each test plays the hazard on the simulated pad with a person lying on it and
checks the bounds on the pad's TRUE temperature, not only on the sensor:

- heat off above setpoint + 1 °C;
- no heat past the session's end, and the daily cap holds;
- thermal dose at most 9 CEM43 per session and per day, preheats included;
- no heat without a press at the mat beyond a bounded preheat.

The figure each hazard reached before the fix is in its docstring.
"""

import queue
import threading
from collections.abc import Callable
from datetime import date, timedelta
from itertools import pairwise

import pytest

from conftest import HandClock, read_all
from matpi.core.events import (
    Adjust,
    ClockStepped,
    EndReason,
    Notice,
    PreheatEnded,
    PreheatStarted,
    Press,
    Reading,
    Refused,
    SelectProgram,
    SessionEnded,
    Source,
    Start,
    State,
    Stop,
    Tick,
)
from matpi.core.padmodel import PadModel
from matpi.core.programs import HeatLevel
from matpi.core.rules import CeilingError, Rules
from matpi.core.session import SessionMachine
from matpi.core.thermal import cem43_per_min
from matpi.drivers.sim import SimFault, SimulatedMat
from matpi.service.controller import Controller
from test_faults import Rig

DAY = date(2026, 6, 1)
HIGH_C = 41.0
BOUND_C = HIGH_C + 1.0


def true_dose(rig: Rig, since: float = 0.0) -> float:
    """CEM43 the person received, from the pad's true temperature."""
    log = [(t, c) for t, c, _ in rig.truth_log if t >= since]
    return sum(cem43_per_min(c) * (t1 - t0) / 60.0 for (t0, c), (t1, _) in pairwise(log))


def heated_minutes(rig: Rig) -> float:
    """Minutes current flowed in the element, from the true state after every step."""
    log = [(t, heating) for t, _, heating in rig.truth_log]
    return sum(t1 - t0 for (t0, heating), (t1, _) in pairwise(log) if heating) / 60.0


def notices_of(rig: Rig, kind: type) -> list[Notice]:
    return [n for n in rig.notices if isinstance(n, kind)]


# --- 1. remote start/stop loop ----------------------------------------------------------


def test_remote_start_stop_loop_cannot_heat_someone_who_never_pressed() -> None:
    """Before: preheat, stop, preheat... with no cooldown, no dose and no minutes: 13.9 CEM43."""
    rig = Rig(rules=Rules(daily_max_min=120.0, cooldown_min=5.0))
    for _ in range(8 * 60):  # an automation retrying every minute for 8 hours
        rig.send(Start(Source.REMOTE, "deep"))
        rig.run(50.0)
        rig.send(Stop(Source.REMOTE))
        rig.run(10.0)
    preheats = [n for n in rig.notices if isinstance(n, PreheatStarted)]
    assert len(preheats) <= 2 * 8  # at most two unconfirmed preheats an hour
    assert not any(isinstance(n, SessionEnded) for n in rig.notices)  # never a session
    assert heated_minutes(rig) <= 8 * 2 * 1.0  # each preheat stopped after 50 s
    assert true_dose(rig) < 1.0
    assert rig.machine.usage.minutes_today == pytest.approx(
        sum(n.elapsed_s for n in notices_of(rig, PreheatEnded)) / 60.0)


def test_a_stopped_preheat_cools_down_and_counts_its_minutes_and_dose() -> None:
    rig = Rig()
    rig.run(2.0)
    rig.send(Start(Source.REMOTE, "deep"))
    rig.run(8 * 60)
    rig.send(Stop(Source.REMOTE))
    [ended] = notices_of(rig, PreheatEnded)
    assert isinstance(ended, PreheatEnded) and ended.reason is EndReason.STOPPED
    assert ended.dose_cem43 > 0.0
    assert rig.machine.state is State.COOLDOWN
    assert rig.machine.usage.minutes_today == pytest.approx(8.0, abs=0.01)
    assert rig.machine.usage.dose_today == pytest.approx(ended.dose_cem43, abs=1e-3)
    said = rig.machine.step(Start(Source.REMOTE), rig.now, DAY)
    assert isinstance(said[0], Refused) and "cooling down" in said[0].reason


def test_a_third_unconfirmed_preheat_within_the_hour_is_refused() -> None:
    rig = Rig(rules=Rules(cooldown_min=5.0))
    rig.run(2.0)
    for _ in range(2):
        rig.send(Start(Source.REMOTE))
        rig.run(10.0)
        rig.send(Stop(Source.REMOTE))
        rig.run(5 * 60)
    said = rig.machine.step(Start(Source.REMOTE), rig.now, DAY)
    assert isinstance(said[0], Refused) and "not confirmed at the mat" in said[0].reason
    assert rig.machine.state is State.IDLE
    assert not any(isinstance(n, Refused) for n in rig.machine.step(Press(), rig.now, DAY))
    assert rig.machine.state is State.RUNNING  # a press at the mat still starts a session


def test_unconfirmed_preheats_are_remembered_across_a_restart() -> None:
    machine = SessionMachine(Rules(), 5000.0, DAY, preheats=(4000.0, 4500.0))
    read_all(machine, 30.0, 5000.0, DAY)
    said = machine.step(Start(Source.REMOTE), 5000.0, DAY)
    assert isinstance(said[0], Refused) and "not confirmed" in said[0].reason


# --- 2. welded heater relay -------------------------------------------------------------


def test_welded_heater_relay_is_cut_by_the_power_relay() -> None:
    """Before (no power relay in the default wiring): 50.9 °C, 57 min above 45 °C."""
    rig = Rig()
    rig.start()
    since = rig.now
    rig.pad.inject(SimFault.RELAY_WELDED)
    rig.run(60 * 60)
    assert rig.machine.state is State.FAULT
    assert rig.hottest_while_heating(since) <= BOUND_C
    assert max(c for t, c, _ in rig.truth_log if t >= since) < BOUND_C + 0.2
    assert not rig.pad.heating


# --- 3. thermostat overshoot by config ---------------------------------------------------


def test_a_relay_config_that_would_overshoot_is_refused_by_the_core() -> None:
    """Before: min_on_s = 300 with hysteresis 3 °C was accepted: 45 °C, 9.5 CEM43."""
    with pytest.raises(CeilingError, match="min_on_s = 300 with hysteresis_c = 3"):
        Rules(min_on_s=300.0, hysteresis_c=3.0)


def test_a_pad_heating_faster_than_its_model_is_cut_half_a_degree_over() -> None:
    """The overshoot cut does not trust the model either: heat off at setpoint + 0.5 °C."""
    rig = Rig(rules=Rules(pad=PadModel(heater_w=40.0), min_on_s=300.0, hysteresis_c=3.0))
    rig.start()
    rig.run(20 * 60)
    assert rig.hottest_while_heating() <= HIGH_C + 0.7
    assert rig.machine.fault is None


# --- 4. one sensor reading low ------------------------------------------------------------


def _offset(rig: Rig, offset_c: float, *sensors: str) -> None:
    """`sensors` (all when none are named) read `offset_c` off the true surface."""
    wrong = set(sensors or rig.rules.sensors)
    rig.override = lambda r: r if r.sensor not in wrong or r.value_c is None else Reading(
        r.sensor, r.value_c + offset_c)


@pytest.mark.parametrize(("offset_c", "fault"), [(-2.0, None), (-4.5, None),
                                                 (-5.5, "sensors disagree"),
                                                 (-10.0, "sensors disagree")])
def test_a_sensor_reading_low_from_the_start_cannot_overheat(offset_c: float,
                                                              fault: str | None) -> None:
    """Before (one sensor): a few degrees low was never caught: 46.4 °C, 38.5 CEM43.
    Now the other sensor rules: heat follows the hotter."""
    rig = Rig()
    _offset(rig, offset_c, "mat")
    rig.run(2.0)
    rig.send(Start(Source.LOCAL, "deep"))
    rig.run(40 * 60)
    assert rig.hottest_while_heating() <= BOUND_C
    assert true_dose(rig) <= 9.0
    assert fault in (rig.machine.fault or "") if fault else rig.machine.fault is None


@pytest.mark.parametrize(("offset_c", "faults"), [(-2.0, False), (-5.0, True), (-10.0, True)])
def test_both_sensors_reading_low_from_the_start_cannot_overheat(offset_c: float,
                                                                 faults: bool) -> None:
    """Both under the same cold spot: the pad estimate holds the pad, and faults a large gap."""
    rig = Rig()
    _offset(rig, offset_c)
    rig.run(2.0)
    rig.send(Start(Source.LOCAL, "deep"))
    rig.run(40 * 60)
    assert rig.hottest_while_heating() <= BOUND_C
    assert true_dose(rig) <= 9.0
    assert (rig.machine.fault is not None) is faults, rig.machine.fault
    if faults:
        assert "reading below the pad model" in (rig.machine.fault or "")


@pytest.mark.parametrize("offset_c", [-2.0, -5.0, -10.0])
@pytest.mark.parametrize("sensors", [("mat",), ("mat", "mat2")])
def test_sensors_that_slip_mid_session_cannot_overheat(offset_c: float,
                                                       sensors: tuple[str, ...]) -> None:
    rig = Rig()
    rig.start()
    _offset(rig, offset_c, *sensors)
    rig.run(25 * 60)
    assert rig.hottest_while_heating() <= BOUND_C
    assert true_dose(rig) <= 9.0


@pytest.mark.parametrize(("sensors", "fault"), [(("mat",), "sensors disagree"),
                                                (("mat", "mat2"), "reading below the pad model")])
def test_sensors_drifting_low_are_caught_before_the_pad_overheats(sensors: tuple[str, ...],
                                                                  fault: str) -> None:
    rig = Rig()
    rig.start()
    drift_from = rig.now

    def drifting(r: Reading) -> Reading:  # 1 °C lower every 2 minutes
        if r.sensor not in sensors or r.value_c is None:
            return r
        return Reading(r.sensor, r.value_c - (rig.now - drift_from) / 120.0)

    rig.override = drifting
    rig.run(20 * 60)
    assert rig.machine.state is State.FAULT
    assert fault in (rig.machine.fault or "")
    assert rig.hottest_while_heating() <= BOUND_C
    assert true_dose(rig) <= 9.0


def test_one_sensor_is_not_enough_to_heat() -> None:
    """With one sensor, one wrong reading is the whole truth: heat needs two."""
    with pytest.raises(CeilingError, match="two temperature sensors are needed"):
        Rules(sensors=("mat",))


# --- 5. wall clock read once ---------------------------------------------------------------


class SteppableClock(HandClock):
    """A hand clock whose wall clock can be set, as NTP does after a boot without RTC."""

    def __init__(self) -> None:
        self.offset_s = 1_780_000_000.0
        self.t = 0.0
        super(HandClock, self).__init__(monotonic=lambda: self.t,
                                        wall=lambda: self.offset_s + self.t)


def _run_controller(controller: Controller, steps: Callable[[], None]) -> None:
    thread = threading.Thread(target=controller.run, daemon=True)
    thread.start()
    try:
        steps()
    finally:
        controller.request_stop()
        thread.join(timeout=10.0)
    assert not thread.is_alive()


def test_a_clock_stepped_forward_a_day_frees_no_minutes() -> None:
    """Before: the day came from a wall clock read once: 240 min in one day, cap 120."""
    clock = SteppableClock()
    pad = SimulatedMat(clock, start_c=30.0)
    machine = SessionMachine(Rules(daily_max_min=60.0), clock.now(), clock.today())
    machine.usage.minutes_today = 59.5
    done: queue.SimpleQueue[bool] = queue.SimpleQueue()
    controller = Controller(machine, pad.drivers(), clock,
                            listeners=[lambda snapshot, notices: done.put(True)])

    def steps() -> None:
        done.get(timeout=5.0)
        day_before = clock.today()
        clock.offset_s += 86_400.0  # NTP moves the clock to the next day
        for name in machine.rules.sensors:
            controller.post(Reading(name, 30.0))
        done.get(timeout=5.0)
        assert clock.today() == day_before + timedelta(days=1)

    _run_controller(controller, steps)
    assert machine.usage.day == clock.today()
    assert machine.usage.minutes_today == 59.5
    said = machine.step(Press(), clock.now(), clock.today())
    assert isinstance(said[-1], Refused) and "daily limit" in said[-1].reason


def test_the_calendar_follows_the_real_wall_clock_and_reports_steps() -> None:
    clock = SteppableClock()
    clock.offset_s += 600.0  # set before the controller's first look: still a step
    assert clock.stepped() and not clock.stepped()
    clock.t += 3600.0
    assert not clock.stepped()  # an hour passing is not a step
    clock.offset_s -= 3 * 86_400.0
    assert clock.stepped() and not clock.stepped()
    assert clock.today() == date.fromtimestamp(clock.offset_s + clock.t)


@pytest.mark.parametrize("days", [-3, -1, 1, 3])
def test_a_step_either_way_never_frees_minutes_or_dose(days: int) -> None:
    machine = SessionMachine(Rules(), 0.0, DAY)
    machine.usage.minutes_today, machine.usage.dose_today = 45.0, 4.0
    machine.step(ClockStepped(), 1.0, DAY + timedelta(days=days))
    machine.step(Tick(), 2.0, DAY + timedelta(days=days))
    assert (machine.usage.minutes_today, machine.usage.dose_today) == (45.0, 4.0)


# --- 7. a preheat-started session past the daily cap --------------------------------------


def test_a_preheat_started_session_ends_at_the_daily_cap() -> None:
    """Before: 129.9 of 120 min; the preheat's minutes did not shorten the session."""
    rig = Rig(rules=Rules(daily_max_min=30.0, cooldown_min=5.0))
    rig.run(2.0)
    rig.send(Start(Source.REMOTE, "deep"))  # 30 min planned
    rig.run(9 * 60)
    rig.send(Press())
    rig.run(30 * 60)
    [ended] = notices_of(rig, SessionEnded)
    assert isinstance(ended, SessionEnded) and ended.reason is EndReason.DAILY_LIMIT
    assert rig.machine.usage.minutes_today == pytest.approx(30.0, abs=0.01)
    assert heated_minutes(rig) <= 30.0


def test_a_confirmed_preheat_and_its_session_heat_30_min_at_most() -> None:
    """Preheat and session are one heated stretch: the 30-minute ceiling counts both."""
    rig = Rig(rules=Rules(daily_max_min=120.0))
    rig.run(2.0)
    rig.send(Start(Source.REMOTE, "deep"))  # 30 min planned
    rig.run(9.5 * 60)
    rig.send(Press())
    rig.run(35 * 60)
    assert heated_minutes(rig) <= 30.0
    [ended] = notices_of(rig, SessionEnded)
    assert isinstance(ended, SessionEnded) and ended.elapsed_s == pytest.approx(20.5 * 60)


# --- 9. a missing value ----------------------------------------------------------------------


def test_a_reading_without_value_or_error_is_a_bad_reading_not_a_crash() -> None:
    """Before: Reading(None) without an error string raised inside the control loop."""
    machine = SessionMachine(Rules(), 0.0, DAY)
    read_all(machine, 30.0, 0.0, DAY)
    for t in (1.0, 2.0, 3.0):
        read_all(machine, None, t, DAY)
    assert machine.state is State.FAULT and "no value" in (machine.fault or "")


# --- 10. a refused command changes nothing -----------------------------------------------------


def test_a_press_after_the_preheat_deadline_starts_nothing() -> None:
    """Before: a press that arrived after the deadline still turned the preheat into a session."""
    machine = SessionMachine(Rules(preheat_max_min=10.0), 0.0, DAY)
    read_all(machine, 37.2, 0.0, DAY)  # at the setpoint: heat rests, no fault
    machine.step(Start(Source.REMOTE), 1.0, DAY)
    for t in range(2, 601):
        read_all(machine, 37.2, float(t), DAY)
    assert machine.state is State.PREHEAT
    machine.step(Press(), 601.5, DAY)
    assert machine.state is State.COOLDOWN
    assert not machine.outputs(601.5).heater


@pytest.mark.parametrize("start", [Start(Source.REMOTE, "neck", duration_min=90.0),
                                   Start(Source.LOCAL, "neck", duration_min=0.1)])
def test_a_refused_start_leaves_the_chosen_program(start: Start) -> None:
    machine = SessionMachine(Rules(), 0.0, DAY)
    read_all(machine, 30.0, 0.0, DAY)
    machine.step(SelectProgram("back", Source.LOCAL), 0.5, DAY)
    said = machine.step(start, 1.0, DAY)
    assert isinstance(said[0], Refused)
    assert machine.selected == "back" and machine.state is State.IDLE


# --- 13. dose per day -----------------------------------------------------------------------------


def test_sessions_each_under_the_limit_cannot_add_up_past_the_daily_dose() -> None:
    """Before: only each session's dose was limited: about 30 CEM43 a day was reachable."""
    rules = Rules(setpoints_c={HeatLevel.LOW: 37.0, HeatLevel.MEDIUM: 39.0,
                               HeatLevel.HIGH: 42.0},
                  daily_max_min=120.0, cooldown_min=5.0)
    rig = Rig(rules=rules)
    rig.run(2.0)
    for _ in range(4):
        rig.send(Start(Source.LOCAL, "deep"))
        rig.run(36 * 60)
    assert len(notices_of(rig, SessionEnded)) == 4
    assert true_dose(rig) <= 9.0
    assert rig.machine.usage.dose_today <= 9.0 + 0.5  # the heat stops; the warm pad cools
    assert rig.hottest_while_heating() <= 42.0 + 1.0


def test_the_dose_of_a_pad_cooling_down_counts_towards_the_day() -> None:
    """Review: only session time was dosed; the warm pad after it still warms the person."""
    rig = Rig(rules=Rules(setpoints_c={HeatLevel.LOW: 37.0, HeatLevel.MEDIUM: 39.0,
                                       HeatLevel.HIGH: 42.0}))
    rig.start("deep")
    rig.run(23 * 60)
    assert rig.machine.state is State.COOLDOWN
    ended = rig.machine.usage.dose_today
    rig.run(5 * 60)
    assert rig.machine.usage.dose_today > ended  # small: the pad cools fast below 42 °C
    assert rig.machine.usage.dose_today == pytest.approx(true_dose(rig), rel=0.1)


def test_a_longer_duration_after_a_confirmed_preheat_keeps_the_30_min_ceiling() -> None:
    """Second review: press at 9 min 50 s, then a remote duration of 30 min: 40 min of heat."""
    rig = Rig(rules=Rules(daily_max_min=120.0))
    rig.run(2.0)
    rig.send(Start(Source.REMOTE, "deep"))
    rig.run(590.0)
    rig.send(Press())
    rig.send(Adjust(Source.REMOTE, duration_min=30.0))
    rig.run(35 * 60)
    assert heated_minutes(rig) <= 30.0
    [ended] = notices_of(rig, SessionEnded)
    assert isinstance(ended, SessionEnded) and ended.elapsed_s <= 20.2 * 60
