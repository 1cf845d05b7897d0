"""The status LED breathing in step with the motor, on gpiozero's mock PWM pins.

A hand-moved clock makes every level exact: after the clock is set, the test
waits (with a deadline) until the animation has read it twice, so the level
of the first of those reads has been written, then compares it with
`breath_level`. Whether an animation still runs is told by the clock's reads.
"""

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from matpi.core.events import Breath, Led
from matpi.core.patterns import breath_level
from matpi.drivers.led import BREATH_STEP_S, StatusLed

DEADLINE_S = 10.0
"""Generous: a loaded 2-core machine may starve the animation thread for a while."""
QUIET_S = 10 * BREATH_STEP_S
"""Long enough that a running animation would read the clock several times."""
ORIGIN = 1000.0
PIN = 12


class FakeClock:
    """The controller's clock, moved by the test; counts its reads."""

    def __init__(self, now: float = ORIGIN) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


@pytest.fixture
def pwm_factory() -> Iterator[Any]:
    mock = MockFactory(pin_class=MockPWMPin)
    yield mock
    mock.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def threads_before() -> set[threading.Thread]:
    """The threads alive before any LED was built (`build` asks for it first)."""
    return set(threading.enumerate())


@pytest.fixture
def build(
    threads_before: set[threading.Thread], pwm_factory: Any, clock: FakeClock
) -> Iterator[Callable[..., StatusLed]]:
    """Builds StatusLeds on PIN with the fake clock; closes them even if a test fails,
    so no animation outlives its test to write to a released pin."""
    built: list[StatusLed] = []

    def make(**options: Any) -> StatusLed:
        built.append(StatusLed(PIN, pin_factory=pwm_factory, clock=clock, **options))
        return built[-1]

    yield make
    for led in built:
        led.close()


@pytest.fixture
def status(build: Callable[..., StatusLed]) -> StatusLed:
    return build()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {DEADLINE_S} s")
        time.sleep(0.005)


def level_at(clock: FakeClock, pin: Any, elapsed_s: float) -> float:
    """The LED's level once the animation has written one for `elapsed_s` after ORIGIN."""
    clock.now = ORIGIN + elapsed_s
    reads = clock.reads
    wait_until(lambda: clock.reads >= reads + 2, "animation step")
    return float(pin.state)


def still_after_moving(clock: FakeClock, pin: Any) -> bool:
    """True if, while the clock moves on, nothing reads it and the pin keeps its history."""
    reads, states = clock.reads, len(pin.states)
    for _ in range(5):
        clock.now += 1.3
        time.sleep(QUIET_S / 5)
    return clock.reads == reads and len(pin.states) == states


def new_threads(before: set[threading.Thread]) -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t not in before and t.is_alive()}


@pytest.mark.parametrize("elapsed_s", [0.0, 2.0, 4.0, 7.0, 9.5, 10.0, 14.0])
def test_running_with_a_breath_follows_breath_level(
    status: StatusLed, pwm_factory: Any, clock: FakeClock, elapsed_s: float
) -> None:
    status.show(Led.RUNNING, Breath(ORIGIN, 6.0))
    level = level_at(clock, pwm_factory.pin(PIN), elapsed_s)
    assert level == pytest.approx(breath_level(elapsed_s, 6.0), abs=1e-9)


def test_breath_levels_are_dark_at_a_breath_start_full_after_the_inhale_and_half_mid_exhale(
    status: StatusLed, pwm_factory: Any, clock: FakeClock
) -> None:
    pin = pwm_factory.pin(PIN)
    status.show(Led.RUNNING, Breath(ORIGIN, 6.0))  # 10 s breaths, 4 s inhale
    assert status.showing == Led.RUNNING
    assert level_at(clock, pin, 0.0) == pytest.approx(0.0, abs=1e-9)
    assert level_at(clock, pin, 4.0) == pytest.approx(1.0, abs=1e-9)
    assert level_at(clock, pin, 7.0) == pytest.approx(0.5, abs=1e-9)
    assert level_at(clock, pin, 10.0) == pytest.approx(0.0, abs=1e-9)


def test_a_new_pace_changes_the_curve_and_leaves_one_animation(
    status: StatusLed, threads_before: set[threading.Thread], pwm_factory: Any, clock: FakeClock
) -> None:
    pin = pwm_factory.pin(PIN)
    status.show(Led.RUNNING, Breath(ORIGIN, 6.0))
    assert level_at(clock, pin, 4.0) == pytest.approx(1.0, abs=1e-9)
    status.show(Led.RUNNING, Breath(ORIGIN, 4.0))  # 15 s breaths, 6 s inhale
    assert level_at(clock, pin, 4.0) == pytest.approx(breath_level(4.0, 4.0), abs=1e-9)
    assert level_at(clock, pin, 4.0) == pytest.approx(0.75, abs=1e-9)
    assert level_at(clock, pin, 6.0) == pytest.approx(1.0, abs=1e-9)
    assert len(new_threads(threads_before)) == 1


def test_a_new_origin_restarts_the_breath_there(
    status: StatusLed, pwm_factory: Any, clock: FakeClock
) -> None:
    pin = pwm_factory.pin(PIN)
    status.show(Led.RUNNING, Breath(ORIGIN, 6.0))
    assert level_at(clock, pin, 4.0) == pytest.approx(1.0, abs=1e-9)
    status.show(Led.RUNNING, Breath(ORIGIN + 4.0, 6.0))
    assert level_at(clock, pin, 4.0) == pytest.approx(0.0, abs=1e-9)


def test_cooldown_stops_the_breathing(
    status: StatusLed, pwm_factory: Any, clock: FakeClock
) -> None:
    pin = pwm_factory.pin(PIN)
    status.show(Led.RUNNING, Breath(ORIGIN, 6.0))
    level_at(clock, pin, 2.0)
    status.show(Led.COOLDOWN)
    assert status.showing == Led.COOLDOWN
    reads = clock.reads
    for _ in range(5):
        clock.now += 1.3
        time.sleep(QUIET_S / 5)
    assert clock.reads == reads  # the pulse goes on, but nothing follows the clock


def test_running_without_a_breath_is_solid_on_and_writes_nothing_stale(
    status: StatusLed, pwm_factory: Any, clock: FakeClock
) -> None:
    pin = pwm_factory.pin(PIN)
    status.show(Led.RUNNING, Breath(ORIGIN, 6.0))
    assert level_at(clock, pin, 2.0) == pytest.approx(0.5, abs=1e-9)
    status.show(Led.RUNNING)
    assert pin.state == 1
    assert still_after_moving(clock, pin)
    assert pin.state == 1


def test_the_same_show_again_leaves_the_animation_alone(
    status: StatusLed, threads_before: set[threading.Thread], pwm_factory: Any, clock: FakeClock
) -> None:
    pin = pwm_factory.pin(PIN)
    status.show(Led.RUNNING, Breath(ORIGIN, 6.0))
    level_at(clock, pin, 1.0)
    animation = new_threads(threads_before)
    assert len(animation) == 1
    status.show(Led.RUNNING, Breath(ORIGIN, 6.0))  # equal, not the same object
    assert new_threads(threads_before) == animation
    assert level_at(clock, pin, 3.0) == pytest.approx(breath_level(3.0, 6.0), abs=1e-9)
    assert new_threads(threads_before) == animation


def test_close_stops_the_breathing_and_leaves_no_thread(
    build: Callable[..., StatusLed],
    threads_before: set[threading.Thread],
    pwm_factory: Any,
    clock: FakeClock,
) -> None:
    status = build(buzzer_pin=16)
    pin = pwm_factory.pin(PIN)
    status.show(Led.RUNNING, Breath(ORIGIN, 6.0))
    assert level_at(clock, pin, 2.0) == pytest.approx(0.5, abs=1e-9)
    assert new_threads(threads_before)
    status.close()
    assert pin.function == "input"
    assert still_after_moving(clock, pin)
    assert not new_threads(threads_before)


def test_an_active_low_led_breathes_inverted(
    build: Callable[..., StatusLed], pwm_factory: Any, clock: FakeClock
) -> None:
    status = build(active_high=False)
    pin = pwm_factory.pin(PIN)
    status.show(Led.RUNNING, Breath(ORIGIN, 6.0))
    assert level_at(clock, pin, 4.0) == pytest.approx(0.0, abs=1e-9)
    assert level_at(clock, pin, 0.0) == pytest.approx(1.0, abs=1e-9)
