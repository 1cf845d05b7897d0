"""A simulated mat board: the real firmware loop in a CPython thread behind a pty.

The host opens `SimulatedBoard.port` with pyserial as it would open the
Pico's /dev/ttyACM0, and talks to firmware/runner.py and everything under it,
unchanged, running on simulated pins, a simulated NTC and a first-order
thermal model of the mat. The port is a symlink that `unplug()` removes and
`replug()` points at a fresh pty, as udev does with /dev/serial/by-id links.

Needs firmware/ on sys.path (for `import sim.boardsim` and the firmware's own
modules). CPython only: it uses threads, ptys and the OS clock.
"""

import contextlib
import os
import shutil
import tempfile
import threading
import time
import tty

import runner
import thermistor

PTY_READ_BYTES = 512


class MatModel:
    """First-order thermal model: the heater adds heat, the room takes it away.

    With the defaults the mat warms 3 °C a minute and would settle 25 °C above
    the room, past the trip temperature, as a real heater stuck on would.
    Tests set `temp_c` directly to inject a reading.
    """

    def __init__(self, ambient_c=22.0, heating_c_per_s=0.05, cooling_per_s=0.002):
        self.ambient_c = ambient_c
        self.heating_c_per_s = heating_c_per_s
        self.cooling_per_s = cooling_per_s
        self.temp_c = ambient_c

    def advance(self, heater_on, dt_s):
        gain_c_per_s = self.heating_c_per_s if heater_on else 0.0
        loss_c_per_s = self.cooling_per_s * (self.temp_c - self.ambient_c)
        self.temp_c += (gain_c_per_s - loss_c_per_s) * dt_s


class SimPin:
    """An output pin: remembers its level."""

    def __init__(self):
        self.level = 0

    def value(self, level=None):
        if level is None:
            return self.level
        self.level = 1 if level else 0
        return None


class SimPwm:
    """A PWM output: remembers its duty."""

    def __init__(self):
        self.duty = 0

    def duty_u16(self, duty=None):
        if duty is None:
            return self.duty
        self.duty = duty
        return None


class SimNtcAdc:
    """The NTC's ADC channel: advances the model to now and reads its temperature."""

    def __init__(self, model, heater, ntc):
        self._model = model
        self._heater = heater
        self._ntc = ntc
        self._last_s = time.monotonic()

    def read_u16(self):
        now_s = time.monotonic()
        self._model.advance(self._heater.level == 1, now_s - self._last_s)
        self._last_s = now_s
        return min(max(self._ntc.counts(self._model.temp_c), 0), thermistor.ADC_FULL_SCALE)


class SimWatchdog:
    """Counts feeds; the loop must feed it on every pass."""

    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class SimHardware:
    """The bundle runner.run drives: the same attributes as hardware.Hardware."""

    def __init__(self, model, ntc):
        self.heater = SimPin()
        self.motor = SimPwm()
        self.led = SimPin()
        self.ntc = SimNtcAdc(model, self.heater, ntc)
        self.watchdog = SimWatchdog()

    def all_off(self):
        self.heater.value(0)
        self.motor.duty_u16(0)


class MonotonicClock:
    """MicroPython's ticks functions on CPython's monotonic clock."""

    def ticks_ms(self):
        return int(time.monotonic() * 1000)

    def ticks_diff(self, end, start):
        return end - start

    def sleep_ms(self, ms):
        time.sleep(ms / 1000)


class PtyLink:
    """The board's end of the cable: the pty master, read without blocking.

    While unplugged, reads find nothing and writes go nowhere, as on a UART
    with its cable pulled.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._fd = None
        self.spoke = threading.Event()
        """Set once the board wrote anything (its boot HELLO)."""

    def attach(self, fd):
        with self._lock:
            self._fd = fd

    def detach(self):
        with self._lock:
            self._fd = None

    def read(self):
        with self._lock:
            if self._fd is None:
                return None
            try:
                return os.read(self._fd, PTY_READ_BYTES) or None
            except OSError:  # nothing to read, or no one at the other end
                return None

    def write(self, data):
        with self._lock:
            if self._fd is None:
                return
            with contextlib.suppress(OSError):  # full because no one reads: the bytes are lost
                os.write(self._fd, data)
            self.spoke.set()


class SimulatedBoard:
    """The firmware running in a thread behind a pty whose path is `port`.

    `model` is anything with a `temp_c` attribute and an `advance(heater_on,
    dt_s)` method (MatModel by default); the simulated ADC calls `advance`
    with the SSR's state, then reads `temp_c`, at every conversion. The
    firmware keeps wall-clock time: its 2 s guards are real seconds.

    board = SimulatedBoard(MatModel(heating_c_per_s=2.0))
    board.start()
    link = BoardLink(board.port, 115200, post)   # matpi.drivers.board
    ...
    link.close(); board.stop()
    """

    def __init__(self, model=None, watchdog_reset=False):
        self.model = model or MatModel()
        self.hardware = SimHardware(self.model, thermistor.Ntc())
        self.error = None  # what stopped the firmware loop, if it raised
        self._watchdog_reset = watchdog_reset
        self._link = PtyLink()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulated board", daemon=True)
        self._dir = tempfile.mkdtemp(prefix="matpi-board-")
        self.port = os.path.join(self._dir, "ttyBOARD")
        self._fds = ()
        self.replug()

    def start(self, booted_within_s=5.0):
        """Starts the loop and returns once the board has sent its boot HELLO, so that a host
        connecting next answers its own SYNC, not the boot, as a real board that has been
        powered for a while."""
        self._thread.start()
        self._link.spoke.wait(booted_within_s)
        return self

    def stop(self):
        """Stops the loop (outputs off), closes the pty and removes the port's link."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.unplug()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def unplug(self):
        """Pulls the cable: the host's reads fail and the port path disappears."""
        self._link.detach()
        for fd in self._fds:
            os.close(fd)
        self._fds = ()
        if os.path.lexists(self.port):
            os.unlink(self.port)

    def replug(self):
        """Plugs the cable back in: a fresh pty behind the same port path."""
        self.unplug()
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing: bytes pass as they are
        os.set_blocking(master, False)
        self._fds = (master, slave)  # the slave stays open so the master never reads EIO
        staging = self.port + ".new"
        os.symlink(os.ttyname(slave), staging)
        os.replace(staging, self.port)
        self._link.attach(master)

    def _run(self):
        try:
            runner.run(
                self.hardware,
                self._link,
                MonotonicClock(),
                self._watchdog_reset,
                keep_running=lambda: not self._stop.is_set(),
            )
        except Exception as exc:  # kept for the tests to see; the outputs go off below
            self.error = exc
        finally:
            self.hardware.all_off()
