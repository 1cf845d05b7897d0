"""The board's logic: host frames and temperatures in, outputs and frames out.

Pure and valid MicroPython: no pins, no clock reads, time comes in as an
unwrapped millisecond count. runner.py feeds it from the hardware.

Safety rules kept here, whatever the host sends:
- the heater runs only on a HEAT duty refreshed within HOST_TIMEOUT_MS (a PING
  keeps the link up but never extends heat), and only while the link is up;
- the motor runs only while any valid host frame arrived within HOST_TIMEOUT_MS;
- over-temperature, an out-of-range sensor, a deadline passing with an output
  on, or a watchdog reset latch a fault: outputs off until the host clears it
  and the mat is below CLEAR_BELOW_C.
"""

import guards
import heater
import protocol

FIRMWARE_VERSION = "0.1.0"
CAPABILITIES = "HEAT,MOTOR,NTC,WDT"
T_CC_MIN = -5000  # telemetry range of t_cc; the range guard trips well inside it
T_CC_MAX = 15000
MOTOR_FULL_U16 = 65535


def centi_c(temp_c):
    """Temperature as the protocol's clamped hundredths of a degree."""
    clamped = min(max(temp_c * 100.0, T_CC_MIN), T_CC_MAX)
    return round(clamped)


class BoardCore:
    """One board's state, from its first temperature reading on.

    Frames to send pile up until `take_outbox()`.
    """

    def __init__(self, temp_c, watchdog_reset=False):
        self._outbox = []
        self.rejected = {protocol.CRC: 0, protocol.FORMAT: 0, protocol.LENGTH: 0, protocol.SEQ: 0}
        self.fault = guards.FaultLatch()
        self.temp_c = temp_c
        self.heater_duty_pm = 0
        self.motor_duty_pm = 0
        self._rx = protocol.SequenceCheck()
        self._tx = protocol.SequenceCounter()
        self._link = guards.Deadline()
        self._heat_demand = guards.Deadline()
        self._over_temp = guards.OverTempGuard()
        self._sensor_range = guards.SensorRangeGuard()
        self.send_hello()
        self.sense(temp_c)
        if watchdog_reset:
            self._latch("WATCHDOG")

    # --- frames out ---------------------------------------------------------

    def take_outbox(self):
        """The lines to write (without newlines), oldest first; empties the box."""
        lines, self._outbox = self._outbox, []
        return lines

    def send_hello(self):
        seq = self._tx.opening()
        fields = {"proto": protocol.PROTOCOL_VERSION, "fw": FIRMWARE_VERSION, "caps": CAPABILITIES}
        self._outbox.append(protocol.encode(seq, "HELLO", fields))

    def _send(self, kind, fields):
        self._outbox.append(protocol.encode(self._tx.next(), kind, fields))

    def send_telemetry(self, now_ms):
        """Queues one TELEM frame."""
        self._send(
            "TELEM",
            {
                "t_cc": centi_c(self.temp_c),
                "heat_pm": self.heater_duty_pm,
                "heat_on": 1 if self.heater_on(now_ms) else 0,
                "motor_pm": self.motor_duty_pm,
                "fault": self.fault.code or "NONE",
                "n_crc": min(self.rejected[protocol.CRC], 65535),
                "n_fmt": min(self.rejected[protocol.FORMAT], 65535),
                "n_len": min(self.rejected[protocol.LENGTH], 65535),
                "n_seq": min(self.rejected[protocol.SEQ], 65535),
            },
        )

    # --- frames in ----------------------------------------------------------

    def reject(self, reason):
        """Counts a frame that is not acted on."""
        self.rejected[reason] += 1

    def receive(self, line, now_ms):
        """Acts on one line from the host, or rejects and counts it."""
        try:
            seq, kind, fields = protocol.decode(line)
        except protocol.FrameError as error:
            self.reject(error.reason)
            return
        if kind not in protocol.HOST_KINDS:
            self.reject(protocol.FORMAT)
            return
        synced = self._rx.synced
        if not self._rx.accept(seq):
            self.reject(protocol.SEQ)
            self._send("ERR", {"ref": seq, "code": "SEQ" if synced else "SYNC"})
            return
        self._link.refresh(now_ms)
        if kind == "SYNC":  # a new host session starts from everything off
            self.heater_duty_pm = 0
            self.motor_duty_pm = 0
            self.send_hello()
            return
        refusal = self._act(kind, fields, now_ms)
        if refusal is None:
            self._send("ACK", {"ref": seq})
        else:
            self._send("ERR", {"ref": seq, "code": refusal})

    def _act(self, kind, fields, now_ms):
        """Carries out one in-order host command; returns an ERR code to refuse it."""
        if kind in ("HEAT", "MOTOR"):
            duty_pm = fields["duty_pm"]
            if duty_pm > 0 and self.fault.code is not None:
                return "FAULT"
            if kind == "HEAT":
                self.heater_duty_pm = duty_pm
                self._heat_demand.refresh(now_ms)
            else:
                self.motor_duty_pm = duty_pm
        elif kind == "CLEAR":
            return self.fault.clear(self.temp_c)
        return None

    # --- guards -------------------------------------------------------------

    def _latch(self, code):
        if self.fault.latch(code):
            self.heater_duty_pm = 0
            self.motor_duty_pm = 0
            self._send("FAULT", {"code": code, "t_cc": centi_c(self.temp_c)})

    def sense(self, temp_c):
        """Takes one temperature reading and runs the temperature guards on it."""
        self.temp_c = temp_c
        code = self._sensor_range.check(temp_c)
        over_temp = self._over_temp.check(temp_c)
        if code is None:
            code = over_temp
        if code is not None:
            self._latch(code)

    def check_deadlines(self, now_ms):
        """Latches a fault when the host stopped refreshing an output that is on."""
        if self.heater_duty_pm > 0 and self._heat_demand.expired(now_ms):
            self._latch("HEATER_STALE")
        if (self.heater_duty_pm > 0 or self.motor_duty_pm > 0) and self._link.expired(now_ms):
            self._latch("HOST_SILENT")

    # --- outputs ------------------------------------------------------------

    def _outputs_allowed(self, now_ms):
        return self.fault.code is None and not self._link.expired(now_ms)

    def heater_on(self, now_ms):
        """Whether the SSR should conduct now.

        Deadlines and the last reading are checked here as well as latched, so
        heat stops at the first doubt, before a fault is confirmed.
        """
        return (
            self._outputs_allowed(now_ms)
            and not self._heat_demand.expired(now_ms)
            and guards.heat_allowed_at(self.temp_c)
            and heater.conducts(self.heater_duty_pm, now_ms)
        )

    def motor_duty_u16(self, now_ms):
        if not self._outputs_allowed(now_ms):
            return 0
        return self.motor_duty_pm * MOTOR_FULL_U16 // 1000

    def status_led_on(self, now_ms):
        """Fast blink on a fault, slow blink until the host syncs, steady when all is well."""
        if self.fault.code is not None:
            return (now_ms // 125) % 2 == 0
        if not self._rx.synced:
            return (now_ms // 500) % 2 == 0
        return True
