"""Writes what the controller does into the history: a listener in the controller thread.

Sessions and preheats get their row when they start (end reason "interrupted")
and are brought up to date every `CHECKPOINT_S` of monotonic time, each time
with the cooldown that would follow them; faults, the day's dose, clock-step
carry-overs and clock marks are saved as they happen. `history.History` stores
and restores; this decides what to write, and when.
"""

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import date

from matpi.core import limits
from matpi.core.clockmark import ClockMark
from matpi.core.errors import HistoryError
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

log = logging.getLogger(__name__)

CHECKPOINT_S = 5.0
"""How often a running session's row is saved: the most a crash or a power cut can make
the daily cap forget (one small transaction, 360 in a 30-min session)."""
DOSE_STEP_CEM43 = 0.01
"""How much the day's dose grows before it is saved again."""


class HistoryRecorder:
    """A controller listener that writes sessions, faults and cooldown to the history.

    Runs in the controller thread: each write is one short transaction (one
    fsync). A failed write is logged and `on_error(WRITE_FAILED_FAULT)` called,
    which the daemon wires to a `DriverFault`: no session runs uncounted.

        recorder = HistoryRecorder(history, clock.wall, monotonic=clock.now,
                                   cooldown_min=rules.cooldown_min,
                                   on_error=lambda why: controller.post(DriverFault(why)))

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
    ) -> None:
        """`mark`, when given (a mat on the real clock), is saved after every write, so that
        a restart can see a wall clock set while matpi was down."""
        self._history = history
        self._wall = wall
        self._monotonic = monotonic
        self._opened_at = 0.0
        self._cooldown_s = cooldown_min * 60.0
        self._on_error = on_error
        self._checkpoint_s = checkpoint_s
        self._open: SessionRow | None = None
        self._saved_at = 0.0
        self._dose_saved = (date.min, 0.0)
        self._mark = mark

    def __call__(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        try:
            saved_at = self._saved_at
            for notice in notices:
                self._note(notice, snapshot)
            if (self._open is not None and snapshot.state in (State.RUNNING, State.PREHEAT)
                    and self._monotonic() - self._saved_at >= self._checkpoint_s):
                self._checkpoint(snapshot)
            wrote = self._save_dose(snapshot) or bool(notices) or self._saved_at != saved_at
            if wrote and self._mark is not None:
                self._history.save_mark(self._mark(), date.fromisoformat(snapshot.usage_day))
        except HistoryError as exc:
            log.error("%s", exc)
            self._on_error(WRITE_FAILED_FAULT)

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
                self._opened_at = self._monotonic()
                self._save(row, now + self._left_s(row, snapshot) + self._cooldown_s)
            case SessionEnded() | PreheatEnded() if self._open is not None:
                row = replace(self._open, ended_wall=now, actual_s=notice.elapsed_s,
                              end_reason=notice.reason.value, peak_c=notice.peak_c,
                              dose_cem43=notice.dose_cem43)
                self._open = None
                self._history.record_session(
                    row, cooldown_until_wall=now + snapshot.cooldown_remaining_s)
            case ClockSet():
                self._history.carry_over(notice, now, now + snapshot.cooldown_remaining_s,
                                         None if self._mark is None else self._mark())
                if self._open is not None:
                    # The open row, and the cooldown that follows it, in the new clock's terms.
                    self._checkpoint(snapshot)
            case FaultRaised(reason=reason):
                self._history.record_fault(now, reason)
            case FaultCleared():
                self._history.clear_fault(now)

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

    def _save_dose(self, snapshot: Snapshot) -> bool:
        """The day's dose, whenever it grew by DOSE_STEP: a restart must not forget the warm
        pad between sessions (the rows hold only sessions and preheats). True if saved."""
        day, saved = date.fromisoformat(snapshot.usage_day), self._dose_saved
        dose = snapshot.dose_today_cem43
        if day == saved[0] and dose < saved[1] + DOSE_STEP_CEM43:
            return False
        self._history.save_dose_today(day, dose)
        self._dose_saved = (day, dose)
        return True

    def _save(self, row: SessionRow, cooldown_until_wall: float) -> None:
        self._open = self._history.record_session(row, cooldown_until_wall=cooldown_until_wall)
        self._saved_at = self._monotonic()
