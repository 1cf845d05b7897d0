"""Host side of the mat board's serial protocol: framing, CRC, schemas, sequence numbers.

Pure: no I/O, no threads. firmware/PROTOCOL.md is the specification, and
firmware/protocol_vectors.json is the one contract: tests/test_board.py runs
every vector in it against this module, tests/firmware against the board's
firmware/protocol.py and firmware/lines.py.

Why two implementations: the board's runs on MicroPython (no typing,
dataclasses or enum; a heap of ~200 KB that favours tuples), this one is
checked by mypy --strict, with typed fields and matpi's own errors. A change
to the protocol goes into PROTOCOL.md, then the vectors, then both files.

Just over 400 lines: the protocol's layers (frame, fields, sequence, messages) read
best in one file, in the order PROTOCOL.md gives them.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from matpi.core.errors import MatpiError

PROTOCOL_VERSION: Final = 1
MAX_FRAME_BYTES: Final = 160
"""A whole frame, newline included."""
MAX_LINE_BYTES: Final = MAX_FRAME_BYTES - 1
SEQ_MODULUS: Final = 65536
OPENING_SEQ: Final = 0
COUNTER_MAX: Final = 65535

FAULT_CODES: Final = (
    "OVER_TEMP",
    "SENSOR_LOW",
    "SENSOR_HIGH",
    "HEATER_STALE",
    "HOST_SILENT",
    "WATCHDOG",
)
ERR_CODES: Final = ("SEQ", "SYNC", "FAULT", "HOT", "SENSOR")
HOST_KINDS: Final = ("SYNC", "PING", "HEAT", "MOTOR", "CLEAR")
BOARD_KINDS: Final = ("HELLO", "TELEM", "ACK", "ERR", "FAULT")
OPENING_KINDS: Final = ("SYNC", "HELLO")

_TEXT_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._,+-"
)
_HEX_DIGITS: Final = frozenset("0123456789ABCDEF")

FieldValue = int | str


class Reject(StrEnum):
    """Why a frame was not acted on."""

    CRC = "CRC"
    FORMAT = "FORMAT"
    LENGTH = "LENGTH"
    SEQ = "SEQ"


class FrameError(MatpiError, ValueError):
    """A line that is not a valid frame; `reason` says which rule it broke."""

    def __init__(self, reason: Reject, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason


@dataclass(frozen=True)
class IntField:
    name: str
    low: int
    high: int

    def accepts(self, value: FieldValue) -> bool:
        return type(value) is int and self.low <= value <= self.high


@dataclass(frozen=True)
class WordField:
    name: str
    choices: tuple[str, ...]

    def accepts(self, value: FieldValue) -> bool:
        return value in self.choices


@dataclass(frozen=True)
class TextField:
    name: str

    def accepts(self, value: FieldValue) -> bool:
        return isinstance(value, str) and value != "" and set(value) <= _TEXT_CHARS


FieldSpec = IntField | WordField | TextField


def _counter(name: str) -> IntField:
    return IntField(name, 0, COUNTER_MAX)


SCHEMAS: Final[Mapping[str, tuple[FieldSpec, ...]]] = {
    "SYNC": (),
    "PING": (),
    "HEAT": (IntField("duty_pm", 0, 1000),),
    "MOTOR": (IntField("duty_pm", 0, 1000),),
    "CLEAR": (),
    "HELLO": (IntField("proto", 0, COUNTER_MAX), TextField("fw"), TextField("caps")),
    "TELEM": (
        IntField("t_cc", -5000, 15000),
        IntField("heat_pm", 0, 1000),
        IntField("heat_on", 0, 1),
        IntField("motor_pm", 0, 1000),
        WordField("fault", ("NONE", *FAULT_CODES)),
        _counter("n_crc"),
        _counter("n_fmt"),
        _counter("n_len"),
        _counter("n_seq"),
    ),
    "ACK": (IntField("ref", 0, COUNTER_MAX),),
    "ERR": (IntField("ref", 0, COUNTER_MAX), WordField("code", ERR_CODES)),
    "FAULT": (WordField("code", FAULT_CODES), IntField("t_cc", -5000, 15000)),
}
"""Fields of each kind, in the order they appear on the wire."""


@dataclass(frozen=True)
class Frame:
    """One message: sequence number, kind and its fields."""

    seq: int
    kind: str
    fields: Mapping[str, FieldValue] = field(default_factory=dict)


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): catches every 1- and 2-bit error."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def encode(frame: Frame) -> bytes:
    """The line for `frame`, without its newline.

    Raises:
        ValueError: the frame breaks its schema; nothing invalid is ever sent.
    """
    schema = SCHEMAS.get(frame.kind)
    if schema is None:
        raise ValueError(f"unknown kind {frame.kind!r}")
    if (frame.seq == OPENING_SEQ) != (frame.kind in OPENING_KINDS) or not (
        0 <= frame.seq < SEQ_MODULUS
    ):
        raise ValueError(f"bad sequence number {frame.seq} for {frame.kind}")
    if set(frame.fields) != {spec.name for spec in schema}:
        raise ValueError(f"{frame.kind} takes fields {[spec.name for spec in schema]}")
    parts = [str(frame.seq), frame.kind]
    for spec in schema:
        value = frame.fields[spec.name]
        if not spec.accepts(value):
            raise ValueError(f"bad value for {frame.kind}.{spec.name}: {value!r}")
        parts.append(f"{spec.name}={value}")
    body = " ".join(parts)
    line = f"{body}*{crc16_ccitt(body.encode('ascii')):04X}".encode("ascii")
    if len(line) > MAX_LINE_BYTES:
        raise ValueError(f"frame longer than {MAX_LINE_BYTES} bytes")
    return line


def _parse_int(text: str) -> int | None:
    """Canonical decimal only ("7", "-7", never "07" or "-0"), so a frame has one spelling."""
    digits = text.removeprefix("-")
    if not digits or not all(c in "0123456789" for c in digits):
        return None
    if (len(digits) > 1 and digits[0] == "0") or text == "-0":
        return None
    return int(text)


def _checked_body(line: bytes) -> str:
    """The text before the checksum, once length, characters and CRC are right."""
    if len(line) > MAX_LINE_BYTES:
        raise FrameError(Reject.LENGTH, f"{len(line)} bytes")
    if any(byte < 0x20 or byte > 0x7E for byte in line):
        raise FrameError(Reject.FORMAT, "non-printable byte")
    text = line.decode("ascii")
    star = len(text) - 5
    if star < 0 or text[star] != "*" or not set(text[star + 1 :]) <= _HEX_DIGITS:
        raise FrameError(Reject.FORMAT, "no *XXXX checksum")
    body = text[:star]
    if crc16_ccitt(body.encode("ascii")) != int(text[star + 1 :], 16):
        raise FrameError(Reject.CRC)
    return body


def _parse_value(spec: FieldSpec, text: str) -> FieldValue:
    value: FieldValue | None = _parse_int(text) if isinstance(spec, IntField) else text
    if value is None or not spec.accepts(value):
        raise FrameError(Reject.FORMAT, f"bad value for {spec.name}")
    return value


def decode(line: bytes) -> Frame:
    """The frame in one line (newline removed).

    Raises:
        FrameError: the line breaks a rule; it must not be acted on.
    """
    parts = _checked_body(line).split(" ")
    seq = _parse_int(parts[0])
    if seq is None or not 0 <= seq < SEQ_MODULUS:
        raise FrameError(Reject.FORMAT, "bad sequence number")
    kind = parts[1] if len(parts) > 1 else ""
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise FrameError(Reject.FORMAT, "unknown kind")
    if (seq == OPENING_SEQ) != (kind in OPENING_KINDS):
        raise FrameError(Reject.FORMAT, "sequence 0 is for SYNC and HELLO only")
    if len(parts) - 2 != len(schema):
        raise FrameError(Reject.FORMAT, "wrong number of fields")
    fields: dict[str, FieldValue] = {}
    for spec, part in zip(schema, parts[2:], strict=True):
        prefix = spec.name + "="
        if not part.startswith(prefix):
            raise FrameError(Reject.FORMAT, f"expected field {spec.name}")
        fields[spec.name] = _parse_value(spec, part.removeprefix(prefix))
    return Frame(seq, kind, fields)


def hello_protocol(line: bytes) -> int | None:
    """The protocol version a HELLO line announces, even one from another version.

    Every version keeps the frame layout and starts HELLO with `proto=`, so a
    host can refuse a board it does not understand with a clear message.
    """
    try:
        parts = _checked_body(line).split(" ")
    except FrameError:
        return None
    if len(parts) < 3 or parts[:2] != ["0", "HELLO"] or not parts[2].startswith("proto="):
        return None
    return _parse_int(parts[2].removeprefix("proto="))


class SequenceCheck:
    """Accepts a peer's frames only in order.

    The opening frame (sequence 0) restarts the count; after it each frame
    must come later than the last accepted one, modulo 65536 and within half
    of that, so duplicates and older frames are rejected while a lost frame
    does not block the next.
    """

    def __init__(self) -> None:
        self.last_seq: int | None = None

    def accept(self, seq: int) -> bool:
        """True, and remembered, when `seq` may be acted on."""
        if seq == OPENING_SEQ:
            self.last_seq = OPENING_SEQ
            return True
        if self.last_seq is None:
            return False
        ahead = (seq - self.last_seq) % SEQ_MODULUS
        if 0 < ahead < SEQ_MODULUS // 2:
            self.last_seq = seq
            return True
        return False


class SequenceCounter:
    """Numbers a sender's frames: 0 for the opening frame, then 1..65535, 1, 2, ..."""

    def __init__(self) -> None:
        self._last = OPENING_SEQ

    def opening(self) -> int:
        self._last = OPENING_SEQ
        return OPENING_SEQ

    def next(self) -> int:
        self._last = self._last % (SEQ_MODULUS - 1) + 1
        return self._last


class LineSplitter:
    """Cuts bytes into lines of at most MAX_LINE_BYTES without holding more than one.

    A longer line is dropped whole, up to its newline, and shows up once as
    None; empty lines are skipped.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._pending = bytearray()
        self._overflowed = False

    def feed(self, data: bytes) -> list[bytes | None]:
        """The complete lines in `data` (newline removed), None for each overlong one."""
        lines: list[bytes | None] = []
        for byte in data:
            if byte == 0x0A:
                if self._overflowed:
                    lines.append(None)
                elif self._pending:
                    lines.append(bytes(self._pending))
                self._pending.clear()
                self._overflowed = False
            elif self._overflowed:
                continue
            elif len(self._pending) >= self._max:
                self._pending.clear()
                self._overflowed = True
            else:
                self._pending.append(byte)
        return lines


# --- what the board says, typed ---------------------------------------------


@dataclass(frozen=True)
class Hello:
    protocol: int
    firmware: str
    capabilities: frozenset[str]


@dataclass(frozen=True)
class Telemetry:
    temp_c: float
    heater_duty: float
    heater_on: bool
    motor_duty: float
    fault: str | None
    rejected: Mapping[Reject, int]
    """Frames the board rejected since it booted, by reason."""


@dataclass(frozen=True)
class Ack:
    ref: int


@dataclass(frozen=True)
class Err:
    ref: int
    code: str


@dataclass(frozen=True)
class FaultReport:
    code: str
    temp_c: float


BoardMessage = Hello | Telemetry | Ack | Err | FaultReport


def _int(frame: Frame, name: str) -> int:
    value = frame.fields.get(name)
    if not isinstance(value, int):
        raise FrameError(Reject.FORMAT, f"{frame.kind} needs an integer {name}")
    return value


def _str(frame: Frame, name: str) -> str:
    value = frame.fields.get(name)
    if not isinstance(value, str):
        raise FrameError(Reject.FORMAT, f"{frame.kind} needs a word {name}")
    return value


def board_message(frame: Frame) -> BoardMessage:
    """The typed message in a decoded board frame.

    Raises:
        FrameError: the frame is a host command, not something a board sends.
    """
    if frame.kind not in BOARD_KINDS:
        raise FrameError(Reject.FORMAT, f"{frame.kind} is not sent by a board")
    match frame.kind:
        case "HELLO":
            return Hello(
                _int(frame, "proto"), _str(frame, "fw"), frozenset(_str(frame, "caps").split(","))
            )
        case "TELEM":
            fault = _str(frame, "fault")
            return Telemetry(
                temp_c=_int(frame, "t_cc") / 100.0,
                heater_duty=_int(frame, "heat_pm") / 1000.0,
                heater_on=_int(frame, "heat_on") == 1,
                motor_duty=_int(frame, "motor_pm") / 1000.0,
                fault=None if fault == "NONE" else fault,
                rejected={
                    Reject.CRC: _int(frame, "n_crc"),
                    Reject.FORMAT: _int(frame, "n_fmt"),
                    Reject.LENGTH: _int(frame, "n_len"),
                    Reject.SEQ: _int(frame, "n_seq"),
                },
            )
        case "ACK":
            return Ack(_int(frame, "ref"))
        case "ERR":
            return Err(_int(frame, "ref"), _str(frame, "code"))
        case "FAULT":
            return FaultReport(_str(frame, "code"), _int(frame, "t_cc") / 100.0)
    raise AssertionError(f"BOARD_KINDS has {frame.kind} but no message for it")
