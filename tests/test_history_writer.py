"""Issue #17: the history's writes leave the controller thread, in order, and keep what the
recorder promised: a clean stop saves the end, a failure is a fault, a crash forgets at
most one checkpoint interval. A stuck or slow disk is played by holding commits at an
Event, not by timing (only the stuck-disk fault waits, past its limit); every wait has a
timeout."""

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest

from conftest import DAY, WAIT_S, wait_for
from matpi.core.clockmark import ClockMark
from matpi.core.errors import HistoryError
from matpi.core.events import (
    DriverFault,
    Event,
    LongPress,
    Notice,
    Press,
    Reading,
    Source,
    Start,
    State,
    Stop,
)
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.drivers.clock import Clock
from matpi.drivers.sim import SimulatedMat
from matpi.service.controller import Controller
from matpi.store.history import INTERRUPTED, WRITE_FAILED_FAULT, History, SessionRow
from matpi.store.recorder import CHECKPOINT_S, HistoryRecorder
from matpi.store.writer import (
    MAX_PENDING,
    ClearFault,
    HistoryWriter,
    SaveDose,
    SaveFault,
    SaveMark,
    SaveRow,
    Write,
)

WALL = datetime(DAY.year, DAY.month, DAY.day, 9).timestamp()


class Disk(History):
    """A history whose commits can be held at `gate` (a slow or stuck disk) or made to fail,
    and which notes the thread of each commit and every session row it is asked to save."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        super().__init__(db, path)
        self.gate = threading.Event()
        self.gate.set()
        self.held = threading.Event()
        self.fail = False
        self.fail_dose = False
        self.commits = 0
        self.threads: set[str] = set()
        self.saved_rows: list[tuple[float, str]] = []

    def hold(self) -> None:
        self.held.clear()
        self.gate.clear()

    @contextmanager
    def batch(self) -> Iterator[None]:
        self.threads.add(threading.current_thread().name)
        if not self.gate.is_set():
            self.held.set()
            assert self.gate.wait(WAIT_S), "a commit held for good"
        with super().batch():
            if self.fail:
                raise HistoryError(f"history {self.path}: could not save the history: I/O error")
            yield
        self.commits += 1

    def record_session(self, row: SessionRow, *, cooldown_until_wall: float | None = None
                       ) -> SessionRow:
        self.saved_rows.append((row.actual_s, row.end_reason))
        return super().record_session(row, cooldown_until_wall=cooldown_until_wall)

    def save_dose_today(self, day: date, dose_cem43: float) -> None:
        if self.fail_dose:
            raise HistoryError(f"history {self.path}: could not save the day's dose: disk full")
        super().save_dose_today(day, dose_cem43)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    opened = Disk.open(tmp_path / "history.sqlite3")
    assert isinstance(opened, Disk)
    yield opened
    opened.gate.set()


def stored(disk: Disk) -> list[tuple[float, str]]:
    """(actual_s, end_reason) of each row, read by another connection as a restart would:
    only what was committed."""
    with closing(sqlite3.connect(disk.path)) as db:
        return db.execute("SELECT actual_s, end_reason FROM sessions ORDER BY id").fetchall()


def stored_dose(disk: Disk) -> tuple[str, float]:
    with closing(sqlite3.connect(disk.path)) as db:
        return db.execute("SELECT dose_day, dose_today FROM state").fetchone()


ROW = SessionRow(WALL, WALL, "neck", 10.0, 0.0, INTERRUPTED, 37.5, 0.0, "low", "wave")
MARK = ClockMark(WALL, "boot-1", 100.0, True)


class Rig:
    """A session machine stepped second by second, its recorder listening as the controller
    would call it; nothing here waits for the writer unless told to."""

    def __init__(self, history: History, *, max_stall_s: float = 2.0) -> None:
        self.rules = Rules()
        self.now = 1000.0
        self.machine = SessionMachine(self.rules, self.now, DAY)
        self.errors: list[str] = []
        self.recorder = HistoryRecorder(
            history, lambda: WALL + self.now, monotonic=lambda: self.now,
            cooldown_min=self.rules.cooldown_min, on_error=self.errors.append,
            max_stall_s=max_stall_s)
        self.read()

    def send(self, event: Event) -> None:
        notices = self.machine.step(event, self.now, DAY)
        self.recorder(self.machine.snapshot(self.now), notices)

    def read(self) -> None:
        for name in self.rules.sensors:
            self.send(Reading(name, 37.5))

    def run_for(self, seconds: int, *, flush: bool = False) -> None:
        for _ in range(seconds):
            self.now += 1.0
            self.read()
            if flush:
                assert self.recorder.flush(WAIT_S)


def test_a_step_returns_while_the_writer_is_held_in_a_commit(disk: Disk) -> None:
    rig = Rig(disk)
    assert rig.recorder.flush(WAIT_S)
    disk.hold()
    rig.send(Start(Source.LOCAL, "neck"))  # returns: the commit waits in another thread
    assert disk.held.wait(WAIT_S)
    rig.run_for(int(CHECKPOINT_S) * 6)  # six checkpoints handed over, none saved yet
    assert not disk.gate.is_set() and stored(disk) == []
    assert rig.machine.state is State.RUNNING and rig.errors == []

    disk.gate.set()
    assert rig.recorder.close(WAIT_S)
    assert disk.threads == {"matpi-history"}
    assert stored(disk) == [(CHECKPOINT_S * 6, INTERRUPTED)]


def test_writes_are_saved_in_order_and_all_waiting_in_one_commit(disk: Disk) -> None:
    errors: list[str] = []
    writer = HistoryWriter(disk, errors.append)
    disk.hold()
    writer.submit((SaveDose(DAY, 0.0),))
    assert disk.held.wait(WAIT_S)
    steps: list[tuple[Write, ...]] = [(SaveFault(WALL + 1, "a"),), (ClearFault(WALL + 2),),
                                      (SaveFault(WALL + 3, "b"),)]
    steps += [(SaveRow(1, replace(ROW, actual_s=float(s)), WALL), SaveDose(DAY, s / 100))
              for s in range(1, 21)]
    steps.append((SaveRow(1, replace(ROW, actual_s=21.0, end_reason="stopped"), WALL),))
    assert all(writer.submit(step) for step in steps)
    disk.gate.set()
    assert writer.close(WAIT_S)

    assert disk.commits == 2  # the one held, then every step that waited meanwhile
    assert disk.saved_rows == [(float(s), INTERRUPTED) for s in range(1, 21)] + [
        (21.0, "stopped")]
    assert stored(disk) == [(21.0, "stopped")]  # one row, brought up to date in order
    faults = disk.faults(1, DAY)
    assert [(f.reason, f.cleared_wall) for f in faults] == [("a", WALL + 2), ("b", None)]
    assert stored_dose(disk) == (DAY.isoformat(), 0.2)
    assert errors == []


def test_a_clean_close_saves_the_sessions_end_that_was_still_waiting(disk: Disk) -> None:
    rig = Rig(disk)
    rig.send(Start(Source.LOCAL, "neck"))
    checkpoint_s = int(CHECKPOINT_S) * 11
    rig.run_for(checkpoint_s - 1, flush=True)
    disk.hold()
    rig.run_for(1)  # a checkpoint: the writer takes it and is held
    assert disk.held.wait(WAIT_S)
    rig.send(Stop(Source.LOCAL))  # the end, queued behind the held commit
    dose = rig.machine.usage.dose_today
    release = threading.Timer(0.05, disk.gate.set)
    release.start()
    try:
        assert rig.recorder.close(WAIT_S)
    finally:
        release.join(WAIT_S)

    assert stored(disk) == [(float(checkpoint_s), "stopped")]
    reopened = History.open(disk.path)
    try:
        saved = reopened.restore(WALL + rig.now, DAY, rig.rules)
    finally:
        reopened.close()
    assert saved.cooldown_remaining_s == pytest.approx(600.0)
    assert saved.usage.dose_today == pytest.approx(dose, abs=0.011)
    assert rig.errors == []


def test_close_says_so_when_the_disk_is_stuck(disk: Disk) -> None:
    rig = Rig(disk)
    disk.hold()
    rig.send(Start(Source.LOCAL, "neck"))
    assert disk.held.wait(WAIT_S)
    assert not rig.recorder.close(timeout_s=0.1)  # the history is still the writer's
    disk.gate.set()
    assert rig.recorder.close(WAIT_S)
    assert stored(disk) == [(0.0, INTERRUPTED)]


def test_a_failed_write_becomes_a_driver_fault_in_the_controller(disk: Disk) -> None:
    clock = Clock()
    sim = SimulatedMat(clock)
    drivers = sim.drivers()
    machine = SessionMachine(Rules(), clock.now(), clock.today())
    controller = Controller(machine, drivers, clock)
    recorder = HistoryRecorder(disk, clock.wall, monotonic=clock.now,
                               cooldown_min=machine.rules.cooldown_min,
                               on_error=lambda why: controller.post(DriverFault(why)))
    controller.add_listener(recorder)
    thread = threading.Thread(target=controller.run, name="controller")
    thread.start()
    try:
        for name in machine.rules.sensors:
            controller.post(Reading(name, 25.0))
        wait_for(lambda: disk.commits >= 1, what="the boot's writes saved")
        disk.fail = True
        controller.post(Press())  # the session's row is not saved: no session runs uncounted
        wait_for(lambda: machine.fault == WRITE_FAILED_FAULT)
        wait_for(lambda: not sim.heater_demand)
    finally:
        controller.request_stop()
        thread.join(WAIT_S)
        assert not thread.is_alive()
    assert recorder.close(WAIT_S)


def test_a_rolled_back_commit_leaves_no_row_for_later_updates_to_miss(disk: Disk) -> None:
    errors: list[str] = []
    writer = HistoryWriter(disk, errors.append)
    disk.fail_dose = True
    writer.submit((SaveRow(1, ROW, WALL), SaveDose(DAY, 0.1)))  # the row's insert undone
    assert writer.flush(WAIT_S)
    disk.fail_dose = False
    writer.submit((SaveRow(1, replace(ROW, actual_s=5.0), WALL),))
    assert writer.close(WAIT_S)
    assert errors == [WRITE_FAILED_FAULT]
    assert stored(disk) == [(5.0, INTERRUPTED)]
    assert stored_dose(disk) == (DAY.isoformat(), 0.1)  # tried again, and saved


@pytest.mark.parametrize("crash_after_s", range(1, 25))
def test_a_crash_with_the_last_steps_writes_unsaved_forgets_at_most_one_interval(
    disk: Disk, crash_after_s: int
) -> None:
    """The worst moment for a writer thread: the process dies after a step handed its
    writes over and before they were committed. A crash at any second still forgets at
    most CHECKPOINT_S."""
    rig = Rig(disk)
    rig.send(Start(Source.LOCAL, "neck"))
    assert rig.recorder.flush(WAIT_S)
    rig.run_for(crash_after_s - 1, flush=True)
    disk.hold()
    rig.run_for(1)  # then it dies, this step's writes (if any) held before their commit
    [(actual_s, reason)] = stored(disk)
    assert reason == INTERRUPTED
    assert crash_after_s - CHECKPOINT_S <= actual_s <= crash_after_s
    disk.gate.set()
    assert rig.recorder.close(WAIT_S)


def test_a_stuck_disk_is_a_fault_before_a_crash_could_forget_more(
    disk: Disk, caplog: pytest.LogCaptureFixture
) -> None:
    """A disk stuck in a commit used to stall the controller, and the heater's dead-man
    stopped the heat; now the recorder reports it as a failed write, at every step while
    it lasts, and logs it once."""
    rig = Rig(disk, max_stall_s=0.5)
    rig.send(Start(Source.LOCAL, "neck"))
    interval = int(CHECKPOINT_S)
    rig.run_for(15 * interval, flush=True)
    disk.hold()
    rig.run_for(interval)  # the next checkpoint is held in its commit
    assert disk.held.wait(WAIT_S)
    assert rig.errors == []  # a slow commit is no fault
    time.sleep(0.6)  # past max_stall_s: a lower bound, whatever the machine's load
    rig.run_for(interval)
    steps = len(rig.rules.sensors) * interval  # one recorder call per reading
    assert rig.errors == [WRITE_FAILED_FAULT] * steps
    assert caplog.text.count("history writer behind") == 1
    # A crash now forgets one interval and the stall, which the fault has ended.
    assert stored(disk) == [(15.0 * interval, INTERRUPTED)]
    disk.gate.set()
    assert rig.recorder.close(WAIT_S)
    assert stored(disk) == [(17.0 * interval, INTERRUPTED)]


def test_a_full_queue_keeps_the_steps_writes_and_reports_it(disk: Disk) -> None:
    """Review: a full queue dropped the step's writes, a session's end among them, and
    they were never written: a restart then counted too few minutes, and no cooldown."""
    rig = Rig(disk)
    rig.send(Start(Source.LOCAL, "neck"))
    assert rig.recorder.flush(WAIT_S)
    disk.hold()
    rig.run_for(int(CHECKPOINT_S))  # the writer takes this checkpoint and is held
    assert disk.held.wait(WAIT_S)
    rig.run_for(int(CHECKPOINT_S) * MAX_PENDING)  # the queue fills up
    assert rig.errors == []
    rig.run_for(int(CHECKPOINT_S))
    assert rig.errors and set(rig.errors) == {WRITE_FAILED_FAULT}
    rig.send(Stop(Source.LOCAL))  # the end, kept back with the checkpoints before it
    ended_after_s = rig.now - 1000.0
    disk.gate.set()
    assert rig.recorder.close(WAIT_S)
    assert stored(disk) == [(ended_after_s, "stopped")]


def test_a_fault_reset_while_the_disk_is_still_stuck_is_a_fault_again(disk: Disk) -> None:
    """Review: the writer was reported behind once; a reset at the mat then let a whole
    session run with nothing saved."""
    rig = Rig(disk, max_stall_s=0.5)
    rig.send(Start(Source.LOCAL, "neck"))
    rig.run_for(10, flush=True)
    disk.hold()
    rig.run_for(5)
    assert disk.held.wait(WAIT_S)
    time.sleep(0.6)  # past max_stall_s
    rig.run_for(1)
    assert rig.errors
    rig.send(DriverFault(rig.errors[-1]))  # as the daemon posts it
    assert rig.machine.state is State.FAULT
    for _ in range(300):  # the pad cools enough to reset
        rig.now += 1.0
        for name in rig.rules.sensors:
            rig.send(Reading(name, 25.0))
    rig.errors.clear()
    rig.send(LongPress())  # the reset at the mat, the disk still stuck
    assert rig.machine.fault is None and rig.errors == [WRITE_FAILED_FAULT]
    rig.send(DriverFault(rig.errors[-1]))
    assert rig.machine.state is State.FAULT
    disk.gate.set()
    assert rig.recorder.close(WAIT_S)


def test_a_failed_commits_writes_are_saved_with_the_next_commit(disk: Disk) -> None:
    """Review: a rolled-back commit was never tried again: a session's end, a fault or the
    day's dose that shared it was lost for good, though the disk recovered."""
    errors: list[str] = []
    writer = HistoryWriter(disk, errors.append)
    writer.submit((SaveRow(1, ROW, WALL),))
    assert writer.flush(WAIT_S)
    disk.fail = True
    writer.submit((SaveRow(1, replace(ROW, actual_s=9.0, end_reason="stopped"), WALL),
                   SaveFault(WALL + 9, "over temperature"), SaveDose(DAY, 0.5)))
    assert writer.flush(WAIT_S)
    assert errors == [WRITE_FAILED_FAULT] and stored(disk) == [(0.0, INTERRUPTED)]
    disk.fail = False
    writer.submit((SaveMark(MARK, DAY),))  # any later write: the disk works again
    assert writer.close(WAIT_S)
    assert stored(disk) == [(9.0, "stopped")]
    assert [f.reason for f in disk.faults(1, DAY)] == ["over temperature"]
    assert stored_dose(disk) == (DAY.isoformat(), 0.5)


def test_a_row_opened_and_ended_in_one_step_is_one_row(disk: Disk) -> None:
    rig = Rig(disk)
    said: list[Notice] = []
    for event in (Start(Source.LOCAL, "neck"), Stop(Source.LOCAL)):
        said += rig.machine.step(event, rig.now, DAY)
    rig.recorder(rig.machine.snapshot(rig.now), said)  # start and end in one step
    assert rig.recorder.close(WAIT_S)
    assert stored(disk) == [(0.0, "stopped")]
