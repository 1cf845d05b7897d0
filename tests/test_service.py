"""What the service tells systemd and its journal: priorities, the STATUS line, never blocking."""

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import Mat
from matpi.core.events import DriverFault, LongPress, Press, Start, State, Stop
from matpi.core.events import Source as From
from matpi.service import journal, systemd
from matpi.service.status import ServiceStatus, status_text

# --- journald priorities ----------------------------------------------------


@pytest.mark.parametrize(("level", "expected"), [
    (logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6),
    (logging.DEBUG, 7), (logging.WARNING + 5, 4), (logging.ERROR - 1, 4), (1, 7), (100, 2),
])
def test_each_logging_level_has_its_syslog_priority(level: int, expected: int) -> None:
    assert journal.priority(level) == expected


def test_every_line_of_a_multi_line_message_carries_the_prefix() -> None:
    assert journal.prefixed("one\ntwo", logging.ERROR) == "<3>one\n<3>two"


@pytest.fixture
def journal_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A file that $JOURNAL_STREAM names, as systemd names the stream it connected."""
    path = tmp_path / "journal"
    with path.open("w", encoding="utf-8") as stream:
        stat = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
        saved = logging.root.handlers[:], logging.root.level, sys.excepthook, \
            threading.excepthook
        logging.root.handlers.clear()  # as in a fresh process; pytest's are put back after
        journal.setup_logging(verbose=False, stream=stream)
        try:
            yield path
        finally:
            logging.root.handlers[:], level, sys.excepthook, threading.excepthook = saved
            logging.root.setLevel(level)


def test_a_stream_is_the_journals_only_when_journal_stream_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (tmp_path / "a").open("w") as named, (tmp_path / "b").open("w") as other:
        stat = os.fstat(named.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
        assert journal.is_journal(named)
        assert not journal.is_journal(other)
        for value in ("", "garbage", f"{stat.st_dev}", f"{stat.st_dev}:x"):
            monkeypatch.setenv("JOURNAL_STREAM", value)
            assert not journal.is_journal(named)


def test_log_records_reach_the_journal_at_their_priority(journal_file: Path) -> None:
    log = logging.getLogger("matpi.test")
    log.error("fault latched")
    log.warning("remote command rejected")
    log.info("session started")
    log.debug("not shown without --verbose")
    assert journal_file.read_text(encoding="utf-8").splitlines() == [
        "<3>ERROR matpi.test: fault latched",
        "<4>WARNING matpi.test: remote command rejected",
        "<6>INFO matpi.test: session started",
    ]


def test_a_crash_is_critical_on_every_line_of_its_traceback(journal_file: Path) -> None:
    try:
        raise RuntimeError("controller died")
    except RuntimeError as error:
        sys.excepthook(RuntimeError, error, error.__traceback__)
    lines = journal_file.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "<2>CRITICAL matpi: uncaught RuntimeError"
    assert lines[-1] == "<2>RuntimeError: controller died"
    assert len(lines) > 3 and all(line.startswith("<2>") for line in lines)


def test_a_crash_in_a_thread_is_critical_too(journal_file: Path) -> None:
    def fail() -> None:
        raise ValueError("poller died")

    thread = threading.Thread(target=fail, name="matpi-poller")
    thread.start()
    thread.join(timeout=5)
    lines = journal_file.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "<2>CRITICAL matpi: uncaught ValueError in thread matpi-poller"
    assert lines[-1] == "<2>ValueError: poller died"


def test_state_lines_take_the_prefix_only_on_the_journal(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with (tmp_path / "out").open("w+", encoding="utf-8") as out:
        journal.line_writer(out)("[ 0:00] idle", logging.INFO)
        stat = os.fstat(out.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
        journal.line_writer(out)("[ 0:01] FAULT: over-temperature", logging.ERROR)
        out.seek(0)
        assert out.read().splitlines() == ["[ 0:00] idle", "<3>[ 0:01] FAULT: over-temperature"]


# --- the STATUS= line -------------------------------------------------------


def status(mat: Mat) -> str:
    return status_text(mat.machine.snapshot(mat.now), dose_max_cem43=mat.rules.dose_max_cem43)


def test_the_status_line_says_what_the_mat_does_in_each_state() -> None:
    mat = Mat()
    mat.read(38.4)
    assert status(mat) == "idle"
    mat.send(Start(From.LOCAL, "back"))
    mat.run_for(90, temp_c=38.4)
    assert status(mat) == "running back, 18:30 left, 38.4 °C / 39 °C, dose 0.0/9"
    mat.send(Stop(From.LOCAL))
    assert status(mat) == "cooldown, next session in 10:00"
    mat.run_for(600, temp_c=38.4)
    mat.send(Start(From.REMOTE, "neck"))
    assert status(mat) == "preheat neck, waiting for a press at the mat, 38.4 °C / 37 °C"
    mat.send(DriverFault("over-temperature: sensor mat reads 46.0 °C"))
    assert status(mat) == ("fault: over-temperature: sensor mat reads 46.0 °C — "
                           "hold the button on the mat to reset")
    snapshot = mat.machine.snapshot(mat.now)
    assert status_text(snapshot, dose_max_cem43=9.0, fault_clearable=False).endswith(
        "— see journalctl -u matpi")


def test_a_sensor_without_a_reading_says_so(mat: Mat) -> None:
    mat.send(Press())
    unread = replace(mat.machine.snapshot(mat.now), temperature_c=None)
    assert ", no reading / 37 °C, " in status_text(unread, dose_max_cem43=9.0)


def test_an_idle_mat_with_the_day_used_up_says_so() -> None:
    from matpi.core.rules import Rules

    mat = Mat(rules=Rules(daily_max_min=5.0))
    mat.read(30.0)
    mat.send(Start(From.LOCAL, "neck"))
    mat.run_for(5 * 60 + 1)
    mat.run_for(10 * 60)
    assert mat.machine.state is State.IDLE
    assert status(mat) == "idle, today's 5 min used up"


class Recorder:
    """systemd's end of STATUS=, with a clock and timers run by hand."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.now = 0.0
        self.full = False
        """A full notify socket: the line is lost."""
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def send(self, text: str) -> bool:
        if self.full:
            return False
        self.sent.append(text)
        return True

    def call_later(self, delay_s: float, action: Callable[[], None]) -> None:
        self.timers.append((self.now + delay_s, action))

    def advance(self, seconds: float) -> None:
        """Time passes; the timers due run."""
        self.now += seconds
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, action in due:
            action()


def test_status_goes_out_at_once_on_a_state_change_and_at_most_once_a_second_otherwise(
    mat: Mat,
) -> None:
    seen = Recorder()
    reporter = ServiceStatus(seen.send, dose_max_cem43=9.0, monotonic=lambda: seen.now)
    reporter(mat.machine.snapshot(mat.now), [])
    reporter(mat.machine.snapshot(mat.now), [])  # unchanged: nothing sent
    assert seen.sent == ["idle"]
    mat.send(Press())
    reporter(mat.machine.snapshot(mat.now), [])  # a new state: sent at once
    assert len(seen.sent) == 2 and seen.sent[-1].startswith("running")
    for _ in range(10):  # ten readings within 0.5 s: the temperature changes, no new line
        seen.now += 0.05
        mat.now += 0.05
        mat.read(31.0 + seen.now)
        reporter(mat.machine.snapshot(mat.now), [])
    assert len(seen.sent) == 2
    seen.now += 0.6
    mat.run_for(1, temp_c=33.0)
    reporter(mat.machine.snapshot(mat.now), [])
    assert len(seen.sent) == 3 and "4:58 left" in seen.sent[-1]  # 1.5 s gone
    mat.send(LongPress())  # stops nothing; a stop, though, is a new state at once
    mat.send(Stop(From.REMOTE))
    reporter(mat.machine.snapshot(mat.now), [])
    assert seen.sent[-1].startswith("cooldown")


def test_a_line_held_back_by_the_rate_limit_goes_out_when_the_second_is_up(mat: Mat) -> None:
    """The last change within a second is not lost when no snapshot follows it: `systemctl
    status` must not show 5:00 left for a session that stopped counting at 4:59."""
    seen = Recorder()
    reporter = ServiceStatus(seen.send, dose_max_cem43=9.0, monotonic=lambda: seen.now,
                             call_later=seen.call_later)
    mat.read(30.0)
    mat.send(Press())
    reporter(mat.machine.snapshot(mat.now), [])
    seen.advance(0.5)
    mat.now += 1.0
    mat.read(31.5)
    reporter(mat.machine.snapshot(mat.now), [])  # held: 0.5 s after the last line
    assert len(seen.sent) == 1 and "5:00 left" in seen.sent[0]
    seen.advance(0.6)
    assert len(seen.sent) == 2 and "4:59 left" in seen.sent[-1]
    seen.advance(5.0)
    assert len(seen.sent) == 2  # nothing new: nothing sent again


def test_a_line_lost_on_a_full_socket_is_sent_again(mat: Mat) -> None:
    seen = Recorder()
    reporter = ServiceStatus(seen.send, dose_max_cem43=9.0, monotonic=lambda: seen.now,
                             call_later=seen.call_later)
    reporter(mat.machine.snapshot(mat.now), [])
    seen.full = True
    mat.send(Press())
    mat.read(30.0)
    reporter(mat.machine.snapshot(mat.now), [])  # the state changed, but the line is lost
    assert seen.sent == ["idle"]
    seen.advance(1.0)
    assert seen.sent == ["idle"]  # still full: tried again, and again later
    seen.full = False
    seen.advance(1.0)
    assert seen.sent[-1].startswith("running")
    reporter(mat.machine.snapshot(mat.now), [])  # the same line: not sent twice
    assert len(seen.sent) == 2


# --- sd_notify never blocks the controller ------------------------------------


@pytest.fixture(autouse=True)
def fresh_notify_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(systemd, "_failing", False)


def test_a_full_notify_socket_neither_blocks_nor_floods_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Nobody drains the socket (systemd busy): before, the watchdog ping blocked the
    controller loop in sendall once ~10 datagrams were queued."""
    caplog.set_level(logging.INFO, logger="matpi.service.systemd")
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        results: list[bool] = []
        worker = threading.Thread(
            target=lambda: results.extend(systemd.notify(f"STATUS={i}") for i in range(2000)),
            daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive(), "sd_notify blocked on a full socket"
        assert time.monotonic() - started < 10
        assert results[0] and not results[-1]
        assert caplog.text.count("sd_notify") == 1
        while True:  # drained: it works again, and says so
            listener.setblocking(False)
            try:
                listener.recv(4096)
            except BlockingIOError:
                break
        assert systemd.notify("WATCHDOG=1")
        assert "sd_notify works again" in caplog.text
