"""The simulated mat behaves like the pad it stands in for."""

from matpi.core.events import Led
from matpi.drivers.clock import Clock
from matpi.drivers.sim import SimFault, SimulatedMat


class HandClock(Clock):
    """A Clock whose time moves only when the test says so."""

    def __init__(self) -> None:
        self.t = 0.0
        super().__init__(monotonic=lambda: self.t, wall=lambda: 1_700_000_000.0 + self.t)


def test_heater_warms_the_pad_to_39_in_about_six_minutes() -> None:
    clock = HandClock()
    mat = SimulatedMat(clock)
    drivers = mat.drivers()
    drivers.heater.on()
    clock.t = 300.0
    assert mat.surface_c() < 39.0
    clock.t = 450.0
    assert mat.surface_c() > 39.0
    drivers.heater.off()
    clock.t = 3600.0 * 3
    assert abs(mat.surface_c() - mat.model.room_c) < 0.1


def test_welded_relay_heats_with_demand_off() -> None:
    clock = HandClock()
    mat = SimulatedMat(clock)
    mat.inject(SimFault.RELAY_WELDED)
    clock.t = 1800.0
    assert mat.surface_c() > 50.0


def test_sensor_faults() -> None:
    clock = HandClock()
    mat = SimulatedMat(clock)
    thermometer = mat.drivers().thermometers[0]
    mat.set_heater(True)
    clock.t = 300.0
    stuck_at = thermometer.read().value_c
    mat.inject(SimFault.SENSOR_STUCK)
    clock.t = 600.0
    assert thermometer.read().value_c == stuck_at
    mat.inject(SimFault.SENSOR_STUCK, False)
    assert (thermometer.read().value_c or 0) > (stuck_at or 0)
    mat.inject(SimFault.SENSOR_OFF_HEATER)
    assert thermometer.read().value_c == 21.0
    mat.inject(SimFault.SENSOR_DISCONNECTED)
    reading = thermometer.read()
    assert reading.value_c is None and "no response" in (reading.error or "")


def test_person_lying_warms_an_unheated_pad_towards_body_temperature() -> None:
    clock = HandClock()
    mat = SimulatedMat(clock)
    mat.person_lying = True
    clock.t = 7200.0
    assert 25.0 < mat.surface_c() < 34.0


def test_outputs_record_what_they_were_told() -> None:
    mat = SimulatedMat(HandClock())
    drivers = mat.drivers()
    drivers.motor.set_duty(1.7)
    drivers.indicator.show(Led.FAULT)
    assert mat.motor_duty == 1.0 and mat.led is Led.FAULT
    drivers.close()
    assert mat.motor_duty == 0.0 and not mat.heater_demand
