"""The thermometer poller with the controller's loop: what reads at once is read on its thread.

A real `NetLoop` is driven by a thread of the test, as the controller drives it in the
daemon; every wait has a timeout.
"""

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from conftest import wait_for
from matpi.core.events import Reading, Readings
from matpi.drivers.clock import Clock
from matpi.drivers.polling import ThermometerPoller
from matpi.remote.netloop import NetLoop

INTERVAL_S = 0.02


@dataclass
class Recording:
    """A thermometer that notes the thread of every read, and raises on the reads asked."""

    name: str
    reads_at_once: bool
    raise_on: set[int] = field(default_factory=set)
    threads: list[int] = field(default_factory=list)

    def read(self) -> Reading:
        self.threads.append(threading.get_ident())
        if len(self.threads) in self.raise_on:
            raise OSError("test: bus error")
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
