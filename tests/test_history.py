"""The SQLite usage log: schema and migrations, damage, restart state, the recorder, the report."""

import csv
import io
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from conftest import DAY, read_all
from matpi.core.clockmark import ClockMark
from matpi.core.errors import HistoryError
from matpi.core.events import (
    Adjust,
    Adjusted,
    ClockStepped,
    Event,
    LongPress,
    Notice,
    Press,
    Reading,
    Refused,
    Source,
    Start,
    State,
    Stop,
)
from matpi.core.programs import BUILTIN_PROGRAMS, HeatLevel
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.store.history import (
    INTERRUPTED,
    UNUSABLE_FAULT,
    WRITE_FAILED_FAULT,
    History,
    SessionRow,
    day_begins,
    local_day,
)
from matpi.store.historyview import render_history
from matpi.store.recorder import HistoryRecorder
from matpi.store.schema import SCHEMA_VERSION

# The first schema as it shipped, frozen here: migrations must keep reading it.
V1_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE sessions (id INTEGER PRIMARY KEY, started_wall REAL NOT NULL,
       ended_wall REAL NOT NULL, program TEXT NOT NULL, planned_min REAL NOT NULL,
       actual_s REAL NOT NULL, end_reason TEXT NOT NULL, peak_c REAL,
       dose_cem43 REAL NOT NULL, heat_level TEXT NOT NULL, pattern TEXT NOT NULL)""",
    "CREATE INDEX sessions_by_end ON sessions (ended_wall)",
    """CREATE TABLE faults (id INTEGER PRIMARY KEY, raised_wall REAL NOT NULL,
       reason TEXT NOT NULL, cleared_wall REAL)""",
    "INSERT INTO meta VALUES ('schema_version', '1')",
)

NEW_YORK = "EST5EDT,M3.2.0,M11.1.0"
BERLIN = "CET-1CEST,M3.5.0,M10.5.0/3"


@pytest.fixture
def local_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Switch the process's local time zone (POSIX rules: no tzdata needed)."""

    def use(rule: str) -> None:
        monkeypatch.setenv("TZ", rule)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    opened = History.open(tmp_path / "history.sqlite3")
    yield opened
    opened.close()


def at(day: date, hour: int, minute: int = 0) -> float:
    """Local wall time on `day`."""
    return datetime(day.year, day.month, day.day, hour, minute).timestamp()


def session(program: str, ended: float, minutes: float, reason: str = "completed") -> SessionRow:
    return SessionRow(started_wall=ended - minutes * 60, ended_wall=ended, program=program,
                      planned_min=minutes, actual_s=minutes * 60, end_reason=reason,
                      peak_c=38.0, dose_cem43=0.1, heat_level="low", pattern="steady")


# --- schema, migrations, damage -------------------------------------------


def test_a_new_file_is_in_wal_mode_at_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "state" / "history.sqlite3"
    History.open(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),)


def test_a_first_schema_file_migrates_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    ended = at(DAY, 8)
    with sqlite3.connect(path) as db:
        for statement in V1_SCHEMA:
            db.execute(statement)
        db.execute("INSERT INTO sessions VALUES (1, ?, ?, 'back', 20, 1200, 'completed', 40.5, "
                   "0.4, 'medium', 'wave')", (ended - 1200, ended))
        db.execute("INSERT INTO faults VALUES (1, ?, 'trip: 45.6 °C', NULL)", (ended,))
    db.close()

    history = History.open(path)
    assert history.sessions(1, DAY) == [SessionRow(ended - 1200, ended, "back", 20, 1200,
                                                   "completed", 40.5, 0.4, "medium", "wave",
                                                   "session", 1)]
    assert history.latched_fault() == "trip: 45.6 °C"
    assert history.cooldown_until() is None
    history.set_cooldown_until(ended + 600)  # the table version 2 added
    history.close()

    history = History.open(path)
    assert history.cooldown_until() == ended + 600
    history.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "3",)
    db.close()


def test_a_file_from_a_newer_matpi_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    History.open(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(HistoryError, match=r"newer matpi \(schema 99; this one knows up to 3\)"):
        History.open(path)


def test_a_file_that_is_not_a_database_is_damaged_and_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"this is not an SQLite file, it was a truncated copy" * 100)
    with pytest.raises(HistoryError) as caught:
        History.open(path)
    message = str(caught.value)
    assert f"history {path} is damaged" in message
    assert "refuses every session" in message
    assert f"sudo mv {path}* {tmp_path}/damaged/" in message


def test_a_damaged_page_is_found_at_open(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    history = History.open(path)
    for n in range(300):
        history.record_session(session("back", at(DAY, 8) - n * 86400, 20))
    history.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[2 * page:3 * page] = b"\xa5" * page
    path.write_bytes(bytes(data))
    with pytest.raises(HistoryError, match="is damaged"):
        History.open(path)


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE recipes (name TEXT)")
    db.close()
    with pytest.raises(HistoryError, match=r"not a matpi history \(tables: recipes\)"):
        History.open(path)


def test_a_folder_that_cannot_exist_is_unwritable(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where the folder should be")
    with pytest.raises(HistoryError, match="cannot be opened for writing") as caught:
        History.open(tmp_path / "state" / "history.sqlite3")
    assert "sudo chown -R matpi:matpi" in str(caught.value)


NOBODY = 65534


@pytest.fixture
def locked_folder() -> Iterator[Path]:
    """A folder that everyone may enter and read; whether they may write is up to the test."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        yield Path(folder)
        os.chmod(folder, 0o755)


def _open_unprivileged(path: Path) -> str:
    """History.open as a user who may not write `path`'s folder: the HistoryError text, or ""

    Permissions do not bind root, so as root the open runs in a forked child that has
    dropped to uid `nobody` (forked, not exec'd: nobody may not reach this interpreter).
    """
    if os.geteuid() != 0:
        os.chmod(path.parent, 0o555)
        try:
            History.open(path).close()
        except HistoryError as exc:
            return str(exc)
        return ""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                History.open(path).close()
            except HistoryError as exc:
                os.write(write_end, str(exc).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as output:
        message = output.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return message


def test_a_read_only_history_file_is_refused(locked_folder: Path) -> None:
    path = locked_folder / "history.sqlite3"
    History.open(path).close()
    path.chmod(0o444)
    message = _open_unprivileged(path)
    assert "cannot be opened for writing" in message
    assert "refuses every session" in message


def test_an_unwritable_state_folder_is_refused(locked_folder: Path) -> None:
    message = _open_unprivileged(locked_folder / "history.sqlite3")
    assert "cannot be opened for writing" in message


def test_the_daemons_answer_to_an_unusable_history_refuses_sessions_even_after_a_reset(
    tmp_path: Path,
) -> None:
    """What the daemon builds when open fails: the fault latched and no daily allowance."""
    (tmp_path / "history.sqlite3").write_bytes(b"garbage" * 1000)
    with pytest.raises(HistoryError):
        History.open(tmp_path / "history.sqlite3")
    rules = replace(Rules(), daily_max_min=0.0)
    machine = SessionMachine(rules, 0.0, DAY, fault=UNUSABLE_FAULT)
    assert machine.state is State.FAULT and not machine.outputs(0.0).heater
    read_all(machine, 25.0, 1.0, DAY)
    machine.step(LongPress(), 2.0, DAY)  # someone resets the fault at the mat
    assert machine.state is State.IDLE
    refused = machine.step(Press(), 3.0, DAY)
    assert machine.state is State.IDLE and not machine.outputs(3.0).heater
    assert "daily limit of 0 min reached" in repr(refused)
    assert len(UNUSABLE_FAULT) < 255


# --- what a restart reads back ---------------------------------------------


def test_latched_fault_and_cooldown_survive_close_and_open(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    history = History.open(path)
    history.record_fault(at(DAY, 8), "sensor mat: no reading for 10 s")
    history.set_cooldown_until(at(DAY, 8, 10))
    history.close()

    history = History.open(path)
    assert history.latched_fault() == "sensor mat: no reading for 10 s"
    assert history.cooldown_until() == at(DAY, 8, 10)
    history.clear_fault(at(DAY, 9))
    history.close()

    history = History.open(path)
    assert history.latched_fault() is None
    assert [f.cleared_wall for f in history.faults(1, DAY)] == [at(DAY, 9)]
    history.close()


def test_minutes_today_count_sessions_ending_today_in_local_time(
    history: History, local_tz: Callable[[str], None]
) -> None:
    local_tz(NEW_YORK)  # 21:00 on 1 March there is 02:00 on 2 March in UTC
    yesterday = DAY - timedelta(days=1)
    history.record_session(session("back", at(yesterday, 21), 20))
    history.record_session(session("neck", at(DAY, 0, 10), 15))  # began before midnight
    history.record_session(session("back", at(DAY, 7), 20, reason="stopped"))
    history.record_session(session("neck", at(DAY, 23, 59), 5, reason=INTERRUPTED))
    assert history.usage(DAY, BUILTIN_PROGRAMS).minutes_today == pytest.approx(40.0)
    assert history.usage(yesterday, BUILTIN_PROGRAMS).minutes_today == pytest.approx(20.0)


def test_day_boundaries_follow_daylight_saving(local_tz: Callable[[str], None]) -> None:
    local_tz(BERLIN)
    spring_forward = date(2026, 3, 29)
    length_s = day_begins(spring_forward + timedelta(days=1)) - day_begins(spring_forward)
    assert length_s == 23 * 3600


def test_progression_counts_distinct_days_with_a_completed_session(history: History) -> None:
    days = [DAY - timedelta(days=n) for n in (9, 6, 6, 2)]
    for n, day in enumerate(days):
        history.record_session(session("beginner", at(day, 8 + n), 5))
    history.record_session(session("beginner", at(DAY - timedelta(days=1), 8), 5, "stopped"))
    history.record_session(session("back", at(DAY, 8), 20))
    history.record_session(session("retired", at(DAY, 9), 20))

    usage = history.usage(DAY, BUILTIN_PROGRAMS)
    assert usage.progress_days == {"beginner": 3}  # "back" does not grow; "retired" is gone
    assert usage.progress_last == {"beginner": DAY - timedelta(days=2)}


@pytest.mark.parametrize(
    ("completed_days_ago", "streak", "last_ago", "summary_streak"),
    [
        ([0, 1, 2, 4], 3, 0, 3),      # today, yesterday, the day before; a gap before that
        ([1, 2, 3], 3, 1, 3),         # still alive today: the last was yesterday
        ([2, 3], 2, 2, 0),            # broken: nothing yesterday
        ([], 0, None, 0),
    ],
)
def test_streak_is_the_run_of_days_ending_at_the_last_completed_one(
    history: History, local_tz: Callable[[str], None], completed_days_ago: list[int],
    streak: int, last_ago: int | None, summary_streak: int,
) -> None:
    local_tz(NEW_YORK)
    for ago in completed_days_ago:
        history.record_session(session("neck", at(DAY - timedelta(days=ago), 22), 10))
    history.record_session(session("neck", at(DAY - timedelta(days=3), 22), 10, "stopped"))
    usage = history.usage(DAY, BUILTIN_PROGRAMS)
    assert usage.streak_days == streak
    expected_last = None if last_ago is None else DAY - timedelta(days=last_ago)
    assert usage.last_completed_day == expected_last
    assert history.summary(7, DAY).streak_days == summary_streak
    machine = SessionMachine(Rules(), 0.0, DAY, usage=usage)
    assert machine.snapshot(0.0).streak_days == summary_streak


def test_a_restored_machine_keeps_the_daily_limit_the_cooldown_and_the_fault(
    history: History,
) -> None:
    rules = Rules(daily_max_min=30.0)
    now_wall = at(DAY, 12)
    history.record_session(session("back", now_wall - 300, 20))
    history.record_session(session("neck", now_wall - 3600, 10, "stopped"))
    history.set_cooldown_until(now_wall + 120)

    saved = history.restore(now_wall, DAY, rules)
    assert saved.cooldown_remaining_s == pytest.approx(120)
    machine = SessionMachine(rules, 50.0, DAY, usage=saved.usage,
                             cooldown_until=50.0 + saved.cooldown_remaining_s, fault=saved.fault)
    assert machine.state is State.COOLDOWN
    assert not machine.outputs(50.0).heater
    for t in range(50, 201, 2):  # cooldown over, but 30 of 30 min used
        read_all(machine, 25.0, float(t), DAY)
    assert machine.state is State.IDLE
    assert "daily limit of 30 min reached" in repr(machine.step(Press(), 201.0, DAY))

    history.record_fault(now_wall, "heater on but not warming")
    saved = history.restore(now_wall, DAY, rules)
    machine = SessionMachine(rules, 50.0, DAY, usage=saved.usage, fault=saved.fault)
    assert machine.state is State.FAULT
    assert machine.snapshot(50.0).fault == "heater on but not warming"


def test_a_wall_clock_behind_after_a_reboot_waits_one_cooldown_at_most(history: History) -> None:
    rules = Rules(cooldown_min=10.0)
    history.set_cooldown_until(at(DAY, 12))
    assert history.restore(at(DAY, 9), DAY, rules).cooldown_remaining_s == 600
    assert history.restore(at(DAY, 13), DAY, rules).cooldown_remaining_s == 0


# --- the recorder, driven by a real session machine -------------------------


class Rig:
    """A session machine with the recorder listening, both on one wall clock, which may be
    wrong (`wall_error_s`) and be set; with `boot_id`, every write carries a clock mark.
    Each step waits for the writer thread, so a "crash" after any step is one with the
    writer keeping up (tests/test_history_writer.py has one that does not)."""

    def __init__(self, history: History, rules: Rules | None = None, *, today: date = DAY,
                 wall_error_s: float = 0.0, boot_id: str | None = None,
                 synced: bool | None = True) -> None:
        self.rules = rules or Rules()
        self.now = 1000.0
        self.today = today
        self.wall_error_s = wall_error_s
        self.machine = SessionMachine(self.rules, self.now, today)
        self.notices: list[Notice] = []
        self.errors: list[str] = []
        mark = None if boot_id is None else (
            lambda: ClockMark(self.wall(), boot_id, self.boot_s(), synced))
        self.recorder = HistoryRecorder(history, self.wall, monotonic=lambda: self.now,
                                        cooldown_min=self.rules.cooldown_min,
                                        on_error=self.errors.append, mark=mark)
        self.read(37.5)

    def wall(self) -> float:
        return at(DAY, 9) + self.now + self.wall_error_s

    def boot_s(self) -> float:
        """The Pi's own clock (CLOCK_BOOTTIME): it was booted 100 s before this rig."""
        return self.now - 900.0

    def send(self, event: Event) -> None:
        notices = self.machine.step(event, self.now, self.today)
        self.notices += notices
        self.recorder(self.machine.snapshot(self.now), notices)
        assert self.recorder.flush(timeout_s=10.0)

    def read(self, temp_c: float) -> None:
        for name in self.rules.sensors:
            self.send(Reading(name, temp_c))

    def run_for(self, seconds: int, temp_c: float = 37.5) -> None:
        for _ in range(seconds):
            self.now += 1.0
            self.read(temp_c)


def test_only_a_step_that_writes_saves_a_clock_mark(history: History) -> None:
    """A setting changed or a start refused writes nothing, so no mark either: each mark is
    a commit on the SD card, and waking the writer slows the step that sends the state."""
    rig = Rig(history, boot_id="boot-1")

    def saved_mark() -> float | None:
        with sqlite3.connect(history.path) as db:
            wall: float | None = db.execute("SELECT mark_wall FROM state WHERE id = 1"
                                            ).fetchone()[0]
        return wall

    before = saved_mark()
    for event in (Adjust(Source.REMOTE, intensity_pct=40.0), Start(Source.LOCAL, "nope")):
        rig.now += 1.0
        rig.send(event)
        assert saved_mark() == before
    assert [type(n) for n in rig.notices[-2:]] == [Adjusted, Refused]
    rig.now += 1.0
    rig.send(Start(Source.LOCAL, "neck"))
    assert saved_mark() == rig.wall()


def test_a_completed_session_is_one_row_with_its_cooldown(history: History) -> None:
    rig = Rig(history)
    rig.send(Start(Source.LOCAL, "neck"))
    rig.run_for(10 * 60 + 1)
    assert rig.machine.state is State.COOLDOWN
    [row] = history.sessions(1, DAY)
    assert (row.program, row.end_reason, row.planned_min, row.actual_s) == (
        "neck", "completed", 10.0, 600.0)
    assert (row.heat_level, row.pattern, row.peak_c) == ("low", "wave", 37.5)
    assert row.ended_wall - row.started_wall == pytest.approx(600.0, abs=1.0)
    assert history.cooldown_until() == pytest.approx(row.ended_wall + 600.0, abs=1.0)
    assert rig.errors == []


def test_a_crash_mid_session_leaves_an_interrupted_row_and_a_cooldown(history: History) -> None:
    rig = Rig(history)
    rig.send(Start(Source.LOCAL, "neck"))
    rig.run_for(98, temp_c=37.5)  # checkpoints every 4 s, the last at 96 s; then it dies
    crashed_at = rig.wall()

    [row] = history.sessions(1, DAY)
    assert (row.end_reason, row.actual_s) == (INTERRUPTED, 96.0)
    saved = history.restore(crashed_at + 5, DAY, rig.rules)
    assert saved.usage.minutes_today == pytest.approx(1.6)
    assert saved.cooldown_remaining_s == 600  # a whole cooldown after a session cut short
    machine = SessionMachine(rig.rules, 0.0, DAY, usage=saved.usage,
                             cooldown_until=saved.cooldown_remaining_s, fault=saved.fault)
    assert machine.state is State.COOLDOWN
    assert not machine.outputs(0.0).heater


@pytest.mark.parametrize("kind", [Start(Source.LOCAL, "neck"), Start(Source.REMOTE, "neck")])
def test_a_crash_at_any_second_forgets_at_most_one_checkpoint_interval(
    tmp_path: Path, kind: Start
) -> None:
    """A crash or a power cut loses at most CHECKPOINT_S (4 s) of used time, session or
    preheat: within the 5 s promised. Before: 30 s."""
    for crash_after_s in range(0, 25):
        history = History.open(tmp_path / f"{kind.source}-{crash_after_s}.sqlite3")
        try:
            rig = Rig(history)
            rig.send(kind)
            rig.run_for(crash_after_s)
            [row] = history.sessions(1, DAY)
            assert row.end_reason == INTERRUPTED
            assert crash_after_s - 4.0 <= row.actual_s <= crash_after_s  # issue #14: < 5 s
        finally:
            history.close()


def test_faults_are_logged_and_cleared_with_the_session_ended_by_them(history: History) -> None:
    rig = Rig(history)
    rig.send(Press())
    rig.run_for(5)
    rig.run_for(2, temp_c=46.0)
    assert rig.machine.state is State.FAULT
    [row] = history.sessions(1, DAY)
    assert row.end_reason == "fault"
    reason = history.latched_fault()
    assert reason is not None and "46" in reason
    rig.run_for(120, temp_c=25.0)  # cool below 35 °C, as the pad model sees it too
    rig.send(LongPress())
    assert rig.machine.state is not State.FAULT
    assert history.latched_fault() is None
    assert rig.errors == []


def test_a_preheat_that_never_became_a_session_is_a_preheat_row(history: History) -> None:
    rig = Rig(history)
    rig.send(Start(Source.REMOTE, "back"))
    rig.run_for(20)
    rig.send(Stop(Source.REMOTE))
    [row] = history.sessions(1, DAY)
    assert (row.kind, row.end_reason, row.actual_s) == ("preheat", "stopped", 20.0)
    assert history.summary(1, DAY).sessions == 0  # heat counted, but not a session
    saved = history.restore(rig.wall(), DAY, rig.rules)
    assert saved.usage.minutes_today == pytest.approx(20 / 60)
    assert saved.preheat_ages_s == (pytest.approx(20.0),)


def test_a_failed_write_is_reported_so_the_daemon_can_latch_a_fault(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = History.open(tmp_path / "history.sqlite3")
    rig = Rig(history)
    history.close()  # as good as a file that went away
    rig.send(Press())
    assert rig.errors == [WRITE_FAILED_FAULT]
    assert len(WRITE_FAILED_FAULT) < 255  # Home Assistant shows a fault text up to 255
    assert "could not save the history" in caplog.text


# --- `matpi history` ---------------------------------------------------------


@pytest.fixture
def fortnight(history: History) -> History:
    for ago in range(0, 12, 2):
        day = DAY - timedelta(days=ago)
        history.record_session(session("beginner", at(day, 7), 5 + ago))
    history.record_session(session("back", at(DAY, 19), 12, "stopped"))
    history.record_fault(at(DAY, 20), "sensor mat: reading 85.0 °C is out of range")
    return history


def test_the_table_lists_sessions_faults_streak_and_weeks(fortnight: History) -> None:
    text = render_history(fortnight, 7, DAY, "table")
    assert "2026-02-24 to 2026-03-02 (7 days)" in text
    assert "2026-03-02 Mon 19:00" not in text  # rows show the start time
    assert "2026-03-02 Mon 18:48  back" in text
    assert "stopped" in text and "5.0/5" in text
    assert "sensor mat: reading 85.0 °C is out of range (still latched)" in text
    assert "Total: 5 sessions (4 completed), 44 min" in text
    assert "Streak: 1 day\n" in text
    assert "2026-02-23         3       27" in text
    assert "2026-03-02         2       17" in text


def test_json_has_the_totals_and_iso_times_with_an_offset(fortnight: History) -> None:
    report = json.loads(render_history(fortnight, 14, DAY, "json"))
    assert report["streak_days"] == 1
    assert report["sessions_total"] == 7
    assert [w["monday"] for w in report["weeks"]] == ["2026-02-16", "2026-02-23", "2026-03-02"]
    first = report["sessions"][0]
    assert first["program"] == "beginner" and first["actual_min"] == 15.0
    assert datetime.fromisoformat(first["started"]).utcoffset() is not None
    assert report["faults"][0]["cleared"] is None


def test_csv_is_one_row_per_session_in_the_window(fortnight: History) -> None:
    rows = list(csv.DictReader(io.StringIO(render_history(fortnight, 3, DAY, "csv"))))
    assert [(r["program"], r["end_reason"]) for r in rows] == [
        ("beginner", "completed"), ("beginner", "completed"), ("back", "stopped")]
    assert rows[-1]["actual_min"] == "12.0"


def test_an_empty_history_renders(history: History) -> None:
    assert "no sessions" in render_history(history, 7, DAY, "table")
    assert json.loads(render_history(history, 7, DAY, "json"))["sessions"] == []


# --- issue #13: nothing a restart or a clock can make it forget -----------------------------


def test_an_empty_history_file_is_damaged_not_a_new_history(tmp_path: Path) -> None:
    """Hazard 12: SQLite takes a zero-length file for a new database: today's use forgotten."""
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"")
    with pytest.raises(HistoryError, match=r"is damaged \(the file is empty\)"):
        History.open(path)


def test_a_clock_behind_at_boot_keeps_todays_minutes_and_dose(history: History) -> None:
    """Hazard 5: a Pi without a clock battery boots in the past until NTP sets the clock."""
    history.record_session(replace(session("deep", at(DAY, 20), 100), dose_cem43=6.0))
    boot_wall = 86_400.0 * 3  # January 1970, before NTP
    saved = history.restore(boot_wall, local_day(boot_wall), Rules())
    assert saved.usage.day == DAY
    assert (saved.usage.minutes_today, saved.usage.dose_today) == (100.0, 6.0)
    machine = SessionMachine(Rules(daily_max_min=100.0), 0.0, local_day(boot_wall),
                             usage=saved.usage)
    read_all(machine, 30.0, 0.0, local_day(boot_wall))
    said = machine.step(Press(), 1.0, local_day(boot_wall))
    assert isinstance(said[-1], Refused) and "daily limit" in said[-1].reason


def test_a_crash_mid_preheat_keeps_its_minutes_and_a_cooldown(history: History) -> None:
    rig = Rig(history)
    rig.send(Start(Source.REMOTE, "back"))
    rig.run_for(63)  # checkpoints every 4 s, the last at 60 s; then the process dies
    saved = history.restore(rig.wall(), DAY, rig.rules)
    assert saved.usage.minutes_today == pytest.approx(1.0)
    assert saved.cooldown_remaining_s > 0
    assert len(saved.preheat_ages_s) == 1


def test_a_clock_step_then_a_restart_keeps_the_days_use_cooldown_and_preheats(
    history: History,
) -> None:
    """Review: sessions under a clock a day behind, NTP steps it, the process restarts.
    Before: the restart counted only rows dated today: 240 min in one day, cap 120."""
    rules = Rules(daily_max_min=60.0, cooldown_min=10.0)
    rig = Rig(history, rules, today=DAY - timedelta(days=1), wall_error_s=-86_400.0)
    rig.send(Start(Source.REMOTE, "back"))  # an unconfirmed preheat ...
    rig.run_for(60)
    rig.send(Press())  # ... confirmed: a 20-minute session
    rig.run_for(20 * 60)
    assert rig.machine.state is State.COOLDOWN
    rig.wall_error_s, rig.today = 0.0, DAY  # NTP
    rig.send(ClockStepped())
    rig.run_for(60)

    saved = history.restore(rig.wall(), DAY, rules)
    assert saved.usage.day == DAY
    assert saved.usage.minutes_today >= 21.0
    assert saved.cooldown_remaining_s > 8 * 60
    restarted = SessionMachine(rules, 0.0, DAY, usage=saved.usage,
                               cooldown_until=saved.cooldown_remaining_s)
    assert restarted.state is State.COOLDOWN
    assert restarted.snapshot(0.0).daily_remaining_min <= 39.0


def test_preheats_dated_in_the_future_count_as_just_started(history: History) -> None:
    """A reboot with the clock an hour behind must not forget the last hour's preheats."""
    history.record_session(replace(session("back", at(DAY, 12), 1, "stopped"), kind="preheat"))
    saved = history.restore(at(DAY, 11), DAY, Rules())
    assert saved.preheat_ages_s == (0.0,)


@pytest.mark.parametrize("step_s", [-3600.0, 3600.0])
@pytest.mark.parametrize("crash_after_s", [2, 5, 28 * 60])  # 2: before the next 5 s save
def test_a_clock_step_mid_session_then_a_crash_keeps_the_minutes_and_the_cooldown(
    history: History, step_s: float, crash_after_s: int,
) -> None:
    """Second review: the clock set back an hour at minute 1, the process dead at minute 29.
    Before: no checkpoint after the step (wall-clock timing), the cooldown saved as 0."""
    rules = Rules(daily_max_min=120.0, cooldown_min=10.0)
    rig = Rig(history, rules)
    rig.send(Start(Source.LOCAL, "deep"))
    rig.run_for(60, temp_c=41.2)  # at the setpoint of deep
    rig.wall_error_s = step_s
    rig.send(ClockStepped())
    rig.run_for(crash_after_s, temp_c=41.2)  # then the process dies

    saved = history.restore(rig.wall() + 5, DAY, rules)
    assert saved.usage.minutes_today >= (60 + crash_after_s) / 60.0 - 0.1
    assert saved.cooldown_remaining_s >= 9 * 60


def test_the_days_dose_between_sessions_survives_a_restart(history: History) -> None:
    """Second review: the warm pad's dose between sessions was counted but not stored."""
    hot = {HeatLevel.LOW: 37.0, HeatLevel.MEDIUM: 39.0, HeatLevel.HIGH: 42.0}
    rig = Rig(history, Rules(cooldown_min=10.0, setpoints_c=hot))
    rig.send(Start(Source.LOCAL, "deep", duration_min=2.0))
    rig.run_for(2 * 60 + 1, temp_c=42.2)  # at the setpoint: the heater rests
    assert rig.machine.state is State.COOLDOWN
    ended_dose = rig.machine.usage.dose_today
    rig.run_for(8 * 60, temp_c=42.2)  # a warm pad under a person who stays
    assert rig.machine.usage.dose_today > ended_dose + 1.0
    saved = history.restore(rig.wall(), DAY, rig.rules)
    assert saved.usage.dose_today >= rig.machine.usage.dose_today - 0.011


def _mark(wall: float, since_boot_s: float, *, boot_id: str = "boot-1") -> ClockMark:
    return ClockMark(wall, boot_id, since_boot_s, True)


def _recorded_session(history: History, rules: Rules, *, synced: bool | None = True) -> Rig:
    """A 30-min session at the setpoint, recorded with clock marks of boot "boot-1"."""
    rig = Rig(history, rules, boot_id="boot-1", synced=synced)
    rig.send(Start(Source.LOCAL, "deep"))
    rig.run_for(30 * 60 + 1, temp_c=41.2)
    assert rig.machine.state is State.COOLDOWN
    return rig


def test_a_clock_set_forward_while_matpi_was_down_keeps_the_cooldown(history: History) -> None:
    """Third review: restarted within seconds, the clock set 15 min on meanwhile: the
    cooldown was judged by the wall clock and gone."""
    rules = Rules(cooldown_min=10.0)
    rig = _recorded_session(history, rules)
    later = rig.wall() + 15 * 60 + 5
    saved = history.restore(later, DAY, rules, mark=_mark(later, rig.boot_s() + 5))
    assert saved.cooldown_remaining_s == pytest.approx(595.0, abs=2.0)


def test_a_clock_set_a_day_on_while_matpi_was_down_frees_no_minutes(history: History) -> None:
    rules = Rules(daily_max_min=30.0)
    rig = _recorded_session(history, rules)
    later = rig.wall() + 86_400.0 + 60.0
    saved = history.restore(later, DAY + timedelta(days=1), rules,
                            mark=_mark(later, rig.boot_s() + 60))
    assert saved.usage.minutes_today == pytest.approx(30.0, abs=0.1)


def test_after_a_boot_whose_clock_was_never_set_the_last_days_use_counts(
    history: History,
) -> None:
    """Third review: offline boot with the clock hours behind, then a reboot with NTP."""
    rules = Rules(daily_max_min=30.0, cooldown_min=10.0)
    later = _recorded_session(history, rules, synced=False).wall() + 20 * 3600.0  # NTP
    saved = history.restore(later, DAY + timedelta(days=1), rules,
                            mark=_mark(later, 30.0, boot_id="boot-2"))
    assert saved.usage.minutes_today == pytest.approx(30.0, abs=0.1)
    assert saved.cooldown_remaining_s == 600


def test_a_later_day_after_a_synced_boot_starts_afresh(history: History) -> None:
    """No mark of doubt: a new day on a clock that was set is a new day."""
    rules = Rules(daily_max_min=30.0)
    later = _recorded_session(history, rules).wall() + 20 * 3600.0
    saved = history.restore(later, DAY + timedelta(days=1), rules,
                            mark=_mark(later, 30.0, boot_id="boot-2"))
    assert saved.usage.minutes_today == 0.0


def test_a_second_restart_after_a_marked_restore_keeps_the_day_and_the_cooldown(
    history: History,
) -> None:
    """Fourth review: after an unsynced boot, the first restore was right, but the next write's
    fresh mark made a second restart forget the minutes and the cooldown."""
    rules = Rules(daily_max_min=30.0, cooldown_min=10.0)
    later = _recorded_session(history, rules, synced=False).wall() + 20 * 3600.0
    first_mark = _mark(later, 30.0, boot_id="boot-2")
    first = history.restore(later, DAY + timedelta(days=1), rules, mark=first_mark)
    history.settle(first, later, first_mark)
    # The daemon writes (a fresh mark), then restarts a little later in the same boot.
    history.save_mark(_mark(later + 3, 33.0, boot_id="boot-2"), DAY + timedelta(days=1))
    again = history.restore(later + 10, DAY + timedelta(days=1), rules,
                            mark=_mark(later + 10, 40.0, boot_id="boot-2"))
    assert again.usage.minutes_today == pytest.approx(30.0, abs=0.1)
    assert again.cooldown_remaining_s == pytest.approx(590.0, abs=2.0)


def test_a_carry_over_then_a_clock_set_while_down_adds_up(history: History) -> None:
    """Fourth review: 60 min under a wrong clock, NTP (carried), 60 min more, then the clock
    set a day on while matpi was down: the restore counted 60 of the 120 min."""
    rules = Rules(daily_max_min=120.0, cooldown_min=5.0)
    rig = Rig(history, rules, today=DAY - timedelta(days=1), wall_error_s=-43_200.0,
              boot_id="boot-1")
    for _ in range(2):
        rig.send(Start(Source.LOCAL, "deep"))
        rig.run_for(30 * 60 + 5 * 60 + 1, temp_c=41.2)
    rig.wall_error_s, rig.today = 0.0, DAY  # NTP, seen while running: a carry-over
    rig.send(ClockStepped())
    for _ in range(2):
        rig.send(Start(Source.LOCAL, "deep"))
        rig.run_for(30 * 60 + 5 * 60 + 1, temp_c=41.2)
    later = rig.wall() + 86_400.0 + 60.0  # set a day on while matpi was down
    saved = history.restore(later, DAY + timedelta(days=1), rules,
                            mark=_mark(later, rig.boot_s() + 60))
    assert saved.usage.minutes_today >= 119.9


def test_a_boot_that_cannot_tell_its_sync_state_is_not_trusted(history: History) -> None:
    rules = Rules(daily_max_min=30.0, cooldown_min=10.0)
    rig = Rig(history, rules, boot_id="boot-1", synced=None)
    rig.send(Start(Source.LOCAL, "deep"))
    rig.run_for(30 * 60 + 1, temp_c=41.2)
    later = rig.wall() + 20 * 3600.0
    saved = history.restore(later, DAY + timedelta(days=1), rules,
                            mark=_mark(later, 30.0, boot_id="boot-2"))
    assert saved.usage.minutes_today == pytest.approx(30.0, abs=0.1)
    assert saved.cooldown_remaining_s == 600


def test_preheats_are_kept_when_the_clock_is_set_on_while_matpi_is_down(
    history: History,
) -> None:
    """Fourth review: preheat ages were timed by the wall clock alone."""
    rig = Rig(history, Rules(cooldown_min=5.0), boot_id="boot-1")
    rig.send(Start(Source.REMOTE, "neck"))
    rig.run_for(30)
    rig.send(Stop(Source.REMOTE))
    rig.run_for(30)
    later = rig.wall() + 2 * 3600.0 + 5  # set two hours on during a 5 s restart
    saved = history.restore(later, DAY, rig.rules, mark=_mark(later, rig.boot_s() + 5))
    assert len(saved.preheat_ages_s) == 1 and saved.preheat_ages_s[0] < 120


def test_settling_is_all_or_nothing(history: History) -> None:
    """Fifth review: a restart killed between settle's writes left one clock's cooldown with
    the other clock's mark, and the next restart lost the cooldown."""
    rules = Rules(cooldown_min=10.0)
    rig = _recorded_session(history, rules)
    before = history._carried(), history.cooldown_until()
    saved = history.restore(rig.wall(), DAY, rules)
    broken = ClockMark(rig.wall(), object(), 1.0, True)  # type: ignore[arg-type]
    with pytest.raises(HistoryError):
        history.settle(saved, rig.wall() + 100.0, broken)
    assert (history._carried(), history.cooldown_until()) == before
