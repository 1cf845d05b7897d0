"""NTC conversion: the divider midpoint, the inverse the simulator uses, and the rails."""

import thermistor


def test_divider_midpoint_is_25_c():
    ntc = thermistor.Ntc()
    assert abs(ntc.temp_c(32768) - 25.0) < 0.01


def test_counts_and_temperature_are_inverses():
    ntc = thermistor.Ntc()
    for temp_c in (5.0, 20.0, 35.0, 42.0, 45.0, 60.0):
        assert abs(ntc.temp_c(ntc.counts(temp_c)) - temp_c) < 0.05


def test_hotter_reads_lower_because_the_ntc_is_below_the_fixed_resistor():
    ntc = thermistor.Ntc()
    assert ntc.counts(45.0) < ntc.counts(25.0)


def test_open_ntc_reads_minus_infinity_and_shorted_reads_plus_infinity():
    ntc = thermistor.Ntc()
    assert ntc.temp_c(thermistor.ADC_FULL_SCALE) == float("-inf")
    assert ntc.temp_c(0) == float("inf")


def test_oversample_averages_the_conversions():
    samples = [100, 200, 300, 400]
    assert thermistor.oversample(lambda: samples.pop(), 4) == 250
