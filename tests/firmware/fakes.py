"""Stand-ins for the board's pins, link and clock, shared by the firmware tests.

Valid MicroPython: the same tests run under CPython (pytest) and under the
MicroPython unix port (run_micropython.py).
"""

import protocol

VECTORS_PATH = __file__.rsplit("/", 1)[0] + "/../../firmware/protocol_vectors.json"


def load_vectors():
    import json

    with open(VECTORS_PATH) as f:
        return json.load(f)


def raises(exc_type, fn, *args):
    """The exception `fn(*args)` raised; fails the test if it raised none."""
    try:
        fn(*args)
    except exc_type as exc:
        return exc
    raise AssertionError("expected " + exc_type.__name__)


def host_frame(seq, kind, **fields):
    """A host frame as the board receives it (no newline)."""
    return protocol.encode(seq, kind, fields)


def decoded(lines):
    """(kind, fields) of each frame line, for comparing what the board sent."""
    result = []
    for line in lines:
        _seq, kind, fields = protocol.decode(line)
        result.append((kind, fields))
    return result


class FakePin:
    def __init__(self):
        self.level = None
        self.history = []

    def value(self, level=None):
        if level is None:
            return self.level
        self.level = level
        self.history.append(level)
        return None


class FakePwm:
    def __init__(self):
        self.duty = None

    def duty_u16(self, duty):
        self.duty = duty


class FakeAdc:
    def __init__(self, counts):
        self.counts = counts

    def read_u16(self):
        return self.counts


class FakeWatchdog:
    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class FakeHardware:
    """The bundle runner.run drives, with the NTC fixed at `counts`."""

    def __init__(self, counts=32768):
        self.heater = FakePin()
        self.motor = FakePwm()
        self.led = FakePin()
        self.ntc = FakeAdc(counts)
        self.watchdog = FakeWatchdog()


class FakeLink:
    """A UART: `send` queues bytes for the board, `lines` is what it wrote."""

    def __init__(self):
        self._inbox = []
        self.written = b""

    def send(self, data):
        self._inbox.append(data)

    def read(self):
        return self._inbox.pop(0) if self._inbox else None

    def write(self, data):
        self.written += data

    def lines(self):
        return [line for line in self.written.split(b"\n") if line]


class FakeClock:
    """MicroPython's ticks functions; sleeping advances time, nothing waits."""

    def __init__(self, start_ms=0, wrap_ms=None):
        self.now_ms = start_ms
        self._wrap_ms = wrap_ms

    def ticks_ms(self):
        return self.now_ms % self._wrap_ms if self._wrap_ms else self.now_ms

    def ticks_diff(self, end, start):
        if not self._wrap_ms:
            return end - start
        half = self._wrap_ms // 2
        return (end - start + half) % self._wrap_ms - half

    def sleep_ms(self, ms):
        self.now_ms += ms


class Script:
    """A keep_running for runner.run: does `actions` at their times, stops at `until_ms`.

    `actions` is a list of (at_ms, function) in time order.
    """

    def __init__(self, clock, until_ms, actions=()):
        self._clock = clock
        self._until_ms = until_ms
        self._actions = list(actions)

    def __call__(self):
        while self._actions and self._actions[0][0] <= self._clock.now_ms:
            self._actions.pop(0)[1]()
        return self._clock.now_ms < self._until_ms
