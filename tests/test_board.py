"""The board's host side: codec against the shared vectors, driver against a scripted
board, and end to end against the real firmware loop running behind a pty."""

import importlib
import json
import os
import select
import sys
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from conftest import wait_for
from matpi.core.errors import DriverError
from matpi.core.events import DriverFault, Event
from matpi.drivers import boardproto as proto
from matpi.drivers.base import Post
from matpi.drivers.board import BoardLink, BoardVersionError

FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "firmware"
if str(FIRMWARE_DIR) not in sys.path:
    sys.path.insert(0, str(FIRMWARE_DIR))

from sim.boardsim import MatModel, SimulatedBoard  # noqa: E402

VECTORS = json.loads((FIRMWARE_DIR / "protocol_vectors.json").read_text())
FAST = {"heartbeat_s": 0.2, "reconnect_s": 0.1, "handshake_timeout_s": 1.0}


def faults(posted: list[Event]) -> list[str]:
    return [event.reason for event in posted if isinstance(event, DriverFault)]


# --- the codec against the shared vectors ---------------------------------------


def _host_spec(spec: proto.FieldSpec) -> tuple[object, ...]:
    match spec:
        case proto.IntField():
            return (spec.name, "int", spec.low, spec.high)
        case proto.WordField():
            return (spec.name, "word", tuple(spec.choices), None)
    return (spec.name, "text", None, None)


def test_the_board_and_the_host_implement_the_same_schemas() -> None:
    """Two implementations of one protocol (both docstrings say why): beside the vectors,
    every constant, kind, code and field range must agree, so a schema changed on one
    side only fails here even before a vector covers it."""
    board_side = importlib.import_module("protocol")
    assert Path(board_side.__file__ or "").parent == FIRMWARE_DIR
    for name in ("PROTOCOL_VERSION", "MAX_FRAME_BYTES", "MAX_LINE_BYTES", "SEQ_MODULUS",
                 "OPENING_SEQ", "FAULT_CODES", "ERR_CODES", "HOST_KINDS", "BOARD_KINDS",
                 "OPENING_KINDS"):
        assert getattr(board_side, name) == getattr(proto, name), name
    assert set(board_side.SCHEMAS) == set(proto.SCHEMAS)
    for kind, fields in proto.SCHEMAS.items():
        assert [tuple(spec) for spec in board_side.SCHEMAS[kind]] == [
            _host_spec(spec) for spec in fields], kind
    assert {reason.value for reason in proto.Reject} == {
        board_side.CRC, board_side.FORMAT, board_side.LENGTH, board_side.SEQ}


def test_vectors_are_for_this_protocol_version_and_frame_size() -> None:
    assert VECTORS["protocol_version"] == proto.PROTOCOL_VERSION
    assert VECTORS["max_frame_bytes"] == proto.MAX_FRAME_BYTES


def test_crc_matches_the_published_check_values() -> None:
    for case in VECTORS["crc"]:
        assert proto.crc16_ccitt(case["data"].encode()) == int(case["crc"], 16)


@pytest.mark.parametrize("case", VECTORS["frames"], ids=lambda case: case["frame"][:40])
def test_valid_frames_decode_and_encode_exactly(case: dict[str, object]) -> None:
    frame = proto.decode(str(case["frame"]).encode())
    assert frame == proto.Frame(case["seq"], case["kind"], case["fields"])  # type: ignore[arg-type]
    assert proto.encode(frame) == str(case["frame"]).encode()


@pytest.mark.parametrize("case", VECTORS["rejected"], ids=lambda case: case["note"])
def test_rejected_frames_are_rejected_for_their_reason(case: dict[str, str]) -> None:
    with pytest.raises(proto.FrameError) as caught:
        proto.decode(case["frame"].encode())
    assert caught.value.reason == case["reason"]


def test_sequence_check_follows_the_vectors() -> None:
    for case in VECTORS["sequences"]:
        check = proto.SequenceCheck()
        assert [check.accept(seq) for seq in case["seqs"]] == case["accepted"], case["note"]


def test_sender_numbers_frames_as_the_vectors_say() -> None:
    case = VECTORS["sender_sequence"]
    counter = proto.SequenceCounter()
    assert counter.opening() == 0
    numbers = [counter.next() for _ in range(65535)]
    assert numbers[: len(case["first"])] == case["first"]
    assert numbers[-1] == 65535
    assert counter.next() == case["after_65535"]


def test_line_splitter_follows_the_stream_vectors() -> None:
    for case in VECTORS["streams"]:
        splitter = proto.LineSplitter()
        found = [line for chunk in case["chunks"] for line in splitter.feed(chunk.encode())]
        expected = [None if line is None else line.encode() for line in case["lines"]]
        assert found == expected, case["note"]


def test_hello_version_is_read_even_from_another_version() -> None:
    for case in VECTORS["hello_versions"]:
        assert proto.hello_protocol(case["frame"].encode()) == case["proto"], case["note"]


def test_encode_refuses_an_invalid_frame() -> None:
    with pytest.raises(ValueError, match="duty_pm"):
        proto.encode(proto.Frame(1, "HEAT", {"duty_pm": 1001}))
    with pytest.raises(ValueError, match="sequence"):
        proto.encode(proto.Frame(0, "PING"))


def test_board_messages_are_typed_with_units() -> None:
    telemetry = proto.board_message(proto.decode(str(VECTORS["frames"][7]["frame"]).encode()))
    assert telemetry == proto.Telemetry(
        temp_c=25.34,
        heater_duty=1.0,
        heater_on=True,
        motor_duty=0.25,
        fault=None,
        rejected={
            proto.Reject.CRC: 0,
            proto.Reject.FORMAT: 2,
            proto.Reject.LENGTH: 0,
            proto.Reject.SEQ: 1,
        },
    )
    hello = proto.board_message(proto.decode(str(VECTORS["frames"][6]["frame"]).encode()))
    assert hello == proto.Hello(1, "0.1.0", frozenset({"HEAT", "MOTOR", "NTC", "WDT"}))
    with pytest.raises(proto.FrameError):
        proto.board_message(proto.Frame(1, "PING"))


# --- the driver against a scripted board ------------------------------------------


class ScriptedBoard:
    """The board's end of a pty, played by the test: answers SYNC, sends telemetry."""

    def __init__(self, *, protocol_version: int = 1, answer_sync: bool = True) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.received: list[proto.Frame] = []
        self.telemetry: dict[str, proto.FieldValue] = {
            "t_cc": 2500,
            "heat_pm": 0,
            "heat_on": 0,
            "motor_pm": 0,
            "fault": "NONE",
            "n_crc": 0,
            "n_fmt": 0,
            "n_len": 0,
            "n_seq": 0,
        }
        self.telemetry_on = True
        self._protocol_version = protocol_version
        self._answer_sync = answer_sync
        self._tx = proto.SequenceCounter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def send(self, kind: str, **fields: proto.FieldValue) -> None:
        with self._lock:
            seq = self._tx.opening() if kind == "HELLO" else self._tx.next()
            self.send_raw(proto.encode(proto.Frame(seq, kind, fields)) + b"\n")

    def send_hello(self) -> None:
        if self._protocol_version == proto.PROTOCOL_VERSION:
            self.send("HELLO", proto=1, fw="0.1.0", caps="HEAT,MOTOR,NTC,WDT")
        else:
            body = f"0 HELLO proto={self._protocol_version} fw=9.0.0 caps=HEAT mode=new"
            self.send_raw(f"{body}*{proto.crc16_ccitt(body.encode()):04X}\n".encode())

    def send_raw(self, data: bytes) -> None:
        os.write(self._master, data)

    def kinds(self) -> list[str]:
        return [frame.kind for frame in self.received]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self._master)
        os.close(self._slave)

    def _run(self) -> None:
        splitter = proto.LineSplitter()
        next_telemetry = 0.0
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if ready:
                for line in splitter.feed(os.read(self._master, 1024)):
                    assert line is not None
                    frame = proto.decode(line)
                    self.received.append(frame)
                    if frame.kind == "SYNC" and self._answer_sync:
                        self.send_hello()
            if self.telemetry_on and time.monotonic() >= next_telemetry:
                self.send("TELEM", **self.telemetry)
                next_telemetry = time.monotonic() + 0.1


@pytest.fixture
def posted() -> list[Event]:
    return []


@pytest.fixture
def link(scripted: ScriptedBoard, posted: list[Event]) -> Iterator[BoardLink]:
    board_link = BoardLink(scripted.port, 115200, posted.append, **FAST)
    yield board_link
    board_link.close()


def test_a_board_of_another_protocol_version_is_refused_clearly(posted: list[Event]) -> None:
    board = ScriptedBoard(protocol_version=2)
    try:
        with pytest.raises(BoardVersionError, match="protocol version 2, this matpi speaks 1"):
            BoardLink(board.port, 115200, posted.append, **FAST)
    finally:
        board.close()


def test_a_silent_board_fails_the_handshake(posted: list[Event]) -> None:
    board = ScriptedBoard(answer_sync=False)
    try:
        with pytest.raises(DriverError, match="no HELLO from the board"):
            BoardLink(board.port, 115200, posted.append, handshake_timeout_s=0.3)
    finally:
        board.close()


def test_a_missing_port_fails_clearly(tmp_path: Path, posted: list[Event]) -> None:
    with pytest.raises(DriverError, match="cannot open the board's port"):
        BoardLink(str(tmp_path / "ttyACM9"), 115200, posted.append)


def test_outputs_become_heat_and_motor_frames(scripted: ScriptedBoard, link: BoardLink) -> None:
    link.heater.on()
    link.motor.set_duty(0.25)
    link.heater.off()
    link.motor.off()
    assert wait_for(lambda: len([k for k in scripted.kinds() if k != "PING"]) == 5)
    commands = [(f.kind, dict(f.fields)) for f in scripted.received if f.kind != "PING"]
    assert commands == [
        ("SYNC", {}),
        ("HEAT", {"duty_pm": 1000}),
        ("MOTOR", {"duty_pm": 250}),
        ("HEAT", {"duty_pm": 0}),
        ("MOTOR", {"duty_pm": 0}),
    ]


def test_a_motor_duty_out_of_range_is_refused(link: BoardLink) -> None:
    for duty in (-0.1, 1.01, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            link.motor.set_duty(duty)


def test_the_link_thread_pings_but_never_repeats_heat(
    scripted: ScriptedBoard, link: BoardLink
) -> None:
    link.heater.on()
    time.sleep(1.0)
    assert scripted.kinds().count("HEAT") == 1
    assert scripted.kinds().count("PING") >= 3


def test_the_thermometer_gives_fresh_telemetry_only(
    scripted: ScriptedBoard, link: BoardLink
) -> None:
    scripted.telemetry["t_cc"] = 3125
    assert wait_for(lambda: link.thermometer.read().value_c == 31.25)
    scripted.telemetry_on = False
    time.sleep(0.5)
    scripted.send("ACK", ref=1)  # the link stays up, the temperature goes stale
    assert wait_for(lambda: link.thermometer.read().value_c is None, timeout_s=1.5)
    assert "old" in str(link.thermometer.read().error)


def test_a_board_fault_is_posted_once(
    scripted: ScriptedBoard, link: BoardLink, posted: list[Event]
) -> None:
    scripted.send("FAULT", code="OVER_TEMP", t_cc=4550)
    scripted.telemetry["fault"] = "OVER_TEMP"
    time.sleep(0.5)
    assert faults(posted) == ["board fault OVER_TEMP at 45.5 °C"]


def test_a_fault_seen_only_in_telemetry_is_posted(
    scripted: ScriptedBoard, link: BoardLink, posted: list[Event]
) -> None:
    scripted.telemetry["fault"] = "HOST_SILENT"
    assert wait_for(lambda: faults(posted) == ["board fault HOST_SILENT at 25.0 °C"])


def test_a_refused_output_is_posted(
    scripted: ScriptedBoard, link: BoardLink, posted: list[Event]
) -> None:
    link.heater.on()
    assert wait_for(lambda: "HEAT" in scripted.kinds())
    heat = next(frame for frame in scripted.received if frame.kind == "HEAT")
    scripted.send("ERR", ref=heat.seq, code="FAULT")
    assert wait_for(lambda: "board refused an output: its fault is latched" in faults(posted))


def test_clear_fault_waits_for_the_board(scripted: ScriptedBoard, link: BoardLink) -> None:
    def answer(code: str) -> None:
        assert wait_for(lambda: "CLEAR" in scripted.kinds())
        clear = [frame for frame in scripted.received if frame.kind == "CLEAR"][-1]
        scripted.received.clear()
        if code == "ACK":
            scripted.send("ACK", ref=clear.seq)
        else:
            scripted.send("ERR", ref=clear.seq, code=code)

    replier = threading.Thread(target=answer, args=("HOT",))
    replier.start()
    with pytest.raises(DriverError, match="refused to clear its fault: HOT"):
        link.clear_fault()
    replier.join()
    replier = threading.Thread(target=answer, args=("ACK",))
    replier.start()
    link.clear_fault()
    replier.join()


def test_a_board_restart_is_posted_and_the_link_resyncs(
    scripted: ScriptedBoard, link: BoardLink, posted: list[Event]
) -> None:
    syncs = scripted.kinds().count("SYNC")
    scripted.send_hello()
    assert wait_for(lambda: scripted.kinds().count("SYNC") == syncs + 1)
    time.sleep(0.3)
    assert faults(posted) == ["board restarted (unexpected HELLO)"]
    link.heater.on()
    assert wait_for(lambda: "HEAT" in scripted.kinds())


def test_bad_frames_from_the_board_are_counted_not_used(
    scripted: ScriptedBoard, link: BoardLink
) -> None:
    scripted.telemetry_on = False
    line = proto.encode(proto.Frame(60000, "TELEM", {**scripted.telemetry, "t_cc": 9000}))
    scripted.send_raw(line[:-1] + b"0\n" if line[-1:] != b"0" else line[:-1] + b"1\n")
    scripted.send_raw(b"0 TELEM no checksum\n")
    assert wait_for(lambda: link.rejected[proto.Reject.FORMAT] == 1)
    assert link.rejected[proto.Reject.CRC] == 1
    assert link.thermometer.read().value_c != 90.0


def test_close_switches_off_first_and_is_idempotent(
    scripted: ScriptedBoard, posted: list[Event]
) -> None:
    link = BoardLink(scripted.port, 115200, posted.append, **FAST)
    link.heater.on()
    link.close()
    link.close()
    assert link.closed
    assert wait_for(lambda: scripted.kinds()[-2:] == ["HEAT", "MOTOR"])
    assert [dict(frame.fields) for frame in scripted.received[-2:]] == [{"duty_pm": 0}] * 2
    with pytest.raises(DriverError):
        link.heater.on()
    link.heater.off()  # never raises: the board's own guard switches it off
    assert posted == []


# --- end to end: the firmware loop behind a pty -----------------------------------


@pytest.fixture
def board() -> Iterator[SimulatedBoard]:
    simulated = SimulatedBoard(MatModel(heating_c_per_s=4.0)).start()
    yield simulated
    simulated.stop()
    assert simulated.error is None


@pytest.fixture
def sim_link(board: SimulatedBoard, posted: list[Event]) -> Iterator[BoardLink]:
    post: Post = posted.append
    board_link = BoardLink(board.port, 115200, post, **FAST)
    yield board_link
    board_link.close()


class RawHost:
    """A bare host on pyserial, for what BoardLink would never do (fall silent, send junk)."""

    def __init__(self, port: str) -> None:
        self.serial = serial.Serial(port, 115200, timeout=0.05)
        self._tx = proto.SequenceCounter()
        self.send("SYNC")

    def send(self, kind: str, **fields: proto.FieldValue) -> None:
        seq = self._tx.opening() if kind == "SYNC" else self._tx.next()
        self.serial.write(proto.encode(proto.Frame(seq, kind, fields)) + b"\n")

    def close(self) -> None:
        self.serial.close()


def test_heat_from_the_host_warms_the_mat(board: SimulatedBoard, sim_link: BoardLink) -> None:
    assert wait_for(lambda: sim_link.thermometer.read().value_c is not None)
    start_c = sim_link.thermometer.read().value_c or 0.0
    sim_link.heater.on()
    assert wait_for(lambda: board.hardware.heater.level == 1, timeout_s=1.0)
    assert wait_for(lambda: (sim_link.thermometer.read().value_c or 0.0) > start_c + 1.0)
    telemetry = sim_link.telemetry
    assert telemetry is not None and telemetry.heater_on and telemetry.heater_duty == 1.0


def test_a_silent_host_loses_heater_and_motor_within_2_s(board: SimulatedBoard) -> None:
    host = RawHost(board.port)
    try:
        host.send("HEAT", duty_pm=1000)
        host.send("MOTOR", duty_pm=500)
        silent_since = time.monotonic()
        assert wait_for(lambda: board.hardware.heater.level == 1, timeout_s=1.0)
        assert wait_for(lambda: board.hardware.heater.level == 0 and board.hardware.motor.duty == 0)
        assert 1.5 < time.monotonic() - silent_since < 2.5
    finally:
        host.close()


def test_heartbeats_alone_do_not_keep_the_heat_on(
    board: SimulatedBoard, sim_link: BoardLink, posted: list[Event]
) -> None:
    sim_link.heater.on()  # and then the controller stalls: only the link thread pings
    on_since = time.monotonic()
    assert wait_for(lambda: board.hardware.heater.level == 1, timeout_s=1.0)
    assert wait_for(lambda: board.hardware.heater.level == 0)
    assert time.monotonic() - on_since < 2.5
    assert wait_for(lambda: any("HEATER_STALE" in reason for reason in faults(posted)))
    assert sim_link.connected


def test_over_temperature_trips_on_the_board_and_is_posted(
    board: SimulatedBoard, sim_link: BoardLink, posted: list[Event]
) -> None:
    sim_link.heater.on()
    assert wait_for(lambda: board.hardware.heater.level == 1, timeout_s=1.0)
    board.model.temp_c = 50.0
    assert wait_for(lambda: any("board fault OVER_TEMP" in reason for reason in faults(posted)))
    assert board.hardware.heater.level == 0
    board.model.temp_c = 40.0
    assert wait_for(lambda: (sim_link.thermometer.read().value_c or 99.0) < 41.0)
    with pytest.raises(DriverError, match="HOT"):
        sim_link.clear_fault()
    board.model.temp_c = 30.0
    assert wait_for(lambda: (sim_link.thermometer.read().value_c or 99.0) < 31.0)
    sim_link.clear_fault()
    sim_link.heater.on()
    assert wait_for(lambda: board.hardware.heater.level == 1, timeout_s=1.0)


def test_bad_crc_frames_are_rejected_and_counted(
    board: SimulatedBoard, sim_link: BoardLink
) -> None:
    good = proto.encode(proto.Frame(999, "HEAT", {"duty_pm": 1000}))
    corrupt = good.replace(b"1000", b"1001")
    intruder = os.open(board.port, os.O_WRONLY | os.O_NOCTTY)
    try:
        os.write(intruder, b"\n" + corrupt + b"\n")
    finally:
        os.close(intruder)

    def board_counted() -> bool:
        telemetry = sim_link.telemetry
        return telemetry is not None and telemetry.rejected[proto.Reject.CRC] == 1

    assert wait_for(board_counted)
    assert board.hardware.heater.level == 0


def test_a_pulled_cable_is_posted_and_the_link_comes_back(
    board: SimulatedBoard, sim_link: BoardLink, posted: list[Event]
) -> None:
    board.unplug()
    assert wait_for(lambda: any(reason.startswith("board link lost") for reason in faults(posted)))
    assert not sim_link.connected
    assert sim_link.thermometer.read().value_c is None
    with pytest.raises(DriverError, match="down"):
        sim_link.heater.on()
    board.replug()
    assert wait_for(lambda: sim_link.connected)
    assert wait_for(lambda: sim_link.thermometer.read().value_c is not None)
    sim_link.motor.set_duty(0.5)
    assert wait_for(lambda: board.hardware.motor.duty == 32767, timeout_s=1.0)
