"""A mat built from a config on gpiozero mock pins: run, self-test, safe-off, pin lock."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import wait_for
from matpi.config.load import load_config
from matpi.config.settings import Config, OccupancyConfig, SensorConfig
from matpi.core.errors import DriverError
from matpi.core.events import Event, State
from matpi.core.session import SessionMachine
from matpi.drivers.base import MatDrivers
from matpi.drivers.clock import Clock
from matpi.drivers.hardware import assign_ds18b20, build_gpio_mat
from matpi.drivers.polling import ThermometerPoller
from matpi.drivers.selftest import run_selftest, table
from matpi.drivers.statedir import pin_lock
from matpi.service.controller import Controller

EXAMPLE = Path(__file__).parent.parent / "config" / "matpi.toml"
SENSOR_ID = "28-0316a2795aff"
SENSOR2_ID = "28-0316a27b3c11"
"""The example config's two DS18B20s."""


@pytest.fixture
def mock_config(tmp_path: Path) -> Path:
    """The example config (heater GPIO5, power relay GPIO6) with mock pins."""
    text = EXAMPLE.read_text().replace('pin_factory = "auto"', 'pin_factory = "mock"')
    path = tmp_path / "mock.toml"
    path.write_text(text)
    return path


@pytest.fixture
def w1_dir(tmp_path: Path) -> Path:
    for sensor_id in (SENSOR_ID, SENSOR2_ID):
        device = tmp_path / "w1" / sensor_id
        device.mkdir(parents=True)
        (device / "w1_slave").write_text(
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
        )
    return tmp_path / "w1"


def test_a_press_on_the_mock_button_starts_a_session_that_heats(
    mock_config: Path, w1_dir: Path
) -> None:
    config = load_config(mock_config)
    inbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
    drivers = build_gpio_mat(config.hardware, inbox.put, w1_dir=w1_dir)
    pins = drivers.pin_factory
    heater_pin, power_pin, button_pin = pins.pin(5), pins.pin(6), pins.pin(27)
    assert heater_pin.state == 1 and power_pin.state == 1  # active-low boards: off
    clock = Clock()
    machine = SessionMachine(config.rules, clock.now(), clock.today())
    controller = Controller(machine, drivers, clock, inbox=inbox)
    poller = ThermometerPoller(drivers.thermometers, controller.post, clock, 0.25)
    thread = threading.Thread(target=controller.run)
    thread.start()
    poller.start()
    try:
        wait_for(lambda: machine.snapshot(clock.now()).temperature_c == 23.1)
        button_pin.drive_low()
        time.sleep(0.1)
        button_pin.drive_high()
        wait_for(lambda: machine.state is State.RUNNING)
        wait_for(lambda: heater_pin.state == 0)  # active-low: on
        assert power_pin.state == 0
        assert pins.pin(18).state > 0  # the motor runs its pattern
        controller.request_stop()
        thread.join(timeout=5)
        assert heater_pin.state == 1 and power_pin.state == 1  # off when the loop ends
    finally:
        controller.request_stop()
        poller.close()
        drivers.close()


def test_selftest_switches_each_output_and_waits_for_the_button(
    mock_config: Path, w1_dir: Path
) -> None:
    config = load_config(mock_config)
    gestures: queue.SimpleQueue[Event] = queue.SimpleQueue()
    drivers = build_gpio_mat(config.hardware, gestures.put, w1_dir=w1_dir)
    heater_pin = drivers.pin_factory.pin(5)
    heater_pin.clear_states()
    lines: list[str] = []

    def press_soon() -> None:
        time.sleep(0.3)
        drivers.pin_factory.pin(27).drive_low()
        time.sleep(0.1)
        drivers.pin_factory.pin(27).drive_high()

    threading.Thread(target=press_soon).start()
    try:
        checks = run_selftest(drivers, gestures, has_button=True, button_timeout_s=5.0,
                              say=lines.append, sleep=lambda s: time.sleep(min(s, 0.05)))
        heater_states = [s.state for s in heater_pin.states]
    finally:
        drivers.close()
    assert [c.part for c in checks] == ["sensor mat", "sensor mat2", "heater", "power relay",
                                        "vibration", "status LED", "button"]
    assert all(c.passed for c in checks), table(checks)
    assert heater_states[-2:] == [0, 1]  # on (active-low), then off again
    assert "PASS" in table(checks)


@pytest.mark.parametrize(("edges", "detail"), [
    (["low", "high"], ""),
    (["low"], "did not see anyone get up within 1 s"),
    ([], "did not see anyone lie down within 1 s"),
])
def test_selftest_waits_for_someone_to_lie_down_and_get_up(
    mock_config: Path, w1_dir: Path, edges: list[str], detail: str
) -> None:
    config = load_config(mock_config)
    hardware = replace(config.hardware, occupancy=OccupancyConfig(pin=17, debounce_s=0.05))
    gestures: queue.SimpleQueue[Event] = queue.SimpleQueue()
    drivers = build_gpio_mat(hardware, gestures.put, w1_dir=w1_dir)

    def lie_down_and_get_up() -> None:
        for edge in edges:
            time.sleep(0.2)
            getattr(drivers.pin_factory.pin(17), f"drive_{edge}")()

    mover = threading.Thread(target=lie_down_and_get_up)
    mover.start()
    try:
        checks = run_selftest(drivers, gestures, has_button=False, has_occupancy=True,
                              button_timeout_s=1.0, say=lambda line: None, sleep=lambda s: None)
    finally:
        mover.join(timeout=5)
        drivers.close()
    [occupancy] = [c for c in checks if c.part == "occupancy sensor"]
    assert occupancy.passed is (not detail)
    assert detail in occupancy.detail


def test_selftest_reports_a_missing_sensor_and_no_press(mock_config: Path, tmp_path: Path) -> None:
    config = load_config(mock_config)
    gestures: queue.SimpleQueue[Event] = queue.SimpleQueue()
    drivers = build_gpio_mat(config.hardware, gestures.put, w1_dir=tmp_path)
    try:
        checks = run_selftest(drivers, gestures, has_button=True, button_timeout_s=0.2,
                              say=lambda line: None, sleep=lambda s: None)
    finally:
        drivers.close()
    failed = {c.part: c.detail for c in checks if not c.passed}
    assert set(failed) == {"sensor mat", "sensor mat2", "button"}
    assert SENSOR_ID in failed["sensor mat"]
    assert "no press within 0.2 s" in failed["button"]


def test_all_off_leaves_every_output_off(mock_config: Path, w1_dir: Path) -> None:
    drivers: MatDrivers = build_gpio_mat(load_config(mock_config).hardware, lambda e: None,
                                         w1_dir=w1_dir)
    pins = drivers.pin_factory
    drivers.heater.on()
    drivers.motor.set_duty(0.7)
    assert drivers.power is not None
    drivers.power.on()
    drivers.all_off()
    assert (pins.pin(5).state, pins.pin(18).state, pins.pin(6).state) == (1, 0, 1)
    drivers.close()


def test_a_busy_pin_is_named_and_nothing_stays_claimed(mock_config: Path) -> None:
    config = load_config(mock_config)
    hw = config.hardware
    clash = type(hw)(**{**hw.__dict__, "led": type(hw.led)(pin=5)})
    with pytest.raises(DriverError, match="status LED: pin 5 is already in use"):
        build_gpio_mat(clash, lambda event: None)


def test_sensors_without_device_id_take_the_ds18b20s_found_in_id_order(tmp_path: Path) -> None:
    mat, mat2 = SensorConfig(name="mat"), SensorConfig(name="mat2")
    with pytest.raises(DriverError, match=r"no DS18B20 found .* for sensor mat"):
        assign_ds18b20([mat, mat2], tmp_path)
    (tmp_path / "28-bbb").mkdir()
    with pytest.raises(DriverError, match=r"1 DS18B20 .* for 2 sensor\(s\) without device_id"):
        assign_ds18b20([mat, mat2], tmp_path)
    (tmp_path / "28-aaa").mkdir()
    assert assign_ds18b20([mat, mat2], tmp_path) == {"mat": "28-aaa", "mat2": "28-bbb"}
    named = SensorConfig(name="mat", device_id="28-bbb")
    assert assign_ds18b20([named, mat2], tmp_path) == {"mat": "28-bbb", "mat2": "28-aaa"}


def test_the_pin_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    with pin_lock(tmp_path), pytest.raises(DriverError, match=f"pid {os.getpid()}"), \
            pin_lock(tmp_path):
        pass
    with pin_lock(tmp_path):
        pass  # released again


def run_matpi(*args: str, state_dir: Path, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "STATE_DIRECTORY": str(state_dir)}
    return subprocess.Popen([sys.executable, "-m", "matpi", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def service(mock_config: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = run_matpi("run", "--config", str(mock_config), state_dir=tmp_path)
    assert process.stdout is not None
    assert "mat on GPIO" in process.stdout.readline()
    yield process
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_selftest_refuses_while_the_service_holds_the_pins(
    service: subprocess.Popen[str], mock_config: Path, tmp_path: Path
) -> None:
    selftest = run_matpi("selftest", "--config", str(mock_config), state_dir=tmp_path)
    _, err = selftest.communicate(timeout=30)
    assert selftest.returncode == 1
    assert f"another matpi (pid {service.pid}) holds the mat's pins" in err


def test_safe_off_command(mock_config: Path, tmp_path: Path) -> None:
    process = run_matpi("safe-off", "--config", str(mock_config), state_dir=tmp_path)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "safe-off: heater GPIO" in out and "safe-off: vibration motor GPIO" in out
    assert "could not" not in out


def test_defaults_need_a_sensor_id_or_one_on_the_bus() -> None:
    with pytest.raises(DriverError, match="no DS18B20 found"):
        build_gpio_mat(Config(hardware=type(Config().hardware)(pin_factory="mock")).hardware,
                       lambda event: None, w1_dir=Path("/nonexistent"))
