"""`matpi safe-off` never fails, `remember_outputs`, and the outputs' levels at power-on.

GPIO runs on gpiozero's MockFactory (passed in, or GPIOZERO_PIN_FACTORY=mock in a
subprocess); the mat board is a pty pair whose master end the test reads with
select and a deadline. Every wait is bounded.
"""

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from gpiozero import DigitalInputDevice
from gpiozero.pins.mock import MockFactory, MockPin

from matpi.cli import main
from matpi.config.load import load_config
from matpi.config.settings import HardwareConfig
from matpi.drivers import boardproto as proto
from matpi.drivers.bootpins import DEFAULT_OUTPUTS, pi_outputs
from matpi.service.outputsrecord import OUTPUTS_FILE, read_last_outputs, remember_outputs
from matpi.service.safeoff import (
    WATCHDOG_FAULT,
    latch_watchdog_fault,
    safe_off,
    stop_frames,
    switch_off,
)

ROOT = Path(__file__).resolve().parent.parent
MATPI = [sys.executable, "-m", "matpi"]
SUBPROCESS_TIMEOUT_S = 60.0
HIGH, LOW = True, False

GPIO_CONFIG = """\
[hardware]
driver = "gpio"
pin_factory = "mock"

[heater]
pin = 17
active_high = false

[vibration]
kind = "pwm"
pin = 12
active_high = true

[power]
pin = 23
active_high = false

[button]
pin = {button}

[led]
pin = 22

[[sensors]]
device_id = "28-0316a2795aff"

[[sensors]]
name = "mat2"
device_id = "28-0316a27b3c11"
"""

BOARD_CONFIG = """\
[hardware]
driver = "board"
pin_factory = "mock"

[power]
pin = 23
active_high = false

[board]
port = "{port}"
"""

STOP_FRAMES = [
    proto.Frame(0, "SYNC"),
    proto.Frame(1, "HEAT", {"duty_pm": 0}),
    proto.Frame(2, "MOTOR", {"duty_pm": 0}),
]


# --- helpers -------------------------------------------------------------------------


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.close()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


def gpio_config(tmp_path: Path, *, button: int = 27) -> Path:
    path = tmp_path / "gpio.toml"
    path.write_text(GPIO_CONFIG.format(button=button))
    return path


def board_config(tmp_path: Path, port: str) -> Path:
    path = tmp_path / "board.toml"
    path.write_text(BOARD_CONFIG.format(port=port))
    return path


def broken_config(tmp_path: Path) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text("[heater\npin = 17\n")
    return path


def left_on(factory: MockFactory, pin: int, *, active_high: bool) -> MockPin:
    """A pin as a dead process may leave it: at its output's on level."""
    mock = factory.pin(pin)
    if active_high:
        mock.drive_high()
    else:
        mock.drive_low()
    mock.clear_states()
    return mock


def history(factory: MockFactory, pin: int) -> list[bool]:
    return [bool(s.state) for s in factory.pin(pin).states]


class Said(list[str]):
    """The lines safe-off said, in order, and the logging level of each."""

    def __init__(self) -> None:
        super().__init__()
        self.levels: dict[str, int] = {}

    def __call__(self, line: str, level: int = logging.INFO) -> None:
        self.append(line)
        self.levels[line] = level


def run_safe_off(config: Path, state: Path, factory: MockFactory) -> Said:
    lines = Said()
    safe_off(config, state, say=lines, pin_factory=factory,
             default_port=str(state / "no-such-tty"), answer_timeout_s=0.2)
    return lines


class PtyBoard:
    """The board's end of a pty pair: collects what the host writes, may answer SYNC."""

    def __init__(self, *, answer: bool = False) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._answer = answer
        self._received = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        splitter = proto.LineSplitter()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            with self._lock:
                self._received += data
            for line in splitter.feed(data):
                if self._answer and line is not None and line.endswith(b"SYNC*51F4"):
                    hello = proto.Frame(0, "HELLO", {"proto": proto.PROTOCOL_VERSION,
                                                     "fw": "0.1.0", "caps": "HEAT,MOTOR"})
                    os.write(self._master, proto.encode(hello) + b"\n")

    def frames(self, count: int, timeout_s: float = 5.0) -> list[proto.Frame]:
        """The first `count` frames the host sent, waiting at most `timeout_s` for them."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                lines = [line for line in bytes(self._received).split(b"\n") if line]
            if len(lines) >= count or time.monotonic() > deadline:
                return [proto.decode(line) for line in lines[:count]]
            time.sleep(0.01)

    def raw(self) -> bytes:
        with self._lock:
            return bytes(self._received)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        os.close(self._slave)
        os.close(self._master)


@pytest.fixture
def board() -> Iterator[PtyBoard]:
    pty_board = PtyBoard()
    yield pty_board
    pty_board.close()


def matpi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MATPI, *args], capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT_S,
                          env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock", **(env or {})})


def first_line(process: subprocess.Popen[str], timeout_s: float = 30.0, lines: int = 1) -> str:
    """The process's first line of output (or its line number `lines`), read with select: a
    silent process fails, not hangs.

    Once it is printed the daemon has its signal handlers, so SIGTERM is a clean stop.
    """
    assert process.stdout is not None
    fd, data = process.stdout.fileno(), b""
    deadline = time.monotonic() + timeout_s
    while data.count(b"\n") < lines:
        left_s = deadline - time.monotonic()
        assert left_s > 0, f"no line within {timeout_s} s, got {data!r}"
        ready, _, _ = select.select([fd], [], [], left_s)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"output ended before a line: {data!r}"
            data += chunk
    return data.split(b"\n")[lines - 1].decode()


# --- a readable config ---------------------------------------------------------------


def test_a_gpio_config_drives_heater_power_and_motor_off(
    tmp_path: Path, state_dir: Path, pins: MockFactory
) -> None:
    for pin, active_high in ((17, False), (23, False), (12, True)):
        left_on(pins, pin, active_high=active_high)
    lines = run_safe_off(gpio_config(tmp_path), state_dir, pins)
    assert lines == [
        "heater GPIO17 off (driven high, active-low)",
        "power relay GPIO23 off (driven high, active-low)",
        "vibration motor GPIO12 off (driven low, active-high)",
    ]
    assert history(pins, 17) == [LOW, HIGH]
    assert history(pins, 23) == [LOW, HIGH]
    assert history(pins, 12) == [HIGH, LOW]
    for default_pin in (5, 6, 18):  # nothing failed: no guessing
        assert len(history(pins, default_pin)) == 1


def test_without_a_power_relay_it_says_so_and_claims_no_relay_off(
    tmp_path: Path, state_dir: Path, pins: MockFactory
) -> None:
    hw = replace(load_config(gpio_config(tmp_path)).hardware, power_pin=None)
    lines = Said()
    switch_off(hw, state_dir, say=lines, pin_factory=pins)
    assert "no power relay configured" in lines
    assert not [line for line in lines if line.startswith("power relay")]
    assert len(history(pins, 23)) == 1 and len(history(pins, 6)) == 1


def test_a_pin_that_cannot_be_claimed_falls_back_to_the_default_pins(
    tmp_path: Path, state_dir: Path, pins: MockFactory
) -> None:
    holder = DigitalInputDevice(17, pin_factory=pins)  # someone else holds the heater's pin
    try:
        lines = run_safe_off(gpio_config(tmp_path), state_dir, pins)
    finally:
        holder.close()
    assert lines[0].startswith("could not drive heater GPIO17 high (active-low): heater relay: "
                               "pin 17 is already in use")
    assert "power relay GPIO23 off (driven high, active-low)" in lines
    assert "trying matpi's default pins and board port as well" in lines
    assert "default heater pin GPIO5 driven high (the off level of an active-low heater)" in lines
    assert history(pins, 5)[-1] is HIGH and history(pins, 6)[-1] is HIGH
    assert history(pins, 18)[-1] is LOW
    assert lines.levels[lines[0]] == logging.ERROR  # the journal's err
    assert lines.levels["trying matpi's default pins and board port as well"] == logging.WARNING
    assert lines.levels["power relay GPIO23 off (driven high, active-low)"] == logging.INFO


def test_a_board_config_tells_the_board_and_drives_no_heater_pin(
    tmp_path: Path, state_dir: Path, pins: MockFactory, board: PtyBoard
) -> None:
    left_on(pins, 23, active_high=False)
    lines = run_safe_off(board_config(tmp_path, board.port), state_dir, pins)
    assert board.frames(3) == STOP_FRAMES
    assert board.raw() == stop_frames()  # a newline first, then exactly the three frames
    assert lines == [
        f"board on {board.port}: stop sent (SYNC, HEAT 0, MOTOR 0); no answer within 0.2 s",
        "power relay GPIO23 off (driven high, active-low)",
    ]
    assert history(pins, 23) == [LOW, HIGH]
    for heater_pin in (5, 17):  # the heater is on the board, not on a Pi pin
        assert len(history(pins, heater_pin)) == 1


def test_a_board_that_answers_is_reported(tmp_path: Path, state_dir: Path,
                                          pins: MockFactory) -> None:
    answering = PtyBoard(answer=True)
    try:
        lines = run_safe_off(board_config(tmp_path, answering.port), state_dir, pins)
        assert answering.frames(3) == STOP_FRAMES
    finally:
        answering.close()
    assert lines[0] == (f"board on {answering.port}: stop sent (SYNC, HEAT 0, MOTOR 0); "
                        "the board answered")


def test_a_missing_board_port_is_reported_and_the_rest_still_done(
    tmp_path: Path, state_dir: Path, pins: MockFactory
) -> None:
    gone = tmp_path / "ttyACM9"
    lines = run_safe_off(board_config(tmp_path, str(gone)), state_dir, pins)
    assert lines == [
        f"could not tell the board on {gone} to stop: no such port",
        "power relay GPIO23 off (driven high, active-low)",
    ]
    assert lines.levels[lines[0]] == logging.ERROR


# --- an unusable config --------------------------------------------------------------


def test_a_broken_config_drives_the_default_and_the_last_known_pins_off(
    tmp_path: Path, state_dir: Path, pins: MockFactory
) -> None:
    remember_outputs(load_config(gpio_config(tmp_path)).hardware, state_dir)
    for pin, active_high in ((17, False), (23, False), (12, True), (5, False), (6, False),
                             (18, True)):
        left_on(pins, pin, active_high=active_high)
    lines = run_safe_off(broken_config(tmp_path), state_dir, pins)
    assert lines[0].startswith(f"config unusable: {tmp_path / 'broken.toml'}: not valid TOML")
    assert lines[1:] == [
        "last-known heater GPIO17 off (driven high, active-low)",
        "last-known power relay GPIO23 off (driven high, active-low)",
        "last-known vibration motor GPIO12 off (driven low, active-high)",
        "trying matpi's default pins and board port as well",
        "default heater pin GPIO5 driven high (the off level of an active-low heater)",
        "default power relay pin GPIO6 driven high (the off level of an active-low power relay)",
        "default vibration motor pin GPIO18 driven low (the off level of an active-high "
        "vibration motor)",
        f"no board on the default port {state_dir / 'no-such-tty'}: no such port",
    ]
    for pin in (17, 23, 5, 6):
        assert history(pins, pin) == [LOW, HIGH], pin
    for pin in (12, 18):
        assert history(pins, pin) == [HIGH, LOW], pin


def test_a_broken_config_tells_the_last_known_board(
    tmp_path: Path, state_dir: Path, pins: MockFactory, board: PtyBoard
) -> None:
    remember_outputs(load_config(board_config(tmp_path, board.port)).hardware, state_dir)
    lines = run_safe_off(broken_config(tmp_path), state_dir, pins)
    assert board.frames(3) == STOP_FRAMES
    assert (f"last-known board on {board.port}: stop sent (SYNC, HEAT 0, MOTOR 0); "
            "no answer within 0.2 s") in lines
    assert "last-known power relay GPIO23 off (driven high, active-low)" in lines


def test_a_broken_config_and_no_record_still_drive_the_defaults(
    tmp_path: Path, state_dir: Path, pins: MockFactory
) -> None:
    for default in DEFAULT_OUTPUTS:
        left_on(pins, default.pin, active_high=default.active_high)
    lines = run_safe_off(broken_config(tmp_path), state_dir, pins)
    assert f"no record of the last run's outputs in {state_dir / OUTPUTS_FILE}" in lines
    assert [history(pins, pin) for pin in (5, 6, 18)] == [[LOW, HIGH], [LOW, HIGH], [HIGH, LOW]]


def test_the_buttons_pin_is_never_driven(tmp_path: Path, state_dir: Path,
                                         pins: MockFactory) -> None:
    remember_outputs(load_config(gpio_config(tmp_path, button=5)).hardware, state_dir)
    lines = run_safe_off(broken_config(tmp_path), state_dir, pins)
    assert "default heater pin GPIO5 left alone: it is the button's" in lines
    assert len(history(pins, 5)) == 1


def test_a_damaged_record_is_ignored_with_a_message(tmp_path: Path, state_dir: Path,
                                                    pins: MockFactory) -> None:
    (state_dir / OUTPUTS_FILE).write_text('{"heater": {"pin": 17, "active_hi')
    lines = run_safe_off(broken_config(tmp_path), state_dir, pins)
    record = state_dir / OUTPUTS_FILE
    assert lines[1].startswith(f"last-known outputs ignored: cannot read {record}")
    assert len(history(pins, 17)) == 1
    assert history(pins, 5)[-1] is HIGH  # the defaults still go off


def test_a_damaged_entry_is_ignored_and_the_rest_of_the_record_used(state_dir: Path) -> None:
    (state_dir / OUTPUTS_FILE).write_text(json.dumps({
        "heater": {"pin": 99, "active_high": False},
        "power": {"pin": 23, "active_high": False},
        "motor": "GPIO18",
        "board": {"port": "", "baud": 115200},
        "inputs": [27, "x", 40],
    }))
    last, notes = read_last_outputs(state_dir)
    assert last is not None
    assert [(o.role, o.pin) for o in last.outputs] == [("power relay", 23)]
    assert last.board is None and last.inputs == {27}
    assert len(notes) == 3
    assert notes[0].startswith(f"last-known heater in {state_dir / OUTPUTS_FILE} ignored: "
                               "{'pin': 99, 'active_high': False} is not")


def test_remember_outputs_records_pins_and_port(tmp_path: Path, state_dir: Path) -> None:
    path = remember_outputs(load_config(gpio_config(tmp_path)).hardware, state_dir)
    assert json.loads(path.read_text()) == {
        "version": 1,
        "driver": "gpio",
        "pin_factory": "mock",
        "heater": {"pin": 17, "active_high": False},
        "power": {"pin": 23, "active_high": False},
        "motor": {"pin": 12, "active_high": True, "kind": "pwm"},
        "board": None,
        "inputs": [27],
    }
    remember_outputs(load_config(board_config(tmp_path, "/dev/ttyACM3")).hardware, state_dir)
    record = json.loads(path.read_text())
    assert (record["driver"], record["heater"], record["motor"]) == ("board", None, None)
    assert record["board"] == {"port": "/dev/ttyACM3", "baud": 115200}
    assert sorted(p.name for p in state_dir.iterdir()) == [OUTPUTS_FILE]  # no temp file left


# --- the command ---------------------------------------------------------------------


def test_safe_off_command_exits_0_with_a_broken_config(tmp_path: Path, state_dir: Path) -> None:
    remember_outputs(load_config(gpio_config(tmp_path)).hardware, state_dir)
    result = matpi("safe-off", "--config", str(broken_config(tmp_path)),
                   "--state-dir", str(state_dir))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("safe-off: ") for line in lines)
    for wanted in ("last-known heater GPIO17 off", "default heater pin GPIO5 driven high",
                   "default power relay pin GPIO6 driven high",
                   "default vibration motor pin GPIO18 driven low"):
        assert any(wanted in line for line in lines), (wanted, lines)
    assert not [line for line in lines if "could not" in line]


def test_safe_off_command_puts_its_failures_at_err_in_the_journal(
    tmp_path: Path, state_dir: Path
) -> None:
    """A board that could not be told to stop is an error in `journalctl -p err`, not
    info among the lines of what went well."""
    gone = tmp_path / "ttyACM9"
    journal = tmp_path / "journal"
    with journal.open("w", encoding="utf-8") as out:
        stream = os.fstat(out.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{stream.st_dev}:{stream.st_ino}"}
        subprocess.run([*MATPI, "safe-off", "--config", str(board_config(tmp_path, str(gone))),
                        "--state-dir", str(state_dir)], stdout=out, stderr=out, env=env,
                       timeout=60, check=True)
    lines = journal.read_text(encoding="utf-8").splitlines()
    assert f"<3>safe-off: could not tell the board on {gone} to stop: no such port" in lines
    assert any(line.startswith("<6>safe-off: ") for line in lines), lines


def test_safe_off_command_finds_the_record_in_systemds_state_directory(
    tmp_path: Path, state_dir: Path
) -> None:
    remember_outputs(load_config(gpio_config(tmp_path)).hardware, state_dir)
    result = matpi("safe-off", "--config", str(tmp_path / "missing.toml"),
                   env={"STATE_DIRECTORY": str(state_dir)})
    assert result.returncode == 0, result.stderr
    assert "safe-off: config unusable: " in result.stdout
    assert "safe-off: last-known heater GPIO17 off" in result.stdout


@pytest.mark.parametrize("result", ["watchdog", "signal", "exit-code", "success", ""])
def test_after_a_watchdog_kill_the_next_start_comes_up_in_a_latched_fault(
    tmp_path: Path, state_dir: Path, result: str
) -> None:
    """A hung controller loop is a defect a person must see at the mat: safe-off, told by
    systemd ($SERVICE_RESULT) that the watchdog ended the service, latches a fault that only
    a long press at the mat clears. Any other end (a kill, a crash, a stop) latches none."""
    done = matpi("safe-off", "--config", str(gpio_config(tmp_path)),
                 "--state-dir", str(state_dir), env={"SERVICE_RESULT": result})
    assert done.returncode == 0, done.stderr
    process = subprocess.Popen(
        [*MATPI, "run", "--simulate", "--state-dir", str(state_dir), "--web-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        state = first_line(process, lines=2)  # after the banner
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=SUBPROCESS_TIMEOUT_S)
    if result == "watchdog":
        assert f"safe-off: fault latched: {WATCHDOG_FAULT}" in done.stdout
        assert "] fault" in state and WATCHDOG_FAULT in state, state
    else:
        assert "fault" not in done.stdout + done.stderr
        assert "] idle" in state, state


def test_the_latched_watchdog_fault_is_an_error_in_the_journal(state_dir: Path) -> None:
    """Review: it was logged with the logger's own prefix, unlike safe-off's other lines."""
    said = Said()
    latch_watchdog_fault(state_dir, "watchdog", say=said)
    [line] = said
    assert line == f"fault latched: {WATCHDOG_FAULT}; a long press at the mat clears it"
    assert said.levels[line] == logging.ERROR


def test_a_watchdog_fault_that_cannot_be_recorded_says_so_at_err(tmp_path: Path) -> None:
    unwritable = tmp_path / "not-a-folder"
    unwritable.write_text("a file where the state folder should be")
    said = Said()
    latch_watchdog_fault(unwritable, "watchdog", say=said)
    [line] = said
    assert line.startswith("watchdog fault not recorded: ")
    assert said.levels[line] == logging.ERROR


def test_safe_off_command_tells_the_board_over_its_port(
    tmp_path: Path, state_dir: Path, board: PtyBoard
) -> None:
    result = matpi("safe-off", "--config", str(board_config(tmp_path, board.port)),
                   "--state-dir", str(state_dir))
    assert result.returncode == 0, result.stderr
    assert board.frames(3) == STOP_FRAMES
    assert f"safe-off: board on {board.port}: stop sent" in result.stdout
    assert "heater" not in result.stdout


def test_run_records_its_outputs_for_safe_off(tmp_path: Path, state_dir: Path) -> None:
    process = subprocess.Popen(
        [*MATPI, "run", "--config", str(gpio_config(tmp_path)), "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert "mat on GPIO" in first_line(process)
        assert (state_dir / OUTPUTS_FILE).exists()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        process.kill()
    assert process.returncode == 0, err
    last, notes = read_last_outputs(state_dir)
    assert last is not None and notes == []
    assert [(o.role, o.pin, o.active_high) for o in last.outputs] == [
        ("heater", 17, False), ("power relay", 23, False), ("vibration motor", 12, True)]


def test_a_simulated_run_records_nothing(state_dir: Path) -> None:
    process = subprocess.Popen(
        [*MATPI, "run", "--simulate", "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert "simulated mat" in first_line(process)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert not (state_dir / OUTPUTS_FILE).exists()


# --- the outputs' levels at power-on (config.txt) ------------------------------------


def test_the_default_outputs_are_the_configs_defaults() -> None:
    assert pi_outputs(HardwareConfig()) == list(DEFAULT_OUTPUTS)


def test_boot_config_prints_off_levels_for_the_configs_pins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["boot-config", "--config", str(gpio_config(tmp_path))]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "[all]",
        "# heater, active-low: off = high",
        "gpio=17=op,dh",
        "# power relay, active-low: off = high",
        "gpio=23=op,dh",
        "# vibration motor, active-high: off = low",
        "gpio=12=op,dl",
    ]
    assert main(["boot-config", "--config", str(board_config(tmp_path, "/dev/ttyACM0"))]) == 0
    assert [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("gpio=")] == ["gpio=23=op,dh"]


def test_boot_config_with_a_broken_config_prints_the_defaults_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["boot-config", "--config", str(broken_config(tmp_path))]) == 0
    out, err = capsys.readouterr()
    assert [line for line in out.splitlines() if line.startswith("gpio=")] == [
        "gpio=5=op,dh", "gpio=6=op,dh", "gpio=18=op,dl"]
    assert "not valid TOML" in err and "matpi's default pins" in err


BEGIN, END = "# matpi: outputs off at power-on", "# matpi end"
CONFIG_TXT = "# Raspberry Pi config\ndtparam=audio=on\n[pi4]\narm_boost=1\n"


def script_function(script: str, function: str, *args: str) -> str:
    """Runs one function of an install script (sourced, so its main does not run)."""
    result = subprocess.run(
        ["bash", "-c", f'script=$1; shift; source "$script" && {function} "$@"', "bash",
         str(ROOT / "scripts" / script), *args], capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_install_writes_the_boot_block_once_and_replaces_it(tmp_path: Path) -> None:
    config_txt = tmp_path / "config.txt"
    config_txt.write_text(CONFIG_TXT)
    first = "[all]\ngpio=5=op,dh\ngpio=6=op,dh"
    assert script_function("install-pi.sh", "write_boot_block", str(config_txt), first) \
        == "changed"
    assert config_txt.read_text() == f"{CONFIG_TXT}{BEGIN}\n{first}\n{END}\n"
    assert (tmp_path / "config.txt.before-matpi").read_text() == CONFIG_TXT
    assert script_function("install-pi.sh", "write_boot_block", str(config_txt), first) \
        == "unchanged"
    config_txt.write_text(config_txt.read_text() + "# the user's line after it\n")
    second = "[all]\ngpio=17=op,dh"
    assert script_function("install-pi.sh", "write_boot_block", str(config_txt), second) \
        == "changed"
    assert config_txt.read_text() == (f"{CONFIG_TXT}{BEGIN}\n{second}\n{END}\n"
                                      "# the user's line after it\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.txt",
                                                          "config.txt.before-matpi"]


def test_install_leaves_a_hand_broken_block_alone(tmp_path: Path) -> None:
    config_txt = tmp_path / "config.txt"
    broken = f"{CONFIG_TXT}{BEGIN}\ngpio=5=op,dh\n# the user's line\n"
    config_txt.write_text(broken)
    assert script_function("install-pi.sh", "write_boot_block", str(config_txt),
                           "gpio=5=op,dh") == "refused"
    assert config_txt.read_text() == broken


def test_uninstall_removes_the_boot_block(tmp_path: Path) -> None:
    config_txt = tmp_path / "config.txt"
    config_txt.write_text(CONFIG_TXT)
    script_function("install-pi.sh", "write_boot_block", str(config_txt), "gpio=5=op,dh")
    config_txt.write_text(config_txt.read_text() + "dtoverlay=w1-gpio\n")
    assert script_function("uninstall-pi.sh", "remove_boot_block", str(config_txt)) == "removed"
    assert config_txt.read_text() == CONFIG_TXT + "dtoverlay=w1-gpio\n"
    assert script_function("uninstall-pi.sh", "remove_boot_block", str(config_txt)) == "absent"


OVERLAYS = ("# matpi: 1-wire (DS18B20 on GPIO4) and SPI (MCP3008 on SPI0)\n[all]\n"
            "dtoverlay=w1-gpio\ndtparam=spi=on\n# matpi: 1-wire and SPI end\n")
OVERLAY_MARKERS = (OVERLAYS.splitlines()[0], OVERLAYS.splitlines()[-1])
"""The first and last lines of the overlays' block, as uninstall-pi.sh is given them."""


def test_install_adds_the_missing_overlays_in_a_block_only_purge_removes(
    tmp_path: Path,
) -> None:
    """`uninstall-pi.sh --purge` leaves nothing of matpi's: the 1-wire and SPI lines it added
    are in a block of their own, written once, and removed as a whole."""
    config_txt = tmp_path / "config.txt"
    config_txt.write_text(CONFIG_TXT)
    script_function("install-pi.sh", "enable_overlays", str(config_txt))
    assert config_txt.read_text() == CONFIG_TXT + OVERLAYS
    script_function("install-pi.sh", "enable_overlays", str(config_txt))  # again: the same
    assert config_txt.read_text() == CONFIG_TXT + OVERLAYS
    assert script_function("uninstall-pi.sh", "remove_boot_block", str(config_txt)) == "absent"
    assert script_function("uninstall-pi.sh", "remove_boot_block", str(config_txt),
                           *OVERLAY_MARKERS) == "removed"
    assert config_txt.read_text() == CONFIG_TXT


def test_install_adds_only_the_overlay_the_pi_lacks(tmp_path: Path) -> None:
    config_txt = tmp_path / "config.txt"
    config_txt.write_text(CONFIG_TXT + "dtparam=spi=on\n")
    script_function("install-pi.sh", "enable_overlays", str(config_txt))
    assert config_txt.read_text() == CONFIG_TXT + "dtparam=spi=on\n" + OVERLAYS.replace(
        "dtparam=spi=on\n", "")
    script_function("uninstall-pi.sh", "remove_boot_block", str(config_txt), *OVERLAY_MARKERS)
    assert config_txt.read_text() == CONFIG_TXT + "dtparam=spi=on\n"
