"""The session machine's table, walked: every row fires where it says and lands where it says.

`SessionMachine.TRANSITIONS` is the whole of what the machine may do. These
tests read it as data (every state and event kind ends in one ALWAYS row; a
fault is left only by a long press; refusals stay), then walk it: for each row
and each state it covers, a mat is brought into that state and made to meet
the row's guard, the row's event is sent, and the row must be the one that
fired, the mat must land in the row's target, and the heater must be off
outside a session. A Hypothesis property then checks that random use only
ever moves along rows.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import SIMULATED, Mat
from matpi.core.events import (
    Adjust,
    ClockStepped,
    DoublePress,
    DriverFault,
    Event,
    HeatSteppedDown,
    LongPress,
    Notice,
    Occupancy,
    Press,
    Reading,
    Readings,
    Refused,
    SelectProgram,
    Source,
    Start,
    State,
    Stop,
    Tick,
)
from matpi.core.programs import HeatLevel
from matpi.core.rules import Rules
from matpi.core.session import EVENT_KINDS, SessionMachine
from matpi.core.transitions import ACTIVE, ALWAYS, NOT_FAULT, Refuse, Time, Transition

TABLE = SessionMachine.TRANSITIONS
Row = Transition[SessionMachine]
IDLE, PREHEAT, RUNNING = State.IDLE, State.PREHEAT, State.RUNNING
COOLDOWN, FAULT = State.COOLDOWN, State.FAULT


def rows_for(state: State, kind: type) -> list[Row]:
    """The rows tried for `kind` in `state`, in the order the machine tries them."""
    return [r for r in TABLE if state in r.states and r.event is kind]


def key(row: Row, state: State) -> tuple[State, str, str]:
    return state, row.event.__name__, row.guard.__name__


# --- the table read as data ---------------------------------------------------------


@pytest.mark.parametrize("kind", EVENT_KINDS, ids=lambda k: k.__name__)
@pytest.mark.parametrize("state", list(State))
def test_every_state_and_event_kind_ends_in_exactly_one_always_row(
    state: State, kind: type
) -> None:
    """No event falls through the table, and no row sits unreachable after an ALWAYS."""
    found = rows_for(state, kind)
    assert found, f"{kind.__name__} in {state}: no row"
    assert [r.guard for r in found].count(ALWAYS) == 1, [str(r) for r in found]
    assert found[-1].guard is ALWAYS, [str(r) for r in found]


def test_every_row_names_a_state_and_a_known_event_kind() -> None:
    for r in TABLE:
        assert r.event in EVENT_KINDS, str(r)
        assert r.states and set(r.states) <= set(State), str(r)


def test_a_fault_is_left_only_by_a_long_press_at_the_mat() -> None:
    leaving = [r for r in TABLE if FAULT in r.states and r.target not in (None, FAULT)]
    assert leaving and {r.event for r in leaving} == {LongPress}
    # ... and only after the three refusals: not clearable, no valid reading, too warm
    guards = [r.guard.__name__ for r in rows_for(FAULT, LongPress)]
    assert guards[:3] == ["_not_clearable", "_no_valid_reading", "_too_warm"]


def test_heat_starts_only_from_a_start_or_a_press_and_a_remote_start_only_preheats() -> None:
    into_running = {(s, r.event) for r in TABLE if r.target is RUNNING for s in r.states}
    assert into_running == {(IDLE, Press), (IDLE, Start), (PREHEAT, Press),
                            (PREHEAT, DoublePress)}
    into_preheat = [key(r, s) for r in TABLE if r.target is PREHEAT for s in r.states]
    assert into_preheat == [(IDLE, "Start", "_remote")]
    starts = [r.guard.__name__ for r in rows_for(IDLE, Start)]
    assert starts.index("_remote") < starts.index("always")


def test_a_refusal_row_changes_no_state() -> None:
    for r in TABLE:
        if isinstance(r.action, Refuse):
            assert r.target is None, str(r)


def test_time_rows_cannot_go_round_in_a_circle() -> None:
    """`step` follows Time rows until the state settles: it must settle."""
    moves = {(s, r.target) for r in TABLE if r.event is Time and r.target is not None
             for s in r.states}

    def reaches(start: State, goal: State, seen: frozenset[State]) -> bool:
        return any(b is goal or (b not in seen and reaches(b, goal, seen | {b}))
                   for a, b in moves if a is start)

    assert not any(reaches(s, s, frozenset()) for s in State)


# --- the walk: one scenario per row and state ---------------------------------------


def check_moves(machine: SessionMachine, before: State, event: Event) -> None:
    """The rows fired follow one another from `before` to where the machine is now, and
    exactly one of them is the event's."""
    state = before
    for r in machine.fired:
        assert state in r.states, f"{r} fired in {state}"
        state = r.target or state
    assert state is machine.state
    assert [r.event for r in machine.fired if r.event is not Time] == [type(event)]


class Watched(Mat):
    """A Mat whose every step, readings and ticks included, is checked against the table."""

    def send(self, event: Event) -> list[Notice]:
        before = self.machine.state
        said = super().send(event)
        check_moves(self.machine, before, event)
        if self.heater:  # only in a session or preheat, and only towards a setpoint
            assert self.machine.state in ACTIVE
            assert self.machine.snapshot(self.now).setpoint_c is not None
        return said




@dataclass
class Scene:
    """A mat brought where one row applies, and the event that should fire it."""

    mat: Mat
    event: Event


def reach(state: State, mat: Mat | None = None) -> Mat:
    """A mat in `state` with fresh readings at 30 °C, nothing about to expire."""
    mat = mat or Watched()
    mat.read(30.0)
    if state is PREHEAT:
        mat.send(Start(Source.REMOTE))
    elif state is RUNNING:
        mat.send(Press())
    elif state is COOLDOWN:
        mat.send(Press())
        mat.send(Stop(Source.LOCAL))
    elif state is FAULT:
        mat.send(DriverFault("test: driver"))
    assert mat.machine.state is state
    return mat


DEFAULT_EVENT: dict[type, Event] = {
    Press: Press(), DoublePress: DoublePress(), LongPress: LongPress(),
    Start: Start(Source.LOCAL), Stop: Stop(Source.REMOTE),
    SelectProgram: SelectProgram("neck", Source.REMOTE),
    Adjust: Adjust(Source.REMOTE, intensity_pct=50.0),
    Reading: Reading("mat", 30.0), Readings: Readings((Reading("mat", 30.0),
                                                       Reading("mat2", 30.0))),
    DriverFault: DriverFault("test: driver"),
    Occupancy: Occupancy(True),
    Tick: Tick(), ClockStepped: ClockStepped(), Time: Tick(),
}


def plain(state: State, kind: type) -> Scene:
    """The state as `reach` leaves it, and the event of the kind with nothing unusual."""
    return Scene(reach(state), DEFAULT_EVENT[kind])


def sent(state: State, event: Event) -> Scene:
    """The state as `reach` leaves it, and `event`."""
    return Scene(reach(state), event)


def silent_for(state: State, seconds: float) -> Scene:
    mat = reach(state)
    mat.now += seconds
    return Scene(mat, Tick())


def third_bad_reading(state: State) -> Scene:
    mat = reach(state)
    mat.read(None, sensor="mat", error="test: CRC")
    mat.read(None, sensor="mat", error="test: CRC")
    return Scene(mat, Reading("mat", None, "test: CRC"))


def third_bad_of_readings(state: State) -> Scene:
    """The third bad reading of one sensor, read at the same moment as a good one of the
    other, which comes after it: the fault is the batch's, whatever follows it."""
    mat = reach(state)
    mat.read(None, sensor="mat", error="test: CRC")
    mat.read(None, sensor="mat", error="test: CRC")
    return Scene(mat, Readings((Reading("mat", None, "test: CRC"), Reading("mat2", 30.0))))


def run_until_due(mat: Mat, due_s: float) -> Scene:
    """Readings of the simulated pad until a second before `due_s` from now; then, at
    `due_s`, a Tick (a reading would itself be the first step to see the time)."""
    mat.run_for(due_s - 1.0)
    mat.now += 1.0
    return Scene(mat, Tick())


def day_over(state: State) -> Scene:
    mat = Watched(rules=Rules(daily_max_min=3.0))
    mat.read(30.0)
    mat.send(Start(Source.REMOTE if state is PREHEAT else Source.LOCAL))
    return run_until_due(mat, 3 * 60.0)


def preheat_over() -> Scene:
    mat = reach(PREHEAT, Watched(rules=Rules(preheat_max_min=1.0)))
    return run_until_due(mat, 60.0)


def time_up() -> Scene:
    mat = reach(IDLE)
    mat.send(Start(Source.LOCAL, duration_min=1.0))
    return run_until_due(mat, 60.0)


def cooled_down() -> Scene:
    mat = reach(COOLDOWN)
    mat.run_for(mat.machine.cooldown_until - mat.now - 1.0, temp_c=30.0)
    mat.now = mat.machine.cooldown_until
    return Scene(mat, Tick())


def day_used_up(event: Event) -> Scene:
    mat = reach(IDLE)
    mat.machine.usage.minutes_today = mat.rules.daily_max_min - 0.5
    return Scene(mat, event)


def with_sensor(state: State, *, occupied: bool) -> Mat:
    """A mat with an occupancy sensor, brought to `state` with someone on it, who then
    stays or gets up."""
    mat = Watched(rules=Rules(occupancy_sensor=True))
    mat.send(Occupancy(True))
    reach(state, mat)
    if not occupied:
        mat.send(Occupancy(False))
    return mat


def on_empty(state: State, event: Event) -> Scene:
    return Scene(with_sensor(state, occupied=False), event)


def vacated_too_long() -> Scene:
    mat = with_sensor(RUNNING, occupied=False)
    return run_until_due(mat, mat.rules.vacated_grace_s)


def chosen_program_gone() -> Scene:
    mat = reach(IDLE)
    del mat.rules.programs[mat.machine.selected]
    return Scene(mat, Press())


def preheats_used_up() -> Scene:
    mat = Watched()
    mat.machine = SessionMachine(mat.rules, mat.now, mat.today,
                                 preheats=(mat.now - 600.0, mat.now - 300.0))
    return Scene(reach(IDLE, mat), Start(Source.REMOTE))


def preheat_spent(event: Event) -> Scene:
    """A preheat that took what was left of the day: under a minute would remain."""
    mat = Watched(rules=Rules(daily_max_min=10.0))
    mat.machine.usage.minutes_today = 8.5
    reach(PREHEAT, mat)
    mat.run_for(40.0)
    return Scene(mat, event)


def heat_capped(state: State) -> Scene:
    """The dose stepped the heat down: more heat is refused for the rest of the session."""
    mat = Watched(rules=Rules(dose_max_cem43=0.1))
    mat.read(41.0)
    mat.send(Start(Source.REMOTE if state is PREHEAT else Source.LOCAL, "back"))
    while not any(isinstance(n, HeatSteppedDown) for n in mat.notices):
        mat.run_for(5.0, temp_c=41.0)
    assert mat.machine.state is state
    return Scene(mat, Adjust(Source.REMOTE, heat=HeatLevel.HIGH))


def not_clearable() -> Scene:
    mat = Watched()
    mat.machine = SessionMachine(mat.rules, mat.now, mat.today, fault="test: history",
                                 fault_clearable=False)
    mat.read(30.0)
    return Scene(mat, LongPress())


def fault_without_reading() -> Scene:
    mat = reach(FAULT)
    mat.run_for(5.0, temp_c=None)
    return Scene(mat, LongPress())


def fault_while_warm() -> Scene:
    mat = reach(FAULT)
    mat.run_for(3.0, temp_c=38.0)
    return Scene(mat, LongPress())


def fault_in_a_session() -> Scene:
    """A fault during a session: the session's cooldown is still to run when it clears."""
    mat = reach(RUNNING)
    mat.send(DriverFault("test: driver"))
    mat.read(30.0)
    return Scene(mat, LongPress())


GUARDED: dict[tuple[State, str, str], Callable[[], Scene]] = {
    **{(s, "Time", "_alarmed"): partial(silent_for, s, 10.0) for s in NOT_FAULT},
    **{(s, "Reading", "_alarmed"): partial(third_bad_reading, s) for s in NOT_FAULT},
    **{(s, "Readings", "_alarmed"): partial(third_bad_of_readings, s) for s in NOT_FAULT},
    **{(s, "Time", "_day_over"): partial(day_over, s) for s in ACTIVE},
    (PREHEAT, "Time", "_preheat_over"): preheat_over,
    (RUNNING, "Time", "_time_up"): time_up,
    (COOLDOWN, "Time", "_cooled_down"): cooled_down,
    **{(s, "SelectProgram", "_unknown_choice"): partial(
        sent, s, SelectProgram("sauna", Source.REMOTE)) for s in State},
    **{(s, "Adjust", "_bad_intensity"): partial(
        sent, s, Adjust(Source.REMOTE, intensity_pct=120.0)) for s in State},
    **{(s, "Adjust", "_bad_pace"): partial(
        sent, s, Adjust(Source.REMOTE, breaths_per_min=9.0)) for s in State},
    **{(s, "Adjust", "_bad_length"): partial(
        sent, s, Adjust(Source.REMOTE, duration_min=45.0)) for s in State},
    **{(s, "Adjust", "_above_heat_cap"): partial(heat_capped, s) for s in ACTIVE},
    **{(s, "Start", "_unknown_program"): partial(
        sent, s, Start(Source.REMOTE, "sauna")) for s in State},
    (IDLE, "Press", "_unknown_program"): chosen_program_gone,
    (IDLE, "Press", "_day_used_up"): partial(day_used_up, Press()),
    (IDLE, "Press", "_nobody_on"): partial(on_empty, IDLE, Press()),
    (IDLE, "Start", "_nobody_on"): partial(on_empty, IDLE, Start(Source.LOCAL)),
    (PREHEAT, "Press", "_nobody_on"): partial(on_empty, PREHEAT, Press()),
    (PREHEAT, "DoublePress", "_nobody_on"): partial(on_empty, PREHEAT, DoublePress()),
    (RUNNING, "Time", "_vacated_too_long"): vacated_too_long,
    (IDLE, "Start", "_bad_duration"): partial(sent, IDLE, Start(Source.LOCAL, None, 90.0)),
    (IDLE, "Start", "_day_used_up"): partial(day_used_up, Start(Source.LOCAL)),
    (IDLE, "Start", "_preheats_used_up"): preheats_used_up,
    (IDLE, "Start", "_remote"): partial(sent, IDLE, Start(Source.REMOTE)),
    (PREHEAT, "Press", "_preheat_spent"): partial(preheat_spent, Press()),
    (PREHEAT, "DoublePress", "_preheat_spent"): partial(preheat_spent, DoublePress()),
    (FAULT, "LongPress", "_not_clearable"): not_clearable,
    (FAULT, "LongPress", "_no_valid_reading"): fault_without_reading,
    (FAULT, "LongPress", "_too_warm"): fault_while_warm,
    (FAULT, "LongPress", "_cooldown_left"): fault_in_a_session,
}
"""How to meet each guard in each state it applies to; ALWAYS rows need nothing unusual."""

WALK = [(r, s) for r in TABLE for s in r.states]


def test_every_guarded_row_has_its_scenario_and_no_scenario_is_stale() -> None:
    guarded = {key(r, s) for r, s in WALK if r.guard is not ALWAYS}
    assert guarded == set(GUARDED)


def scene_for(row: Row, state: State) -> Scene:
    if row.guard is ALWAYS:
        return plain(state, row.event)
    return GUARDED[key(row, state)]()


@pytest.mark.parametrize(("row", "state"), WALK, ids=[f"{s}: {r}" for r, s in WALK])
def test_each_row_fires_where_it_says_and_lands_where_it_says(row: Row, state: State) -> None:
    scene = scene_for(row, state)
    mat, machine = scene.mat, scene.mat.machine
    assert machine.state is state
    before = machine.snapshot(mat.now)
    said = mat.send(scene.event)
    if row.event is Time:
        assert row in machine.fired, [str(r) for r in machine.fired]
    else:
        assert [r for r in machine.fired if r.event is not Time] == [row]
    assert machine.state is (row.target or state), said
    out = machine.outputs(mat.now)
    assert mat.pad.heater_demand is out.heater  # the heater obeys the outputs
    assert out.power is (machine.state in ACTIVE)
    if machine.state not in ACTIVE:
        assert not out.heater and out.vibration == 0.0
    if isinstance(row.action, Refuse):
        assert any(isinstance(n, Refused) and n.command == row.action.command for n in said)
        assert machine.snapshot(mat.now) == before  # a refused command changes nothing


# --- random use moves only along rows -------------------------------------------------

EVENTS = st.one_of(
    st.sampled_from([Press(), DoublePress(), LongPress(), Tick(), ClockStepped(),
                     Stop(Source.REMOTE), Stop(Source.LOCAL), DriverFault("test: driver"),
                     SelectProgram("neck", Source.REMOTE), SelectProgram("sauna", Source.LOCAL),
                     Adjust(Source.REMOTE, heat=HeatLevel.HIGH, duration_min=2.0),
                     Adjust(Source.REMOTE, intensity_pct=150.0, duration_min=45.0),
                     Adjust(Source.REMOTE, breaths_per_min=4.0),
                     Adjust(Source.REMOTE, breaths_per_min=3.5),
                     Occupancy(True), Occupancy(False)]),
    st.builds(Start, st.sampled_from(Source),
              st.sampled_from([None, "neck", "deep", "sauna"]),
              st.sampled_from([None, 1.0, 0.2, 90.0])),
    st.builds(lambda mat_c, mat2_c: Readings((Reading("mat", mat_c), Reading("mat2", mat2_c))),
              st.sampled_from([30.0, 46.0, None]), st.sampled_from([30.0, 46.0, None])),
)
RUNS = st.tuples(st.sampled_from([1.0, 10.0, 60.0, 400.0]),
                 st.sampled_from([SIMULATED, SIMULATED, SIMULATED, 30.0, 38.0, 46.0, None]))
"""Time passing: readings every 2 s, of the simulated pad, of one value, or none at all."""


@given(start=st.sampled_from(WALK), actions=st.lists(st.one_of(EVENTS, RUNS), max_size=20))
def test_from_any_reachable_state_any_use_moves_only_along_rows(
    start: tuple[Row, State], actions: list[object]
) -> None:
    """Each row's scene is a reachable state (and its event fires the row); from there,
    every step, readings and ticks included, is checked by `Watched`."""
    scene = scene_for(*start)
    mat = scene.mat
    assert isinstance(mat, Watched)
    mat.send(scene.event)
    for action in actions:
        if isinstance(action, tuple):
            seconds, temp_c = action
            mat.run_for(seconds, temp_c=temp_c, every_s=2.0)
        else:
            assert isinstance(action, Press | DoublePress | LongPress | Tick | ClockStepped
                              | Stop | DriverFault | SelectProgram | Adjust | Start
                              | Occupancy | Readings)
            mat.send(action)
