"""The vibration patterns on the pure core, `breathe` above all: its period, its
inhale:exhale share, its bounds, its on/off form for a relay motor, and how the
session machine and a relay motor follow it."""

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import Mat
from matpi.core.events import Adjust, Adjusted, Breath, Refused, Source, Start
from matpi.core.patterns import (
    DEFAULT_BREATHS_PER_MIN,
    INHALE_SHARE,
    MAX_BREATHS_PER_MIN,
    MIN_BREATHS_PER_MIN,
    Pattern,
    breath_phase,
    next_breath_edge,
    vibration_duty,
)
from matpi.core.programs import BUILTIN_PROGRAMS, HeatLevel
from matpi.core.rules import CeilingError, Rules

PACES = st.floats(MIN_BREATHS_PER_MIN, MAX_BREATHS_PER_MIN)
TIMES = st.floats(0.0, 3600.0)
INTENSITIES = st.floats(0.0, 100.0)


def level(elapsed_s: float, pace: float = DEFAULT_BREATHS_PER_MIN, *, on_off: bool = False) -> (
    float
):
    """The breathe pattern at full intensity, unrounded enough for the shape tests."""
    return vibration_duty(Pattern.BREATHE, 100.0, elapsed_s, breaths_per_min=pace, on_off=on_off)


def test_six_breaths_a_minute_is_the_default_and_the_evening_program_breathes() -> None:
    assert DEFAULT_BREATHS_PER_MIN == 6.0
    assert INHALE_SHARE == 0.4
    evening = BUILTIN_PROGRAMS["evening"]
    assert (evening.pattern, evening.breaths_per_min) == (Pattern.BREATHE, 6.0)
    assert all(p.breaths_per_min == 6.0 for p in BUILTIN_PROGRAMS.values())


def test_at_six_a_minute_a_breath_is_4_s_in_and_6_s_out() -> None:
    assert level(0.0) == 0.0
    assert level(2.0) == 0.5  # half way in
    assert level(4.0) == 1.0  # top of the inhale
    assert level(7.0) == 0.5  # half way out
    assert level(10.0) == 0.0  # the next breath starts
    rising = [level(t / 10) for t in range(0, 41)]
    falling = [level(t / 10) for t in range(40, 101)]
    assert rising == sorted(rising) and falling == sorted(falling, reverse=True)


@given(PACES, TIMES)
def test_the_period_is_60_over_the_pace(pace: float, elapsed_s: float) -> None:
    period_s = 60.0 / pace
    assert level(elapsed_s + period_s, pace) == pytest.approx(level(elapsed_s, pace), abs=0.011)


@given(PACES, st.integers(0, 100))
def test_each_breath_starts_at_0_and_peaks_at_the_end_of_its_inhale(pace: float, n: int) -> (
    None
):
    period_s = 60.0 / pace
    start_s = n * period_s
    assert level(start_s, pace) == pytest.approx(0.0, abs=0.011)
    assert level(start_s + 0.4 * period_s, pace) == pytest.approx(1.0, abs=0.011)
    assert breath_phase(start_s + 0.39 * period_s, pace)[0]
    assert not breath_phase(start_s + 0.41 * period_s, pace)[0]


@given(PACES, TIMES, INTENSITIES, st.booleans())
def test_level_and_duty_stay_within_their_bounds(pace: float, elapsed_s: float,
                                                intensity: float, on_off: bool) -> None:
    raw = level(elapsed_s, pace)
    assert 0.0 <= raw <= 1.0
    duty = vibration_duty(Pattern.BREATHE, intensity, elapsed_s, breaths_per_min=pace,
                          on_off=on_off)
    assert 0.0 <= duty <= round(intensity / 100.0, 2)


@given(PACES, TIMES)
def test_the_inhale_is_40_percent_of_a_breath(pace: float, elapsed_s: float) -> None:
    period_s = 60.0 / pace
    inhaling, share = breath_phase(elapsed_s, pace)
    into_s = elapsed_s % period_s
    assert 0.0 <= share <= 1.0
    if inhaling:
        assert into_s == pytest.approx(share * 0.4 * period_s, abs=1e-6)
    else:
        assert into_s == pytest.approx(0.4 * period_s + share * 0.6 * period_s, abs=1e-6)


@given(PACES, TIMES)
def test_on_off_form_is_on_for_the_inhale_and_off_for_the_exhale(pace: float,
                                                                 elapsed_s: float) -> None:
    inhaling = breath_phase(elapsed_s, pace)[0]
    assert level(elapsed_s, pace, on_off=True) == (1.0 if inhaling else 0.0)


@pytest.mark.parametrize("pace", [MIN_BREATHS_PER_MIN, 6.0, MAX_BREATHS_PER_MIN])
def test_inhale_and_exhale_each_outlast_a_relays_2_s(pace: float) -> None:
    period_s = 60.0 / pace
    assert INHALE_SHARE * period_s > 2.0 and (1 - INHALE_SHARE) * period_s > 2.0
    if pace == 8.0:
        assert (period_s, INHALE_SHARE * period_s) == (7.5, 3.0)


def test_the_other_patterns_ignore_the_pace_and_the_on_off_form() -> None:
    for pattern in Pattern:
        if pattern is Pattern.BREATHE:
            continue
        for t in (0.0, 3.3, 17.0, 45.5):
            shown = {vibration_duty(pattern, 60.0, t, breaths_per_min=pace, on_off=on_off)
                     for pace in (4.0, 8.0) for on_off in (False, True)}
            assert len(shown) == 1, (pattern, t)


@given(PACES, TIMES)
def test_next_breath_edge_is_the_next_inhale_or_exhale_switch(pace: float,
                                                              elapsed_s: float) -> None:
    edge_s = next_breath_edge(elapsed_s, pace)
    assert elapsed_s < edge_s <= elapsed_s + 0.6 * 60.0 / pace + 1e-9
    before = breath_phase(elapsed_s, pace)[0]
    assert breath_phase((elapsed_s + edge_s) / 2, pace)[0] == before or \
        edge_s - elapsed_s < 1e-6
    assert breath_phase(edge_s + 1e-6, pace)[0] != breath_phase(edge_s - 1e-6, pace)[0]


# --- the session machine and the pace ------------------------------------------------

def relay_mat() -> Mat:
    return Mat(rules=Rules(motor_kind="relay"))


def test_a_running_evening_session_breathes_smoothly_on_a_pwm_motor(mat: Mat) -> None:
    mat.send(Start(Source.LOCAL, "evening"))
    duties = []
    for _ in range(20):
        mat.run_for(0.5, temp_c=30.0, every_s=0.5)
        duties.append(mat.machine.outputs(mat.now).vibration)
    assert max(duties) == 0.4 and min(duties) == 0.0  # 40 % intensity
    assert len(set(duties)) > 6  # in between, not on/off


def test_on_a_relay_motor_the_session_is_on_for_the_inhale_and_wakes_at_each_edge() -> None:
    mat = relay_mat()
    mat.send(Start(Source.LOCAL, "evening"))
    started = mat.now
    assert mat.machine.outputs(mat.now).vibration == 0.4
    assert mat.machine.next_deadline(mat.now) <= started + 1.0
    mat.run_for(3.9, temp_c=30.0, every_s=0.1)
    assert mat.machine.outputs(mat.now).vibration == 0.4
    mat.run_for(0.2, temp_c=30.0, every_s=0.1)
    assert mat.machine.outputs(mat.now).vibration == 0.0
    # 0.9 s from the end of this exhale (at 10 s) the next deadline is that edge
    mat.run_for(5.0, temp_c=30.0, every_s=0.1)
    assert mat.machine.next_deadline(mat.now) == pytest.approx(started + 10.0)


def test_the_pace_follows_the_adjust_and_the_snapshot_shows_it(mat: Mat) -> None:
    said = mat.send(Adjust(Source.REMOTE, breaths_per_min=8.0))
    assert said == [Adjusted(HeatLevel.LOW, Pattern.STEADY, 30.0, 5.0, 8.0)]
    assert mat.machine.snapshot(mat.now).breaths_per_min == 8.0
    mat.send(Start(Source.LOCAL, "evening"))
    assert mat.machine.snapshot(mat.now).breaths_per_min == 6.0  # the evening program's own
    mat.send(Adjust(Source.REMOTE, breaths_per_min=4.0))  # during the session: at once
    mat.run_for(6.0, temp_c=30.0, every_s=0.5)
    assert mat.machine.outputs(mat.now).vibration == 0.4  # 6 s: the top of a 15 s breath
    assert mat.machine.snapshot(mat.now).breaths_per_min == 4.0


def test_the_led_and_the_page_get_the_breath_only_while_breathe_runs(mat: Mat) -> None:
    """Outputs.breath (the LED's pace) is fixed for the session; Snapshot.breath_s is
    where the breath is now, and never makes two snapshots differ on its own."""
    assert mat.machine.outputs(mat.now).breath is None
    assert mat.machine.snapshot(mat.now).breath_s is None
    mat.send(Start(Source.LOCAL, "evening"))
    started = mat.now
    assert mat.machine.outputs(mat.now).breath == Breath(started, 6.0)
    mat.run_for(12.5, temp_c=30.0, every_s=0.5)
    first = mat.machine.snapshot(mat.now)
    assert first.breath_s == pytest.approx(2.5)  # 12.5 s: 2.5 s into the second breath
    later = mat.machine.snapshot(mat.now + 0.25)
    assert later.breath_s == pytest.approx(2.75)
    assert replace(first, breath_s=9.0) == first
    assert mat.machine.outputs(mat.now).breath == Breath(started, 6.0)
    mat.send(Adjust(Source.REMOTE, pattern=Pattern.WAVE))
    assert mat.machine.outputs(mat.now).breath is None
    assert mat.machine.snapshot(mat.now).breath_s is None


def test_a_steady_session_has_no_breath(mat: Mat) -> None:
    mat.send(Start(Source.LOCAL, "back"))
    mat.run_for(5.0, temp_c=30.0)
    assert mat.machine.outputs(mat.now).breath is None
    assert mat.machine.snapshot(mat.now).breath_s is None


@pytest.mark.parametrize("pace", [3.5, 8.5, 0.0, -6.0, math.nan, math.inf])
def test_a_pace_out_of_range_is_refused_and_changes_nothing(mat: Mat, pace: float) -> None:
    before = mat.machine.snapshot(mat.now)
    [refused] = mat.send(Adjust(Source.REMOTE, breaths_per_min=pace, intensity_pct=50.0))
    assert isinstance(refused, Refused) and refused.command == "breaths"
    assert "must be 4 to 8" in refused.reason
    assert mat.machine.snapshot(mat.now) == before


@pytest.mark.parametrize("pace", [3.9, 8.1, math.nan])
def test_rules_refuse_a_program_with_a_pace_out_of_range(pace: float) -> None:
    programs = dict(BUILTIN_PROGRAMS)
    programs["evening"] = replace(programs["evening"], breaths_per_min=pace)
    with pytest.raises(CeilingError, match="program evening breaths_per_min"):
        Rules(programs=programs)


def test_rules_refuse_an_unknown_motor_kind() -> None:
    with pytest.raises(CeilingError, match="motor_kind 'servo' must be pwm or relay"):
        Rules(motor_kind="servo")
