"""The board's main loop: binds BoardCore to the hardware and the serial link.

Valid MicroPython. It touches hardware only through the objects handed in, so
the same loop runs on the Pico (main.py with hardware.py) and in a CPython
thread behind a pty (sim/boardsim.py).
"""

import core
import lines
import protocol
import thermistor

SAMPLE_PERIOD_MS = 100
TELEMETRY_PERIOD_MS = 250  # 4 Hz
LOOP_PAUSE_MS = 5


def forever():
    return True


class Uptime:
    """Milliseconds since start, unwrapped from the port's wrapping ticks (2**30 ms on rp2)."""

    def __init__(self, clock):
        self._clock = clock
        self._last_ticks = clock.ticks_ms()
        self.ms = 0

    def update(self):
        ticks = self._clock.ticks_ms()
        self.ms += self._clock.ticks_diff(ticks, self._last_ticks)
        self._last_ticks = ticks
        return self.ms


def run(hw, link, clock, watchdog_reset=False, keep_running=forever):
    """Runs the board until `keep_running()` is false; outputs stay as last set on return.

    Args:
        hw: `heater` and `led` (Pin-like .value()), `motor` (PWM-like
            .duty_u16()), `ntc` (ADC-like .read_u16()), `watchdog` (.feed()).
        link: UART-like: .read() -> bytes or None without blocking, .write(bytes).
        clock: ticks_ms(), ticks_diff(a, b) and sleep_ms(ms), as MicroPython's `time`.
        watchdog_reset: the last reset was the watchdog's: start with a latched fault.
    """
    ntc = thermistor.Ntc()

    def read_temp_c():
        return ntc.temp_c(thermistor.oversample(hw.ntc.read_u16))

    board = core.BoardCore(read_temp_c(), watchdog_reset)
    assembler = lines.LineAssembler(protocol.MAX_LINE_BYTES)
    uptime = Uptime(clock)
    next_sample_ms = SAMPLE_PERIOD_MS
    next_telemetry_ms = 0
    while keep_running():
        hw.watchdog.feed()
        now_ms = uptime.update()
        data = link.read()
        if data:
            for line in assembler.feed(data):
                if line is lines.TOO_LONG:
                    board.reject(protocol.LENGTH)
                else:
                    board.receive(line, now_ms)
        if now_ms >= next_sample_ms:
            board.sense(read_temp_c())
            next_sample_ms = now_ms + SAMPLE_PERIOD_MS
        board.check_deadlines(now_ms)
        hw.heater.value(1 if board.heater_on(now_ms) else 0)
        hw.motor.duty_u16(board.motor_duty_u16(now_ms))
        hw.led.value(1 if board.status_led_on(now_ms) else 0)
        if now_ms >= next_telemetry_ms:
            board.send_telemetry(now_ms)
            next_telemetry_ms = now_ms + TELEMETRY_PERIOD_MS
        for line in board.take_outbox():
            link.write(line + b"\n")
        clock.sleep_ms(LOOP_PAUSE_MS)
