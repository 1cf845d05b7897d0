"""NTC thermistor on a voltage divider, read through the RP2040 ADC.

Pure and valid MicroPython. Wiring: 3V3 -> fixed resistor -> ADC0 -> NTC -> GND,
with the ADC referenced to the same 3V3, so the reading is a ratio and the
supply voltage cancels out. An open NTC reads as bitter cold and a shorted one
as scorching, which is what lets the range guard catch both.
"""

import math

ADC_FULL_SCALE = 65535  # read_u16() at the top rail
OVERSAMPLE = 16  # ADC conversions averaged into one reading
KELVIN_AT_0C = 273.15
_INFINITY = float("inf")  # math.inf is missing from smaller MicroPython builds


class Ntc:
    """A beta-model NTC (default 10 kOhm at 25 °C, B = 3950) below a fixed resistor."""

    def __init__(self, fixed_ohm=10000.0, r25_ohm=10000.0, beta_k=3950.0):
        self.fixed_ohm = fixed_ohm
        self.r25_ohm = r25_ohm
        self.beta_k = beta_k

    def temp_c(self, counts):
        """Temperature for an ADC reading; -inf for an open NTC, +inf for a shorted one."""
        if counts >= ADC_FULL_SCALE:
            return -_INFINITY
        if counts <= 0:
            return _INFINITY
        ratio = counts / ADC_FULL_SCALE
        ntc_ohm = self.fixed_ohm * ratio / (1.0 - ratio)
        inverse_k = 1.0 / (25.0 + KELVIN_AT_0C) + math.log(ntc_ohm / self.r25_ohm) / self.beta_k
        return 1.0 / inverse_k - KELVIN_AT_0C

    def counts(self, temp_c):
        """The ADC reading this NTC gives at `temp_c`: what a simulated board feeds back."""
        inverse_k = 1.0 / (temp_c + KELVIN_AT_0C) - 1.0 / (25.0 + KELVIN_AT_0C)
        ntc_ohm = self.r25_ohm * math.exp(self.beta_k * inverse_k)
        return round(ADC_FULL_SCALE * ntc_ohm / (self.fixed_ohm + ntc_ohm))


def oversample(read_u16, samples=OVERSAMPLE):
    """Mean of `samples` conversions: the RP2040 ADC is noisy by a few LSB."""
    total = 0
    for _ in range(samples):
        total += read_u16()
    return total // samples
