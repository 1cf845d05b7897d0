"""Each guard on its own: removing one makes its test fail."""

import guards


def feed(guard, readings_c):
    return [guard.check(temp_c) for temp_c in readings_c]


def test_over_temp_trips_on_three_readings_in_a_row_at_the_trip_temperature():
    assert feed(guards.OverTempGuard(), [44.9, 45.0, 45.0, 45.0]) == [None, None, None, "OVER_TEMP"]


def test_over_temp_ignores_a_single_spike():
    assert feed(guards.OverTempGuard(), [46.0, 30.0, 46.0, 46.0, 30.0]) == [None] * 5


def test_sensor_range_catches_an_open_sensor():
    readings = [4.9, 4.9, float("-inf")]
    assert feed(guards.SensorRangeGuard(), readings) == [None, None, "SENSOR_LOW"]


def test_sensor_range_catches_a_shorted_sensor():
    readings = [60.1, 60.1, float("inf")]
    assert feed(guards.SensorRangeGuard(), readings) == [None, None, "SENSOR_HIGH"]


def test_sensor_range_accepts_its_bounds():
    assert feed(guards.SensorRangeGuard(), [5.0, 5.0, 5.0, 60.0, 60.0, 60.0]) == [None] * 6


def test_one_bad_reading_stops_heat_at_once():
    assert guards.heat_allowed_at(30.0)
    assert not guards.heat_allowed_at(guards.TRIP_C)
    assert not guards.heat_allowed_at(4.9)
    assert not guards.heat_allowed_at(float("inf"))


def test_deadline_expires_after_its_timeout_and_before_any_refresh():
    deadline = guards.Deadline(2000)
    assert deadline.expired(0)
    deadline.refresh(100)
    assert not deadline.expired(2099)
    assert deadline.expired(2100)


def test_fault_latch_keeps_its_first_fault():
    latch = guards.FaultLatch()
    assert latch.latch("OVER_TEMP")
    assert not latch.latch("HOST_SILENT")
    assert latch.code == "OVER_TEMP"


def test_fault_clears_only_when_cool():
    latch = guards.FaultLatch()
    latch.latch("OVER_TEMP")
    assert latch.clear(35.0) == "HOT"
    assert latch.code == "OVER_TEMP"
    assert latch.clear(34.9) is None
    assert latch.code is None


def test_fault_clears_only_with_a_sensor_in_range():
    latch = guards.FaultLatch()
    latch.latch("SENSOR_LOW")
    assert latch.clear(float("-inf")) == "SENSOR"
    assert latch.code == "SENSOR_LOW"
