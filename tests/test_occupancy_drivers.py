"""The occupancy sensor's drivers: the GPIO input on gpiozero's MockFactory, the
simulated one with its stuck faults, and the config that turns it on."""

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import HandClock
from matpi.config.load import load_config
from matpi.core.errors import ConfigError
from matpi.core.events import Event, Occupancy
from matpi.drivers import oneshot
from matpi.drivers.occupancy import OccupancySensor
from matpi.drivers.settled import SettledLevel
from matpi.drivers.sim import SimFault, SimulatedMat

DEBOUNCE_S = 0.05
WAIT_S = 3.0


@pytest.fixture
def events() -> "queue.Queue[Event]":
    return queue.Queue()


def next_event(events: "queue.Queue[Event]") -> Event:
    return events.get(timeout=WAIT_S)


def quiet(events: "queue.Queue[Event]") -> bool:
    """Nothing posted for a few debounce times."""
    time.sleep(DEBOUNCE_S * 6)
    return events.empty()


def test_the_first_settled_level_is_posted_so_the_core_learns_it(
    factory: Any, events: "queue.Queue[Event]"
) -> None:
    with OccupancySensor(17, events.put, debounce_s=0.5, pin_factory=factory):
        factory.pin(17).drive_low()  # closed to GND at start-up: someone is on the mat
        assert next_event(events) == Occupancy(True)
        assert quiet(events)


def test_an_open_contact_is_an_empty_mat_with_the_pull_up(
    factory: Any, events: "queue.Queue[Event]"
) -> None:
    with OccupancySensor(17, events.put, debounce_s=DEBOUNCE_S, pin_factory=factory):
        assert next_event(events) == Occupancy(False)
        pin = factory.pin(17)
        pin.drive_low()
        assert next_event(events) == Occupancy(True)
        pin.drive_high()
        assert next_event(events) == Occupancy(False)


def test_active_high_for_a_comparator_output(factory: Any, events: "queue.Queue[Event]") -> None:
    with OccupancySensor(17, events.put, active_high=True, debounce_s=DEBOUNCE_S,
                         pin_factory=factory):
        assert next_event(events) == Occupancy(False)  # pulled down: a loose wire is empty
        factory.pin(17).drive_high()
        assert next_event(events) == Occupancy(True)


def test_bounces_shorter_than_the_debounce_post_nothing(
    factory: Any, events: "queue.Queue[Event]"
) -> None:
    with OccupancySensor(17, events.put, debounce_s=DEBOUNCE_S, pin_factory=factory):
        assert next_event(events) == Occupancy(False)
        pin = factory.pin(17)
        for _ in range(5):  # someone shifting their weight on the edge of the mat
            pin.drive_low()
            time.sleep(0.002)
            pin.drive_high()
            time.sleep(0.002)
        assert quiet(events)
        pin.drive_low()
        time.sleep(0.002)
        pin.drive_high()
        time.sleep(0.002)
        pin.drive_low()
        assert next_event(events) == Occupancy(True)
        assert quiet(events)


def test_after_close_nothing_is_posted_and_the_pin_is_released(
    factory: Any, events: "queue.Queue[Event]"
) -> None:
    sensor = OccupancySensor(17, events.put, debounce_s=DEBOUNCE_S, pin_factory=factory)
    assert next_event(events) == Occupancy(False)
    factory.pin(17).drive_low()
    sensor.close()
    assert quiet(events)
    OccupancySensor(17, events.put, debounce_s=DEBOUNCE_S, pin_factory=factory).close()


class HandTimers:
    """threading.Timer for `OneShot`, fired by the test: a timer fired after it was
    cancelled is how a late timer thread looks."""

    def __init__(self) -> None:
        self.started: list[tuple[Callable[..., None], tuple[Any, ...]]] = []

    def __call__(self, delay_s: float, fire: Callable[..., None],
                 args: tuple[Any, ...] = ()) -> "HandTimers":
        self.started.append((fire, args))
        return self

    daemon = False

    def start(self) -> None:
        pass

    def cancel(self) -> None:
        pass

    def fire(self, index: int) -> None:
        action, args = self.started[index]
        action(*args)


@pytest.fixture
def timers(monkeypatch: pytest.MonkeyPatch) -> Iterator[HandTimers]:
    hand = HandTimers()
    monkeypatch.setattr(oneshot.threading, "Timer", hand)
    yield hand


def test_a_late_timer_of_an_earlier_edge_posts_nothing(
    timers: HandTimers, events: "queue.Queue[Event]"
) -> None:
    """Only a level that held for the whole debounce counts: the first edge's timer, fired
    late, must not post the level the second edge has not let settle yet."""
    level = [True]
    settled = SettledLevel(lambda: level[0], events.put, DEBOUNCE_S)
    settled.changed()
    level[0] = False
    settled.changed()
    timers.fire(0)
    assert events.empty()
    timers.fire(1)
    assert events.get_nowait() == Occupancy(False)


def test_an_edge_after_close_starts_no_timer(
    timers: HandTimers, events: "queue.Queue[Event]"
) -> None:
    """The simulator keeps calling its watchers after the mat is closed."""
    settled = SettledLevel(lambda: True, events.put, DEBOUNCE_S)
    settled.close()
    settled.changed()
    assert timers.started == []


def test_a_post_held_up_after_its_read_is_not_overtaken_by_a_later_level(
    timers: HandTimers
) -> None:
    """Review: a timer thread held up between reading `occupied` and posting it let the
    later `empty` reach the controller first, which then heated a paused session again."""
    level = [True]
    posted: list[Event] = []
    held, release = threading.Event(), threading.Event()

    def post(event: Event) -> None:
        if not held.is_set():  # the first post: its thread is held up here
            held.set()
            release.wait(WAIT_S)
        posted.append(event)

    settled = SettledLevel(lambda: level[0], post, DEBOUNCE_S)
    settled.changed()
    first = threading.Thread(target=timers.fire, args=(0,))
    first.start()
    assert held.wait(WAIT_S)
    level[0] = False  # the person gets up meanwhile
    second = threading.Thread(target=lambda: (settled.changed(), timers.fire(1)))
    second.start()
    second.join(0.3)  # unlocked, the later level would be posted by now
    release.set()
    first.join(WAIT_S)
    second.join(WAIT_S)
    assert posted == [Occupancy(True), Occupancy(False)]


def test_the_simulated_sensor_reads_the_person_and_its_stuck_faults() -> None:
    mat = SimulatedMat(HandClock(0.0))
    events: queue.Queue[Event] = queue.Queue()
    level = SettledLevel(mat.occupancy_sensed, events.put, DEBOUNCE_S)
    mat.watch_occupancy(level.changed)
    level.changed()
    try:
        assert next_event(events) == Occupancy(False)
        mat.set_person(True)
        assert next_event(events) == Occupancy(True) and mat.person_lying
        mat.inject(SimFault.OCCUPANCY_STUCK_EMPTY)
        assert next_event(events) == Occupancy(False)
        mat.inject(SimFault.OCCUPANCY_STUCK_EMPTY, active=False)
        assert next_event(events) == Occupancy(True)
        mat.set_person(False)
        assert next_event(events) == Occupancy(False)
        mat.inject(SimFault.OCCUPANCY_STUCK_OCCUPIED)
        assert next_event(events) == Occupancy(True)
        assert not mat.person_lying  # the body the pad model feels is the true one
    finally:
        level.close()


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "matpi.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_without_an_occupancy_section_there_is_no_sensor(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path, ""))
    assert config.hardware.occupancy.pin is None and not config.rules.occupancy_sensor


def test_a_pin_turns_the_sensor_on_with_its_settings(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path, "[occupancy]\npin = 17\nactive_high = true\n"
                                               "debounce_ms = 500\ngrace_s = 90\n"))
    occupancy = config.hardware.occupancy
    assert (occupancy.pin, occupancy.active_high, occupancy.debounce_s) == (17, True, 0.5)
    assert config.rules.occupancy_sensor and config.rules.vacated_grace_s == 90.0


@pytest.mark.parametrize(("text", "message"), [
    ("grace_s = 301", "[occupancy] grace_s = 301: must be at most 300"),
    ("grace_s = 2", "[occupancy] grace_s = 2: must be at least 5"),
    ("debounce_ms = 5000", "[occupancy] debounce_ms = 5000: must be at most 2000"),
    ("pin = 27", "[occupancy] pin = 27: GPIO27 is already used by [button] pin"),
    ("pin = 17\nlevel = 1", "[occupancy] level: unknown key"),
])
def test_a_wrong_setting_names_the_key_the_value_and_what_is_allowed(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(config_file(tmp_path, f"[occupancy]\n{text}\n"))
    assert message in str(raised.value)
