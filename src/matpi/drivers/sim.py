"""A simulated mat: the documented pad model, outputs, sensors and fault injection.

The pad follows `matpi.core.padmodel.PadModel` (one lumped heat capacity warmed by
the heater, losing heat to the room and, with someone lying on it, exchanging
heat with their back), solved exactly over each step, so it is correct at any
time scaling. Current flows through the element only while the heater relay
is closed (or welded) and the master power relay is closed, as on a real mat.

    mat = SimulatedMat(clock)
    drivers = mat.drivers()
    drivers.heater.on()
"""

import threading
from collections.abc import Callable
from enum import StrEnum

from matpi.core.events import Breath, Led, Reading
from matpi.core.padmodel import PadModel
from matpi.drivers.base import MatDrivers
from matpi.drivers.clock import Clock


class SimFault(StrEnum):
    """Hardware failures the simulator can play."""

    SENSOR_DISCONNECTED = "sensor_disconnected"
    SENSOR_STUCK = "sensor_stuck"
    SENSOR_OFF_HEATER = "sensor_off_heater"
    RELAY_WELDED = "relay_welded"
    HEATER_OPEN = "heater_open"
    OCCUPANCY_STUCK_OCCUPIED = "occupancy_stuck_occupied"
    """The occupancy sensor reads someone on the mat, whoever is there."""
    OCCUPANCY_STUCK_EMPTY = "occupancy_stuck_empty"
    """The occupancy sensor reads the mat empty, whoever is there."""


_SENSOR_FAULTS = {SimFault.SENSOR_DISCONNECTED, SimFault.SENSOR_STUCK, SimFault.SENSOR_OFF_HEATER}


class SimulatedMat:
    """The physical mat in software; thread-safe, advanced lazily on each access."""

    def __init__(
        self, clock: Clock, model: PadModel | None = None, *, start_c: float | None = None
    ) -> None:
        self.model = model or PadModel()
        self._clock = clock
        self._lock = threading.Lock()
        self._temp_c = self.model.room_c if start_c is None else start_c
        self._at = clock.now()
        self._heater_demand = False
        self._power = True
        self.motor_duty = 0.0
        self.led = Led.IDLE
        self.person_lying = False
        """Someone lies on the mat: their back takes heat from the pad (the model's body)."""
        self._occupancy_watchers: list[Callable[[], None]] = []
        self.faults: set[SimFault] = set()
        self._sensor_faults: dict[str, set[SimFault]] = {}
        self._stuck_c: dict[str, float] = {}
        self.heater_switches = 0

    # --- physics ----------------------------------------------------------

    @property
    def heating(self) -> bool:
        """True when current flows through the heater: demanded or welded, powered, not open."""
        if SimFault.HEATER_OPEN in self.faults or not self._power:
            return False
        return self._heater_demand or SimFault.RELAY_WELDED in self.faults

    def surface_c(self) -> float:
        with self._lock:
            self._advance()
            return self._temp_c

    def _advance(self) -> None:
        now = self._clock.now()
        dt = now - self._at
        self._at = now
        if dt <= 0:
            return
        self._temp_c = self.model.after(self._temp_c, dt, heating=self.heating,
                                        body=self.person_lying)

    # --- controls used by outputs and by fault injection --------------------

    def set_heater(self, on: bool) -> None:
        with self._lock:
            self._advance()
            if on != self._heater_demand:
                self.heater_switches += 1
            self._heater_demand = on

    def set_power(self, on: bool) -> None:
        """The master power relay feeding the heater."""
        with self._lock:
            self._advance()
            self._power = on

    @property
    def power(self) -> bool:
        return self._power

    @property
    def heater_demand(self) -> bool:
        return self._heater_demand

    def set_person(self, lying: bool) -> None:
        """Someone lies down on the mat, or gets up; the occupancy sensor (if any) follows."""
        with self._lock:
            self._advance()
            self.person_lying = lying
        self._tell_occupancy()

    def occupancy_sensed(self) -> bool:
        """What the occupancy sensor reads now, faults included."""
        if SimFault.OCCUPANCY_STUCK_OCCUPIED in self.faults:
            return True
        if SimFault.OCCUPANCY_STUCK_EMPTY in self.faults:
            return False
        return self.person_lying

    def watch_occupancy(self, changed: Callable[[], None]) -> None:
        """`changed` is called (as on an input's edge) whenever the sensed value may change."""
        self._occupancy_watchers.append(changed)

    def _tell_occupancy(self) -> None:
        for changed in self._occupancy_watchers:
            changed()

    def inject(self, fault: SimFault, active: bool = True, *, sensor: str | None = None) -> None:
        """Start (or end) one simulated hardware failure; sensor faults may hit one sensor."""
        self._inject(fault, active, sensor)
        self._tell_occupancy()

    def _inject(self, fault: SimFault, active: bool, sensor: str | None) -> None:
        with self._lock:
            self._advance()
            faults = self.faults
            if sensor is not None and fault in _SENSOR_FAULTS:
                faults = self._sensor_faults.setdefault(sensor, set())
            if fault is SimFault.SENSOR_STUCK:
                self._stuck_c[sensor or "*"] = self._temp_c
            if active:
                faults.add(fault)
            else:
                faults.discard(fault)

    def sense(self, sensor: str) -> Reading:
        """What the sensor on the pad reports now, faults included."""
        with self._lock:
            self._advance()
            faults = self.faults | self._sensor_faults.get(sensor, set())
            if SimFault.SENSOR_DISCONNECTED in faults:
                return Reading(sensor, None, "no response from sensor (simulated disconnect)")
            if SimFault.SENSOR_STUCK in faults:
                stuck_c = self._stuck_c.get(sensor, self._stuck_c.get("*", self._temp_c))
                return Reading(sensor, _quantize(stuck_c))
            if SimFault.SENSOR_OFF_HEATER in faults:
                return Reading(sensor, _quantize(self.model.room_c))
            return Reading(sensor, _quantize(self._temp_c))

    def drivers(self, sensors: tuple[str, ...] = ("mat",), poll_s: float = 0.5) -> MatDrivers:
        """The Switch, Dimmer, Thermometers and Indicator of this mat."""
        return MatDrivers(
            heater=SimHeater(self),
            motor=SimMotor(self),
            indicator=SimIndicator(self),
            thermometers=[SimThermometer(self, name) for name in sensors],
            poll_interval_s=poll_s,
            power=SimPower(self),
        )


def _quantize(temp_c: float) -> float:
    """DS18B20 resolution at 12 bits."""
    return round(temp_c * 16.0) / 16.0


class SimHeater:
    """The heater relay of a simulated mat."""

    def __init__(self, mat: SimulatedMat) -> None:
        self._mat = mat

    def on(self) -> None:
        self._mat.set_heater(True)

    def off(self) -> None:
        self._mat.set_heater(False)

    def close(self) -> None:
        self.off()


class SimPower:
    """The master power relay of a simulated mat."""

    def __init__(self, mat: SimulatedMat) -> None:
        self._mat = mat

    def on(self) -> None:
        self._mat.set_power(True)

    def off(self) -> None:
        self._mat.set_power(False)

    def close(self) -> None:
        self.off()


class SimMotor:
    """The vibration motor of a simulated mat."""

    def __init__(self, mat: SimulatedMat) -> None:
        self._mat = mat

    def set_duty(self, duty: float) -> None:
        self._mat.motor_duty = max(0.0, min(1.0, duty))

    def off(self) -> None:
        self._mat.motor_duty = 0.0

    def close(self) -> None:
        self.off()


class SimThermometer:
    """A temperature sensor taped to the simulated pad."""

    reads_at_once = True  # a model in memory

    def __init__(self, mat: SimulatedMat, name: str) -> None:
        self._mat = mat
        self.name = name

    def read(self) -> Reading:
        return self._mat.sense(self.name)

    def close(self) -> None:
        pass


class SimIndicator:
    """The status LED of a simulated mat: remembers what it shows."""

    def __init__(self, mat: SimulatedMat) -> None:
        self._mat = mat

    def show(self, led: Led, breath: Breath | None = None) -> None:
        """`breath` is not kept: the simulated LED is shown by its state alone."""
        self._mat.led = led

    def close(self) -> None:
        pass
