"""The history's writer thread: SQLite's commits, and their fsync, off the controller thread.

`recorder.HistoryRecorder` decides in the controller thread what to write, and hands
each step's writes over as one immutable tuple; `HistoryWriter.submit` only puts it on a
bounded queue and never waits. One thread takes the tuples off in order and saves every
one waiting in a single transaction: one fsync however many steps piled up during the
last one, so a slow disk adds latency, never a backlog.

    writer = HistoryWriter(history, on_error=lambda why: inbox.put(DriverFault(why)))
    writer.submit((SaveFault(wall, "trip: 45.6 °C"),))
    writer.close()  # everything submitted is saved (or reported) when this returns True

A commit that fails is rolled back whole and its writes are kept: they go first in the
next commit, so a disk that recovers loses nothing (a session's end, a fault, the day's
dose), and one that does not keeps failing, and reporting, every commit.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import date

from matpi.core.clockmark import ClockMark
from matpi.core.errors import HistoryError
from matpi.core.events import ClockSet
from matpi.store.history import WRITE_FAILED_FAULT, History, SessionRow

log = logging.getLogger(__name__)

MAX_PENDING = 64
"""Steps' writes that may wait. Each commit saves everything waiting, so the queue holds
what arrives during one commit: a step's writes every second or so on a mat, a few at
simulation speeds. Full means a stuck disk: the recorder keeps the step's writes for the
next step, and reports it."""
MAX_STALL_S = 2.0
"""Real seconds one commit may take before the disk counts as stuck. A disk that stuck
used to stall the controller thread itself, and the heater's 3 s dead-man stopped the
heat; the fault this raises stops it no later."""
CLOSE_TIMEOUT_S = 10.0
"""How long a clean stop waits for the last writes, long enough for a slow SD card's commit;
with the rest of the stop it fits the unit's TimeoutStopSec= (tests/test_systemd.py adds
them up), so that systemd never kills a stop that is still saving."""


@dataclass(frozen=True)
class SaveRow:
    """Insert session row number `key` (the recorder numbers the rows it opens), or bring
    it up to date; `cooldown_until_wall` goes in the same transaction."""

    key: int
    row: SessionRow
    cooldown_until_wall: float


@dataclass(frozen=True)
class SaveFault:
    at_wall: float
    reason: str


@dataclass(frozen=True)
class ClearFault:
    at_wall: float


@dataclass(frozen=True)
class CarryOver:
    carried: ClockSet
    at_wall: float
    cooldown_until_wall: float
    mark: ClockMark | None


@dataclass(frozen=True)
class SaveDose:
    day: date
    dose_cem43: float


@dataclass(frozen=True)
class SaveMark:
    mark: ClockMark
    day: date


Write = SaveRow | SaveFault | ClearFault | CarryOver | SaveDose | SaveMark


class HistoryWriter:
    """Owns `history` from here on: its thread is the only one that writes it.

    A commit that fails is rolled back whole, logged, and `on_error(WRITE_FAILED_FAULT)`
    is called from the writer thread (the daemon posts it to the controller's inbox); its
    writes are tried again, first, with the next commit.
    """

    def __init__(self, history: History, on_error: Callable[[str], None],
                 max_pending: int = MAX_PENDING) -> None:
        self._history = history
        self._on_error = on_error
        self._queue: queue.Queue[tuple[Write, ...] | None] = queue.Queue(max_pending)
        self._submitted = 0
        self._done = 0
        self._progress = threading.Condition()
        self._open: tuple[int, int | None] | None = None
        """The key of the row last saved, and its id in the history."""
        self._unsaved: list[Write] = []
        """A failed commit's writes, rolled back: they lead the next commit."""
        self._commit_started: float | None = None
        self._thread = threading.Thread(target=self._run, name="matpi-history", daemon=True)
        self._thread.start()

    def submit(self, writes: tuple[Write, ...], timeout_s: float = 0.0) -> bool:
        """Queue one step's `writes`, waiting at most `timeout_s` (the controller never
        waits: 0); False (nothing queued) when the queue stayed full."""
        try:
            self._queue.put(writes, block=timeout_s > 0, timeout=timeout_s)
        except queue.Full:
            return False
        self._submitted += 1
        return True

    def stalled_s(self) -> float:
        """Real seconds the commit under way has taken so far; 0 between commits."""
        started = self._commit_started
        return 0.0 if started is None else time.monotonic() - started

    def flush(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Wait until every write submitted so far is saved (or its failure reported);
        False if that took over `timeout_s`."""
        target = self._submitted
        with self._progress:
            return self._progress.wait_for(lambda: self._done >= target, timeout_s)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Save everything submitted, then end the thread. False if that took over
        `timeout_s` (a stuck disk): the thread is a daemon, still owns the history, and
        the history must not be closed under it."""
        deadline = time.monotonic() + timeout_s
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return False
        self._thread.join(max(deadline - time.monotonic(), 0.0))
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            taken = [self._queue.get()]
            with suppress(queue.Empty):
                while taken[-1] is not None:
                    taken.append(self._queue.get_nowait())
            steps = [step for step in taken if step is not None]
            writes = self._unsaved + [write for step in steps for write in step]
            if writes:
                self._commit(writes)
            with self._progress:
                self._done += len(steps)
                self._progress.notify_all()
            if taken[-1] is None:
                return

    def _commit(self, writes: list[Write]) -> None:
        opened = self._open
        self._commit_started = time.monotonic()
        try:
            with self._history.batch():
                for write in writes:
                    self._apply(write)
            self._unsaved = []
        except Exception as exc:  # a HistoryError, or a bug: either way nothing was saved
            self._open = opened  # rolled back: the row inserted in it does not exist
            self._unsaved = writes
            log.error("%s", exc, exc_info=not isinstance(exc, HistoryError))
            self._on_error(WRITE_FAILED_FAULT)
        finally:
            self._commit_started = None

    def _apply(self, write: Write) -> None:
        history = self._history
        match write:
            case SaveRow(key=key, row=row):
                known = self._open[1] if self._open and self._open[0] == key else None
                saved = history.record_session(replace(row, id=known),
                                               cooldown_until_wall=write.cooldown_until_wall)
                self._open = (key, saved.id)
            case SaveFault():
                history.record_fault(write.at_wall, write.reason)
            case ClearFault():
                history.clear_fault(write.at_wall)
            case CarryOver():
                history.carry_over(write.carried, write.at_wall, write.cooldown_until_wall,
                                   write.mark)
            case SaveDose():
                history.save_dose_today(write.day, write.dose_cem43)
            case SaveMark():
                history.save_mark(write.mark, write.day)
