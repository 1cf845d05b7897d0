"""Thermal dose, thermostat and the sensor guards, with injected time."""

import pytest

from matpi.core.events import Reading
from matpi.core.supervision import Supervisor
from matpi.core.thermal import DoseMeter, Thermostat, cem43_per_min


@pytest.mark.parametrize(
    ("temp_c", "minutes_to_9"),
    [(40.0, 576.0), (41.0, 144.0), (42.0, 36.0), (43.0, 9.0), (45.0, 2.25)],
)
def test_cem43_matches_the_published_times_to_9(temp_c: float, minutes_to_9: float) -> None:
    assert 9.0 / cem43_per_min(temp_c) == pytest.approx(minutes_to_9)


def test_dose_meter_integrates_measured_temperature() -> None:
    meter = DoseMeter()
    for second in range(0, 601):
        meter.add(43.0, float(second))
    assert meter.total == pytest.approx(10.0)
    assert meter.peak_c == 43.0


def test_dose_meter_does_not_count_a_long_silence_at_full_rate() -> None:
    meter = DoseMeter()
    meter.add(45.0, 0.0)
    meter.add(30.0, 3600.0)
    assert meter.total < 1.0  # at most the stale-fault window is counted


def test_thermostat_hysteresis_and_minimum_times() -> None:
    stat = Thermostat(hysteresis_c=0.5, min_on_s=30.0, min_off_s=60.0)
    assert stat.update(38.0, 39.0, 0.0)
    assert stat.update(39.5, 39.0, 10.0)  # held on: minimum on-time
    assert not stat.update(39.5, 39.0, 30.0)
    assert not stat.update(38.0, 39.0, 60.0)  # held off: minimum off-time
    assert stat.update(38.0, 39.0, 90.0)
    assert stat.update(38.8, 39.0, 200.0)  # inside the band: stays on
    assert not stat.update(39.0, 39.0, 201.0)
    assert not stat.update(38.7, 39.0, 400.0)  # inside the band: stays off


def test_force_off_ignores_the_minimum_on_time() -> None:
    stat = Thermostat(hysteresis_c=0.5, min_on_s=30.0, min_off_s=30.0)
    assert stat.update(30.0, 39.0, 0.0)
    stat.force_off(1.0)
    assert not stat.on


def test_one_outlier_neither_trips_nor_heats() -> None:
    guard = Supervisor(("mat",), trip_c=45.0, now=0.0)
    for t, value in enumerate([39.5, 39.5, 20.0, 39.5, 55.0, 39.5]):
        assert guard.readings((Reading("mat", value),), float(t)) is None
        assert guard.temperature() == 39.5
    assert guard.heat_allowed(6.0)


def test_confirmed_over_temperature_trips() -> None:
    guard = Supervisor(("mat",), trip_c=45.0, now=0.0)
    guard.readings((Reading("mat", 44.0),), 0.0)
    assert guard.readings((Reading("mat", 45.5),), 1.0) is None
    assert not guard.heat_allowed(1.0)  # the raw reading alone switches heat off
    reason = guard.readings((Reading("mat", 45.5),), 2.0)
    assert reason is not None and "45.5" in reason and "45" in reason


def test_sensors_read_together_are_compared_once_both_are_in() -> None:
    """Both sensors jump 10 °C together: compared one by one, the first one's new median
    would be set against the other's old one and latch "sensors disagree"."""
    guard = Supervisor(("a", "b"), trip_c=45.0, now=0.0)
    for t, value in enumerate([30.0, 30.0, 30.0, 40.0, 40.0, 40.0]):
        batch = (Reading("a", value), Reading("b", value))
        assert guard.readings(batch, float(t)) is None, t
    assert guard.readings((Reading("a", 40.0), Reading("b", 30.0)), 6.0) is None  # median
    reason = guard.readings((Reading("a", 40.0), Reading("b", 30.0)), 7.0)
    assert reason is not None and "disagree" in reason


def test_every_sensor_must_be_fresh_and_the_hotter_rules() -> None:
    guard = Supervisor(("a", "b"), trip_c=45.0, now=0.0)
    guard.readings((Reading("a", 36.0),), 0.0)
    assert not guard.heat_allowed(0.0)  # b never spoke
    guard.readings((Reading("b", 38.0),), 0.5)
    assert guard.heat_allowed(1.0)
    assert guard.temperature() == 38.0
    guard.readings((Reading("a", 36.0),), 3.0)
    assert guard.temperature() == 38.0  # the hotter, not the latest
    assert not guard.heat_allowed(3.5)  # b is 3 s old
    assert guard.check(10.4) is None
    assert guard.check(10.6) == "sensor b: no valid reading for 10 s"


def test_out_of_range_latches_after_three_in_a_row() -> None:
    guard = Supervisor(("mat",), trip_c=45.0, now=0.0)
    guard.readings((Reading("mat", 30.0),), 0.0)
    assert guard.readings((Reading("mat", 2.0),), 1.0) is None
    assert not guard.heat_allowed(1.0)
    assert guard.readings((Reading("mat", 2.0),), 2.0) is None
    reason = guard.readings((Reading("mat", 2.0),), 3.0)
    assert reason == "sensor mat: 2.0 °C is out of range"
