"""A mat on the board keeps the Pi's own button, LED, power relay and extra sensors.

The board is played by test_board's ScriptedBoard on a pty; the Pi's pins are
gpiozero mock pins. Without these parts a latched fault could not be cleared at
the mat and a remote start never confirmed by a press.
"""

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import OutputDevice
from gpiozero.pins.mock import MockFactory, MockPWMPin

import matpi.drivers.board
import matpi.drivers.hardware
from matpi.config.settings import BoardConfig, ButtonConfig, HardwareConfig, LedConfig, SensorConfig
from matpi.core.errors import DriverError
from matpi.core.events import (
    DoublePress,
    DriverFault,
    Event,
    Led,
    LongPress,
    Press,
    State,
)
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.drivers.base import MatDrivers, Post
from matpi.drivers.board import BoardLink
from matpi.drivers.clock import Clock
from matpi.drivers.hardware import build_board_mat
from matpi.drivers.polling import ThermometerPoller
from matpi.service.controller import Controller
from test_board import ScriptedBoard, wait_for

SENSOR_ID = "28-0316a2795aff"
LED_PIN, POWER_PIN, BUTTON_PIN = 22, 23, 27
HOLD_S = 0.5
DOUBLE_PRESS_S = 0.15
GESTURE_TIMEOUT_S = 3.0
GESTURES = (Press, LongPress, DoublePress)


def board_hardware(port: str, **changes: object) -> HardwareConfig:
    """A board mat: the board's NTC "mat", and a DS18B20 "pad", LED, relay and button on the Pi."""
    hw = HardwareConfig(
        driver="board",
        pin_factory="mock",
        power_pin=POWER_PIN,
        button=ButtonConfig(pin=BUTTON_PIN, bounce_s=0.01, hold_s=HOLD_S,
                            double_press_s=DOUBLE_PRESS_S),
        led=LedConfig(pin=LED_PIN),
        sensors=(SensorConfig(name="mat", kind="ntc"),
                 SensorConfig(name="pad", kind="ds18b20", device_id=SENSOR_ID)),
        board=BoardConfig(port=port),
    )
    return type(hw)(**{**hw.__dict__, **changes})


def next_gesture(inbox: "queue.SimpleQueue[Event]", timeout_s: float) -> Event | None:
    """The next button gesture posted within `timeout_s`, skipping the board's own events."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = inbox.get(timeout=left)
        except queue.Empty:
            return None
        if isinstance(event, GESTURES):
            return event
    return None


def answer_clear(board: ScriptedBoard, timeout_s: float) -> None:
    """Acknowledges the first CLEAR the host sends, as a cool board does."""
    if wait_for(lambda: "CLEAR" in board.kinds(), timeout_s):
        clear = next(frame for frame in board.received if frame.kind == "CLEAR")
        board.send("ACK", ref=clear.seq)


def commands(board: ScriptedBoard) -> list[tuple[str, dict[str, object]]]:
    """What the host asked of the board, heartbeats left out."""
    return [(f.kind, dict(f.fields)) for f in board.received if f.kind not in ("PING", "SYNC")]


@pytest.fixture
def w1_dir(tmp_path: Path) -> Path:
    device = tmp_path / "w1" / SENSOR_ID
    device.mkdir(parents=True)
    (device / "w1_slave").write_text(
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
    )
    return tmp_path / "w1"


@pytest.fixture
def inbox() -> "queue.SimpleQueue[Event]":
    return queue.SimpleQueue()


@pytest.fixture
def mat(
    scripted: ScriptedBoard, w1_dir: Path, inbox: "queue.SimpleQueue[Event]"
) -> Iterator[MatDrivers]:
    drivers = build_board_mat(board_hardware(scripted.port), inbox.put, w1_dir=w1_dir)
    yield drivers
    drivers.close()


def test_a_long_press_on_the_pi_button_posts_long_press(
    mat: MatDrivers, inbox: "queue.SimpleQueue[Event]"
) -> None:
    button = mat.pin_factory.pin(BUTTON_PIN)
    button.drive_low()
    try:
        assert next_gesture(inbox, HOLD_S + GESTURE_TIMEOUT_S) == LongPress()
    finally:
        button.drive_high()
    assert next_gesture(inbox, DOUBLE_PRESS_S * 4) is None  # the release after it posts nothing


def test_a_short_press_on_the_pi_button_posts_press(
    mat: MatDrivers, inbox: "queue.SimpleQueue[Event]"
) -> None:
    button = mat.pin_factory.pin(BUTTON_PIN)
    button.drive_low()
    time.sleep(0.05)
    button.drive_high()
    assert next_gesture(inbox, GESTURE_TIMEOUT_S) == Press()


def test_the_pi_led_shows_what_the_indicator_is_asked(mat: MatDrivers) -> None:
    led = mat.pin_factory.pin(LED_PIN)
    assert led.state == 0
    mat.indicator.show(Led.RUNNING)
    assert led.state == 1
    mat.indicator.show(Led.FAULT)  # a rapid blink: it must go dark and light again
    assert wait_for(lambda: led.state == 0, 2.0)
    assert wait_for(lambda: led.state == 1, 2.0)


def test_a_second_ds18b20_on_the_pi_is_read_beside_the_board(
    scripted: ScriptedBoard, mat: MatDrivers
) -> None:
    assert [t.name for t in mat.thermometers] == ["mat", "pad"]
    assert mat.thermometers[1].read().value_c == 23.125
    assert wait_for(lambda: mat.thermometers[0].read().value_c == 25.0)  # the board's t_cc=2500


def test_all_off_drops_the_pi_power_relay_and_the_board_outputs(
    scripted: ScriptedBoard, mat: MatDrivers
) -> None:
    power = mat.pin_factory.pin(POWER_PIN)
    assert power.state == 1  # active-low relay: off when built
    assert mat.power is not None
    mat.power.on()
    mat.heater.on()
    assert power.state == 0
    mat.all_off()
    assert power.state == 1
    off = [("HEAT", {"duty_pm": 0}), ("MOTOR", {"duty_pm": 0})]
    assert wait_for(lambda: commands(scripted)[-2:] == off), commands(scripted)


def test_the_board_drives_heat_so_the_pi_heater_pins_stay_free(mat: MatDrivers) -> None:
    for pin in (17, 18):  # [heater] and [vibration] defaults, meaningless on a board mat
        OutputDevice(pin, pin_factory=mat.pin_factory).close()


def test_a_long_press_clears_a_latched_board_fault_through_the_controller(
    scripted: ScriptedBoard, mat: MatDrivers, inbox: "queue.SimpleQueue[Event]"
) -> None:
    clock = Clock()
    machine = SessionMachine(Rules(sensors=("mat", "pad")), clock.now(), clock.today())
    controller = Controller(machine, mat, clock, inbox=inbox)
    poller = ThermometerPoller(mat.thermometers, controller.post, clock, 0.25)
    loop = threading.Thread(target=controller.run)
    loop.start()
    poller.start()
    replier = threading.Thread(target=answer_clear, args=(scripted, 10.0))
    try:
        controller.post(DriverFault("board fault: OVERTEMP"))
        assert wait_for(lambda: machine.state is State.FAULT)
        assert wait_for(lambda: machine.snapshot(clock.now()).temperature_c is not None)
        replier.start()
        button = mat.pin_factory.pin(BUTTON_PIN)
        button.drive_low()
        assert wait_for(lambda: machine.state is not State.FAULT, HOLD_S + GESTURE_TIMEOUT_S)
        button.drive_high()
        # The board's own latch is cleared as well: the controller sends CLEAR right after
        # the step that cleared the fault, which the test may see first.
        assert wait_for(lambda: "CLEAR" in scripted.kinds())
        assert machine.fault is None
    finally:
        controller.request_stop()
        loop.join(timeout=5)
        poller.close()
        if replier.ident is not None:  # started
            replier.join(timeout=11.0)
    assert not loop.is_alive()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"button": ButtonConfig(pin=LED_PIN)}, "button: pin 22 is already in use"),
        ({"sensors": (SensorConfig(name="mat"), SensorConfig(name="pad"))}, "no DS18B20 found"),
    ],
    ids=["busy pin", "missing sensor"],
)
def test_a_failure_half_way_closes_the_link_and_every_pi_pin(
    scripted: ScriptedBoard,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    changes: dict[str, object],
    error: str,
) -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    links: list[BoardLink] = []

    class RecordedLink(BoardLink):
        def __init__(self, port: str, baud: int, post: Post, **options: Any) -> None:
            super().__init__(port, baud, post, **options)
            links.append(self)

    monkeypatch.setattr(matpi.drivers.hardware, "make_pin_factory", lambda name: factory)
    monkeypatch.setattr(matpi.drivers.board, "BoardLink", RecordedLink)
    hw = board_hardware(scripted.port, **changes)
    with pytest.raises(DriverError, match=error) as caught:
        build_board_mat(hw, lambda event: None, w1_dir=tmp_path)
    # `caught` holds the traceback, so the half-built parts stay referenced: a part left
    # open would still hold its pin, and claiming the pins below would fail.
    assert len(links) == 1 and links[0].closed
    assert wait_for(lambda: ("MOTOR", {"duty_pm": 0}) in commands(scripted))
    for pin in (LED_PIN, POWER_PIN, BUTTON_PIN):
        OutputDevice(pin, pin_factory=factory).close()
    del caught  # only now may the half-built parts be collected
