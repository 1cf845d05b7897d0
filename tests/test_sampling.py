"""The thermometer poller with the controller's loop: what reads at once is read on its thread.

A real `NetLoop` is driven by a thread of the test, as the controller drives it in the
daemon; every wait has a timeout.
"""

import contextlib
import itertools
import queue
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import pytest

from conftest import HandClock, wait_for
from matpi.config.settings import Config
from matpi.core import limits
from matpi.core.events import Event, Notice, Press, Reading, Readings, Snapshot, State
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.drivers.base import SensorUnreadable
from matpi.drivers.clock import Clock
from matpi.drivers.polling import ThermometerPoller
from matpi.remote.netloop import NetLoop
from matpi.service.app import Mat as Assembled
from matpi.service.app import assemble

INTERVAL_S = 0.02
BAD_READS = ("no value", "unreadable", "out of range")
"""Reads the core counts as bad: an error reading, none at all, a value no mat reads."""
RESTING_S = 30.0
"""A resting pace no test sits out: a read that comes within it came from the full pace."""
CAN_HEAT = {State.PREHEAT, State.RUNNING}
"""The states read at the full pace: written out here, not the poller's own set."""


@dataclass
class Recording:
    """A thermometer that notes the thread of every read, and raises on the reads asked."""

    name: str
    reads_at_once: bool
    raise_on: set[int] = field(default_factory=set)
    bad_on: dict[int, str] = field(default_factory=dict)
    """Reads (counted from 1) that go wrong, and how: see `BAD_READS`."""
    threads: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def read(self) -> Reading:
        self.threads.append(threading.get_ident())
        self.times.append(time.monotonic())
        if len(self.threads) in self.raise_on:
            raise OSError("test: bus error")
        bad = self.bad_on.get(len(self.threads))
        if bad == "unreadable":
            raise SensorUnreadable("test: out of file descriptors")
        if bad == "no value":
            return Reading(self.name, None, "test: CRC error")
        if bad == "out of range":
            return Reading(self.name, 85.0)  # a DS18B20's power-on value
        return Reading(self.name, 30.0)

    def close(self) -> None:
        pass


class Driven:
    """A NetLoop driven by its own thread, as the controller drives it: keeps every item."""

    def __init__(self) -> None:
        self.loop = NetLoop()
        self.items: list[object] = []
        self.thread_id = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drive, name="test-loop", daemon=True)
        self._thread.start()
        wait_for(lambda: self.thread_id != 0, timeout_s=5.0, what="the loop's thread")

    def _drive(self) -> None:
        self.thread_id = threading.get_ident()
        while not self._stop.is_set():
            with contextlib.suppress(queue.Empty):
                self.items.append(self.loop.get(timeout=0.05))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        assert not self._thread.is_alive()
        self.loop.close()


@pytest.fixture
def driven() -> Iterator[Driven]:
    loop = Driven()
    yield loop
    loop.stop()


def sampled(driven: Driven) -> list[Readings]:
    return [item for item in list(driven.items) if isinstance(item, Readings)]


def test_what_reads_at_once_is_one_event_read_on_the_loops_thread(driven: Driven) -> None:
    mat, mat2 = Recording("mat", True), Recording("mat2", True)
    slow = Recording("slow", False)
    poller = ThermometerPoller([mat, slow, mat2], driven.loop.put, Clock(), INTERVAL_S,
                               timers=driven.loop)
    poller.start()
    try:
        wait_for(lambda: len(sampled(driven)) >= 3 and len(slow.threads) >= 3,
                 timeout_s=5.0, what="three samples of each kind")
    finally:
        poller.close()
    for event in sampled(driven):
        assert [r.sensor for r in event.readings] == ["mat", "mat2"]
    assert set(mat.threads) == set(mat2.threads) == {driven.thread_id}
    # The sensor that blocks stays on a thread of its own and comes a reading at a time.
    assert driven.thread_id not in slow.threads
    assert Reading("slow", 30.0) in driven.items


def test_without_a_sensor_that_blocks_no_thread_is_started(driven: Driven) -> None:
    before = set(threading.enumerate())
    poller = ThermometerPoller([Recording("mat", True)], driven.loop.put, Clock(), INTERVAL_S,
                               timers=driven.loop)
    poller.start()
    try:
        wait_for(lambda: len(sampled(driven)) >= 2, timeout_s=5.0, what="two samples")
        assert set(threading.enumerate()) <= before
    finally:
        poller.close()


def test_without_the_loop_every_sensor_is_read_on_the_pollers_thread() -> None:
    """Tests and benches that wait on a plain queue keep the thread for every sensor."""
    posted: queue.SimpleQueue[object] = queue.SimpleQueue()
    mat = Recording("mat", True)
    poller = ThermometerPoller([mat], posted.put, Clock(), INTERVAL_S)
    poller.start()
    try:
        assert posted.get(timeout=5.0) == Reading("mat", 30.0)
    finally:
        poller.close()
    assert threading.get_ident() not in mat.threads


def test_a_read_that_raises_is_an_error_reading_and_sampling_goes_on(driven: Driven) -> None:
    mat = Recording("mat", True, raise_on={1})
    poller = ThermometerPoller([mat, Recording("mat2", True)], driven.loop.put, Clock(),
                               INTERVAL_S, timers=driven.loop)
    poller.start()
    try:
        wait_for(lambda: len(sampled(driven)) >= 3, timeout_s=5.0, what="three samples")
    finally:
        poller.close()
    first, *rest = sampled(driven)
    assert first.readings[0] == Reading("mat", None, "driver error: test: bus error")
    assert first.readings[1] == Reading("mat2", 30.0)
    assert all(event.readings[0] == Reading("mat", 30.0) for event in rest)


def test_close_ends_the_sampling_on_the_loop(driven: Driven) -> None:
    mat = Recording("mat", True)
    poller = ThermometerPoller([mat], driven.loop.put, Clock(), INTERVAL_S, timers=driven.loop)
    poller.start()
    wait_for(lambda: len(mat.threads) >= 2, timeout_s=5.0, what="two samples")
    poller.close()
    poller.close()  # twice, as a failed start and the clean stop after it do
    count = len(mat.threads)
    time.sleep(10 * INTERVAL_S)
    assert len(mat.threads) <= count + 1  # one sample may have been under way
    settled = len(mat.threads)
    time.sleep(10 * INTERVAL_S)
    assert len(mat.threads) == settled


def test_a_poller_closed_before_the_loop_ran_never_reads() -> None:
    """A start that failed before the controller's loop ran closes the poller: the sample
    already scheduled must not read when the loop comes to it."""
    loop = NetLoop()
    mat = Recording("mat", True)
    try:
        poller = ThermometerPoller([mat], loop.put, Clock(), INTERVAL_S, timers=loop)
        poller.start()
        poller.close()
        with contextlib.suppress(queue.Empty):
            loop.get(timeout=10 * INTERVAL_S)
        assert mat.threads == []
    finally:
        loop.close()


def test_sampling_goes_on_after_a_sample_whose_hand_off_failed(driven: Driven) -> None:
    """The next sample is due before this one is read and handed on: a failure past the
    read (here the post) is logged by the loop, and the mat is read again on time."""
    mat = Recording("mat", True)
    posts: list[object] = []

    def post(event: object) -> None:
        posts.append(event)
        if len(posts) == 1:
            raise RuntimeError("test: the inbox refused")
        driven.loop.put(event)

    poller = ThermometerPoller([mat], post, Clock(), INTERVAL_S, timers=driven.loop)
    poller.start()
    try:
        wait_for(lambda: len(sampled(driven)) >= 2, timeout_s=5.0, what="two samples after")
    finally:
        poller.close()


def snapshot(state: State) -> Snapshot:
    return replace(SessionMachine(Rules(), 0.0, date(2026, 1, 5)).snapshot(0.0), state=state)


def tell(driven: Driven, poller: ThermometerPoller, state: State, sensor: Recording) -> int:
    """Tells the poller on the loop's thread, as the controller tells its listeners; returns
    how often `sensor` had been read by then."""
    reads: list[int] = []
    told = threading.Event()

    def listen() -> None:
        poller.pace(snapshot(state), [])
        reads.append(len(sensor.threads))
        told.set()

    driven.loop.call_soon(listen)
    assert told.wait(5.0), "the loop did not run the call"
    return reads[0]


def resting_poller(driven: Driven, sensor: Recording) -> ThermometerPoller:
    poller = ThermometerPoller([sensor], driven.loop.put, Clock(), INTERVAL_S,
                               timers=driven.loop, resting_s=RESTING_S)
    poller.start()
    wait_for(lambda: len(sensor.threads) >= 2, timeout_s=5.0, what="the full pace until told")
    return poller


def assert_rests(sensor: Recording, reads: int) -> None:
    """No read for many intervals but the one that was due at the full pace (or under way)."""
    time.sleep(15 * INTERVAL_S)
    assert len(sensor.threads) <= reads + 1, (len(sensor.threads), reads)


@pytest.mark.parametrize("state", list(State))
def test_the_loop_reads_at_the_resting_pace_unless_a_session_can_heat(
    driven: Driven, state: State
) -> None:
    mat = Recording("mat", True)
    poller = resting_poller(driven, mat)
    try:
        reads = tell(driven, poller, state, mat)
        if state in CAN_HEAT:
            wait_for(lambda: len(mat.threads) >= reads + 3, timeout_s=5.0, what="the full pace")
        else:
            assert_rests(mat, reads)
    finally:
        poller.close()


def rest_session_rest(driven: Driven, poller: ThermometerPoller, sensor: Recording,
                      states: tuple[State, State, State]) -> None:
    """At rest no read for many intervals; in the session reads long before the rest would
    end; at rest again."""
    rest, session, rest_again = states
    assert_rests(sensor, tell(driven, poller, rest, sensor))
    resting = tell(driven, poller, session, sensor)
    wait_for(lambda: len(sensor.threads) >= resting + 3, timeout_s=5.0,
             what="reads long before the rest would end")
    assert_rests(sensor, tell(driven, poller, rest_again, sensor))


def test_a_session_after_a_rest_is_read_at_once_at_the_full_pace(driven: Driven) -> None:
    mat = Recording("mat", True)
    poller = resting_poller(driven, mat)
    try:
        rest_session_rest(driven, poller, mat, (State.IDLE, State.PREHEAT, State.COOLDOWN))
    finally:
        poller.close()


def test_the_thread_rests_too_and_a_session_ends_its_wait(driven: Driven) -> None:
    """A sensor that blocks, read on the poller's thread: a session does not wait out the
    rest, and close ends a resting wait at once."""
    slow = Recording("slow", False)
    poller = resting_poller(driven, slow)
    try:
        rest_session_rest(driven, poller, slow, (State.FAULT, State.RUNNING, State.IDLE))
    finally:
        started = time.monotonic()
        poller.close()
    assert time.monotonic() - started < 2.0  # not the 5 s a stuck join would wait
    assert not poller._thread.is_alive()


@pytest.mark.parametrize("bad", BAD_READS)
def test_a_bad_read_is_tried_again_at_the_full_pace_on_the_thread(bad: str) -> None:
    """One CRC error must not leave a resting mat's temperature stale for a whole rest, nor
    a broken sensor latch its fault later."""
    slow = Recording("slow", False)
    poller = ThermometerPoller([slow], lambda event: None, Clock(), INTERVAL_S,
                               resting_s=3.0)
    poller.start()
    try:
        wait_for(lambda: len(slow.threads) >= 2, timeout_s=5.0, what="the full pace")
        poller.pace(snapshot(State.IDLE), [])
        assert_rests(slow, len(slow.threads))
        bad_read = len(slow.threads) + 2  # after a rest, whichever read was under way
        slow.bad_on = {bad_read: bad}
        wait_for(lambda: len(slow.threads) > bad_read, timeout_s=15.0,
                 what="a rest, the bad read, the next")
        retried_after_s = slow.times[bad_read] - slow.times[bad_read - 1]
        assert retried_after_s < 1.5, retried_after_s  # not the 3 s rest
        assert_rests(slow, len(slow.threads))  # and then the rest again
    finally:
        poller.close()


class HandTimers:
    """The loop's timers, run by the test: records each delay asked for."""

    @dataclass
    class Handle:
        delay_s: float
        cancelled: bool = False

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self) -> None:
        self.handles: list[HandTimers.Handle] = []

    def call_later(self, delay_s: float, action: object) -> "HandTimers.Handle":
        self.handles.append(HandTimers.Handle(delay_s))
        return self.handles[-1]


def test_a_session_s_next_sample_is_due_a_full_interval_after_the_last() -> None:
    """Not a full interval from the session's start: a reading nearly 2 s old would then
    wait another second, past the 3 s stale limit, and heat would drop as it began."""
    clock, timers, mat = HandClock(), HandTimers(), Recording("mat", True)
    poller = ThermometerPoller([mat], lambda event: None, clock, 1.0, timers=timers,
                               resting_s=2.0)
    poller.pace(snapshot(State.IDLE), [])
    poller._sample_at_once()  # at 0.0
    assert timers.handles[-1].delay_s == 2.0
    clock.t = 0.3
    poller.pace(snapshot(State.RUNNING), [])
    assert timers.handles[-2].cancelled
    assert timers.handles[-1].delay_s == pytest.approx(0.7)
    poller.pace(snapshot(State.COOLDOWN), [])
    clock.t = 1.0
    poller._sample_at_once()
    assert timers.handles[-1].delay_s == 2.0
    clock.t = 2.5
    poller.pace(snapshot(State.PREHEAT), [])
    assert timers.handles[-1].delay_s == 0.0  # due at 2.0: at once


@pytest.mark.parametrize("bad", BAD_READS)
def test_a_bad_read_is_tried_again_at_the_full_pace_on_the_loop(bad: str) -> None:
    """One CRC error must not leave a resting mat's temperature stale for a whole rest, nor
    a broken sensor latch its fault later."""
    clock, timers = HandClock(), HandTimers()
    mat, mat2 = Recording("mat", True, bad_on={1: bad}), Recording("mat2", True)
    posted: list[object] = []
    poller = ThermometerPoller([mat, mat2], posted.append, clock, 1.0, timers=timers,
                               resting_s=2.0)
    poller.pace(snapshot(State.FAULT), [])
    poller._sample_at_once()
    assert timers.handles[-2].cancelled
    assert timers.handles[-1].delay_s == 1.0
    assert [r.sensor for r in posted[-1].readings] == (  # type: ignore[attr-defined]
        ["mat2"] if bad == "unreadable" else ["mat", "mat2"])
    clock.t = 1.0
    poller._sample_at_once()  # read well: the rest again
    assert not timers.handles[-1].cancelled and timers.handles[-1].delay_s == 2.0


def test_a_faster_simulation_keeps_its_short_poll_at_rest(tmp_path: Path) -> None:
    """At --speed 600 a 2 s rest is 3 ms of real time: a loaded machine that falls behind
    its scaled clock would make readings stale, so a fast mat reads at its short poll
    (0.5 mat-seconds: 8 ms of real time at the speed of this test)."""
    mat = assemble(Config(), tmp_path, simulate=True, speed=60.0)
    polls = spy_polls(mat)
    with running(mat):
        wait_for(lambda: len(polls) >= 12, timeout_s=15.0, what="twelve polls")
    rest = [now for now, state in polls[1:] if state is State.IDLE]
    assert statistics.median(b - a for a, b in itertools.pairwise(rest)) < 1.25


def spy_polls(mat: Assembled) -> list[tuple[float, State]]:
    """(mat time, state) of every poll the assembled mat's core steps."""
    machine = mat.controller.machine
    polls: list[tuple[float, State]] = []
    step = machine.step

    def spy(event: Event, now: float, today: date) -> list[Notice]:
        if isinstance(event, Readings):
            polls.append((now, machine.state))
        return step(event, now, today)

    machine.step = spy  # type: ignore[method-assign]
    return polls


@contextlib.contextmanager
def running(mat: Assembled) -> Iterator[None]:
    """The assembled mat's controller in a thread and its edges started: always stopped,
    joined and closed."""
    thread = threading.Thread(target=mat.controller.run, name="test-controller")
    thread.start()
    try:
        mat.start_edges()
        yield
    finally:
        mat.controller.request_stop("test over")
        thread.join(timeout=10.0)
        mat.close()
    assert not thread.is_alive()


def test_an_assembled_mat_reads_every_max_poll_s_at_rest_and_every_poll_s_in_a_session(
    tmp_path: Path,
) -> None:
    """At real speed, a mat that cannot heat reads its sensors every 2 s, well inside the
    stale limit, so the temperature it shows never lapses; a session reads them every
    [hardware] poll_s (1 s) from its start."""
    mat = assemble(Config(), tmp_path, simulate=True)
    polls = spy_polls(mat)
    shown: list[float | None] = []
    mat.controller.add_listener(lambda snap, _: shown.append(snap.temperature_c))
    with running(mat):
        wait_for(lambda: len(polls) >= 4, timeout_s=15.0, what="four polls at rest")
        mat.controller.post(Press())
        wait_for(lambda: mat.sim is not None and mat.sim.heater_demand, what="heat")
        in_session = len(polls)
        wait_for(lambda: len(polls) >= in_session + 5, timeout_s=15.0, what="five in session")
    # The first poll may come before the controller said the mat rests.
    rest = [now for now, state in polls[1:in_session] if state is State.IDLE]
    gaps = [b - a for a, b in itertools.pairwise(rest)]
    assert len(gaps) >= 2
    assert min(gaps) >= 2.0 - 0.3, gaps  # the rest, written out: not 1 s
    assert max(gaps) < limits.STALE_HEAT_OFF_S, gaps
    session = [now for now, state in polls[in_session:] if state in CAN_HEAT]
    gaps = [b - a for a, b in itertools.pairwise(session)]
    assert statistics.median(gaps) < 1.5, gaps  # the default poll_s, 1 s
    assert None not in shown[1:]  # the first snapshot may come before the first reading
