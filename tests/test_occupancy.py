"""Occupancy in the core: heat and vibration only with someone on the mat.

The sensor is optional: without it (`Rules.occupancy_sensor` False) the mat behaves as
it always did. With it, the mat counts as empty until the sensor says otherwise; a
press on an empty mat starts nothing; leaving pauses heat and vibration at once and,
after the grace time, ends the session and counts it. A remote preheat warms the empty
mat for its person, within its own bound, and only someone lying on it can confirm it.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SIMULATED, Mat
from matpi.core import limits
from matpi.core.events import (
    DoublePress,
    EndReason,
    Led,
    Occupancy,
    PreheatEnded,
    Press,
    Refused,
    SessionEnded,
    Source,
    Start,
    State,
    Stop,
)
from matpi.core.rules import CeilingError, Rules
from matpi.core.sessionmodel import NOBODY_SHOWN_S


class Person(Mat):
    """A mat with an occupancy sensor, whose simulated pad feels the body the sensor sees."""

    def lie_down(self) -> None:
        self.pad.person_lying = True
        self.send(Occupancy(True))

    def get_up(self) -> None:
        self.pad.person_lying = False
        self.send(Occupancy(False))

    @property
    def vibration(self) -> float:
        return self.machine.outputs(self.now).vibration

    @property
    def led(self) -> Led:
        return self.machine.outputs(self.now).led


def sensing(*, grace_s: float = 60.0, preheat_max_min: float = 10.0) -> Person:
    """A cool mat with an occupancy sensor."""
    rules = Rules(occupancy_sensor=True, vacated_grace_s=grace_s, preheat_max_min=preheat_max_min)
    mat = Person(rules=rules, pad_c=25.0)
    mat.read(25.0)
    return mat


def heats_after_its_rest(mat: Person) -> None:
    """A relay heater switched off rests `min_off_s` before it may switch on again."""
    mat.run_for(mat.machine.rules.min_off_s + 1.0)
    assert mat.heater


def sessions_ended(mat: Mat) -> list[SessionEnded]:
    return [n for n in mat.notices if isinstance(n, SessionEnded)]


def test_without_a_sensor_nothing_changes_and_stray_events_are_ignored(mat: Mat) -> None:
    assert mat.machine.snapshot(mat.now).occupied is None
    mat.send(Occupancy(False))
    assert mat.machine.snapshot(mat.now).occupied is None
    mat.send(Press())
    assert mat.machine.state is State.RUNNING and mat.heater


def test_the_mat_counts_as_empty_until_the_sensor_speaks() -> None:
    mat = sensing()
    assert mat.machine.snapshot(mat.now).occupied is False
    mat.lie_down()
    assert mat.machine.snapshot(mat.now).occupied is True


def test_a_press_on_an_empty_mat_starts_nothing_and_the_led_says_so() -> None:
    mat = sensing()
    [refused] = mat.send(Press())
    assert isinstance(refused, Refused) and refused.command == "start"
    assert "nobody on the mat" in refused.reason
    assert mat.machine.state is State.IDLE and not mat.heater
    assert mat.led is Led.NOBODY
    # the controller wakes when the LED must go back to idle
    assert mat.machine.next_deadline(mat.now) == mat.now + NOBODY_SHOWN_S
    mat.run_for(NOBODY_SHOWN_S, temp_c=25.0)
    assert mat.led is Led.IDLE


def test_a_local_start_on_an_empty_mat_is_refused_too() -> None:
    mat = sensing()
    [refused] = mat.send(Start(Source.LOCAL, "neck"))
    assert isinstance(refused, Refused) and "nobody on the mat" in refused.reason
    assert mat.machine.state is State.IDLE


def test_leaving_pauses_heat_and_vibration_at_once_and_coming_back_resumes() -> None:
    mat = sensing()
    mat.lie_down()
    mat.send(Start(Source.LOCAL, "back"))  # medium heat, the wave pattern
    mat.run_for(30.0)
    assert mat.heater and mat.vibration > 0
    before = mat.machine.snapshot(mat.now)
    mat.get_up()
    assert not mat.heater and mat.vibration == 0.0 and mat.led is Led.NOBODY
    assert mat.machine.state is State.RUNNING
    mat.run_for(40.0)  # inside the 60 s grace: still paused, the clock runs on
    assert not mat.heater and mat.vibration == 0.0
    away = mat.machine.snapshot(mat.now)
    assert away.remaining_s == before.remaining_s - 40
    assert away.dose_cem43 >= before.dose_cem43
    mat.lie_down()
    mat.run_for(2.0)
    assert mat.heater and mat.vibration > 0 and mat.led is Led.RUNNING
    assert mat.machine.snapshot(mat.now).remaining_s == before.remaining_s - 42


def test_away_for_the_grace_time_ends_the_session_and_counts_it() -> None:
    mat = sensing(grace_s=30.0)
    mat.lie_down()
    mat.send(Press())
    mat.run_for(120.0)
    mat.get_up()
    mat.run_for(29.0)
    assert mat.machine.state is State.RUNNING
    mat.run_for(1.0)
    [ended] = sessions_ended(mat)
    assert ended.reason is EndReason.VACATED and ended.elapsed_s == 150.0
    assert mat.machine.state is State.COOLDOWN and not mat.heater
    assert mat.machine.usage.minutes_today == 2.5
    # coming back does not bring the session back, nor give its minutes back
    mat.lie_down()
    mat.run_for(5.0)
    assert mat.machine.state is State.COOLDOWN and mat.machine.usage.minutes_today == 2.5


def test_the_grace_counts_from_the_first_leave_and_the_controller_wakes_for_it() -> None:
    """A sensor repeating "empty" must not restart the grace: only a leave does."""
    mat = sensing(grace_s=30.0)
    mat.lie_down()
    mat.send(Press())
    mat.run_for(10.0)
    mat.get_up()
    left_at = mat.now
    for _ in range(5):
        mat.run_for(5.0)
        mat.send(Occupancy(False))
    mat.run_for(4.5)
    assert mat.machine.next_deadline(mat.now) == left_at + 30.0  # inside its last second
    mat.run_for(left_at + 30.0 - mat.now, every_s=0.5)
    [ended] = sessions_ended(mat)
    assert ended.reason is EndReason.VACATED and ended.elapsed_s == 40.0


def test_leaving_and_returning_many_times_never_extends_a_session() -> None:
    """A stuck or flickering sensor: the session still ends at its planned time."""
    mat = sensing()
    mat.lie_down()
    mat.send(Start(Source.LOCAL, "neck", duration_min=5.0))
    for _ in range(20):
        mat.run_for(10.0)
        mat.get_up()
        mat.run_for(5.0)
        mat.lie_down()
    [ended] = sessions_ended(mat)
    assert ended.reason is EndReason.COMPLETED and ended.elapsed_s == 300.0
    assert mat.machine.usage.minutes_today == 5.0


def test_a_sensor_stuck_occupied_keeps_every_bound() -> None:
    mat = sensing()
    mat.lie_down()
    mat.send(Start(Source.LOCAL, "back", duration_min=30.0))
    mat.pad.person_lying = False  # the person left; the sensor never noticed
    peak_c = 0.0
    for _ in range(31 * 6):
        mat.run_for(10.0)
        peak_c = max(peak_c, mat.pad.surface_c())
    [ended] = sessions_ended(mat)
    assert ended.reason is EndReason.COMPLETED and ended.elapsed_s == 1800.0
    assert mat.machine.state is State.COOLDOWN and not mat.heater
    setpoint_c = mat.rules.setpoint(mat.rules.programs["back"].heat)
    assert setpoint_c is not None
    # the bare pad's true temperature never passed the setpoint by more than the margin
    assert setpoint_c - 2.0 < peak_c < setpoint_c + limits.MAX_OVERSHOOT_C


def test_a_remote_preheat_warms_the_empty_mat_and_waits_for_the_person() -> None:
    mat = sensing()
    mat.send(Start(Source.REMOTE))
    assert mat.machine.state is State.PREHEAT
    mat.run_for(60.0)
    assert mat.heater  # a preheat is for an empty mat, within its own bound
    [refused] = mat.send(Press())  # a press nobody lies behind
    assert isinstance(refused, Refused) and refused.command == "press"
    assert mat.machine.state is State.PREHEAT and mat.led is Led.NOBODY
    mat.run_for(NOBODY_SHOWN_S)
    assert mat.led is Led.AWAITING_PRESS
    mat.lie_down()
    mat.send(Press())
    assert mat.machine.state is State.RUNNING
    heats_after_its_rest(mat)


def test_a_double_press_with_nobody_on_the_mat_does_not_confirm_a_preheat() -> None:
    mat = sensing()
    mat.send(Start(Source.REMOTE))
    [refused] = mat.send(DoublePress())
    assert isinstance(refused, Refused) and refused.command == "press"
    assert mat.machine.state is State.PREHEAT


def test_a_remote_preheat_does_not_heat_someone_already_lying_on_the_mat() -> None:
    """Review: a remote start heated a sleeper for the whole preheat. Only a press at the
    mat, by the person on it, may heat them."""
    mat = sensing()
    mat.lie_down()
    mat.send(Start(Source.REMOTE))
    assert mat.machine.state is State.PREHEAT
    for _ in range(60):
        mat.run_for(5.0)
        assert not mat.heater
    mat.send(Press())
    assert mat.machine.state is State.RUNNING
    heats_after_its_rest(mat)


def test_someone_lying_down_during_a_preheat_stops_its_heat_until_they_press() -> None:
    mat = sensing()
    mat.send(Start(Source.REMOTE))
    mat.run_for(60.0)
    assert mat.heater
    mat.lie_down()
    assert not mat.heater
    mat.run_for(30.0)
    assert not mat.heater
    mat.send(Press())
    assert mat.machine.state is State.RUNNING
    heats_after_its_rest(mat)


def test_a_preheat_nobody_lies_down_for_ends_at_its_bound() -> None:
    mat = sensing(preheat_max_min=2.0)
    mat.send(Start(Source.REMOTE))
    mat.run_for(121.0)
    ended = [n for n in mat.notices if isinstance(n, PreheatEnded)]
    assert [n.reason for n in ended] == [EndReason.PREHEAT_TIMEOUT]
    assert mat.machine.state is State.COOLDOWN and not mat.heater


def test_a_stop_on_a_paused_session_ends_it_as_stopped() -> None:
    mat = sensing()
    mat.lie_down()
    mat.send(Press())
    mat.get_up()
    mat.send(Stop(Source.REMOTE))
    [ended] = sessions_ended(mat)
    assert ended.reason is EndReason.STOPPED


MOVES = st.lists(st.one_of(
    st.sampled_from([Occupancy(True), Occupancy(False), Press(), Start(Source.REMOTE),
                     Start(Source.LOCAL), Stop(Source.LOCAL)]),
    st.sampled_from([1.0, 5.0, 30.0, 61.0, 300.0]),
), max_size=30)


@settings(max_examples=150, deadline=None)
@given(moves=MOVES)
def test_no_heat_and_no_vibration_in_a_session_with_the_mat_empty(moves: list[object]) -> None:
    """Whatever the order of people, presses, starts and time: a running session heats
    and vibrates only while the sensor sees someone, and ends within its bounds."""
    mat = sensing()
    for move in moves:
        if isinstance(move, float):
            mat.run_for(move, temp_c=SIMULATED, every_s=1.0)
        elif isinstance(move, Occupancy):
            mat.pad.person_lying = move.occupied
            mat.send(move)
        else:
            assert isinstance(move, Press | Start | Stop)
            mat.send(move)
        snapshot = mat.machine.snapshot(mat.now)
        if snapshot.state is State.RUNNING and snapshot.occupied is False:
            assert not mat.heater and mat.vibration == 0.0 and mat.led is Led.NOBODY
        if snapshot.state is State.IDLE:
            assert not mat.heater
    for ended in sessions_ended(mat):
        assert ended.elapsed_s <= mat.rules.session_max_min * 60.0


def test_the_grace_time_cannot_pass_its_ceiling() -> None:
    with pytest.raises(CeilingError, match="vacated_grace_s"):
        Rules(occupancy_sensor=True, vacated_grace_s=limits.MAX_VACATED_GRACE_S + 1.0)
