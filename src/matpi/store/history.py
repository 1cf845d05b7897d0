"""The usage log in SQLite: sessions, faults, and the state a restart must not lose.

One file in the state directory (`/var/lib/matpi/history.sqlite3` under
systemd), WAL mode, every commit synced. The daily cap, the cooldown, the
beginner progression, the streak and a latched fault are read back from it at
start, so neither a crash nor a reboot bypasses a limit:

- a session gets its row when it starts (end reason "interrupted") and the row
  is brought up to date every `recorder.CHECKPOINT_S` while it runs, each time with a
  cooldown counted from that moment; a restart mid-session therefore comes up
  idle, in cooldown, with the minutes used counted (less at most one checkpoint);
- minutes today, progression and streak are derived from the session rows;
- a fault stays latched until a row in the fault log says it was cleared.

A damaged or unwritable file must never mean running without limits. `open`
raises `HistoryError`, whose message says what to do; the daemon logs it and
comes up with `UNUSABLE_FAULT` latched and a daily allowance of zero, so it
refuses every session (LED in fault, the message in the journal) until the
file is fixed or moved aside. A write failing while running is logged and
reported to `recorder.HistoryRecorder`'s `on_error` as `WRITE_FAILED_FAULT`, which the
daemon turns into a fault. While the daemon runs, every write comes from one thread,
`writer.HistoryWriter`'s. Both reasons are short (Home Assistant shows at
most 255 characters); the journal has the whole story.

    history = History.open(state_dir / HISTORY_FILENAME)
    saved = history.restore(clock.wall(), clock.today(), rules)
    controller.add_listener(HistoryRecorder(history, clock.wall, monotonic=clock.now, ...))

Over 400 lines on purpose: one class around one connection, each write beside the
read that restores it at start, so that what is saved and what comes back are seen
together. The file itself (opening, schema, damage) is in `schema`.
"""

import logging
import math
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from matpi.core.clockmark import STEP_TOLERANCE_S, ClockMark
from matpi.core.errors import HistoryError
from matpi.core.events import (
    ClockSet,
    EndReason,
)
from matpi.core.programs import Program
from matpi.core.rules import Rules
from matpi.core.usage import Usage
from matpi.store.schema import open_database, rolled_back_on_error

log = logging.getLogger(__name__)

HISTORY_FILENAME = "history.sqlite3"
INTERRUPTED = "interrupted"
"""End reason of a session whose process died before it ended."""
SESSION = "session"
PREHEAT = "preheat"
"""Row kinds: a session, or a preheat that a remote start ran on the empty mat."""
PREHEAT_WINDOW_S = 3600.0
"""How far back unconfirmed preheats are restored for the core's hourly limit."""
UNUSABLE_FAULT = "history file unusable: no sessions until it is fixed (see journalctl -u matpi)"
WRITE_FAILED_FAULT = "history not written: no sessions until it is fixed (see journalctl -u matpi)"


@dataclass(frozen=True)
class SessionRow:
    """One session as stored; `id` is None until it has been saved."""

    started_wall: float
    ended_wall: float
    program: str
    planned_min: float
    actual_s: float
    end_reason: str
    peak_c: float | None
    dose_cem43: float
    heat_level: str
    pattern: str
    kind: str = SESSION
    id: int | None = None


@dataclass(frozen=True)
class FaultRow:
    raised_wall: float
    reason: str
    cleared_wall: float | None


@dataclass(frozen=True)
class WeekTotal:
    """Use in one calendar week, Monday to Sunday."""

    monday: date
    sessions: int
    minutes: float


@dataclass(frozen=True)
class HistorySummary:
    """Totals of the last `days` days (today included) and the streak as of today."""

    first_day: date
    today: date
    sessions: int
    completed: int
    minutes: float
    streak_days: int
    weeks: list[WeekTotal]


@dataclass(frozen=True)
class _SinceMark:
    """What the last write's clock mark says: the day whose use is really today's (the wall
    clock was set while matpi was down), the real seconds since that write (same boot), whether
    the cooldown counts in full (the last boot's clock was never set), how far the wall clock
    moved on its own, and the mark's wall time."""

    unseen_day: date | None = None
    real_s: float | None = None
    full_cooldown: bool = False
    wall_shift_s: float = 0.0
    mark_wall: float | None = None


@dataclass(frozen=True)
class Restored:
    """What a starting daemon hands to `SessionMachine`."""

    usage: Usage
    cooldown_remaining_s: float
    fault: str | None
    preheat_ages_s: tuple[float, ...] = ()
    """How long ago each unconfirmed preheat of the last hour started."""


def local_day(wall: float) -> date:
    """The local calendar day of a wall time, as `Clock.today` counts it."""
    return datetime.fromtimestamp(wall).date()


def day_begins(day: date) -> float:
    """Wall time of local midnight at the start of `day` (DST-aware)."""
    return datetime.combine(day, datetime.min.time()).timestamp()


class History:
    """The open history file. Use from one thread at a time. See the module docstring."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        """Use `History.open`."""
        self._db = db
        self.path = path
        self._batched = False

    @classmethod
    def open(cls, path: Path) -> "History":
        """Open (creating or migrating) the history at `path`, proving it can be written.

        Raises:
            HistoryError: the file is damaged, from a newer matpi, or cannot be written.
        """
        return cls(open_database(path), path)

    def close(self) -> None:
        self._db.close()

    # --- writing --------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every write inside is one transaction, one fsync: the writer thread saves all
        the steps that waited during its last commit at once (see `writer`)."""
        with self._transaction("save the history"):
            self._batched = True
            try:
                yield
            finally:
                self._batched = False

    def record_session(self, row: SessionRow, *, cooldown_until_wall: float | None = None
                       ) -> SessionRow:
        """Insert `row` (id None) or bring it up to date; returns it with its id.

        `cooldown_until_wall`, when given, is saved in the same transaction.
        """
        values = asdict(row)
        del values["id"]
        with self._transaction("save a session"):
            if row.id is None:
                cursor = self._db.execute(
                    f"INSERT INTO sessions ({', '.join(values)}) "
                    f"VALUES ({', '.join(':' + k for k in values)})", values)
                row = replace(row, id=cursor.lastrowid)
            else:
                self._db.execute(
                    f"UPDATE sessions SET {', '.join(f'{k} = :{k}' for k in values)} "
                    "WHERE id = :id", {**values, "id": row.id})
            if cooldown_until_wall is not None:
                self._save_cooldown(cooldown_until_wall)
        return row

    def record_fault(self, at_wall: float, reason: str) -> None:
        with self._transaction("log a fault"):
            self._db.execute("INSERT INTO faults (raised_wall, reason) VALUES (?, ?)",
                             (at_wall, reason))

    def clear_fault(self, at_wall: float) -> None:
        """Mark every latched fault cleared (a long press at the mat, once cool)."""
        with self._transaction("clear a fault"):
            self._db.execute("UPDATE faults SET cleared_wall = ? WHERE cleared_wall IS NULL",
                             (at_wall,))

    def set_cooldown_until(self, wall: float) -> None:
        with self._transaction("save the cooldown"):
            self._save_cooldown(wall)

    def save_mark(self, mark: ClockMark, day: date) -> None:
        """Where the wall clock stood at this write, and which day's use it made."""
        with self._transaction("save the clock mark"):
            self._write_mark(mark, day)

    def save_dose_today(self, day: date, dose_cem43: float) -> None:
        with self._transaction("save the day's dose"):
            self._db.execute("UPDATE state SET dose_day = ?, dose_today = ? WHERE id = 1",
                             (day.isoformat(), dose_cem43))

    def carry_over(self, carried: ClockSet, at_wall: float, cooldown_until_wall: float,
                   mark: ClockMark | None = None) -> None:
        """Save what a wall-clock step carried over, in the new clock's terms, with the mark
        of that clock in the same transaction (never one clock's cooldown with the other's
        mark)."""
        with self._transaction("save the use carried over a clock step"):
            self._write_carry(carried, at_wall, cooldown_until_wall)
            if mark is not None:
                self._write_mark(mark, date.fromisoformat(carried.day))

    def _write_carry(self, carried: ClockSet, at_wall: float, cooldown_until_wall: float) -> None:
        preheats = ",".join(f"{at_wall - age:.3f}" for age in carried.preheat_ages_s)
        self._db.execute(
            "UPDATE state SET carried_day = ?, carried_minutes = ?, carried_dose = ?, "
            "carried_wall = ?, carried_preheats = ? WHERE id = 1",
            (carried.day, carried.minutes_today, carried.dose_today, at_wall, preheats))
        self._save_cooldown(cooldown_until_wall)

    def _write_mark(self, mark: ClockMark, day: date) -> None:
        synced = None if mark.synced is None else int(mark.synced)
        self._db.execute(
            "UPDATE state SET mark_wall = ?, mark_boot_id = ?, mark_boot_s = ?, "
            "mark_synced = ?, mark_day = ? WHERE id = 1",
            (mark.wall, mark.boot_id, mark.since_boot_s, synced, day.isoformat()))

    # --- reading --------------------------------------------------------------

    def latched_fault(self) -> str | None:
        """The reason of the latest fault not yet cleared, or None."""
        row = self._one("SELECT reason FROM faults WHERE cleared_wall IS NULL "
                        "ORDER BY raised_wall DESC, id DESC LIMIT 1")
        return None if row is None else str(row[0])

    def cooldown_until(self) -> float | None:
        """Wall time the last cooldown ends, or None if there never was one."""
        row = self._one("SELECT cooldown_until_wall FROM state WHERE id = 1")
        return None if row is None or row[0] is None else float(row[0])

    def usage(self, today: date, programs: dict[str, Program]) -> Usage:
        """`Usage` as the session machine would have it had it run all along.

        Minutes today: every session ending today (local time). Progression:
        distinct days with a completed session of each progressive program.
        Streak: consecutive days with a completed session, up to the last one.
        """
        begins, ends = day_begins(today), day_begins(today + timedelta(days=1))
        used = self._one("SELECT COALESCE(SUM(actual_s), 0), COALESCE(SUM(dose_cem43), 0) "
                         "FROM sessions WHERE ended_wall >= ? AND ended_wall < ?", (begins, ends))
        seconds, dose = used if used else (0.0, 0.0)
        usage = Usage(day=today, minutes_today=seconds / 60.0, dose_today=dose)
        days_by_program: dict[str, set[date]] = {}
        for program, ended in self._all(
            "SELECT program, ended_wall FROM sessions WHERE end_reason = ? AND ended_wall < ?",
            (EndReason.COMPLETED.value, ends),
        ):
            days_by_program.setdefault(program, set()).add(local_day(ended))
        for name, program in programs.items():
            program_days = days_by_program.get(name)
            if program.progression and program_days:
                usage.progress_days[name] = len(program_days)
                usage.progress_last[name] = max(program_days)
        completed_days = {day for days in days_by_program.values() for day in days}
        if completed_days:
            usage.last_completed_day = max(completed_days)
            usage.streak_days = _run_ending(usage.last_completed_day, completed_days)
        return usage

    def restore(
        self, now_wall: float, today: date, rules: Rules, mark: ClockMark | None = None
    ) -> Restored:
        """Usage, remaining cooldown, latched fault and recent preheats for a daemon starting now.

        A Pi without a clock battery can boot with its wall clock behind (even in
        1970) until NTP sets it, and rows written before a step carry the old
        clock's dates. So the day counted is never earlier than the day of the
        latest row or of the last step's carry-over, whose use is added back; a
        preheat dated in the future counts as just started; and the remaining
        cooldown is at most one full cooldown. With this moment's `mark`, a wall
        clock set while matpi was down is seen too: in the same boot, against the
        boot's own clock (which also times the cooldown); after a boot whose clock
        was never set, the last day's use counts as today's and the cooldown in full.
        """
        since = self._since_mark(now_wall, mark)
        latest = self._one("SELECT MAX(ended_wall) FROM sessions")
        if latest is not None and latest[0] is not None:
            today = max(today, local_day(float(latest[0])))
        carried = self._carried()
        if carried is not None:
            today = max(today, carried[0])
        usage = self._use_of(today, rules.programs)
        if since.unseen_day is not None and since.unseen_day != today:
            earlier = self._use_of(since.unseen_day, {})
            usage.minutes_today += earlier.minutes_today
            usage.dose_today += earlier.dose_today
        # Wall times back to now, less what the wall clock moved on its own while matpi was
        # down; a preheat stamped in the future (the clock is behind now) just started.
        walls = [started for (started,) in self._all(
            "SELECT started_wall FROM sessions WHERE kind = ? AND end_reason != ? "
            "AND started_wall > ?", (PREHEAT, EndReason.CONFIRMED.value,
                                     now_wall - since.wall_shift_s - PREHEAT_WINDOW_S))]
        if carried is not None:
            walls += [float(w) for w in carried[4].split(",") if w]
        ages = {max(now_wall - since.wall_shift_s - w, 0.0) for w in walls}
        remaining = self._cooldown_left(now_wall, since)
        remaining = min(max(remaining, 0.0), rules.cooldown_min * 60.0)
        return Restored(usage, remaining, self.latched_fault(),
                        tuple(sorted(a for a in ages if a < PREHEAT_WINDOW_S)))

    def settle(self, restored: Restored, now_wall: float, mark: ClockMark | None) -> None:
        """Save what `restore` concluded in this clock's terms, so that the next restart
        starts from it, whatever the clock did before (a carry-over, as after a step)."""
        usage = restored.usage
        carried = ClockSet(usage.day.isoformat(), usage.minutes_today, usage.dose_today,
                           restored.preheat_ages_s)
        with self._transaction("settle what was restored"):  # all or nothing
            self._write_carry(carried, now_wall, now_wall + restored.cooldown_remaining_s)
            self._db.execute("UPDATE state SET dose_day = ?, dose_today = ? WHERE id = 1",
                             (usage.day.isoformat(), usage.dose_today))
            if mark is not None:
                self._write_mark(mark, usage.day)

    def _carried(self) -> tuple[date, float, float, float, str] | None:
        """The last carry-over: its day, minutes, dose, wall time and preheats' wall times."""
        row = self._one("SELECT carried_day, carried_minutes, carried_dose, carried_wall, "
                        "carried_preheats FROM state WHERE id = 1")
        if row is None or row[0] is None:
            return None
        return date.fromisoformat(row[0]), float(row[1]), float(row[2]), float(row[3]), row[4] or ""

    def _use_of(self, day: date, programs: dict[str, Program]) -> Usage:
        """A day's use: its rows, the dose saved for it, and a carry-over to it with every row
        since (the rows before a clock step carry the old clock's dates)."""
        usage = self.usage(day, programs)
        usage.dose_today = max(usage.dose_today, self._saved_dose(day))
        carried = self._carried()
        if carried is not None and carried[0] == day:
            _, minutes, dose, carried_wall, _ = carried
            seconds, since_dose = self._one(
                "SELECT COALESCE(SUM(actual_s), 0), COALESCE(SUM(dose_cem43), 0) "
                "FROM sessions WHERE ended_wall >= ?", (carried_wall,)) or (0.0, 0.0)
            usage.minutes_today = max(usage.minutes_today, minutes + seconds / 60.0)
            usage.dose_today = max(usage.dose_today, dose + since_dose)
        return usage

    def _since_mark(self, now_wall: float, mark: ClockMark | None) -> "_SinceMark":
        """What the last write's clock mark says of the time since it."""
        saved = self._one("SELECT mark_wall, mark_boot_id, mark_boot_s, mark_synced, mark_day "
                          "FROM state WHERE id = 1")
        if mark is None or saved is None or saved[0] is None:
            return _SinceMark()
        saved_wall, boot_id, boot_s, synced, day = saved
        if boot_id and boot_id == mark.boot_id:
            real_s = mark.since_boot_s - boot_s
            shift_s = (now_wall - saved_wall) - real_s
            stepped = abs(shift_s) > STEP_TOLERANCE_S
            return _SinceMark(date.fromisoformat(day) if stepped else None, real_s,
                              False, shift_s if stepped else 0.0, saved_wall)
        if synced != 1:
            # The last boot's clock was never set (or cannot be told): its dates may be
            # anything, so as little time as possible has passed since its last write.
            return _SinceMark(date.fromisoformat(day), None, True, now_wall - saved_wall,
                              saved_wall)
        return _SinceMark(mark_wall=saved_wall)

    def _cooldown_left(self, now_wall: float, since: "_SinceMark") -> float:
        """Seconds of cooldown left: timed by the boot's own clock when the mark allows."""
        until = self.cooldown_until()
        if until is None:
            return 0.0
        if since.full_cooldown and since.mark_wall is not None and until > since.mark_wall:
            return math.inf
        if since.real_s is not None and since.mark_wall is not None:
            return until - since.mark_wall - since.real_s
        return until - now_wall

    def _saved_dose(self, day: date) -> float:
        saved = self._one("SELECT dose_day, dose_today FROM state WHERE id = 1")
        return float(saved[1]) if saved is not None and saved[0] == day.isoformat() else 0.0

    def sessions(self, days: int, today: date) -> list[SessionRow]:
        """Sessions that ended in the last `days` days (today included), oldest first."""
        since = day_begins(today - timedelta(days=days - 1))
        until = day_begins(today + timedelta(days=1))
        names = [f.name for f in fields(SessionRow)]
        rows = self._all(f"SELECT {', '.join(names)} FROM sessions "
                         "WHERE ended_wall >= ? AND ended_wall < ? ORDER BY started_wall, id",
                         (since, until))
        return [SessionRow(**dict(zip(names, row, strict=True))) for row in rows]

    def faults(self, days: int, today: date) -> list[FaultRow]:
        """Faults raised in the last `days` days, or still latched, oldest first."""
        since = day_begins(today - timedelta(days=days - 1))
        rows = self._all("SELECT raised_wall, reason, cleared_wall FROM faults "
                         "WHERE raised_wall >= ? OR cleared_wall IS NULL "
                         "ORDER BY raised_wall, id", (since,))
        return [FaultRow(*row) for row in rows]

    def summary(self, days: int, today: date) -> HistorySummary:
        """Totals over the last `days` days, weekly totals of the weeks they touch, streak."""
        first_day = today - timedelta(days=days - 1)
        first_monday = first_day - timedelta(days=first_day.weekday())
        weeks: dict[date, list[SessionRow]] = {
            first_monday + timedelta(weeks=n): []
            for n in range((today - first_monday).days // 7 + 1)
        }
        in_window: list[SessionRow] = []
        for row in self.sessions((today - first_monday).days + 1, today):
            day = local_day(row.ended_wall)
            weeks[day - timedelta(days=day.weekday())].append(row)
            if day >= first_day:
                in_window.append(row)
        usage = self.usage(today, {})
        last = usage.last_completed_day
        alive = last is not None and (today - last).days <= 1
        return HistorySummary(
            first_day=first_day,
            today=today,
            sessions=sum(r.kind == SESSION for r in in_window),
            completed=sum(r.end_reason == EndReason.COMPLETED for r in in_window),
            minutes=sum(r.actual_s for r in in_window) / 60.0,
            streak_days=usage.streak_days if alive else 0,
            weeks=[WeekTotal(monday, len(rows), sum(r.actual_s for r in rows) / 60.0)
                   for monday, rows in weeks.items()],
        )

    # --- plumbing -------------------------------------------------------------

    def _save_cooldown(self, wall: float) -> None:
        self._db.execute("UPDATE state SET cooldown_until_wall = ? WHERE id = 1", (wall,))

    @contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        """One write transaction, or a part of the `batch` open; any SQLite error becomes a
        HistoryError naming `what`."""
        try:
            if self._batched:
                yield
            else:
                with rolled_back_on_error(self._db):
                    yield
        except sqlite3.Error as exc:
            raise HistoryError(f"history {self.path}: could not {what}: {exc}") from exc

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"history {self.path}: could not read it: {exc}") from exc

    def _one(self, sql: str, params: Sequence[object] = ()) -> tuple[Any, ...] | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None


def _run_ending(last: date, days: set[date]) -> int:
    """How many consecutive days in `days` end at `last`."""
    run = 0
    while last - timedelta(days=run) in days:
        run += 1
    return run
