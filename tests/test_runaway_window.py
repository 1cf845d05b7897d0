"""The runaway guard's lowest reading of its window, kept as a monotonic queue, is the
lowest a scan of every reading in the window finds (review, issue #17: the scan cost
0.2 ms a step, and grew with the rate of events, not of readings)."""

from hypothesis import example, given
from hypothesis import strategies as st

from matpi.core.supervision import BODY_WARMTH_C, RunawayGuard

SETTLE_S, WINDOW_S, RISE_C = 5.0, 30.0, 1.0


class ScanningGuard:
    """The guard as it was: every reading of the window kept, and scanned at each step."""

    def __init__(self) -> None:
        self.off_since: float | None = None
        self.recent: list[tuple[float, float]] = []

    def update(self, temp_c: float | None, heater_on: bool, now: float) -> str | None:
        if heater_on or temp_c is None:
            self.off_since = None
            self.recent.clear()
            return None
        if self.off_since is None:
            self.off_since = now
        if now - self.off_since < SETTLE_S:
            return None
        self.recent = [(t, c) for t, c in self.recent if now - t <= WINDOW_S]
        self.recent.append((now, temp_c))
        lowest_c = min(c for _, c in self.recent)
        if temp_c > BODY_WARMTH_C and temp_c - lowest_c >= RISE_C:
            return f"{lowest_c:.1f} -> {temp_c:.1f}"
        return None


steps = st.lists(st.tuples(
    st.sampled_from([0.0, 0.05, 0.5, 1.0, 7.0, 31.0]),  # same instant, a flood, a gap
    st.one_of(st.none(), st.sampled_from([30.0, 32.9, 33.5, 34.0, 34.5, 36.0]),
              st.floats(30.0, 40.0).map(lambda c: round(c, 1))),
    st.sampled_from([False, False, False, True]),  # the heater: mostly off
), max_size=300)

A_LOW_READING_LEAVES_THE_WINDOW = [(0.0, 30.0, False), (7.0, 30.0, False),
                                   (31.0, 34.0, False), (1.0, 34.5, False)]
"""Settled at 30 °C, then 34 °C after a gap longer than the window: no rise within it."""


@example(A_LOW_READING_LEAVES_THE_WINDOW)
@given(steps)
def test_the_lowest_of_the_window_is_the_lowest_a_scan_finds(sequence: list) -> None:
    guard, scanning = RunawayGuard(SETTLE_S, WINDOW_S, RISE_C), ScanningGuard()
    now = 0.0
    for dt, temp_c, heater_on in sequence:
        now += dt
        said = guard.update(temp_c, heater_on, now)
        expected = scanning.update(temp_c, heater_on, now)
        assert (said is None) == (expected is None), (now, said, expected)
        if said is not None:
            assert expected is not None and expected in said


def test_a_flood_of_steps_keeps_the_queue_short() -> None:
    """A pad that only warms keeps one reading (the window's lowest) and the newest; a
    thousand events a second at one temperature keep one."""
    guard = RunawayGuard(SETTLE_S, WINDOW_S, RISE_C)
    for step in range(10_000):
        guard.update(30.0, False, 10.0 + step / 1000)
    assert len(guard._lows) == 1
