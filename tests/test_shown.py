"""What the mat tells the world is true now (issue #18): no stale temperature, the preheat's
wait, one way to write a countdown, and a program change that says what it does."""

from conftest import Mat
from matpi.core import limits
from matpi.core.events import (
    ProgramSelected,
    Refused,
    SelectProgram,
    Source,
    Start,
    State,
    Stop,
)


def test_a_sensor_that_stops_reading_shows_no_temperature(mat: Mat) -> None:
    """Before: the last value stayed in the snapshot, shown as current beside the fault."""
    mat.run_for(5)
    assert mat.machine.snapshot(mat.now).temperature_c is not None
    mat.run_for(limits.STALE_HEAT_OFF_S, temp_c=None)
    assert mat.machine.snapshot(mat.now).temperature_c is None


def test_a_bad_reading_shows_no_temperature_from_that_sensor(mat: Mat) -> None:
    first, second = mat.rules.sensors
    mat.read(None, sensor=first, error="w1 CRC error")
    assert mat.machine.snapshot(mat.now).temperature_c == 30.0  # the other one still reads
    mat.read(None, sensor=second, error="w1 CRC error")
    assert mat.machine.snapshot(mat.now).temperature_c is None


def test_a_fault_card_never_shows_a_stale_temperature(mat: Mat) -> None:
    mat.send(Start(Source.LOCAL, "back"))
    mat.run_for(limits.STALE_FAULT_S + 1, temp_c=None)
    snapshot = mat.machine.snapshot(mat.now)
    assert snapshot.state is State.FAULT and snapshot.temperature_c is None


def test_a_preheat_says_how_long_it_waits(mat: Mat) -> None:
    assert mat.machine.snapshot(mat.now).preheat_remaining_s == 0
    mat.send(Start(Source.REMOTE, "back"))
    wait_s = int(mat.rules.preheat_max_min * 60)
    assert mat.machine.snapshot(mat.now).preheat_remaining_s == wait_s
    mat.run_for(62.5)
    assert mat.machine.snapshot(mat.now).preheat_remaining_s == 537  # 600 - 62.5, floored
    mat.send(Stop(Source.REMOTE))
    assert mat.machine.snapshot(mat.now).preheat_remaining_s == 0


def test_the_cooldown_refusal_counts_down_as_the_ring_does(mat: Mat) -> None:
    """Before: "10.0 min left" beside a ring showing 9:58."""
    mat.send(Start(Source.LOCAL, "neck"))
    mat.run_for(60)
    mat.send(Stop(Source.LOCAL))
    mat.run_for(2.5)
    left_s = mat.machine.snapshot(mat.now).cooldown_remaining_s
    [refused] = mat.send(Start(Source.LOCAL))
    assert isinstance(refused, Refused)
    assert refused.reason == f"cooling down: {left_s // 60}:{left_s % 60:02d} left"
    assert refused.reason == "cooling down: 9:57 left"


def test_every_countdown_floors_to_the_whole_second(mat: Mat) -> None:
    """Review: the session's time left was rounded to the nearest second while the
    cooldown and the preheat were floored, so two countdowns could disagree by one."""
    mat.send(Start(Source.LOCAL, "neck"))
    planned_s = mat.machine.snapshot(mat.now).remaining_s
    mat.run_for(10.5, every_s=0.5)
    snapshot = mat.machine.snapshot(mat.now)
    assert snapshot.remaining_s == planned_s - 11  # 10.5 s gone: floored, not rounded up
    assert snapshot.elapsed_s == 10


def test_choosing_a_program_during_a_session_is_refused_and_says_why(mat: Mat) -> None:
    """Before: accepted silently as the next session's program; Home Assistant showed the
    running one, then jumped at the stop."""
    mat.send(Start(Source.LOCAL, "back"))
    mat.run_for(5)
    [refused] = mat.send(SelectProgram("neck", Source.REMOTE))
    assert isinstance(refused, Refused) and refused.command == "program"
    assert "back is under way" in refused.reason
    snapshot = mat.machine.snapshot(mat.now)
    assert snapshot.program == "back" and mat.machine.selected == "back"
    mat.send(Stop(Source.LOCAL))
    assert mat.machine.snapshot(mat.now).program == "back"
    assert mat.send(SelectProgram("neck", Source.REMOTE)) == [ProgramSelected("neck")]
