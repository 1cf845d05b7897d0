"""The mat board over pyserial: the host side of firmware/PROTOCOL.md.

`BoardLink` owns the serial port and one thread that reads the board's frames,
sends heartbeats and reconnects after the cable is pulled. The heater, motor
and thermometer it hands out are the same `Switch`, `Dimmer` and `Thermometer`
the GPIO drivers give, so the controller cannot tell the two wirings apart.

Safety: the host sends a heater duty only when the controller calls
`heater.on()` or `off()`; the link thread never repeats it. The board keeps a
duty for 2 s, so a controller loop that stalls while this thread still sends
heartbeats loses its heat. Board faults and a lost link reach the controller
as `DriverFault` events through `post`.

Over 400 lines on purpose: the link and the three parts it hands out share its
private duty and reading methods, which nothing else may call.
"""

import logging
import math
import threading
import time
from types import TracebackType
from typing import Self

import serial

from matpi.core.errors import DriverError
from matpi.core.events import DriverFault, Reading
from matpi.drivers import boardproto as proto
from matpi.drivers.base import Post

_log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.05
"""Longest a read blocks, so heartbeats and shutdown are never late by more."""
CLOSE_TIMEOUT_S = 2.0
"""How long `close` waits for the link's thread (its reads block READ_TIMEOUT_S at most)."""


class BoardVersionError(DriverError):
    """The board speaks another protocol version than this host."""


class _Pending:
    """A command waiting for its reply: "ACK" or an ERR code."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: str | None = None


class BoardLink:
    """The serial link to the mat board, and the heater, motor and thermometer behind it.

    Building it opens the port and checks the board's protocol version, so a
    wrong port or firmware fails at startup with a clear error. Afterwards a
    lost link is posted as a `DriverFault` and reconnected in the background;
    commands fail (`on`, a non-zero duty) or are skipped (`off`: the board's
    own 2 s guard switches it off) while it is down.

        link = BoardLink("/dev/ttyACM0", 115200, controller.post)
        drivers = MatDrivers(heater=link.heater, motor=link.motor,
                             thermometers=[link.thermometer], closers=[link.close], ...)
    """

    def __init__(
        self,
        port: str,
        baud: int,
        post: Post,
        *,
        thermometer_name: str = "board",
        heartbeat_s: float = 0.5,
        link_timeout_s: float = 1.0,
        stale_after_s: float = 1.0,
        handshake_timeout_s: float = 2.0,
        reconnect_s: float = 1.0,
        reply_timeout_s: float = 1.0,
    ) -> None:
        """Opens `port` (a device path or a pyserial URL) and waits for the board's HELLO.

        Raises:
            BoardVersionError: the board speaks another protocol version.
            DriverError: the port cannot be opened or no valid HELLO arrives.
        """
        self.port = port
        self._baud = baud
        self._post = post
        self._heartbeat_s = heartbeat_s
        self._link_timeout_s = link_timeout_s
        self._handshake_timeout_s = handshake_timeout_s
        self._reconnect_s = reconnect_s
        self._reply_timeout_s = reply_timeout_s
        self._lock = threading.Lock()  # guards the port, the sender's sequence and _pending
        self._stopping = threading.Event()
        self._tx = proto.SequenceCounter()
        self._rx = proto.SequenceCheck()
        self._splitter = proto.LineSplitter()
        self._pending: dict[int, _Pending] = {}
        self._latest: tuple[proto.Telemetry, float] | None = None
        self._reported_fault: str | None = None
        self._awaiting_hello = False
        self._last_frame_at = 0.0
        self._last_ping_at = 0.0
        self._closed = False
        self._connect_failure: str | None = None
        self.rejected = dict.fromkeys(proto.Reject, 0)
        """Frames from the board this host rejected, by reason."""
        self._port: serial.Serial | None = None
        self.info = self._connect()
        self.heater = BoardHeater(self)
        self.motor = BoardMotor(self)
        self.thermometer = BoardThermometer(self, thermometer_name, stale_after_s)
        self._thread = threading.Thread(target=self._run, name=f"board-link {port}", daemon=True)
        try:
            self._thread.start()
        except BaseException:
            self._drop_port()
            raise

    # --- public ------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._port is not None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def telemetry(self) -> proto.Telemetry | None:
        """The board's latest telemetry, however old."""
        latest = self._latest
        return None if latest is None else latest[0]

    def clear_fault(self) -> None:
        """Asks the board to clear its latched fault; it refuses unless the mat is cool.

        Raises:
            DriverError: the board refused (with its reason), did not answer, or the link is down.
        """
        reply = self._command("CLEAR", {}, wait=True)
        if reply is None:
            raise DriverError(f"the board did not answer CLEAR within {self._reply_timeout_s} s")
        if reply != "ACK":
            raise DriverError(f"the board refused to clear its fault: {reply}")

    def close(self) -> None:
        """Heater and motor off, then the thread stopped and the port closed; idempotent."""
        if self._closed:
            return
        try:
            self._send_off("HEAT")
            self._send_off("MOTOR")
        finally:
            self._closed = True
            self._stopping.set()
            if threading.current_thread() is not self._thread:
                self._thread.join(timeout=CLOSE_TIMEOUT_S)
            self._drop_port()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- commands (any thread) -------------------------------------------------

    def _set_duty_pm(self, kind: str, duty_pm: int) -> None:
        """Sends HEAT or MOTOR; a zero duty never raises, the board's guard backs it up."""
        if duty_pm == 0:
            self._send_off(kind)
        else:
            self._command(kind, {"duty_pm": duty_pm}, wait=False)

    def _send_off(self, kind: str) -> None:
        try:
            self._command(kind, {"duty_pm": 0}, wait=False)
        except DriverError as exc:
            _log.info("%s off not sent (%s); the board switches it off within 2 s", kind, exc)

    def _command(self, kind: str, fields: dict[str, proto.FieldValue], *, wait: bool) -> str | None:
        pending = _Pending()
        with self._lock:
            if self._closed or self._port is None:
                raise DriverError(f"board link on {self.port} is down")
            seq = self._tx.next()
            if wait:
                self._pending[seq] = pending
            try:
                self._port.write(proto.encode(proto.Frame(seq, kind, fields)) + b"\n")
            except (serial.SerialException, OSError) as exc:
                self._pending.pop(seq, None)
                raise DriverError(f"could not send {kind} to the board: {exc}") from exc
        if not wait:
            return None
        pending.done.wait(self._reply_timeout_s)
        with self._lock:
            self._pending.pop(seq, None)
        return pending.reply

    # --- connecting ------------------------------------------------------------

    def _connect(self) -> proto.Hello:
        try:
            port = serial.serial_for_url(self.port, baudrate=self._baud, timeout=READ_TIMEOUT_S)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DriverError(f"cannot open the board's port {self.port}: {exc}") from exc
        try:
            hello = self._handshake(port)
            with self._lock:
                if self._closed:
                    raise DriverError("board link closed while connecting")
                self._port = port
        except (serial.SerialException, OSError) as exc:
            port.close()
            raise DriverError(f"lost the board's port {self.port} while connecting: {exc}") from exc
        except BaseException:
            port.close()
            raise
        self._last_frame_at = time.monotonic()
        return hello

    def _handshake(self, port: serial.Serial) -> proto.Hello:
        """Sends SYNC and waits for the HELLO that answers it."""
        port.reset_input_buffer()  # so the HELLO that comes answers this SYNC
        with self._lock:
            sync = proto.Frame(self._tx.opening(), "SYNC")
            # The newline first ends any partial frame the board still holds.
            port.write(b"\n" + proto.encode(sync) + b"\n")
        splitter = proto.LineSplitter()
        deadline = time.monotonic() + self._handshake_timeout_s
        while time.monotonic() < deadline and not self._stopping.is_set():
            for line in splitter.feed(port.read(max(1, port.in_waiting))):
                if line is not None and self._is_hello(line):
                    hello = proto.board_message(proto.decode(line))
                    if isinstance(hello, proto.Hello):
                        return self._start_session(hello, splitter)
        raise DriverError(
            f"no HELLO from the board on {self.port} within {self._handshake_timeout_s} s:"
            " is firmware/ flashed and wired to this port?"
        )

    def _is_hello(self, line: bytes) -> bool:
        """Whether `line` is a HELLO; raises BoardVersionError for one of another version."""
        version = proto.hello_protocol(line)
        if version is not None and version != proto.PROTOCOL_VERSION:
            raise BoardVersionError(
                f"the board on {self.port} speaks protocol version {version}, this matpi"
                f" speaks {proto.PROTOCOL_VERSION}: flash the firmware from this matpi's firmware/"
            )
        return version is not None

    def _start_session(self, hello: proto.Hello, splitter: proto.LineSplitter) -> proto.Hello:
        self._rx = proto.SequenceCheck()
        self._rx.accept(proto.OPENING_SEQ)
        self._splitter = splitter
        self._awaiting_hello = False
        caps = ",".join(sorted(hello.capabilities))
        _log.info(
            "board on %s: firmware %s, protocol %d, %s",
            self.port,
            hello.firmware,
            hello.protocol,
            caps,
        )
        return hello

    def _drop_port(self) -> None:
        with self._lock:
            port, self._port = self._port, None
            for pending in self._pending.values():
                pending.done.set()
        if port is not None:
            port.close()

    def _lose_link(self, why: str) -> None:
        if self._closed:
            return
        self._drop_port()
        self._latest = None
        _log.warning("board link on %s lost: %s", self.port, why)
        self._post(DriverFault(reason=f"board link lost: {why}"))

    def _try_reconnect(self) -> None:
        try:
            self.info = self._connect()
        except BoardVersionError as exc:
            if str(exc) != self._connect_failure:
                self._post(DriverFault(reason=str(exc)))
            self._connect_failure = str(exc)
        except DriverError as exc:
            _log.debug("board reconnect failed: %s", exc)
        else:
            self._connect_failure = None
            _log.info("board link on %s back", self.port)

    # --- the link thread ----------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                port = self._port
                if port is None:
                    self._try_reconnect()
                    if self._port is None:
                        self._stopping.wait(self._reconnect_s)
                    continue
                try:
                    self._pump(port)
                except (serial.SerialException, OSError, DriverError) as exc:
                    self._lose_link(str(exc))
        except Exception as exc:  # a bug here must not leave the link half alive
            _log.exception("board link thread failed")
            self._lose_link(f"link thread failed: {exc!r}")

    def _pump(self, port: serial.Serial) -> None:
        """One pass: read what arrived, act on it, ping when due, notice silence."""
        for line in self._splitter.feed(port.read(max(1, port.in_waiting))):
            if line is None:
                self.rejected[proto.Reject.LENGTH] += 1
            else:
                self._receive(line)
        now = time.monotonic()
        if now - self._last_frame_at > self._link_timeout_s:
            self._lose_link(f"no valid frame for {self._link_timeout_s} s")
        elif now - self._last_ping_at >= self._heartbeat_s:
            self._last_ping_at = now
            self._command("PING", {}, wait=False)

    def _receive(self, line: bytes) -> None:
        self._is_hello(line)  # for its version check: a reflashed board may come back different
        try:
            frame = proto.decode(line)
            message = proto.board_message(frame)
        except proto.FrameError as exc:
            self.rejected[exc.reason] += 1
            _log.debug("rejected frame from the board (%s): %r", exc, line)
            return
        if not self._rx.accept(frame.seq):
            self.rejected[proto.Reject.SEQ] += 1
            return
        self._last_frame_at = time.monotonic()
        match message:
            case proto.Hello():
                self._on_hello()
            case proto.Telemetry():
                self._latest = (message, self._last_frame_at)
                self._on_fault_state(message.fault, f"{message.temp_c:.1f} °C")
            case proto.FaultReport(code=code, temp_c=temp_c):
                self._on_fault_state(code, f"{temp_c:.1f} °C")
            case proto.Ack(ref=ref):
                self._reply(ref, "ACK")
            case proto.Err(ref=ref, code=code):
                self._on_err(ref, code)

    def _on_hello(self) -> None:
        if self._awaiting_hello:
            self._awaiting_hello = False
            return
        self._post(DriverFault(reason="board restarted (unexpected HELLO)"))
        self._resync()

    def _resync(self) -> None:
        with self._lock:
            if self._port is None:
                return
            self._awaiting_hello = True
            self._port.write(proto.encode(proto.Frame(self._tx.opening(), "SYNC")) + b"\n")

    def _on_fault_state(self, code: str | None, where: str) -> None:
        if code is not None and code != self._reported_fault:
            self._post(DriverFault(reason=f"board fault {code} at {where}"))
        self._reported_fault = code

    def _on_err(self, ref: int, code: str) -> None:
        self._reply(ref, code)
        if code in ("SEQ", "SYNC") and not self._awaiting_hello:
            self._post(DriverFault(reason=f"board lost the sequence ({code}): restarted?"))
            self._resync()
        elif code == "FAULT":
            self._post(DriverFault(reason="board refused an output: its fault is latched"))

    def _reply(self, ref: int, code: str) -> None:
        with self._lock:
            pending = self._pending.get(ref)
        if pending is not None:
            pending.reply = code
            pending.done.set()

    def _reading(self, name: str, stale_after_s: float) -> Reading:
        """The latest telemetry temperature, or why there is none."""
        latest = self._latest
        if self._port is None:
            return Reading(name, None, f"board link on {self.port} down")
        if latest is None:
            return Reading(name, None, "no telemetry from the board yet")
        telemetry, received_at = latest
        age_s = time.monotonic() - received_at
        if age_s > stale_after_s:
            return Reading(name, None, f"board telemetry {age_s:.1f} s old")
        return Reading(name, telemetry.temp_c)


class BoardHeater:
    """The board's heater SSR as a `Switch`: on() asks for full duty for the next 2 s."""

    def __init__(self, link: BoardLink) -> None:
        self._link = link

    def on(self) -> None:
        """Raises DriverError when the link is down: heat cannot be asked for."""
        self._link._set_duty_pm("HEAT", 1000)

    def off(self) -> None:
        self._link._set_duty_pm("HEAT", 0)

    def close(self) -> None:
        self.off()


class BoardMotor:
    """The board's vibration motor PWM as a `Dimmer`."""

    def __init__(self, link: BoardLink) -> None:
        self._link = link

    def set_duty(self, duty: float) -> None:
        """Duty 0..1; a non-zero duty raises DriverError when the link is down."""
        if not (math.isfinite(duty) and 0.0 <= duty <= 1.0):
            raise ValueError(f"motor duty must be between 0 and 1, not {duty}")
        self._link._set_duty_pm("MOTOR", round(duty * 1000))

    def off(self) -> None:
        self._link._set_duty_pm("MOTOR", 0)

    def close(self) -> None:
        self.off()


class BoardThermometer:
    """The board's NTC as a `Thermometer`: the latest telemetry, never older than ~1 s."""

    reads_at_once = True  # the telemetry the link thread keeps

    def __init__(self, link: BoardLink, name: str, stale_after_s: float) -> None:
        self.name = name
        self._link = link
        self._stale_after_s = stale_after_s

    def read(self) -> Reading:
        """Never blocks and never raises: a stale or missing value comes back as an error."""
        return self._link._reading(self.name, self._stale_after_s)

    def close(self) -> None:
        """Nothing to release: the link owns the port."""
