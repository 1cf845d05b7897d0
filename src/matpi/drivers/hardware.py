"""Builds the drivers a config describes: GPIO parts, the mat board, or the simulator.

Everything that touches pins is built here, in one place, so that a failure
half-way (a busy pin, a missing library, a silent board) closes what was
already taken and leaves every output off.
"""

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matpi.config.settings import HardwareConfig, SensorConfig
from matpi.core.errors import DriverError
from matpi.core.events import Breath, Led
from matpi.drivers.base import Dimmer, Indicator, MatDrivers, Post, Switch, Thermometer
from matpi.drivers.button import ButtonGestures
from matpi.drivers.gpio import (
    HeaterRelay,
    PowerRelay,
    PwmMotor,
    RelayMotor,
    make_pin_factory,
)
from matpi.drivers.led import StatusLed
from matpi.drivers.occupancy import OccupancySensor
from matpi.drivers.thermometers import DS18B20, W1_DEVICES, NtcThermistor

if TYPE_CHECKING:
    from matpi.drivers.board import BoardLink

BOARD_POLL_S = 0.5
"""How often the board's telemetry is sampled: it arrives at 10 Hz and goes stale after 1 s."""


class NoMotor:
    """A mat without a vibration motor."""

    def set_duty(self, duty: float) -> None:
        pass

    def off(self) -> None:
        pass

    def close(self) -> None:
        pass


class NoIndicator:
    """A mat without a status LED."""

    def show(self, led: Led, breath: Breath | None = None) -> None:
        pass

    def close(self) -> None:
        pass


def build_gpio_mat(hw: HardwareConfig, post: Post, *, w1_dir: Path = W1_DEVICES) -> MatDrivers:
    """Every part of a directly wired mat, all outputs off.

    Raises:
        DriverError: naming the part and pin that could not be set up; nothing stays claimed.
    """
    with ExitStack() as undo:
        factory, heater, motor, power = _outputs(hw, undo)
        indicator = _indicator(hw, factory, undo)
        thermometers = _thermometers(hw.sensors, factory, w1_dir, undo)
        closers: list[Callable[[], None]] = [] if factory is None else [factory.close]
        closers += _inputs(hw, post, factory, undo)
        undo.pop_all()
    return MatDrivers(heater=heater, motor=motor, indicator=indicator,
                      thermometers=thermometers, poll_interval_s=hw.poll_s, power=power,
                      closers=closers, pin_factory=factory)


def build_board_mat(hw: HardwareConfig, post: Post, *, w1_dir: Path = W1_DEVICES) -> MatDrivers:
    """A mat on the board, with the Pi's own button, status LED, power relay and extra sensors.

    The board drives heater and motor and reads the first `[[sensors]]` entry
    (its NTC, named after it). Button, LED, the master power relay and any
    further sensors stay on the Pi's GPIO, so the board path keeps the same
    gestures (a long press clears a latched fault, a press confirms a remote
    start) and the same guards (a second sensor, power dropped on a fault) as
    the directly wired one.

    Raises:
        DriverError: the board or a Pi part could not be set up, naming which;
            the link is closed and no pin stays claimed.
    """
    with ExitStack() as undo:
        factory = make_pin_factory(hw.pin_factory)
        if factory is not None:
            undo.callback(factory.close)
        link = _board_link(hw.board.port, hw.board.baud, post,
                          thermometer_name=hw.sensors[0].name)
        undo.callback(link.close)
        power = _power(hw, factory, undo)
        indicator = _indicator(hw, factory, undo)
        extra = _thermometers(hw.sensors[1:], factory, w1_dir, undo)
        closers: list[Callable[[], None]] = [] if factory is None else [factory.close]
        closers.append(link.close)
        closers += _inputs(hw, post, factory, undo)
        undo.pop_all()
    return MatDrivers(heater=link.heater, motor=link.motor, indicator=indicator,
                      thermometers=[link.thermometer, *extra], poll_interval_s=BOARD_POLL_S,
                      power=power, closers=closers, pin_factory=factory,
                      reset=link.clear_fault)


def build_board_link_mat(
    port: str, baud: int, post: Post, *, sensor: str, indicator: Indicator | None = None
) -> MatDrivers:
    """Heater, motor and thermometer on the mat board and nothing on the Pi's GPIO.

    For `--board-sim` on a laptop, where there are no pins; a real mat uses
    `build_board_mat`, which adds the Pi's button, LED and guards.

    Raises:
        DriverError: the port cannot be opened, or the board speaks another protocol.
    """
    link = _board_link(port, baud, post, thermometer_name=sensor)
    return MatDrivers(heater=link.heater, motor=link.motor, indicator=indicator or NoIndicator(),
                      thermometers=[link.thermometer], poll_interval_s=BOARD_POLL_S,
                      closers=[link.close], reset=link.clear_fault)


def _board_link(port: str, baud: int, post: Post, *, thermometer_name: str) -> "BoardLink":
    """The serial link to the mat board; pyserial and the protocol are loaded only for a mat
    that has a board (0.7 MiB a directly wired mat does not carry)."""
    from matpi.drivers.board import BoardLink

    return BoardLink(port, baud, post, thermometer_name=thermometer_name)


def _inputs(hw: HardwareConfig, post: Post, factory: Any,
            undo: ExitStack) -> list[Callable[[], None]]:
    """The occupancy sensor, then the button (last, so no gesture comes from a half-built
    mat): the closers of those the config has."""
    inputs = (_occupancy(hw, post, factory, undo), _button(hw, post, factory, undo))
    return [part.close for part in inputs if part is not None]


def _outputs(hw: HardwareConfig, undo: ExitStack) -> tuple[Any, Switch, Dimmer, Switch | None]:
    """The pin factory and the outputs, each registered on `undo` for a failure later."""
    factory = make_pin_factory(hw.pin_factory)
    if factory is not None:
        undo.callback(factory.close)
    heater = HeaterRelay(hw.heater.pin, active_high=hw.heater.active_high, pin_factory=factory)
    undo.callback(heater.close)
    motor = _motor(hw, factory)
    undo.callback(motor.close)
    return factory, heater, motor, _power(hw, factory, undo)


def _power(hw: HardwareConfig, factory: Any, undo: ExitStack) -> Switch | None:
    """The master power relay, if the config has one, registered on `undo`."""
    if hw.power_pin is None:
        return None
    power = PowerRelay(hw.power_pin, active_high=hw.power_active_high, pin_factory=factory)
    undo.callback(power.close)
    return power


def _indicator(hw: HardwareConfig, factory: Any, undo: ExitStack) -> Indicator:
    """The status LED (and buzzer), or none, registered on `undo`."""
    if hw.led.pin is None:
        return NoIndicator()
    led = StatusLed(hw.led.pin, active_high=hw.led.active_high, buzzer_pin=hw.led.buzzer_pin,
                    pin_factory=factory)
    undo.callback(led.close)
    return led


def _thermometers(
    sensors: Sequence[SensorConfig], factory: Any, w1_dir: Path, undo: ExitStack
) -> list[Thermometer]:
    """One thermometer per sensor, each registered on `undo` as soon as it exists."""
    thermometers: list[Thermometer] = []
    ids = assign_ds18b20([s for s in sensors if s.kind == "ds18b20"], w1_dir)
    for sensor in sensors:
        thermometer = _thermometer(sensor, factory, w1_dir, ids)
        undo.callback(thermometer.close)
        thermometers.append(thermometer)
    return thermometers


def _button(
    hw: HardwareConfig, post: Post, factory: Any, undo: ExitStack
) -> ButtonGestures | None:
    """The button posting its gestures, or none."""
    b = hw.button
    if b.pin is None:
        return None
    button = ButtonGestures(b.pin, post, pull_up=b.pull_up, bounce_s=b.bounce_s, hold_s=b.hold_s,
                            double_press_s=b.double_press_s, pin_factory=factory)
    undo.callback(button.close)
    return button


def _occupancy(
    hw: HardwareConfig, post: Post, factory: Any, undo: ExitStack
) -> OccupancySensor | None:
    """The occupancy sensor posting whether someone lies on the mat, or none."""
    o = hw.occupancy
    if o.pin is None:
        return None
    sensor = OccupancySensor(o.pin, post, active_high=o.active_high, debounce_s=o.debounce_s,
                             pin_factory=factory)
    undo.callback(sensor.close)
    return sensor


def _motor(hw: HardwareConfig, factory: Any) -> Dimmer:
    vib = hw.vibration
    if vib.kind == "none" or vib.pin is None:
        return NoMotor()
    if vib.kind == "relay":
        return RelayMotor(vib.pin, active_high=vib.active_high, min_toggle_s=vib.min_toggle_s,
                          pin_factory=factory)
    return PwmMotor(vib.pin, frequency_hz=vib.frequency_hz, active_high=vib.active_high,
                    pin_factory=factory)


def _thermometer(
    sensor: SensorConfig, factory: Any, w1_dir: Path, ids: dict[str, str]
) -> Thermometer:
    if sensor.kind == "ntc":
        return NtcThermistor(
            sensor.channel, name=sensor.name, beta=sensor.beta, r25_ohm=sensor.r25_ohm,
            series_ohm=sensor.series_ohm, steinhart_hart=sensor.steinhart_hart,
            pin_factory=factory,
        )
    return DS18B20(ids[sensor.name], name=sensor.name, base_dir=w1_dir)


def assign_ds18b20(sensors: Sequence[SensorConfig], w1_dir: Path) -> dict[str, str]:
    """The device id of each DS18B20 sensor: its own, or, for those that leave it out,
    the DS18B20s found on the bus that no other sensor names, in id order.

    Raises:
        DriverError: the bus holds fewer, or more, unnamed DS18B20s than sensors need.
    """
    ids = {s.name: s.device_id for s in sensors if s.device_id}
    unnamed = [s.name for s in sensors if not s.device_id]
    if not unnamed:
        return ids
    found = sorted(p.name for p in w1_dir.glob("28-*")) if w1_dir.is_dir() else []
    free = [device for device in found if device not in ids.values()]
    if len(free) == len(unnamed):
        return {**ids, **dict(zip(unnamed, free, strict=True))}
    if not free:
        raise DriverError(
            f"no DS18B20 found under {w1_dir} for sensor {unnamed[0]}: check the wiring (data on "
            "GPIO4 with a 4.7 kΩ pull-up to 3.3 V) and dtoverlay=w1-gpio in "
            "/boot/firmware/config.txt"
        )
    raise DriverError(
        f"{len(free)} DS18B20 under {w1_dir} ({', '.join(free)}) for {len(unnamed)} sensor(s) "
        f"without device_id ({', '.join(unnamed)}): set device_id in each [[sensors]]"
    )
