"""The controller's wait (`remote.netloop.NetLoop`): items, calls, timers and sockets served
by one thread, woken by any other thread and by a signal handler. Every wait has a deadline."""

import itertools
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from matpi.remote.netloop import NetLoop

PROMPT_S = 1.0
"""Far more than a wake takes, far less than the waits that would hide a missing wake."""


@pytest.fixture
def loop() -> Iterator[NetLoop]:
    net = NetLoop()
    yield net
    net.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


def later(delay_s: float, action: object) -> threading.Timer:
    timer = threading.Timer(delay_s, action)  # type: ignore[arg-type]
    timer.daemon = True
    timer.start()
    return timer


def test_an_item_put_by_another_thread_ends_the_wait_at_once(loop: NetLoop) -> None:
    later(0.05, lambda: loop.put("press"))
    started = time.monotonic()
    assert loop.get(timeout=10.0) == "press"
    assert time.monotonic() - started < PROMPT_S


def test_nothing_put_raises_empty_after_the_timeout(loop: NetLoop) -> None:
    started = time.monotonic()
    with pytest.raises(queue.Empty):
        loop.get(timeout=0.05)
    assert 0.04 <= time.monotonic() - started < PROMPT_S


def test_items_keep_their_order_and_calls_run_on_the_loop_thread_before_the_next(
    loop: NetLoop
) -> None:
    ran: list[tuple[str, int]] = []
    loop.put("first")
    loop.call_soon(lambda: ran.append(("call", threading.get_ident())))
    loop.put("second")
    assert loop.get(timeout=1.0) == "first"
    assert ran == []
    assert loop.get(timeout=1.0) == "second"
    assert ran == [("call", threading.get_ident())]


def test_an_item_put_on_the_loop_thread_is_taken_without_a_wait(loop: NetLoop) -> None:
    """A command read from the socket is the controller's next event, in the same turn."""
    ours, theirs = socket.socketpair()
    try:
        def readable() -> None:
            ours.recv(16)
            loop.put("command")

        loop.watch(ours, readable, lambda: None, lambda: False)
        theirs.send(b"x")
        assert loop.get(timeout=5.0) == "command"
        loop.unwatch(ours)
    finally:
        ours.close()
        theirs.close()


def test_timers_run_in_time_order_after_their_delay_and_a_cancelled_one_never(
    loop: NetLoop
) -> None:
    ran: list[tuple[str, float]] = []
    started = time.monotonic()
    loop.call_later(0.10, lambda: ran.append(("late", time.monotonic() - started)))
    loop.call_later(0.05, lambda: ran.append(("early", time.monotonic() - started)))
    loop.call_later(0.07, lambda: ran.append(("cancelled", 0.0))).cancel()
    with pytest.raises(queue.Empty):
        loop.get(timeout=0.3)
    assert [name for name, _ in ran] == ["early", "late"]
    assert ran[0][1] >= 0.05 and ran[1][1] >= 0.10


def test_a_timer_with_slack_runs_at_the_next_wake_and_wakes_the_loop_only_at_its_latest(
    loop: NetLoop
) -> None:
    """A periodic check that can wait (paho's keepalive) rides on the wake a reading brings
    and costs an idle mat no wakeup of its own; with no wake, it is still on time."""
    ran: list[tuple[str, float]] = []
    started = time.monotonic()
    loop.call_later(0.05, lambda: ran.append(("rides", time.monotonic() - started)),
                    slack_s=10.0)
    later(0.3, lambda: loop.put("reading"))
    assert loop.get(timeout=5.0) == "reading"
    assert [name for name, _ in ran] == ["rides"]
    assert ran[0][1] >= 0.25  # not woken for it at 0.05 s: it waited for the reading

    started = time.monotonic()
    loop.call_later(0.05, lambda: ran.append(("alone", time.monotonic() - started)),
                    slack_s=0.2)
    with pytest.raises(queue.Empty):
        loop.get(timeout=1.0)
    assert [name for name, _ in ran] == ["rides", "alone"]
    assert 0.25 <= ran[1][1] < PROMPT_S  # woken for it at its delay and slack, no later


def test_a_timer_with_slack_never_delays_one_without(loop: NetLoop) -> None:
    ran: list[tuple[str, float]] = []
    started = time.monotonic()
    loop.call_later(0.05, lambda: ran.append(("can wait", time.monotonic() - started)),
                    slack_s=10.0)
    loop.call_later(0.10, lambda: ran.append(("on time", time.monotonic() - started)))
    with pytest.raises(queue.Empty):
        loop.get(timeout=2 * PROMPT_S)
    assert [name for name, _ in ran] == ["can wait", "on time"]  # it rode on that wake
    assert 0.10 <= ran[1][1] < PROMPT_S


def test_a_timer_set_from_another_thread_shortens_a_long_wait(loop: NetLoop) -> None:
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        loop.put("done")

    later(0.05, lambda: loop.call_later(0.0, fire))
    started = time.monotonic()
    assert loop.get(timeout=10.0) == "done"
    assert fired.is_set() and time.monotonic() - started < PROMPT_S


def test_a_watched_socket_is_read_and_written_on_the_loop_thread(
    loop: NetLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, theirs = pair
    got: list[bytes] = []
    threads: set[int] = set()
    outgoing = [b"state"]

    def readable() -> None:
        threads.add(threading.get_ident())
        got.append(ours.recv(64))
        loop.put("read")

    def writable() -> None:
        threads.add(threading.get_ident())
        ours.send(outgoing.pop())
        loop.put("written")

    loop.watch(ours, readable, writable, lambda: bool(outgoing))
    theirs.send(b"command")
    assert {loop.get(timeout=5.0), loop.get(timeout=5.0)} == {"read", "written"}
    assert got == [b"command"] and theirs.recv(64) == b"state"
    assert threads == {threading.get_ident()}
    loop.unwatch(ours)
    theirs.send(b"unseen")
    with pytest.raises(queue.Empty):
        loop.get(timeout=0.05)
    assert got == [b"command"]


def test_a_socket_closed_before_it_is_unwatched_is_forgotten_quietly(loop: NetLoop) -> None:
    ours, theirs = socket.socketpair()
    loop.watch(ours, lambda: None, lambda: None, lambda: False)
    ours.close()
    loop.unwatch(ours)
    loop.unwatch(ours)  # twice: still nothing
    theirs.close()
    loop.put("still serving")
    assert loop.get(timeout=1.0) == "still serving"


def test_a_failing_callback_is_logged_and_the_loop_goes_on(
    loop: NetLoop, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("a bug in a callback")

    loop.call_soon(broken)
    loop.call_later(0.0, broken)
    loop.put("next")
    with caplog.at_level(logging.ERROR, logger="matpi.remote.netloop"):
        assert loop.get(timeout=1.0) == "next"
        with pytest.raises(queue.Empty):
            loop.get(timeout=0.05)
    failures = [r for r in caplog.records if r.exc_info and "a bug" in str(r.exc_info[1])]
    assert len(failures) == 2


def test_a_signal_handler_on_the_loop_thread_wakes_the_wait(loop: NetLoop) -> None:
    """SIGTERM reaches the daemon on the controller's thread, inside `select`; Python runs the
    handler and resumes `select` with the time left, so the handler's put must wake it."""
    def handler(signum: int, frame: FrameType | None) -> None:
        loop.put("stop")

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        later(0.1, lambda: os.kill(os.getpid(), signal.SIGUSR1))
        started = time.monotonic()
        assert loop.get(timeout=10.0) == "stop"
        assert time.monotonic() - started < PROMPT_S
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_put_by_a_handler_after_the_look_at_the_items_still_ends_the_wait(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A signal handler runs on the loop's thread at any instruction: here just after the
    loop found no item, while it prepares its wait (as `wants_write` is asked)."""
    loop = NetLoop()
    ours, _theirs = pair
    asked: list[bool] = []

    def wants_write() -> bool:
        if not asked:
            asked.append(True)
            loop.put("stop")
        return False

    loop.watch(ours, lambda: None, lambda: None, wants_write)
    try:
        started = time.monotonic()
        assert loop.get(timeout=10.0) == "stop"
        assert time.monotonic() - started < PROMPT_S
    finally:
        loop.close()


def test_a_put_by_a_handler_before_the_wait_begins_still_ends_it() -> None:
    """The same handler, one step earlier: between the look at the items and the wait's
    start (here, as the loop reads the clock for its time left)."""
    reads = itertools.count()

    def clock() -> float:
        if next(reads) == 1:  # the first read sets the deadline; the second is the one
            loop.put("stop")
        return time.monotonic()

    loop = NetLoop(monotonic=clock)
    try:
        started = time.monotonic()
        assert loop.get(timeout=10.0) == "stop"
        assert time.monotonic() - started < PROMPT_S
    finally:
        loop.close()


def test_drive_serves_sockets_until_done_and_leaves_the_items(
    loop: NetLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    """A clean close: the bridge waits for the broker's answer after the controller stopped."""
    ours, theirs = pair
    answered: list[bytes] = []
    loop.watch(ours, lambda: answered.append(ours.recv(16)), lambda: None, lambda: False)
    loop.put("an event for the stopped controller")
    later(0.05, lambda: theirs.send(b"puback"))
    assert loop.drive(lambda: bool(answered), timeout_s=5.0)
    assert answered == [b"puback"]
    assert not loop.drive(lambda: False, timeout_s=0.05)
    assert loop.get(timeout=0.0) == "an event for the stopped controller"


def test_an_item_put_by_another_thread_just_before_the_wait_still_ends_it(
    loop: NetLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    """The race a wake byte closes: the loop has looked at its items and is about to wait
    when another thread puts one."""
    ours, _theirs = pair
    asked: list[bool] = []

    def wants_write() -> bool:  # called by the loop between its look at the items and select
        if not asked:
            asked.append(True)
            poster = threading.Thread(target=loop.put, args=("late",))
            poster.start()
            poster.join(timeout=5.0)
        return False

    loop.watch(ours, lambda: None, lambda: None, wants_write)
    started = time.monotonic()
    assert loop.get(timeout=10.0) == "late"
    assert time.monotonic() - started < PROMPT_S


def test_a_due_timer_runs_before_the_next_item_however_many_wait(loop: NetLoop) -> None:
    """Before: timers ran only once every item was taken, so a producer on another thread
    that never paused starved the timer that samples the sensors (heat off at 3 s, a fault
    at 10 s)."""
    for n in range(1000):
        loop.put(n)
    ran: list[str] = []
    loop.call_later(0.0, lambda: ran.append("timer"))
    assert loop.get(timeout=PROMPT_S) == 0
    assert ran == ["timer"]
    assert [loop.get(timeout=PROMPT_S) for _ in range(999)] == list(range(1, 1000))
