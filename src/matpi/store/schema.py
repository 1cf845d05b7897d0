"""The history's file: opening it, checking it, its schema and migrations, and what to
say when it is damaged or locked down. `history.History` is what reads and writes it.

Every message names the file and what to do; the daemon logs it and refuses every
session until the file is fixed (see `history`'s docstring).
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from matpi import __version__
from matpi.core.errors import HistoryError

BUSY_TIMEOUT_MS = 1000

# Each entry migrates the schema from version i to i + 1; never edit a shipped one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            started_wall REAL NOT NULL,
            ended_wall REAL NOT NULL,
            program TEXT NOT NULL,
            planned_min REAL NOT NULL,
            actual_s REAL NOT NULL,
            end_reason TEXT NOT NULL,
            peak_c REAL,
            dose_cem43 REAL NOT NULL,
            heat_level TEXT NOT NULL,
            pattern TEXT NOT NULL)""",
        "CREATE INDEX sessions_by_end ON sessions (ended_wall)",
        """CREATE TABLE faults (
            id INTEGER PRIMARY KEY,
            raised_wall REAL NOT NULL,
            reason TEXT NOT NULL,
            cleared_wall REAL)""",
    ),
    (
        """CREATE TABLE state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            cooldown_until_wall REAL)""",
        "INSERT INTO state (id, cooldown_until_wall) VALUES (1, NULL)",
    ),
    (
        # Preheats get rows too: their minutes and dose count towards the day.
        "ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'session'",
        # What a wall-clock step carried over: rows before it carry the old clock's dates.
        "ALTER TABLE state ADD COLUMN carried_day TEXT",
        "ALTER TABLE state ADD COLUMN carried_minutes REAL",
        "ALTER TABLE state ADD COLUMN carried_dose REAL",
        "ALTER TABLE state ADD COLUMN carried_wall REAL",
        "ALTER TABLE state ADD COLUMN carried_preheats TEXT",
        # The day's dose as the core counts it, warm pad between sessions included.
        "ALTER TABLE state ADD COLUMN dose_day TEXT",
        "ALTER TABLE state ADD COLUMN dose_today REAL",
        # Where the wall clock stood against the boot's own clock at the last write.
        "ALTER TABLE state ADD COLUMN mark_wall REAL",
        "ALTER TABLE state ADD COLUMN mark_boot_id TEXT",
        "ALTER TABLE state ADD COLUMN mark_boot_s REAL",
        "ALTER TABLE state ADD COLUMN mark_synced INTEGER",
        "ALTER TABLE state ADD COLUMN mark_day TEXT",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)




def open_database(path: Path) -> sqlite3.Connection:
    """The history at `path`, created or migrated, proven writable, every commit synced.

    Raises:
        HistoryError: the file is damaged, from a newer matpi, or cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        empty = path.exists() and path.stat().st_size == 0
    except OSError as exc:
        raise HistoryError(_unwritable(path, exc)) from exc
    if empty:
        # SQLite would take an empty file for a new history and forget today's use.
        raise HistoryError(_damaged(path, "the file is empty"))
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise HistoryError(_unwritable(path, exc)) from exc
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        problems = [row[0] for row in db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("; ".join(" ".join(p.split()) for p in problems[:3]))
        _migrate(db, path)
    except HistoryError:
        db.close()
        raise
    except sqlite3.DatabaseError as exc:
        db.close()
        if isinstance(exc, sqlite3.OperationalError) and not _is_damage(exc):
            raise HistoryError(_unwritable(path, exc)) from exc
        raise HistoryError(_damaged(path, exc)) from exc
    return db


@contextmanager
def rolled_back_on_error(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (a failed COMMIT included)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to `SCHEMA_VERSION` in one transaction that also proves writing works."""
    with rolled_back_on_error(db):
        version = _schema_version(db, path)
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"history {path} was written by a newer matpi (schema {version}; this one "
                f"knows up to {SCHEMA_VERSION}): update matpi, or {_move_aside(path)}")
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                db.execute(statement)
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                   (str(SCHEMA_VERSION),))
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_by', ?)",
                   (f"matpi {__version__}",))


def _schema_version(db: sqlite3.Connection, path: Path) -> int:
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return 0
    if "meta" not in tables:
        raise HistoryError(f"history {path} is an SQLite file but not a matpi history "
                           f"(tables: {', '.join(sorted(tables))}): {_move_aside(path)}")
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise HistoryError(f"history {path} has no valid schema_version: "
                           f"{_move_aside(path)}") from None


def _is_damage(exc: sqlite3.Error) -> bool:
    """SQLite reports a damaged file and a locked-down one with the same exception class."""
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def _move_aside(path: Path) -> str:
    folder = path.parent / "damaged"
    return (f"move it aside (sudo systemctl stop matpi; sudo mkdir -p {folder}; "
            f"sudo mv {path}* {folder}/; sudo systemctl start matpi). A new, empty history "
            "then starts: today's minutes, the cooldown and the streak begin again from zero")


def _damaged(path: Path, exc: BaseException | str) -> str:
    return (f"history {path} is damaged ({exc}). matpi refuses every session until it is "
            f"fixed or moved aside, so that the daily limit is never forgotten: "
            f"{_move_aside(path)}")


def _unwritable(path: Path, exc: BaseException) -> str:
    return (f"history {path} cannot be opened for writing ({exc}). matpi refuses every session "
            "until it can record them, so that the daily limit is never forgotten. The folder "
            "must exist and belong to the user running matpi: under systemd, "
            f"sudo chown -R matpi:matpi {path.parent}")
