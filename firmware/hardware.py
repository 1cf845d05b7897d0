"""Binds the board to the RP2040's pins: the only firmware module that knows GPIO numbers.

Valid MicroPython. Each function takes the `machine` module as an argument,
so the tests hand in a fake one. The wiring is drawn in README.md.
"""

import select
import sys

HEATER_SSR_GPIO = 15
MOTOR_PWM_GPIO = 16
STATUS_LED_GPIO = 25  # the Pico's own LED; a Pico W needs an LED on a free GPIO
NTC_ADC_GPIO = 26  # ADC0
MAINTENANCE_GPIO = 22  # jumpered to GND at boot: stay in the REPL, start nothing
UART_ID = 0
UART_TX_GPIO = 0
UART_RX_GPIO = 1
UART_BAUD = 115200
UART_RX_BUFFER_BYTES = 512  # three full frames, so a slow loop pass drops nothing
MOTOR_PWM_HZ = 20000  # above hearing, so the motor does not whine
WATCHDOG_TIMEOUT_MS = 1000  # the loop feeds it every few ms
USB_READ_CHUNK_BYTES = 64


class Hardware:
    """The board's outputs and NTC input, each switched off as it is built."""

    def __init__(self, machine):
        pin = machine.Pin
        self.heater = pin(HEATER_SSR_GPIO, pin.OUT, value=0)
        self.motor = machine.PWM(pin(MOTOR_PWM_GPIO, pin.OUT, value=0))
        self.motor.freq(MOTOR_PWM_HZ)
        self.motor.duty_u16(0)
        self.led = pin(STATUS_LED_GPIO, pin.OUT, value=0)
        self.ntc = machine.ADC(pin(NTC_ADC_GPIO))
        self.watchdog = None

    def start_watchdog(self, machine):
        """Starts the hardware watchdog: from now on a stalled loop resets the board."""
        self.watchdog = machine.WDT(timeout=WATCHDOG_TIMEOUT_MS)

    def all_off(self):
        self.heater.value(0)
        self.motor.duty_u16(0)


def maintenance_requested(machine):
    """True when the maintenance jumper pulls its pin low: mpremote can then work in peace."""
    return machine.Pin(MAINTENANCE_GPIO, machine.Pin.IN, machine.Pin.PULL_UP).value() == 0


def watchdog_caused_reset(machine):
    """True after a watchdog reset (machine.reset() on rp2 counts as one too)."""
    return machine.reset_cause() == machine.WDT_RESET


class UsbLink:
    """The protocol on the USB serial port, polled so the loop never blocks on it."""

    def __init__(self, stdin=None, stdout=None):
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._poll = select.poll()
        self._poll.register(self._stdin, select.POLLIN)

    def read(self):
        data = b""
        while len(data) < USB_READ_CHUNK_BYTES and self._poll.poll(0):
            data += self._stdin.buffer.read(1)
        return data or None

    def write(self, data):
        self._stdout.buffer.write(data)


def open_link(machine, kind):
    """The serial link to the host: "uart" (UART0 on GP0/GP1) or "usb"."""
    if kind == "usb":
        return UsbLink()
    if kind == "uart":
        return machine.UART(
            UART_ID,
            baudrate=UART_BAUD,
            tx=machine.Pin(UART_TX_GPIO),
            rx=machine.Pin(UART_RX_GPIO),
            rxbuf=UART_RX_BUFFER_BYTES,
            timeout=0,
        )
    raise ValueError("link must be 'uart' or 'usb', not " + str(kind))
