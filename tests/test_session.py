"""The session machine, one behaviour per test, with a hand-advanced clock."""

from dataclasses import replace
from datetime import date

import pytest

from conftest import Mat
from matpi.core.events import (
    Adjust,
    Adjusted,
    ButtonGesture,
    DoublePress,
    DriverFault,
    EndReason,
    FaultCleared,
    FaultRaised,
    Gesture,
    HeatStopped,
    Led,
    LongPress,
    PreheatEnded,
    PreheatStarted,
    Press,
    Reading,
    Readings,
    Refused,
    SelectProgram,
    SessionEnded,
    SessionStarted,
    Source,
    Start,
    State,
    Stop,
    Tick,
)
from matpi.core.patterns import Pattern
from matpi.core.programs import HeatLevel
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine


def ended(mat: Mat) -> list[SessionEnded]:
    return [n for n in mat.notices if isinstance(n, SessionEnded)]


def test_fresh_machine_is_idle_and_off() -> None:
    machine = SessionMachine(Rules(), 0.0, date(2026, 1, 1))
    out = machine.outputs(0.0)
    assert machine.state is State.IDLE
    assert (out.heater, out.vibration, out.led, out.power) == (False, 0.0, Led.IDLE, False)


def test_press_starts_default_program_and_heats(mat: Mat) -> None:
    said = mat.send(Press())
    assert said == [SessionStarted("beginner", 5.0, Source.LOCAL)]
    assert mat.machine.state is State.RUNNING
    assert mat.heater
    assert mat.machine.outputs(mat.now).led is Led.RUNNING
    assert mat.machine.outputs(mat.now).power


def test_press_while_running_stops_into_cooldown(mat: Mat) -> None:
    mat.send(Press())
    mat.run_for(60)
    mat.send(Press())
    assert mat.machine.state is State.COOLDOWN
    assert not mat.heater
    assert ended(mat)[0].reason is EndReason.STOPPED
    assert mat.machine.outputs(mat.now).vibration == 0.0


def test_session_ends_exactly_at_its_duration(mat: Mat) -> None:
    mat.send(Start(Source.LOCAL, "neck"))
    mat.run_for(599)
    assert mat.machine.state is State.RUNNING
    mat.run_for(1)
    assert mat.machine.state is State.COOLDOWN
    assert ended(mat)[0].reason is EndReason.COMPLETED
    assert ended(mat)[0].elapsed_s == 600


def test_next_deadline_is_never_after_session_end(mat: Mat) -> None:
    mat.send(Start(Source.LOCAL, "neck", duration_min=1.0))
    assert mat.machine.next_deadline(mat.now) <= mat.now + 1.0
    mat.run_for(59.5, temp_c=30.0, every_s=0.5)
    assert mat.machine.next_deadline(mat.now) == mat.now + 0.5


def test_no_start_during_cooldown(mat: Mat) -> None:
    mat.send(Press())
    mat.send(Press())
    said = mat.send(Press())
    assert isinstance(said[0], Refused) and "cooling down" in said[0].reason
    assert mat.machine.state is State.COOLDOWN
    mat.run_for(10 * 60)
    assert mat.machine.state is State.IDLE
    assert isinstance(mat.send(Press())[0], SessionStarted)


def test_heat_goes_off_after_3_s_without_reading_and_faults_at_10(mat: Mat) -> None:
    mat.send(Press())
    assert mat.heater
    mat.run_for(2.9, temp_c=None, every_s=0.1)
    assert mat.heater
    mat.run_for(0.1, temp_c=None)
    assert not mat.heater
    assert mat.machine.state is State.RUNNING
    mat.run_for(7.0, temp_c=None)
    assert mat.machine.state is State.FAULT
    assert "no valid reading" in (mat.machine.fault or "")


def test_trip_latches_fault_and_heat_never_resumes(mat: Mat) -> None:
    mat.send(Press())
    mat.run_for(3, temp_c=45.5)
    assert mat.machine.state is State.FAULT
    assert "over-temperature" in (mat.machine.fault or "")
    mat.run_for(60, temp_c=25.0)
    assert mat.machine.state is State.FAULT
    assert not mat.heater
    assert mat.machine.outputs(mat.now).led is Led.FAULT


def test_a_single_reading_at_the_trip_switches_heat_off_at_once(mat: Mat) -> None:
    mat.send(Press())
    mat.read(46.0)
    assert not mat.heater
    mat.read(30.0)
    assert mat.machine.state is State.RUNNING  # one outlier does not latch a fault


def test_out_of_range_readings_latch_a_sensor_fault(mat: Mat) -> None:
    mat.send(Press())
    mat.read(None, error="CRC error")
    assert not mat.heater
    mat.read(None, error="CRC error")
    mat.read(None, error="CRC error")
    assert mat.machine.state is State.FAULT
    assert "CRC error" in (mat.machine.fault or "")


def test_readings_taken_together_each_count_whichever_place_it_has() -> None:
    """A sensor's third bad reading latches its fault from the end of a batch as from its
    start; and a batch is what makes the second sensor fresh, so that heat can come."""
    mat = Mat()  # nothing read yet
    mat.send(Reading("mat", 30.0))
    mat.send(Press())
    assert not mat.heater  # mat2 never read
    mat.send(Readings((Reading("mat", 30.0), Reading("mat2", 30.0))))
    assert mat.heater
    for _ in range(3):
        mat.now += 0.5
        mat.send(Readings((Reading("mat", 30.0), Reading("mat2", None, "test: CRC"))))
    assert mat.machine.state is State.FAULT
    assert "mat2: test: CRC" in (mat.machine.fault or "")


def test_driver_fault_ends_session_and_latches(mat: Mat) -> None:
    mat.send(Press())
    mat.send(DriverFault("board: link lost"))
    assert mat.machine.state is State.FAULT
    assert ended(mat)[0].reason is EndReason.FAULT
    assert any(isinstance(n, FaultRaised) for n in mat.notices)


def test_long_press_clears_fault_only_when_cool(mat: Mat) -> None:
    mat.send(DriverFault("test"))
    mat.run_for(3, temp_c=38.0)
    assert isinstance(mat.send(LongPress())[0], Refused)
    assert mat.machine.state is State.FAULT
    mat.run_for(3, temp_c=30.0)
    assert mat.send(LongPress()) == [FaultCleared()]
    assert mat.machine.state is State.IDLE


def test_fault_cannot_be_cleared_without_a_valid_reading(mat: Mat) -> None:
    mat.send(DriverFault("test"))
    mat.run_for(5, temp_c=None)
    assert isinstance(mat.send(LongPress())[0], Refused)
    assert mat.machine.state is State.FAULT


def test_remote_commands_cannot_clear_a_fault(mat: Mat) -> None:
    mat.send(DriverFault("test"))
    mat.run_for(3, temp_c=25.0)
    for event in (Stop(Source.REMOTE), Start(Source.REMOTE), SelectProgram("neck", Source.REMOTE)):
        mat.send(event)
    assert mat.machine.state is State.FAULT


def test_remote_start_preheats_until_a_press_at_the_mat(mat: Mat) -> None:
    said = mat.send(Start(Source.REMOTE, "back"))
    assert said == [PreheatStarted("back", 10.0)]
    assert mat.machine.state is State.PREHEAT
    assert mat.heater
    out = mat.machine.outputs(mat.now)
    assert out.led is Led.AWAITING_PRESS and out.vibration == 0.0
    mat.run_for(120)
    assert mat.machine.snapshot(mat.now).remaining_s == 20 * 60  # preheat is not session time
    mat.send(Press())
    assert mat.machine.state is State.RUNNING
    assert mat.machine.snapshot(mat.now).remaining_s == 20 * 60


def test_unconfirmed_preheat_times_out_into_a_cooldown_and_counts_as_use(mat: Mat) -> None:
    mat.send(Start(Source.REMOTE))
    mat.run_for(10 * 60)
    assert mat.machine.state is State.COOLDOWN  # no re-arming preheats for ever
    assert mat.machine.snapshot(mat.now).today_min == 10.0
    assert isinstance(mat.send(Start(Source.REMOTE))[0], Refused)
    assert not mat.heater
    [preheat] = [n for n in mat.notices if isinstance(n, PreheatEnded)]
    assert preheat.reason is EndReason.PREHEAT_TIMEOUT and preheat.elapsed_s == 600


def test_start_with_duration_outside_the_limit_is_refused(mat: Mat) -> None:
    said = mat.send(Start(Source.REMOTE, "back", duration_min=90))
    assert isinstance(said[0], Refused) and "1 to 30" in said[0].reason
    assert mat.machine.state is State.IDLE


def test_unknown_program_is_refused_and_changes_nothing(mat: Mat) -> None:
    assert isinstance(mat.send(Start(Source.REMOTE, "sauna"))[0], Refused)
    assert isinstance(mat.send(SelectProgram("sauna", Source.REMOTE))[0], Refused)
    assert mat.machine.selected == "beginner"
    assert mat.machine.state is State.IDLE


def test_daily_limit_ends_session_and_refuses_next_start() -> None:
    mat = Mat(rules=Rules(daily_max_min=25.0, cooldown_min=5.0))
    mat.read(30.0)
    mat.send(Start(Source.LOCAL, "back"))
    mat.run_for(20 * 60 + 5 * 60)
    mat.send(Start(Source.LOCAL, "back"))
    assert mat.machine.snapshot(mat.now).remaining_s == 5 * 60  # shortened to what is left
    mat.run_for(5 * 60)
    assert ended(mat)[1].reason is EndReason.DAILY_LIMIT
    mat.run_for(5 * 60)
    said = mat.send(Press())
    assert isinstance(said[0], Refused) and "daily limit" in said[0].reason
    mat.next_day()
    assert isinstance(mat.send(Press())[0], SessionStarted)


def test_dose_limit_stops_heat_but_not_the_session() -> None:
    mat = Mat(rules=Rules(dose_max_cem43=0.5))
    mat.read(41.0)
    mat.send(Start(Source.LOCAL, "back"))
    mat.run_for(3 * 60, temp_c=41.0)  # 41 °C: 1/16 CEM43 per min
    assert mat.heater or mat.machine.snapshot(mat.now).dose_cem43 < 0.5
    mat.run_for(6 * 60, temp_c=41.0)
    stops = [n for n in mat.notices if isinstance(n, HeatStopped)]
    assert len(stops) == 1 and "0.5" in stops[0].reason
    assert not mat.heater
    assert mat.machine.state is State.RUNNING
    assert mat.machine.outputs(mat.now).vibration > 0
    assert mat.machine.snapshot(mat.now).setpoint_c is None


def test_thermostat_holds_the_setpoint(mat: Mat) -> None:
    mat.send(Start(Source.LOCAL, "back"))  # medium: 39 °C
    assert mat.heater
    mat.run_for(1, temp_c=39.2)
    assert mat.heater  # minimum on-time of a relay
    mat.run_for(30, temp_c=39.2)
    assert not mat.heater


def test_heat_off_program_never_heats() -> None:
    rules = Rules()
    rules.programs["cool"] = replace(rules.programs["neck"], name="cool", heat=HeatLevel.OFF)
    m = Mat(rules=rules)
    m.read(25.0)
    m.send(Start(Source.LOCAL, "cool"))
    m.run_for(60, temp_c=25.0)
    assert not m.heater and m.machine.state is State.RUNNING


def test_double_press_cycles_the_program_while_idle(mat: Mat) -> None:
    mat.send(DoublePress())
    assert mat.machine.selected == "neck"
    mat.send(Press())
    assert mat.machine.snapshot(mat.now).program == "neck"


def test_double_press_from_a_program_gone_from_the_rules_selects_the_first(mat: Mat) -> None:
    """Found by the table walk: the cycle raised ValueError when the selection was gone."""
    del mat.rules.programs[mat.machine.selected]
    mat.send(DoublePress())
    assert mat.machine.selected == next(iter(mat.rules.programs))


def test_beginner_grows_one_minute_per_day_of_completed_sessions(mat: Mat) -> None:
    lengths = []
    for _ in range(18):
        mat.send(Press())
        lengths.append(mat.machine.snapshot(mat.now).planned_min)
        mat.run_for(lengths[-1] * 60)
        mat.run_for(10 * 60)
        mat.send(Press())  # a second one the same day does not count twice
        mat.send(Press())
        mat.run_for(10 * 60)
        mat.next_day()
    assert lengths[:3] == [5.0, 6.0, 7.0]
    assert lengths[-1] == 20.0


def test_restart_with_latched_fault_comes_up_in_fault() -> None:
    machine = SessionMachine(Rules(), 0.0, date(2026, 1, 1), fault="over-temperature")
    assert machine.state is State.FAULT
    assert not machine.outputs(0.0).heater


def test_snapshot_reports_today_minutes_while_running(mat: Mat) -> None:
    mat.send(Start(Source.LOCAL, "back"))
    mat.run_for(90)
    snap = mat.machine.snapshot(mat.now)
    assert snap.today_min == 1.5
    assert snap.remaining_s == 20 * 60 - 90
    assert snap.setpoint_c == 39.0


def test_adjust_changes_the_next_session(mat: Mat) -> None:
    said = mat.send(Adjust(Source.REMOTE, heat=HeatLevel.HIGH, intensity_pct=70.0,
                           duration_min=12.0))
    assert said == [Adjusted(HeatLevel.HIGH, Pattern.STEADY, 70.0, 12.0)]
    mat.send(Press())
    snap = mat.machine.snapshot(mat.now)
    assert (snap.heat_level, snap.intensity_pct, snap.remaining_s) == (HeatLevel.HIGH, 70.0, 720)
    assert snap.setpoint_c == 41.0


def test_adjust_during_a_session_applies_at_once(mat: Mat) -> None:
    mat.send(Start(Source.LOCAL, "back"))
    mat.run_for(120)
    mat.send(Adjust(Source.REMOTE, heat=HeatLevel.LOW, pattern=Pattern.OFF, duration_min=5.0))
    snap = mat.machine.snapshot(mat.now)
    assert snap.setpoint_c == 37.0 and snap.vibration == 0.0 and snap.remaining_s == 180
    mat.send(Adjust(Source.REMOTE, duration_min=1.0))  # shorter than already run: ends now
    mat.run_for(1)
    assert mat.machine.state is State.COOLDOWN


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (Adjust(Source.REMOTE, intensity_pct=120.0), "intensity_pct = 120: must be 0 to 100"),
        (Adjust(Source.REMOTE, duration_min=45.0), "duration_min = 45: must be 1 to 30"),
        (Adjust(Source.REMOTE, duration_min=0.5), "duration_min = 0.5: must be 1 to 30"),
    ],
)
def test_adjust_out_of_range_is_refused_and_changes_nothing(
    mat: Mat, change: Adjust, reason: str
) -> None:
    before = mat.machine.snapshot(mat.now)
    said = mat.send(change)
    assert isinstance(said[0], Refused) and said[0].reason == reason
    assert mat.machine.snapshot(mat.now) == before


def test_selecting_a_program_drops_earlier_adjustments(mat: Mat) -> None:
    mat.send(Adjust(Source.REMOTE, duration_min=3.0))
    mat.send(SelectProgram("neck", Source.REMOTE))
    assert mat.machine.snapshot(mat.now).planned_min == 10.0


def test_streak_counts_days_in_a_row_with_a_completed_session(mat: Mat) -> None:
    def complete_one() -> None:
        mat.send(Start(Source.LOCAL, "neck", duration_min=1.0))
        mat.run_for(60)
        mat.run_for(10 * 60)

    complete_one()
    complete_one()
    assert mat.machine.snapshot(mat.now).streak_days == 1
    mat.next_day()
    complete_one()
    assert mat.machine.snapshot(mat.now).streak_days == 2
    mat.next_day()
    mat.send(Tick())
    assert mat.machine.snapshot(mat.now).streak_days == 2  # today can still keep it
    mat.next_day()
    mat.send(Tick())
    assert mat.machine.snapshot(mat.now).streak_days == 0


def test_a_fault_that_is_not_clearable_refuses_the_long_press() -> None:
    mat = Mat()
    mat.machine = SessionMachine(Rules(), mat.now, mat.today, fault="history unreadable",
                                 fault_clearable=False)
    mat.read(25.0)
    said = mat.send(LongPress())
    assert isinstance(said[0], Refused) and "cannot be reset at the mat" in said[0].reason
    assert mat.machine.state is State.FAULT
    assert isinstance(mat.send(Press())[0], Refused)


def test_every_button_gesture_is_reported_first(mat: Mat) -> None:
    for event, gesture in ((Press(), Gesture.PRESS), (DoublePress(), Gesture.DOUBLE_PRESS),
                           (LongPress(), Gesture.LONG_PRESS)):
        said = mat.machine.step(event, mat.now, mat.today)
        assert said[0] == ButtonGesture(gesture)


def test_a_clock_set_back_a_day_does_not_reset_todays_use(mat: Mat) -> None:
    mat.send(Start(Source.LOCAL, "back"))
    mat.run_for(20 * 60)
    mat.today = date.fromordinal(mat.today.toordinal() - 1)
    mat.send(Tick())
    assert mat.machine.snapshot(mat.now).today_min == 20.0


def test_a_stale_sensor_does_not_make_the_controller_spin(mat: Mat) -> None:
    mat.run_for(30, temp_c=None)  # stale, then a latched fault
    assert mat.machine.state is State.FAULT
    assert mat.machine.next_deadline(mat.now) > mat.now + 1.0
