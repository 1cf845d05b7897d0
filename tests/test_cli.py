"""The `matpi` command run as a user would: a whole simulated session, signals, errors."""

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

MATPI = [sys.executable, "-m", "matpi"]


def read_until(stream: IO[str] | None, text: str, timeout_s: float = 30.0) -> str:
    """Reads a subprocess's output (select on its pipe) up to a line holding `text`.

    Bounded: a process that goes silent fails the test instead of hanging it.
    """
    assert stream is not None
    fd, data = stream.fileno(), b""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = data.decode(errors="replace").split("\n")[:-1]
        if any(text in line for line in lines):
            return data.decode(errors="replace")
        left_s = deadline - time.monotonic()
        assert left_s > 0, f"no line with {text!r} within {timeout_s} s: {lines[-5:]}"
        ready, _, _ = select.select([fd], [], [], left_s)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"output ended before a line with {text!r}: {lines[-5:]}"
            data += chunk


def test_a_simulated_session_runs_to_cooldown() -> None:
    """Speed 20: the stale-reading guard (10 s of mat time) then allows half a second of
    real scheduling delay, which a busy test machine can take; at 60 it allowed 0.17 s."""
    started = time.monotonic()
    result = subprocess.run(
        [*MATPI, "run", "--simulate", "--speed", "20", "--start", "beginner", "--once",
         "--web-port", "0"],
        capture_output=True, text=True, timeout=120,
    )
    wall_s = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:]
    lines = result.stdout.splitlines()
    assert any("session started: beginner, 5 min" in line for line in lines)
    running = [line for line in lines if "] running" in line]
    assert running and "5:00 left" in running[0]
    assert any("session ended (completed): beginner after  5:00" in line for line in lines)
    assert "] cooldown" in lines[-1]
    assert wall_s < 60


def test_sigterm_stops_a_running_session_cleanly() -> None:
    process = subprocess.Popen(
        [*MATPI, "run", "--simulate", "--start", "deep"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        read_until(process.stdout, "] running")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "controller stopping: SIGTERM" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--simulate", "--start", "sauna"], "--start 'sauna': unknown program"),
        (["run", "--simulate", "--speed", "5000"], "--speed 5000: must be 0.1 to 600"),
        # On a real mat only a press at the mat begins heat, never the command line.
        (["run", "--config", "config/matpi.toml", "--start", "neck"],
         "--start goes with --simulate"),
        (["run", "--config", "config/matpi.toml", "--sim-occupancy"],
         "--sim-occupancy goes with --simulate"),
        # The simulated mat starts empty: a start at launch could never begin.
        (["run", "--simulate", "--sim-occupancy", "--start", "back", "--once"],
         "--start cannot go with an occupancy sensor"),
    ],
)
def test_bad_arguments_are_explained(args: list[str], message: str) -> None:
    result = subprocess.run([*MATPI, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr


def test_simulate_needs_a_terminal() -> None:
    result = subprocess.run([*MATPI, "simulate"], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL, env={**os.environ})
    assert result.returncode == 2 and "needs a terminal" in result.stderr


def test_a_fast_simulation_refuses_a_real_mats_state(tmp_path: Path) -> None:
    """Its rows would carry future dates, and the real mat would count the wrong day."""
    (tmp_path / "outputs.json").write_text("{}")
    result = subprocess.run([*MATPI, "run", "--simulate", "--speed", "60", "--state-dir",
                             str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "holds state that no fast simulation made" in result.stderr
    fresh = tmp_path / "fresh"
    result = subprocess.run([*MATPI, "run", "--simulate", "--speed", "20", "--state-dir",
                             str(fresh), "--start", "beginner", "--once"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (fresh / "simulated-mat").exists() and (fresh / "history.sqlite3").exists()


def test_output_cut_short_by_its_reader_ends_quietly() -> None:
    """`matpi discovery --print | head`: before, a BrokenPipeError traceback. Here the
    reader is gone before the first line, so every write meets a closed pipe."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "matpi", "discovery", "--print",
                               "--config", "config/matpi.toml"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parents[1])
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 0


def test_the_terminal_mat_shows_its_page_and_the_person_on_it() -> None:
    """`matpi simulate --sim-occupancy`: what a new user tries first, on a pseudo-terminal."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal mat
        os.execv(sys.executable, [sys.executable, "-m", "matpi", "simulate", "--sim-occupancy",
                                  "--web-port", "0"])
    seen = b""

    def screen_shows(*texts: bytes) -> bool:
        nonlocal seen
        deadline = time.monotonic() + 15.0
        while not all(t in seen for t in texts):
            assert time.monotonic() < deadline, seen.decode(errors="replace")[-2000:]
            if select.select([fd], [], [], 0.2)[0]:
                seen += os.read(fd, 65536)
        return True

    try:
        assert screen_shows(b"the mat's page: http://127.0.0.1:", b"mat empty")
        os.write(fd, b"b")  # lie down
        assert screen_shows(b"person lying", b"someone on the mat")
        os.write(fd, b"q")
    finally:
        _reap(pid)
        os.close(fd)


def _reap(pid: int, timeout_s: float = 10.0) -> None:
    """Wait for the child to quit; kill it past the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
