"""DS18B20 parsing against sample sysfs files; NTC conversion against the datasheet formulas."""

import itertools
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockSPIDevice

from conftest import wait_for
from matpi.core.errors import DriverError
from matpi.core.events import Reading
from matpi.drivers.board import BoardThermometer
from matpi.drivers.clock import Clock
from matpi.drivers.polling import ThermometerPoller
from matpi.drivers.sim import SimThermometer
from matpi.drivers.thermometers import (
    DS18B20,
    KELVIN_AT_0C,
    MCP3008_FULL_SCALE,
    NtcOutOfRangeError,
    NtcThermistor,
    W1CrcError,
    W1FormatError,
    W1PowerOnResetError,
    beta_celsius,
    divider_resistance_ohm,
    parse_w1_slave,
    steinhart_hart_celsius,
)

W1_DIR = Path(__file__).parent / "data" / "w1"
GOOD = "28-00000a000001"  # 23.125 °C
CRC_FAILED = "28-00000a000002"
POWER_ON_RESET = "28-00000a000003"  # 85.000 °C
NEGATIVE = "28-00000a000004"  # -10.125 °C
TRUNCATED = "28-00000a000005"
ALL_ZERO = "28-00000a000006"  # data line held low: a "valid" 0 °C
MISSING = "28-00000a0000ff"


def w1_slave(device_id: str) -> str:
    return (W1_DIR / device_id / "w1_slave").read_text()


# --- DS18B20 ----------------------------------------------------------------


def test_parse_good_and_negative_readings() -> None:
    assert parse_w1_slave(w1_slave(GOOD)) == 23.125
    assert parse_w1_slave(w1_slave(NEGATIVE)) == -10.125


@pytest.mark.parametrize(
    ("device_id", "error", "message"),
    [
        (CRC_FAILED, W1CrcError, "CRC check failed"),
        (POWER_ON_RESET, W1PowerOnResetError, "power-on reset value"),
        (TRUNCATED, W1FormatError, "expected 2 lines, got 1"),
        (ALL_ZERO, W1FormatError, "all-zero"),
    ],
)
def test_parse_rejects_sample_files(device_id: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_w1_slave(w1_slave(device_id))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected 2 lines, got 0"),
        ("72 01 : crc=57 MAYBE\n72 01 t=23125\n", "does not end in YES or NO"),
        ("72 01 : crc=57 YES\n72 01 t=\n", "no t=<millidegrees>"),
        ("72 01 : crc=57 YES\n72 01 t=23.1\n", "no t=<millidegrees>"),
        ("72 01 : crc=57 YES\n72 01 23125\n", "no t=<millidegrees>"),
        ("72 01 crc=57 YES\n72 01 t=23125\n", "missing scratchpad"),
        ("ff 07 : crc=10 YES\nff 07 t=127937\n", "outside the DS18B20's range"),
    ],
)
def test_parse_rejects_malformed_text(text: str, message: str) -> None:
    with pytest.raises(W1FormatError, match=message):
        parse_w1_slave(text)


def test_only_exactly_85_degrees_is_the_reset_value() -> None:
    assert parse_w1_slave("50 05 : crc=1c YES\n50 05 t=84937\n") == 84.937
    assert parse_w1_slave("51 05 : crc=1c YES\n51 05 t=85062\n") == 85.062


def test_parse_errors_are_driver_errors_and_value_errors() -> None:
    with pytest.raises(DriverError):
        parse_w1_slave(w1_slave(CRC_FAILED))
    with pytest.raises(ValueError):
        parse_w1_slave(w1_slave(CRC_FAILED))


def test_ds18b20_reads_a_good_sensor() -> None:
    sensor = DS18B20(GOOD, name="mat", base_dir=W1_DIR)
    assert sensor.read() == Reading(sensor="mat", value_c=23.125, error=None)
    sensor.close()


@pytest.mark.parametrize(
    ("device_id", "message"),
    [
        (CRC_FAILED, "CRC check failed"),
        (POWER_ON_RESET, "no conversion happened"),
        (TRUNCATED, "expected 2 lines"),
        (ALL_ZERO, "data line held low"),
    ],
)
def test_ds18b20_turns_bad_data_into_an_error_reading(device_id: str, message: str) -> None:
    reading = DS18B20(device_id, name="pillow", base_dir=W1_DIR).read()
    assert reading.sensor == "pillow"
    assert reading.value_c is None
    assert reading.error is not None
    assert reading.error.startswith(f"DS18B20 {device_id}: ")
    assert message in reading.error


def test_ds18b20_missing_device_names_it_and_says_what_to_check() -> None:
    reading = DS18B20(MISSING, base_dir=W1_DIR).read()
    assert reading.value_c is None
    assert reading.error is not None
    assert MISSING in reading.error
    assert "wiring" in reading.error
    assert "w1-gpio overlay" in reading.error


def test_ds18b20_unreadable_file_is_an_error_reading(tmp_path: Path) -> None:
    (tmp_path / GOOD / "w1_slave").mkdir(parents=True)  # a directory where the file should be
    reading = DS18B20(GOOD, base_dir=tmp_path).read()
    assert reading.value_c is None
    assert reading.error is not None


@pytest.mark.parametrize("device_id", ["../../etc", "28-00000A00000", "w1_bus_master1", ""])
def test_ds18b20_rejects_a_device_id_that_is_not_one(device_id: str) -> None:
    with pytest.raises(DriverError, match="is not like 28-0316a2794a3b"):
        DS18B20(device_id, base_dir=W1_DIR)


# --- NTC conversion ---------------------------------------------------------

BETA = 3950.0
R25_OHM = 10_000.0
SERIES_OHM = 10_000.0
# Steinhart-Hart coefficients often published for a 10 kΩ NTC.
SH_A, SH_B, SH_C = 1.009249522e-3, 2.378405444e-4, 2.019202697e-7
TABLE_C = [-20.0, 0.0, 10.0, 25.0, 30.0, 37.0, 40.0, 42.0, 45.0, 60.0, 85.0, 100.0]


def beta_resistance_ohm(temperature_c: float) -> float:
    """Datasheet form of the beta equation: R = R25 * exp(B * (1/T - 1/T25))."""
    kelvin = temperature_c + 273.15
    return R25_OHM * math.exp(BETA * (1 / kelvin - 1 / 298.15))


def steinhart_hart_resistance_ohm(temperature_c: float) -> float:
    """The inverse of Steinhart-Hart, solved for R (the cubic's real root)."""
    x = (SH_A - 1 / (temperature_c + 273.15)) / SH_C
    y = math.sqrt((SH_B / (3 * SH_C)) ** 3 + x**2 / 4)
    return math.exp(math.cbrt(y - x / 2) - math.cbrt(y + x / 2))


def divider_ratio(resistance_ohm: float, *, thermistor_to_ground: bool) -> float:
    if thermistor_to_ground:
        return resistance_ohm / (SERIES_OHM + resistance_ohm)
    return SERIES_OHM / (SERIES_OHM + resistance_ohm)


def test_10k_3950_at_25_degrees_is_exactly_10_kiloohm() -> None:
    assert divider_resistance_ohm(0.5, SERIES_OHM) == 10_000.0
    assert beta_celsius(10_000.0, beta=BETA, r25_ohm=R25_OHM) == pytest.approx(25.0, abs=1e-9)
    assert beta_resistance_ohm(25.0) == pytest.approx(10_000.0)


@pytest.mark.parametrize("temperature_c", TABLE_C)
@pytest.mark.parametrize("thermistor_to_ground", [True, False])
def test_beta_equation_against_the_table(temperature_c: float, thermistor_to_ground: bool) -> None:
    ratio = divider_ratio(
        beta_resistance_ohm(temperature_c), thermistor_to_ground=thermistor_to_ground
    )
    resistance_ohm = divider_resistance_ohm(
        ratio, SERIES_OHM, thermistor_to_ground=thermistor_to_ground
    )
    assert beta_celsius(resistance_ohm, beta=BETA, r25_ohm=R25_OHM) == pytest.approx(
        temperature_c, abs=0.1
    )


def test_beta_table_matches_known_points_of_a_10k_3950_part() -> None:
    # Resistances of a 10 kΩ, B = 3950 K NTC by the datasheet equation.
    assert beta_resistance_ohm(0.0) == pytest.approx(33_621, rel=1e-3)
    assert beta_resistance_ohm(50.0) == pytest.approx(3_588, rel=1e-3)
    assert beta_celsius(33_621, beta=BETA, r25_ohm=R25_OHM) == pytest.approx(0.0, abs=0.1)
    assert beta_celsius(3_588, beta=BETA, r25_ohm=R25_OHM) == pytest.approx(50.0, abs=0.1)


@pytest.mark.parametrize("temperature_c", TABLE_C)
def test_steinhart_hart_against_the_table(temperature_c: float) -> None:
    resistance_ohm = steinhart_hart_resistance_ohm(temperature_c)
    assert steinhart_hart_celsius(resistance_ohm, SH_A, SH_B, SH_C) == pytest.approx(
        temperature_c, abs=0.1
    )


def test_steinhart_hart_formula_at_one_point_by_hand() -> None:
    ln_r = math.log(10_000.0)
    expected_c = 1 / (SH_A + SH_B * ln_r + SH_C * ln_r**3) - KELVIN_AT_0C
    assert steinhart_hart_celsius(10_000.0, SH_A, SH_B, SH_C) == pytest.approx(expected_c)
    assert expected_c == pytest.approx(24.7, abs=0.1)


@pytest.mark.parametrize(
    ("ratio", "thermistor_to_ground", "fault"),
    [
        (1.0, True, "open"),
        (0.0, True, "shorted"),
        (0.0, False, "open"),
        (1.0, False, "shorted"),
        (1 / MCP3008_FULL_SCALE, True, "shorted"),
        (1022 / MCP3008_FULL_SCALE, True, "open"),
        (1.2, True, "open"),
        (-0.1, True, "shorted"),
    ],
)
def test_ratio_at_a_rail_is_open_or_shorted(
    ratio: float, thermistor_to_ground: bool, fault: str
) -> None:
    with pytest.raises(NtcOutOfRangeError, match=fault):
        divider_resistance_ohm(ratio, SERIES_OHM, thermistor_to_ground=thermistor_to_ground)


def test_nan_ratio_is_out_of_range() -> None:
    with pytest.raises(NtcOutOfRangeError, match="no number"):
        divider_resistance_ohm(math.nan, SERIES_OHM)


# --- NtcThermistor ----------------------------------------------------------


def ntc(ratios: list[float], **options: Any) -> NtcThermistor:
    samples = itertools.cycle(ratios)
    return NtcThermistor(0, read_ratio=lambda: next(samples), **options)


def test_ntc_reads_25_degrees_at_half_scale() -> None:
    reading = ntc([0.5], name="mat").read()
    assert reading.sensor == "mat"
    assert reading.error is None
    assert reading.value_c == pytest.approx(25.0, abs=1e-9)


def test_ntc_oversamples_and_averages() -> None:
    low, high = (divider_ratio(beta_resistance_ohm(t), thermistor_to_ground=True) for t in (40, 42))
    reading = ntc([low, high], oversample=8).read()
    assert reading.value_c == pytest.approx(41.0, abs=0.1)


def test_ntc_with_steinhart_hart_and_thermistor_to_the_reference() -> None:
    ratio = divider_ratio(steinhart_hart_resistance_ohm(38.0), thermistor_to_ground=False)
    sensor = ntc([ratio], steinhart_hart=(SH_A, SH_B, SH_C), thermistor_to_ground=False)
    assert sensor.read().value_c == pytest.approx(38.0, abs=0.1)


@pytest.mark.parametrize(("ratios", "fault"), [([1.0], "open"), ([0.0], "shorted")])
def test_ntc_open_or_shorted_is_an_error_reading(ratios: list[float], fault: str) -> None:
    reading = ntc(ratios, name="mat").read()
    assert reading.value_c is None
    assert reading.error is not None
    assert reading.error.startswith("NTC 'mat' on MCP3008 channel 0: ")
    assert fault in reading.error


def test_ntc_one_sample_at_a_rail_fails_the_reading() -> None:
    assert ntc([0.5, 0.5, 0.5, 1.0], oversample=4).read().value_c is None


def test_ntc_adc_failure_is_an_error_reading_never_a_raise() -> None:
    def broken() -> float:
        raise OSError("SPI transfer failed")

    reading = NtcThermistor(0, read_ratio=broken).read()
    assert reading.value_c is None
    assert reading.error is not None
    assert "SPI transfer failed" in reading.error


def test_ntc_closed_reads_as_an_error() -> None:
    sensor = ntc([0.5])
    sensor.close()
    sensor.close()
    assert sensor.read().error == "NTC 'mat' on MCP3008 channel 0: closed"


@pytest.mark.parametrize(
    ("channel", "options", "message"),
    [
        (8, {}, "channels 0 to 7"),
        (0, {"beta": 0.0}, "must be above 0"),
        (0, {"series_ohm": -1.0}, "must be above 0"),
        (0, {"oversample": 0}, "oversample at least 1"),
    ],
)
def test_ntc_rejects_bad_options(channel: int, options: dict[str, Any], message: str) -> None:
    with pytest.raises(DriverError, match=message):
        NtcThermistor(channel, read_ratio=lambda: 0.5, **options)


class FakeMcp3008(MockSPIDevice):  # type: ignore[misc]
    """The ADC's side of a single-ended MCP3008 conversion on gpiozero's mock SPI pins."""

    rx_buf: list[int]

    def __init__(self, counts: list[int], pin_factory: Any) -> None:
        # SPI0 CE0: SCLK 11, MOSI 10, MISO 9, CE0 8.
        super().__init__(11, 10, 9, 8, pin_factory=pin_factory)
        self.counts = counts
        self.started = False

    def on_start(self) -> None:
        super().on_start()
        self.started = False

    def on_bit(self) -> None:
        if not self.started:
            self.started = self.rx_buf[-1] == 1  # the start bit
            self.rx_buf = []
        elif len(self.rx_buf) == 4:  # single-ended bit, then three channel bits
            channel = self.rx_word() & 0b111
            self.tx_word(self.counts[channel], 12)  # a null bit leads the 10-bit result


@pytest.fixture
def spi_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    factory = MockFactory()
    # gpiozero's software SPI bus looks up the global default factory even when
    # it is given one; point it at the mock so no real pin library is loaded.
    monkeypatch.setattr(Device, "pin_factory", factory)
    yield factory
    factory.close()


def test_ntc_through_a_mock_mcp3008(spi_factory: Any) -> None:
    counts = [512, 0, 1023, 0, 0, 0, 0, 0]
    adc = FakeMcp3008(counts, spi_factory)
    good = NtcThermistor(0, pin_factory=spi_factory)
    expected_c = beta_celsius(
        divider_resistance_ohm(512 / 1023, SERIES_OHM), beta=BETA, r25_ohm=R25_OHM
    )
    reading = good.read()
    assert reading.error is None
    assert reading.value_c == pytest.approx(expected_c)
    good.close()
    shorted = NtcThermistor(1, name="pillow", pin_factory=spi_factory)
    assert "shorted" in (shorted.read().error or "")
    shorted.close()
    opened = NtcThermistor(2, pin_factory=spi_factory)
    assert "open" in (opened.read().error or "")
    opened.close()
    adc.close()


# --- the poller ---------------------------------------------------------------


def test_a_sensor_that_waits_on_the_hardware_is_never_read_on_the_controllers_thread() -> None:
    """`reads_at_once` puts a read on the controller's thread (see drivers/polling.py): a
    DS18B20 converts for 750 ms and an NTC waits on SPI, so theirs must be False; the
    simulator's model and the mat board's kept telemetry answer from memory."""
    assert DS18B20.reads_at_once is False
    assert NtcThermistor.reads_at_once is False
    assert SimThermometer.reads_at_once is True
    assert BoardThermometer.reads_at_once is True



class SlowThermometer:
    """Takes longer to read than the poller's interval, as two 1-wire reads can."""

    name = "slow"
    reads_at_once = False

    def read(self) -> Reading:
        time.sleep(0.03)
        return Reading(self.name, 30.0)

    def close(self) -> None:
        pass


def test_a_poll_slower_than_its_interval_polls_again_at_once_and_close_ends_it() -> None:
    posted: list[Reading] = []
    poller = ThermometerPoller([SlowThermometer()], posted.append, Clock(), interval_s=0.01)
    poller.start()
    try:
        wait_for(lambda: len(posted) >= 5, timeout_s=5.0, what="five polls")
    finally:
        closed_at = time.monotonic()
        poller.close()
    assert time.monotonic() - closed_at < 1.0
    count = len(posted)
    time.sleep(0.1)
    assert len(posted) == count


def test_a_poller_never_started_closes_twice() -> None:
    """A start that failed before the poller's closes it, and so does the clean stop after."""
    poller = ThermometerPoller([SlowThermometer()], [].append, Clock(), interval_s=1.0)
    poller.close()
    poller.close()
