"""`matpi safe-off`: every output off, whatever state the config and the hardware are in.

It is the service's ExecStopPost, so it runs after a stop, a crash, a watchdog
kill or a failed start, and it must never give up: each output is tried even
when another fails, the board's port is never waited on for long, and it
prints one line per thing it did or could not do.

What it switches off:
- the outputs of the config (GPIO pins, or the mat board told over serial);
- the outputs the last `matpi run` recorded (`outputsrecord`), since the
  config may have been edited while the old process still held other pins;
- matpi's default pins and board port, when the config cannot be used or a pin
  cannot be claimed: a best guess beats leaving a relay as a dead process left it.
A pin known to be the button's is never driven: a pressed button would short it.

After a watchdog kill it also latches a fault in the history: a controller loop
that hung is a defect a person should see at the mat before the next session,
not something a restart quietly papers over.
"""

import logging
import os
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Final, Protocol

import serial
from gpiozero.pins import Factory

from matpi.config.load import load_config
from matpi.config.settings import HardwareConfig
from matpi.core.errors import ConfigError, DriverError, HistoryError
from matpi.drivers import boardproto as proto
from matpi.drivers.bootpins import DEFAULT_OUTPUTS, HEATER, MOTOR, POWER, PiOutput, pi_outputs
from matpi.drivers.gpio import (
    HeaterRelay,
    PowerRelay,
    make_pin_factory,
)
from matpi.service.outputsrecord import (
    OUTPUTS_FILE,
    BoardPort,
    LastOutputs,
    input_pins,
    read_last_outputs,
)
from matpi.store.history import HISTORY_FILENAME, History

DEFAULT_BOARD_PORT: Final = "/dev/ttyACM0"
WRITE_TIMEOUT_S: Final = 0.5
ANSWER_TIMEOUT_S: Final = 0.5
"""How long to listen for the board's HELLO: it only tells the journal whether one is there."""
DRAIN_TIMEOUT_S: Final = 0.5

CONFIG: Final = "config"
LAST_KNOWN: Final = "last known"
DEFAULT: Final = "default"

WATCHDOG_FAULT: Final = "controller loop hung: systemd's watchdog stopped matpi"
WATCHDOG_RESULT: Final = "watchdog"
"""systemd's $SERVICE_RESULT, given to ExecStopPost, after a WatchdogSec= kill."""

class Say(Protocol):
    """Says one line of what safe-off did; a failure at logging.ERROR, so that the journal
    keeps it at `err` (see `journal`)."""

    def __call__(self, line: str, level: int = logging.INFO) -> None: ...


def print_line(line: str, level: int = logging.INFO) -> None:
    print(line, flush=True)


class _MotorPin(HeaterRelay):
    """The motor's pin as a plain output: its inactive level stops a PWM motor as well."""

    ROLE = MOTOR


_DEVICES: Final[dict[str, type[HeaterRelay]]] = {
    HEATER: HeaterRelay, POWER: PowerRelay, MOTOR: _MotorPin,
}


# --- switching off ------------------------------------------------------------------


def safe_off(
    config_path: Path,
    state_dir: Path,
    *,
    say: Say = print_line,
    pin_factory: Factory | None = None,
    default_port: str = DEFAULT_BOARD_PORT,
    answer_timeout_s: float = ANSWER_TIMEOUT_S,
) -> None:
    """Reads the config if it can, then `switch_off`. Never raises for a bad config."""
    hw: HardwareConfig | None = None
    try:
        hw = load_config(config_path).hardware
    except ConfigError as exc:
        more = len(exc.problems) - 1
        tail = f" (and {more} more: see matpi check-config {config_path})" if more else ""
        say(f"config unusable: {exc.problems[0]}{tail}", logging.ERROR)
    except Exception as exc:  # an undecodable file raises UnicodeDecodeError, not ConfigError
        say(f"config unusable: {config_path}: {exc}", logging.ERROR)
    switch_off(hw, state_dir, say=say, pin_factory=pin_factory, default_port=default_port,
               answer_timeout_s=answer_timeout_s)


def latch_watchdog_fault(state_dir: Path, service_result: str, *, say: Say = print_line,
                         now_wall: Callable[[], float] = time.time) -> None:
    """Records WATCHDOG_FAULT, latched, when systemd's watchdog ended the service; the next
    start comes up in that fault until a long press at the mat clears it. Said as an
    error (the journal's `err`), never raised."""
    if service_result != WATCHDOG_RESULT:
        return
    try:
        history = History.open(state_dir / HISTORY_FILENAME)
        try:
            history.record_fault(now_wall(), WATCHDOG_FAULT)
        finally:
            history.close()
    except HistoryError as exc:
        say(f"watchdog fault not recorded: {exc}", logging.ERROR)
        return
    say(f"fault latched: {WATCHDOG_FAULT}; a long press at the mat clears it", logging.ERROR)


def switch_off(
    hw: HardwareConfig | None,
    state_dir: Path,
    *,
    say: Say = print_line,
    pin_factory: Factory | None = None,
    default_port: str = DEFAULT_BOARD_PORT,
    answer_timeout_s: float = ANSWER_TIMEOUT_S,
) -> None:
    """Every output of `hw` (None: the config was unusable), of the last run, and if need be
    matpi's defaults, off; one line said per action. Each step is tried whatever the others did.

    `pin_factory` replaces the one the config names (tests pass a MockFactory).
    """
    last, notes = read_last_outputs(state_dir)
    for note in notes:
        say(note)
    inputs = set(last.inputs if last is not None else ()) | set(input_pins(hw) if hw else ())
    known = hw.pin_factory if hw is not None else last.pin_factory if last is not None else None
    factory_names = [known or "auto", "auto"]
    pins = _Pins(say, factory_names, pin_factory)
    boards = _Boards(say, answer_timeout_s)
    try:
        all_done = hw is not None and _config_outputs(hw, pins, boards, say)
        if last is not None:
            all_done &= _last_outputs(last, pins, boards, inputs, say)
        elif hw is None:
            say(f"no record of the last run's outputs in {state_dir / OUTPUTS_FILE}")
        if not all_done:
            say("trying matpi's default pins and board port as well", logging.WARNING)
            for out in DEFAULT_OUTPUTS:
                if out.pin in inputs:
                    say(f"default {out.role} pin GPIO{out.pin} left alone: it is the button's")
                elif not pins.tried(out.pin):
                    pins.drive_off(out, DEFAULT)
            boards.stop(BoardPort(default_port), DEFAULT, must_exist=False)
    finally:
        pins.close()


def _config_outputs(hw: HardwareConfig, pins: "_Pins", boards: "_Boards", say: Say) -> bool:
    """The config's outputs off; False when a pin could not be driven."""
    if hw.driver == "board":
        boards.stop(BoardPort(hw.board.port, hw.board.baud), CONFIG, must_exist=True)
    outputs = pi_outputs(hw)
    done = True
    for out in outputs:
        done &= pins.drive_off(out, CONFIG)
    if hw.power_pin is None:
        say("no power relay configured")
    if hw.driver == "gpio" and not any(out.role == MOTOR for out in outputs):
        say("no vibration motor configured")
    return done


def _last_outputs(
    last: LastOutputs, pins: "_Pins", boards: "_Boards", inputs: set[int], say: Say
) -> bool:
    """The recorded outputs the config did not already cover, off."""
    done = True
    for out in last.outputs:
        earlier = pins.tried(out.pin)
        if earlier is not None:
            if earlier.active_high != out.active_high:
                say(f"last-known {out.role} GPIO{out.pin} ({out.polarity}) not driven: the "
                    f"config has GPIO{out.pin} as {earlier.role}, {earlier.polarity}")
        elif out.pin in inputs:
            say(f"last-known {out.role} GPIO{out.pin} left alone: it is the button's pin now")
        else:
            done &= pins.drive_off(out, LAST_KNOWN)
    if last.board is not None:
        boards.stop(last.board, LAST_KNOWN, must_exist=False)
    return done


def _label(out: PiOutput, origin: str) -> str:
    if origin == CONFIG:
        return f"{out.role} GPIO{out.pin}"
    if origin == LAST_KNOWN:
        return f"last-known {out.role} GPIO{out.pin}"
    return f"default {out.role} pin GPIO{out.pin}"


class _Pins:
    """Claims each pin on its own, so one that cannot be claimed does not stop the others."""

    def __init__(self, say: Say, factory_names: list[str], injected: Factory | None) -> None:
        self._say = say
        self._names = list(dict.fromkeys(factory_names))
        self._injected = injected
        self._chosen = injected is not None
        self._factory: Factory | None = injected
        self._tried: dict[int, PiOutput] = {}

    def tried(self, pin: int) -> PiOutput | None:
        """The output this pin was already driven as (or tried to be)."""
        return self._tried.get(pin)

    def drive_off(self, out: PiOutput, origin: str) -> bool:
        self._tried[out.pin] = out
        label = _label(out, origin)
        try:
            device = _DEVICES[out.role](out.pin, active_high=out.active_high,
                                        pin_factory=self._pin_factory())
            device.close()  # it was built off; close() drives it off again, then releases it
        except Exception as exc:  # whatever it is, the next pin must still be tried
            self._say(f"could not drive {label} {out.off_level} ({out.polarity}): {exc}",
                      logging.ERROR)
            return False
        if origin == DEFAULT:
            self._say(f"{label} driven {out.off_level} (the off level of an {out.polarity} "
                      f"{out.role})")
        else:
            self._say(f"{label} off (driven {out.off_level}, {out.polarity})")
        return True

    def _pin_factory(self) -> Factory | None:
        """The config's pin factory, else gpiozero's own choice ("auto", None)."""
        if self._chosen:
            return self._factory
        self._chosen = True
        for name in self._names:
            try:
                self._factory = make_pin_factory(name)
                return self._factory
            except DriverError as exc:
                self._say(f"could not open pin factory {name!r}: {exc}", logging.WARNING)
        return None

    def close(self) -> None:
        if self._factory is not None and self._factory is not self._injected:
            with suppress(Exception):
                self._factory.close()


class _Boards:
    """Tells each mat board port to stop, once per port."""

    def __init__(self, say: Say, answer_timeout_s: float) -> None:
        self._say = say
        self._answer_timeout_s = answer_timeout_s
        self._seen: set[str] = set()

    def stop(self, board: BoardPort, origin: str, *, must_exist: bool) -> bool:
        is_path = board.port.startswith("/")
        key = os.path.realpath(board.port) if is_path else board.port
        if key in self._seen:
            return True
        self._seen.add(key)
        label = {CONFIG: f"board on {board.port}",
                 LAST_KNOWN: f"last-known board on {board.port}"}.get(
                     origin, f"board on the default port {board.port}")
        if is_path and not os.path.exists(board.port):
            if must_exist:
                self._say(f"could not tell the {label} to stop: no such port", logging.ERROR)
                return False
            self._say(f"no {label}: no such port")
            return True
        try:
            answered = send_stop(board, self._answer_timeout_s)
        except Exception as exc:  # SerialException, OSError, a bad URL: the rest must go on
            self._say(f"could not tell the {label} to stop: {exc}", logging.ERROR)
            return False
        heard = "the board answered" if answered else \
            f"no answer within {self._answer_timeout_s:g} s"
        self._say(f"{label}: stop sent (SYNC, HEAT 0, MOTOR 0); {heard}")
        return True


def stop_frames() -> bytes:
    """SYNC (the firmware switches every output off on it), then HEAT 0 and MOTOR 0.

    The newline first ends any partial frame the board still holds from the
    process that died.
    """
    tx = proto.SequenceCounter()
    frames = [proto.Frame(tx.opening(), "SYNC"),
              proto.Frame(tx.next(), "HEAT", {"duty_pm": 0}),
              proto.Frame(tx.next(), "MOTOR", {"duty_pm": 0})]
    return b"\n" + b"".join(proto.encode(frame) + b"\n" for frame in frames)


def send_stop(board: BoardPort, answer_timeout_s: float = ANSWER_TIMEOUT_S) -> bool:
    """Writes `stop_frames` to the board; True if a HELLO came back within the timeout.

    Bounded: pyserial opens the port non-blocking, writes time out, and output
    the board has not taken is dropped before closing, so the close cannot wait
    on it either.

    Raises:
        serial.SerialException, OSError, ValueError: the port could not be opened or written.
    """
    port = serial.serial_for_url(board.port, baudrate=board.baud, timeout=0.05,
                                 write_timeout=WRITE_TIMEOUT_S)
    try:
        port.reset_input_buffer()  # a HELLO read afterwards answers this SYNC
        port.write(stop_frames())
        answered = _heard_hello(port, answer_timeout_s)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while port.out_waiting and time.monotonic() < deadline:
            time.sleep(0.01)
        if port.out_waiting:
            port.reset_output_buffer()
        return answered
    finally:
        with suppress(Exception):
            port.close()


def _heard_hello(port: serial.Serial, timeout_s: float) -> bool:
    splitter = proto.LineSplitter()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in splitter.feed(port.read(max(1, port.in_waiting))):
            if line is not None and proto.hello_protocol(line) is not None:
                return True
    return False
