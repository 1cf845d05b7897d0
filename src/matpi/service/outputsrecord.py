"""The record of the outputs a running mat drives, for a `safe-off` that cannot read
the config (broken or edited since): which pins, which level is on, which board port,
and which pins are inputs that must never be driven.

`matpi run` writes it at start (`remember_outputs`); `safe-off` reads it
leniently (`read_last_outputs`): a damaged record is ignored in whole or in
part, with a line saying so, never an exception.
"""

import json
import os
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from matpi.config.settings import PIN_FACTORIES, HardwareConfig
from matpi.core.errors import MatpiError
from matpi.drivers.bootpins import HEATER, MOTOR, POWER, PiOutput, pi_outputs

OUTPUTS_FILE: Final = "outputs.json"
RECORD_VERSION: Final = 1
DEFAULT_BAUD: Final = 115200
MAX_PIN: Final = 27


class OutputsRecordError(MatpiError, OSError):
    """The record of the outputs could not be written."""


@dataclass(frozen=True)
class BoardPort:
    port: str
    baud: int = DEFAULT_BAUD


@dataclass(frozen=True)
class LastOutputs:
    """What the last `matpi run` drove, as it recorded it."""

    driver: str
    pin_factory: str
    outputs: tuple[PiOutput, ...]
    board: BoardPort | None
    inputs: frozenset[int]


def remember_outputs(hw: HardwareConfig, state_dir: Path) -> Path:
    """Records which pins and port this run drives, for a safe-off that cannot read the config.

    Written atomically (a crash leaves the old record or the new, never half of one).

    Raises:
        OutputsRecordError: naming the file and why it could not be written.
    """
    outputs = {out.role: out for out in pi_outputs(hw)}

    def pin(role: str) -> dict[str, Any] | None:
        out = outputs.get(role)
        return None if out is None else {"pin": out.pin, "active_high": out.active_high}

    motor = pin(MOTOR)
    if motor is not None:
        motor["kind"] = hw.vibration.kind
    record = {
        "version": RECORD_VERSION,
        "driver": hw.driver,
        "pin_factory": hw.pin_factory,
        "heater": pin(HEATER),
        "power": pin(POWER),
        "motor": motor,
        "board": {"port": hw.board.port, "baud": hw.board.baud} if hw.driver == "board" else None,
        "inputs": input_pins(hw),
    }
    path = state_dir / OUTPUTS_FILE
    try:
        _write_atomically(path, json.dumps(record, indent=2) + "\n")
    except OSError as exc:
        raise OutputsRecordError(f"cannot record the outputs in {path}: {exc}") from exc
    return path


def input_pins(hw: HardwareConfig) -> list[int]:
    """Pins that must never be driven: a button shorts a driven pin to ground when pressed."""
    return [] if hw.button.pin is None else [hw.button.pin]


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def read_last_outputs(state_dir: Path) -> tuple[LastOutputs | None, list[str]]:
    """The record `remember_outputs` left, read leniently, and a line for each part ignored.

    A missing record is (None, []); a damaged one is ignored (whole or in part)
    with a message, never an exception: safe-off must go on.
    """
    path = state_dir / OUTPUTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, []
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, [f"last-known outputs ignored: cannot read {path}: {exc}"]
    if not isinstance(data, dict):
        return None, [f"last-known outputs ignored: {path} holds {type(data).__name__}, "
                      "not a JSON object"]
    notes: list[str] = []
    outputs = []
    for key, role in (("heater", HEATER), ("power", POWER), ("motor", MOTOR)):
        entry = data.get(key)
        if entry is None:
            continue
        out = _recorded_pin(role, entry)
        if out is None:
            notes.append(f"last-known {role} in {path} ignored: {entry!r} is not "
                         f'{{"pin": 0-{MAX_PIN}, "active_high": true or false}}')
        else:
            outputs.append(out)
    board = _recorded_board(data.get("board"))
    if data.get("board") is not None and board is None:
        notes.append(f"last-known board in {path} ignored: {data.get('board')!r} is not "
                     '{"port": "/dev/...", "baud": 9600-1000000}')
    factory = data.get("pin_factory")
    inputs = data.get("inputs")
    return LastOutputs(
        driver=str(data.get("driver", "?")),
        pin_factory=factory if factory in PIN_FACTORIES else "auto",
        outputs=tuple(outputs),
        board=board,
        inputs=frozenset(p for p in inputs if _is_pin(p)) if isinstance(inputs, list)
        else frozenset(),
    ), notes


def _is_pin(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_PIN


def _recorded_pin(role: str, entry: object) -> PiOutput | None:
    if not isinstance(entry, dict):
        return None
    pin, active_high = entry.get("pin"), entry.get("active_high")
    if not _is_pin(pin) or not isinstance(active_high, bool):
        return None
    assert isinstance(pin, int)
    return PiOutput(role, pin, active_high)


def _recorded_board(entry: object) -> BoardPort | None:
    if not isinstance(entry, dict):
        return None
    port, baud = entry.get("port"), entry.get("baud", DEFAULT_BAUD)
    if not isinstance(port, str) or not port or type(baud) is not int \
            or not 9600 <= baud <= 1_000_000:
        return None
    return BoardPort(port, baud)
