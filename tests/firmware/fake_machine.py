"""A stand-in for MicroPython's `machine` on the RP2040 that records what is done with it.

Valid MicroPython. `events` lists every call in order, so tests can check,
say, that the heater pin was driven low before the watchdog started.
"""

PWRON_RESET = 1
WDT_RESET = 3

events = []
uart_input = []
_settings = {"reset_cause": PWRON_RESET, "grounded_pins": (), "adc_counts": 32768}


def reset(cause=PWRON_RESET, grounded_pins=(), adc_counts=32768):
    """Back to a freshly powered board."""
    del events[:]
    del uart_input[:]
    _settings["reset_cause"] = cause
    _settings["grounded_pins"] = grounded_pins
    _settings["adc_counts"] = adc_counts


def reset_cause():
    return _settings["reset_cause"]


def last(kind, pin_id):
    """The last value written by `kind` ("pin" or "pwm") to `pin_id`, or None."""
    values = [e[2] for e in events if e[0] == kind and e[1] == pin_id]
    return values[-1] if values else None


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1

    def __init__(self, pin_id, mode=-1, pull=-1, value=None):
        self.id = pin_id
        self.mode = mode
        events.append(("pin.init", pin_id, mode))
        if value is not None:
            self.value(value)

    def value(self, level=None):
        if level is None:
            return 0 if self.id in _settings["grounded_pins"] else 1
        events.append(("pin", self.id, level))
        return None


class PWM:
    def __init__(self, pin):
        self.pin = pin

    def freq(self, hz):
        events.append(("pwm.freq", self.pin.id, hz))

    def duty_u16(self, duty):
        events.append(("pwm", self.pin.id, duty))


class ADC:
    def __init__(self, pin):
        events.append(("adc.init", pin.id, None))

    def read_u16(self):
        return _settings["adc_counts"]


class WDT:
    def __init__(self, id=0, timeout=5000):
        events.append(("wdt.init", None, timeout))

    def feed(self):
        events.append(("wdt.feed", None, None))


class UART:
    def __init__(self, uart_id, baudrate=9600, tx=None, rx=None, rxbuf=256, timeout=0):
        events.append(("uart.init", uart_id, (baudrate, tx.id, rx.id)))

    def read(self):
        return uart_input.pop(0) if uart_input else None

    def write(self, data):
        events.append(("uart.write", None, data))
