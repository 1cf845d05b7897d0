"""The board's serial protocol: framing, CRC, message schemas and sequence numbers.

Pure and valid MicroPython. PROTOCOL.md is the specification, and
protocol_vectors.json is the one contract: the tests of both sides run every
vector in it (tests/firmware on this file, tests/test_board.py on the host's),
and test_board.py also compares the two files' schemas field by field.

Why the host has its own implementation (matpi.drivers.boardproto) instead of
importing this file: MicroPython has no typing, dataclasses or enum, and the
Pico's ~200 KB of heap favours tuples over objects, while the host is checked
by mypy --strict and raises matpi's own errors. Written once in the common
subset, one side would lose its checks or the other its memory. A change to
the protocol is made in PROTOCOL.md, then in the vectors, then in both files.
"""

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 160  # a whole frame, newline included
MAX_LINE_BYTES = MAX_FRAME_BYTES - 1
SEQ_MODULUS = 65536
OPENING_SEQ = 0

# Why a frame was rejected; also the names of the board's rejection counters.
CRC = "CRC"
FORMAT = "FORMAT"
LENGTH = "LENGTH"
SEQ = "SEQ"

FAULT_CODES = ("OVER_TEMP", "SENSOR_LOW", "SENSOR_HIGH", "HEATER_STALE", "HOST_SILENT", "WATCHDOG")
ERR_CODES = ("SEQ", "SYNC", "FAULT", "HOT", "SENSOR")
HOST_KINDS = ("SYNC", "PING", "HEAT", "MOTOR", "CLEAR")
BOARD_KINDS = ("HELLO", "TELEM", "ACK", "ERR", "FAULT")
OPENING_KINDS = ("SYNC", "HELLO")

_INT = "int"
_WORD = "word"
_TEXT = "text"
_TEXT_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._,+-"
_HEX_DIGITS = "0123456789ABCDEF"
_COUNT_MAX = 65535


def _int(name, low, high):
    return (name, _INT, low, high)


def _word(name, choices):
    return (name, _WORD, choices, None)


def _text(name):
    return (name, _TEXT, None, None)


def _counter(name):
    return _int(name, 0, _COUNT_MAX)


# Fields of each kind, in the order they appear on the wire.
SCHEMAS = {
    "SYNC": (),
    "PING": (),
    "HEAT": (_int("duty_pm", 0, 1000),),
    "MOTOR": (_int("duty_pm", 0, 1000),),
    "CLEAR": (),
    "HELLO": (_int("proto", 0, _COUNT_MAX), _text("fw"), _text("caps")),
    "TELEM": (
        _int("t_cc", -5000, 15000),
        _int("heat_pm", 0, 1000),
        _int("heat_on", 0, 1),
        _int("motor_pm", 0, 1000),
        _word("fault", ("NONE",) + FAULT_CODES),  # noqa: RUF005 (no * in MicroPython displays)
        _counter("n_crc"),
        _counter("n_fmt"),
        _counter("n_len"),
        _counter("n_seq"),
    ),
    "ACK": (_int("ref", 0, _COUNT_MAX),),
    "ERR": (_int("ref", 0, _COUNT_MAX), _word("code", ERR_CODES)),
    "FAULT": (_word("code", FAULT_CODES), _int("t_cc", -5000, 15000)),
}


class FrameError(Exception):
    """A frame that must not be acted on; `reason` is CRC, FORMAT or LENGTH."""

    def __init__(self, reason, detail=""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


def crc16(data):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): catches every 1- and 2-bit error."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _parse_int(text):
    """Canonical decimal only ("7", "-7", never "07" or "-0"), so a frame has one spelling."""
    digits = text[1:] if text.startswith("-") else text
    if not digits or any(c not in "0123456789" for c in digits):
        return None
    if (len(digits) > 1 and digits[0] == "0") or text == "-0":
        return None
    return int(text)


def _check_value(spec, value):
    """True when `value` fits the field `spec`."""
    kind, a, b = spec[1], spec[2], spec[3]
    if kind == _INT:
        return type(value) is int and a <= value <= b
    if kind == _WORD:
        return value in a
    return type(value) is str and len(value) > 0 and all(c in _TEXT_CHARS for c in value)


def _parse_value(spec, text):
    value = _parse_int(text) if spec[1] == _INT else text
    if value is None or not _check_value(spec, value):
        raise FrameError(FORMAT, "bad value for " + spec[0])
    return value


def encode(seq, kind, fields):
    """The line (no newline) for message `kind` with `fields` (a dict); ValueError if invalid."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise ValueError("unknown kind " + str(kind))
    if (seq == OPENING_SEQ) != (kind in OPENING_KINDS) or not 0 <= seq < SEQ_MODULUS:
        raise ValueError(f"bad sequence number {seq} for {kind}")
    if len(fields) != len(schema):
        names = " ".join(spec[0] for spec in schema)
        raise ValueError(f"{kind} takes fields {names}")
    parts = [str(seq), kind]
    for spec in schema:
        value = fields.get(spec[0])
        if not _check_value(spec, value):
            raise ValueError(f"bad value for {kind}.{spec[0]}: {value}")
        parts.append(f"{spec[0]}={value}")
    body = " ".join(parts)
    line = f"{body}*{crc16(body.encode()):04X}".encode()
    if len(line) > MAX_LINE_BYTES:
        raise ValueError(f"frame longer than {MAX_LINE_BYTES} bytes")
    return line


def _split_checked(line):
    """The body of `line` once its length, characters and CRC are right."""
    if len(line) > MAX_LINE_BYTES:
        raise FrameError(LENGTH, f"{len(line)} bytes")
    for byte in line:
        if byte < 0x20 or byte > 0x7E:
            raise FrameError(FORMAT, "non-printable byte")
    text = line.decode()
    star = len(text) - 5
    if star < 0 or text[star] != "*" or any(c not in _HEX_DIGITS for c in text[star + 1 :]):
        raise FrameError(FORMAT, "no *XXXX checksum")
    body = text[:star]
    if crc16(body.encode()) != int(text[star + 1 :], 16):
        raise FrameError(CRC)
    return body


def decode(line):
    """(seq, kind, fields) of one line without its newline; FrameError if it is not valid."""
    parts = _split_checked(line).split(" ")
    seq = _parse_int(parts[0])
    if seq is None or not 0 <= seq < SEQ_MODULUS:
        raise FrameError(FORMAT, "bad sequence number")
    kind = parts[1] if len(parts) > 1 else ""
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise FrameError(FORMAT, "unknown kind")
    if (seq == OPENING_SEQ) != (kind in OPENING_KINDS):
        raise FrameError(FORMAT, "sequence 0 is for SYNC and HELLO only")
    if len(parts) - 2 != len(schema):
        raise FrameError(FORMAT, "wrong number of fields")
    fields = {}
    for index, spec in enumerate(schema):
        part = parts[2 + index]
        prefix = spec[0] + "="
        if not part.startswith(prefix):
            raise FrameError(FORMAT, "expected field " + spec[0])
        fields[spec[0]] = _parse_value(spec, part[len(prefix) :])
    return seq, kind, fields


class SequenceCheck:
    """Accepts a peer's frames only in order.

    The opening frame (sequence 0) restarts the count; after it each frame
    must come later than the last accepted one, modulo 65536 and within half
    of that, so duplicates and replays of older frames are rejected while a
    lost frame does not block the next.
    """

    def __init__(self):
        self.last_seq = None  # None until the opening frame

    @property
    def synced(self):
        return self.last_seq is not None

    def accept(self, seq):
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

    def __init__(self):
        self._last = OPENING_SEQ

    def opening(self):
        self._last = OPENING_SEQ
        return OPENING_SEQ

    def next(self):
        self._last = self._last % (SEQ_MODULUS - 1) + 1
        return self._last
