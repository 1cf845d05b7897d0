"""The `matpi` command run as a user would: a whole simulated session, signals, errors."""

import os
import signal
import subprocess
import sys
import time

import pytest

MATPI = [sys.executable, "-m", "matpi"]


def test_simulated_back_session_runs_to_cooldown() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [*MATPI, "run", "--simulate", "--speed", "60", "--start", "back", "--once"],
        capture_output=True, text=True, timeout=120,
    )
    wall_s = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("session started: back, 20 min" in line for line in lines)
    running = [line for line in lines if "] running" in line]
    assert running and "20:00 left" in running[0]
    assert any("session ended (completed): back after 20:00" in line for line in lines)
    assert "] cooldown" in lines[-1]
    assert wall_s < 60


def test_sigterm_stops_a_running_session_cleanly() -> None:
    process = subprocess.Popen(
        [*MATPI, "run", "--simulate", "--start", "deep"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if "] running" in line:
                break
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
    assert process.stderr is not None
    assert "controller stopping: SIGTERM" in process.stderr.read()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--simulate", "--start", "sauna"], "--start 'sauna': unknown program"),
        (["run", "--simulate", "--speed", "5000"], "--speed 5000: must be 0.1 to 600"),
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
