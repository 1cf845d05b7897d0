"""Decides what the controller's steps write into the history; a thread writes it.

Sessions and preheats get their row when they start (end reason "interrupted")
and are brought up to date every `CHECKPOINT_S` of monotonic time, each time
with the cooldown that would follow them; faults, the day's dose, clock-step
carry-overs and clock marks are saved as they happen. `history.History` stores
and restores; this decides what to write, and when; `writer.HistoryWriter` writes it,
in its own thread, so that no step of the controller waits for the disk.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date

from matpi.core import limits
from matpi.core.clockmark import ClockMark
from matpi.core.events import (
    ClockSet,
    FaultCleared,
    FaultRaised,
    Notice,
    PreheatEnded,
    PreheatStarted,
    SessionEnded,
    SessionStarted,
    Snapshot,
    State,
)
from matpi.store.history import (
    INTERRUPTED,
    PREHEAT,
    SESSION,
    WRITE_FAILED_FAULT,
    History,
    SessionRow,
)
from matpi.store.writer import (
    CLOSE_TIMEOUT_S,
    MAX_STALL_S,
    CarryOver,
    ClearFault,
    HistoryWriter,
    SaveDose,
    SaveFault,
    SaveMark,
    SaveRow,
    Write,
)

log = logging.getLogger(__name__)

CHECKPOINT_S = 4.0
"""How often a running session's row is saved: the most a crash or a power cut can make
the daily cap forget (one small transaction, 450 in a 30-min session), with the time of
the commit under way and of the checkpoint's own, so that on a healthy disk (commits of
milliseconds) it stays under the 5 s promised; a commit stuck longer than
`writer.MAX_STALL_S` is a failed write."""
DOSE_STEP_CEM43 = 0.01
"""How much the day's dose grows before it is saved again."""


class HistoryRecorder:
    """A controller listener that writes sessions, faults and cooldown to the history.

    Runs in the controller thread and never waits there: each step's writes go, as one
    immutable tuple, to a `HistoryWriter` thread that saves them in order. A failed
    write is logged and `on_error(WRITE_FAILED_FAULT)` called (from the writer thread),
    which the daemon wires to a `DriverFault`: no session runs uncounted. So is a writer
    that falls behind (a commit stuck over `max_stall_s`, or its queue full), at every
    step while it is: a crash would then forget more than a checkpoint interval. No
    write is dropped: a full queue's are kept for the next step, a failed commit's for
    the next commit.

        recorder = HistoryRecorder(history, clock.wall, monotonic=clock.now,
                                   cooldown_min=rules.cooldown_min,
                                   on_error=lambda why: controller.post(DriverFault(why)))
        ...
        recorder.close()  # after the controller's last step: its final writes saved

    The writer thread owns `history` from construction until `close` returns True.
    Rows carry wall times; when to checkpoint, and how long a preheat has run,
    follow the monotonic clock, so that a wall clock set back cannot stop the
    checkpoints.
    """

    def __init__(
        self,
        history: History,
        wall: Callable[[], float],
        *,
        monotonic: Callable[[], float],
        cooldown_min: float,
        on_error: Callable[[str], None],
        checkpoint_s: float = CHECKPOINT_S,
        mark: Callable[[], ClockMark] | None = None,
        max_stall_s: float = MAX_STALL_S,
    ) -> None:
        """`mark`, when given (a mat on the real clock), is saved after every write, so that
        a restart can see a wall clock set while matpi was down."""
        self._writer = HistoryWriter(history, on_error)
        self._wall = wall
        self._monotonic = monotonic
        self._opened_at = 0.0
        self._cooldown_s = cooldown_min * 60.0
        self._on_error = on_error
        self._checkpoint_s = checkpoint_s
        self._max_stall_s = max_stall_s
        self._open: SessionRow | None = None
        self._key = 0
        self._saved_at = 0.0
        self._dose_saved = (date.min, 0.0)
        self._mark = mark
        self._writes: list[Write] = []
        self._behind = False

    def __call__(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        kept_back = len(self._writes)
        for notice in notices:
            self._note(notice, snapshot)
        if (self._open is not None and snapshot.state in (State.RUNNING, State.PREHEAT)
                and self._monotonic() - self._saved_at >= self._checkpoint_s):
            self._checkpoint(snapshot)
        self._save_dose(snapshot)
        # A notice that writes nothing (a setting changed, a start refused) writes no mark:
        # each write is a commit on the SD card, and its thread's wake-up slows this step.
        wrote = len(self._writes) > kept_back
        if wrote and self._mark is not None:
            self._writes.append(SaveMark(self._mark(), date.fromisoformat(snapshot.usage_day)))
        queued = not self._writes or self._writer.submit(tuple(self._writes))
        if queued:
            self._writes = []  # else kept, and handed over with the next step's
        self._watch_writer(queued=queued)

    def flush(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Wait until every write handed over so far is saved (or its failure reported)."""
        return self._writer.flush(timeout_s)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Save what the last steps handed over (and any a full queue kept back) and end the
        writer thread; call it once the controller has stopped. False after `timeout_s` (a
        stuck disk): the history is then still the writer's, and must not be closed."""
        deadline = time.monotonic() + timeout_s
        if self._writes and not self._writer.submit(tuple(self._writes), timeout_s):
            return False
        self._writes = []
        return self._writer.close(max(deadline - time.monotonic(), 0.0))

    def _watch_writer(self, *, queued: bool) -> None:
        """Report a writer that is behind at every step until it catches up: a fault reset
        while the disk is still stuck must fault again (the core ignores a repeat while
        faulted). The log says it once."""
        stalled_s = self._writer.stalled_s()
        behind = not queued or stalled_s > self._max_stall_s
        if behind:
            if not self._behind:
                log.error("history writer behind: %s", "its queue is full, writes kept back"
                          if not queued else f"one commit has taken {stalled_s:.1f} s")
            self._on_error(WRITE_FAILED_FAULT)
        self._behind = behind

    def _note(self, notice: Notice, snapshot: Snapshot) -> None:
        now = self._wall()
        match notice:
            case SessionStarted() | PreheatStarted():
                planned = notice.planned_min if isinstance(notice, SessionStarted) else 0.0
                row = SessionRow(
                    started_wall=now, ended_wall=now, program=notice.program,
                    planned_min=planned, actual_s=0.0, end_reason=INTERRUPTED,
                    peak_c=snapshot.temperature_c, dose_cem43=0.0,
                    heat_level=snapshot.heat_level.value, pattern=snapshot.pattern.value,
                    kind=SESSION if isinstance(notice, SessionStarted) else PREHEAT)
                self._key += 1
                self._opened_at = self._monotonic()
                self._save(row, now + self._left_s(row, snapshot) + self._cooldown_s)
            case SessionEnded() | PreheatEnded() if self._open is not None:
                row = replace(self._open, ended_wall=now, actual_s=notice.elapsed_s,
                              end_reason=notice.reason.value, peak_c=notice.peak_c,
                              dose_cem43=notice.dose_cem43)
                self._open = None
                self._writes.append(SaveRow(self._key, row, now + snapshot.cooldown_remaining_s))
            case ClockSet():
                self._writes.append(CarryOver(notice, now, now + snapshot.cooldown_remaining_s,
                                              None if self._mark is None else self._mark()))
                if self._open is not None:
                    # The open row, and the cooldown that follows it, in the new clock's terms.
                    self._checkpoint(snapshot)
            case FaultRaised(reason=reason):
                self._writes.append(SaveFault(now, reason))
            case FaultCleared():
                self._writes.append(ClearFault(now))

    def _checkpoint(self, snapshot: Snapshot) -> None:
        assert self._open is not None
        now = self._wall()
        peaks = [t for t in (self._open.peak_c, snapshot.temperature_c) if t is not None]
        preheat = self._open.kind == PREHEAT
        row = replace(self._open, ended_wall=now,
                      actual_s=self._monotonic() - self._opened_at if preheat
                      else float(snapshot.elapsed_s),
                      planned_min=self._open.planned_min if preheat else snapshot.planned_min,
                      dose_cem43=snapshot.dose_cem43,
                      peak_c=max(peaks) if peaks else None,
                      heat_level=snapshot.heat_level.value, pattern=snapshot.pattern.value)
        self._save(row, now + self._left_s(row, snapshot) + self._cooldown_s)

    @staticmethod
    def _left_s(row: SessionRow, snapshot: Snapshot) -> float:
        """The longest the open row may still run: a crash any time before its end leaves
        the whole cooldown after it (restore counts one cooldown at most)."""
        if row.kind == PREHEAT:
            return limits.MAX_PREHEAT_MIN * 60.0
        return float(snapshot.remaining_s) if snapshot.state is State.RUNNING else (
            row.planned_min * 60.0)

    def _save_dose(self, snapshot: Snapshot) -> None:
        """The day's dose, whenever it grew by DOSE_STEP: a restart must not forget the warm
        pad between sessions (the rows hold only sessions and preheats)."""
        day, saved = date.fromisoformat(snapshot.usage_day), self._dose_saved
        dose = snapshot.dose_today_cem43
        if day == saved[0] and dose < saved[1] + DOSE_STEP_CEM43:
            return
        self._writes.append(SaveDose(day, dose))
        self._dose_saved = (day, dose)

    def _save(self, row: SessionRow, cooldown_until_wall: float) -> None:
        self._writes.append(SaveRow(self._key, row, cooldown_until_wall))
        self._open = row
        self._saved_at = self._monotonic()
