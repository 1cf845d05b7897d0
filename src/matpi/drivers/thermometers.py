"""Temperature sensors: a DS18B20 on the 1-wire bus, an NTC thermistor through an MCP3008.

Both turn every failure of the sensor into a Reading with no value and the
reason, so a broken sensor reaches the thermal guard as a fault instead of a
crash. A failure of this process instead (no file descriptor or memory left,
as a flood of connections to the page can cause) raises `SensorUnreadable`:
the poller then posts nothing, which the core treats as a stale reading (heat
off at 3 s, a fault only if it lasts 10 s). The conversions are pure
functions, tested against the datasheet formulas.
"""

import errno
import math
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpiozero import MCP3008
from gpiozero.pins import Factory

from matpi.core.errors import DriverError
from matpi.core.events import Reading
from matpi.drivers.base import SensorUnreadable
from matpi.drivers.gpio import build_device

W1_DEVICES = Path("/sys/bus/w1/devices")
W1_POWER_ON_RESET_MC = 85_000
"""What a DS18B20 reports when it was reset and never converted: not a temperature."""
DS18B20_MIN_C = -55.0
DS18B20_MAX_C = 125.0

KELVIN_AT_0C = 273.15
KELVIN_AT_25C = KELVIN_AT_0C + 25.0
MCP3008_FULL_SCALE = 1023
ADC_RAIL_MARGIN = 2 / MCP3008_FULL_SCALE
"""Ratios within two counts of 0 or 1 mean a thermistor that is open or shorted."""

_W1_DEVICE_ID = re.compile(r"[0-9a-f]{2}-[0-9a-f]{12}")


OPEN_SHORTAGES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM})
"""What opening the sensor's file can fail with for want of this process's resources, not
for anything of the sensor: out of file descriptors (the process's, the system's) or
memory. A read that fails is the sensor's, always."""


class SensorReadError(DriverError, ValueError):
    """A sensor answered, but not with a temperature that can be trusted."""


class W1CrcError(SensorReadError):
    """The kernel's CRC check of the DS18B20 scratchpad failed (noise, long wire)."""


class W1PowerOnResetError(SensorReadError):
    """The DS18B20 reported 85 °C, its reset value: the conversion did not happen."""


class W1FormatError(SensorReadError):
    """The w1_slave text is not what the kernel's w1_therm driver writes."""


class NtcOutOfRangeError(SensorReadError):
    """The divider sits at a rail: the thermistor is open or shorted."""


def parse_w1_slave(text: str) -> float:
    """Temperature in °C from the text of a DS18B20's w1_slave file.

    Args:
        text: two lines, e.g. "72 01 ... : crc=57 YES" and "72 01 ... t=23125".

    Returns:
        The temperature in °C (the file holds millidegrees).

    Raises:
        W1CrcError: the first line ends in NO.
        W1PowerOnResetError: exactly 85 °C, the value of a sensor that never converted.
        W1FormatError: anything else unexpected, including an all-zero scratchpad
            (the data line held low reads as a valid 0 °C) and values outside -55..125 °C.
    """
    lines = text.strip().splitlines()
    if len(lines) != 2:
        raise W1FormatError(f"expected 2 lines, got {len(lines)}: {text!r}")
    crc_line, data_line = (line.strip() for line in lines)
    if crc_line.endswith("NO"):
        raise W1CrcError(f"CRC check failed: {crc_line!r}")
    if not crc_line.endswith("YES"):
        raise W1FormatError(f"first line does not end in YES or NO: {crc_line!r}")
    scratchpad, marker, _ = crc_line.partition(":")
    if not marker or all(byte == "00" for byte in scratchpad.split()):
        raise W1FormatError(f"all-zero or missing scratchpad, data line held low? {crc_line!r}")
    _, marker, millidegrees = data_line.rpartition("t=")
    if not marker or not re.fullmatch(r"-?[0-9]+", millidegrees):
        raise W1FormatError(f"no t=<millidegrees> in {data_line!r}")
    value_mc = int(millidegrees)
    if value_mc == W1_POWER_ON_RESET_MC:
        raise W1PowerOnResetError("85.0 °C is the power-on reset value: no conversion happened")
    value_c = value_mc / 1000
    if not DS18B20_MIN_C <= value_c <= DS18B20_MAX_C:
        raise W1FormatError(f"{value_c} °C is outside the DS18B20's range -55..125 °C")
    return value_c


class DS18B20:
    """A DS18B20 read through the kernel's 1-wire driver (sysfs).

    Wire data to GPIO4 with a 4.7 kΩ pull-up to 3.3 V and enable the overlay
    (dtoverlay=w1-gpio in /boot/firmware/config.txt). read() blocks for the
    conversion, about 750 ms, and never raises.

        sensor = DS18B20("28-0316a2794a3b", name="mat")
        reading = sensor.read()
        reading.value_c
    """

    reads_at_once = False  # each read waits for a 750 ms conversion

    def __init__(self, device_id: str, *, name: str = "mat", base_dir: Path = W1_DEVICES) -> None:
        if not _W1_DEVICE_ID.fullmatch(device_id):
            raise DriverError(
                f"DS18B20 {name!r}: device id {device_id!r} is not like 28-0316a2794a3b "
                f"(see the names in {base_dir})"
            )
        self.name = name
        self.device_id = device_id
        self._path = base_dir / device_id / "w1_slave"
        self._fd: int | None = None
        self._closed = False
        self._lock = threading.Lock()
        """read() and close() may come from two threads (the poller, the shutdown)."""

    def read(self) -> Reading:
        """Raises SensorUnreadable only when the file cannot be opened for want of this
        process's resources (see the module docstring); every fault of the sensor is a
        Reading with its reason."""
        with self._lock:
            if self._closed:
                return self._failed("closed")
            try:
                text = os.pread(self._open(), 4096, 0).decode("ascii")
                return Reading(self.name, parse_w1_slave(text))
            except FileNotFoundError:
                self._release()
                return self._failed(
                    f"not found at {self._path}: check its wiring (data, 3.3 V, GND, 4.7 kΩ "
                    "pull-up) and that the w1-gpio overlay is enabled"
                )
            except SensorUnreadable:
                raise  # not the sensor's failure: the poller skips this reading
            except OSError as exc:
                self._release()
                return self._failed(str(exc))
            except ValueError as exc:
                return self._failed(str(exc))

    def _open(self) -> int:
        """The w1_slave file, kept open between reads so that a reading needs no free
        descriptor; opened again when the kernel made a new one (sensor replugged)."""
        current = os.stat(self._path)  # FileNotFoundError when the sensor is gone
        if self._fd is not None:
            held = os.fstat(self._fd)
            if (held.st_ino, held.st_dev) != (current.st_ino, current.st_dev):
                self._release()
        if self._fd is None:
            try:
                self._fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno in OPEN_SHORTAGES:
                    raise SensorUnreadable(f"DS18B20 {self.device_id}: {exc}") from exc
                raise
        return self._fd

    def _failed(self, why: str) -> Reading:
        return Reading(self.name, None, f"DS18B20 {self.device_id}: {why}")

    def _release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def close(self) -> None:
        """Closes the w1_slave file for good; the kernel owns the 1-wire bus."""
        with self._lock:
            self._closed = True
            self._release()


def divider_resistance_ohm(
    ratio: float, series_ohm: float, *, thermistor_to_ground: bool = True
) -> float:
    """The thermistor's resistance from the ADC reading of its voltage divider.

    Args:
        ratio: ADC voltage over reference voltage, 0..1.
        series_ohm: the fixed resistor of the divider.
        thermistor_to_ground: True when the thermistor sits between the ADC
            input and ground and the series resistor goes to the reference.

    Raises:
        NtcOutOfRangeError: ratio within ADC_RAIL_MARGIN of 0 or 1 (or not a number).
    """
    if not ADC_RAIL_MARGIN < ratio < 1 - ADC_RAIL_MARGIN:
        if math.isnan(ratio):
            raise NtcOutOfRangeError("the ADC gave no number")
        open_circuit = (ratio > 0.5) == thermistor_to_ground
        fault = "open (disconnected)" if open_circuit else "shorted"
        raise NtcOutOfRangeError(f"ADC ratio {ratio:.4f} is at the rail: thermistor {fault}")
    if thermistor_to_ground:
        return series_ohm * ratio / (1 - ratio)
    return series_ohm * (1 - ratio) / ratio


def beta_celsius(resistance_ohm: float, *, beta: float, r25_ohm: float) -> float:
    """°C from an NTC's resistance by the beta equation: 1/T = 1/T25 + ln(R/R25)/beta."""
    return 1 / (1 / KELVIN_AT_25C + math.log(resistance_ohm / r25_ohm) / beta) - KELVIN_AT_0C


def steinhart_hart_celsius(resistance_ohm: float, a: float, b: float, c: float) -> float:
    """°C from an NTC's resistance by Steinhart-Hart: 1/T = a + b ln R + c (ln R)^3."""
    ln_r = math.log(resistance_ohm)
    return 1 / (a + b * ln_r + c * ln_r**3) - KELVIN_AT_0C


class NtcThermistor:
    """An NTC thermistor in a voltage divider, read by one channel of an MCP3008.

    Feed the divider and the MCP3008's VREF from the same 3.3 V so the ratio
    does not depend on the supply. An open or shorted thermistor, or an SPI
    failure, comes back as a Reading with an error; read() never raises.

        sensor = NtcThermistor(0, beta=3950.0, series_ohm=10_000.0)
        reading = sensor.read()
        reading.value_c
    """

    reads_at_once = False  # an SPI transfer, in software when gpiozero finds no SPI bus

    def __init__(
        self,
        channel: int,
        *,
        name: str = "mat",
        beta: float = 3950.0,
        r25_ohm: float = 10_000.0,
        series_ohm: float = 10_000.0,
        steinhart_hart: tuple[float, float, float] | None = None,
        thermistor_to_ground: bool = True,
        oversample: int = 8,
        spi_port: int = 0,
        spi_device: int = 0,
        read_ratio: Callable[[], float] | None = None,
        pin_factory: Factory | None = None,
    ) -> None:
        where = f"NTC {name!r} on MCP3008 channel {channel}"
        if not 0 <= channel <= 7:
            raise DriverError(f"{where}: the MCP3008 has channels 0 to 7")
        if not (beta > 0 and r25_ohm > 0 and series_ohm > 0 and oversample >= 1):
            raise DriverError(
                f"{where}: beta, r25_ohm and series_ohm must be above 0 and oversample at "
                f"least 1 (beta={beta}, r25_ohm={r25_ohm}, series_ohm={series_ohm}, "
                f"oversample={oversample})"
            )
        self.name = name
        self._where = where
        self._beta = beta
        self._r25_ohm = r25_ohm
        self._series_ohm = series_ohm
        self._steinhart_hart = steinhart_hart
        self._thermistor_to_ground = thermistor_to_ground
        self._oversample = oversample
        self._adc: Any = None
        if read_ratio is None:
            self._adc = build_device(
                where,
                f"SPI{spi_port}.{spi_device}",
                lambda: MCP3008(
                    channel=channel,
                    differential=False,
                    port=spi_port,
                    device=spi_device,
                    pin_factory=pin_factory,
                ),
            )
            read_ratio = self._read_adc_ratio
        self._read_ratio = read_ratio
        self._closed = False

    def _read_adc_ratio(self) -> float:
        return float(self._adc.raw_value) / MCP3008_FULL_SCALE

    def celsius(self, ratio: float) -> float:
        """°C for one ADC ratio with this sensor's wiring and curve; raises NtcOutOfRangeError."""
        resistance_ohm = divider_resistance_ohm(
            ratio, self._series_ohm, thermistor_to_ground=self._thermistor_to_ground
        )
        if self._steinhart_hart is not None:
            return steinhart_hart_celsius(resistance_ohm, *self._steinhart_hart)
        return beta_celsius(resistance_ohm, beta=self._beta, r25_ohm=self._r25_ohm)

    def read(self) -> Reading:
        """The mean of `oversample` samples; one sample at a rail fails the whole reading."""
        if self._closed:
            return Reading(self.name, None, f"{self._where}: closed")
        try:
            values_c = [self.celsius(self._read_ratio()) for _ in range(self._oversample)]
            return Reading(self.name, sum(values_c) / len(values_c))
        except Exception as exc:  # SPI and gpiozero errors included: a Reading, never a raise
            return Reading(self.name, None, f"{self._where}: {exc}")

    def close(self) -> None:
        self._closed = True
        adc, self._adc = self._adc, None
        if adc is not None:
            adc.close()
