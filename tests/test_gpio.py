"""GPIO drivers on gpiozero's MockFactory, and the RPi.GPIO path on fakeRPiGPIO.

Button and LED tests run real threads with real timings; their margins are a
few times the expected latencies so that a busy two-core machine does not
make them flaky.
"""

import itertools
import math
import queue
import statistics
import sys
import time
import types
from collections.abc import Iterator
from typing import Any

import gpiozero.pins.local
import pytest
import RPi.GPIO
from gpiozero.exc import PinUnknownPi
from gpiozero.pins.mock import MockFactory, MockPWMPin

from matpi.core.errors import DriverError
from matpi.core.events import DoublePress, Event, Led, LongPress, Press
from matpi.core.patterns import Pattern, vibration_duty
from matpi.drivers.button import ButtonGestures
from matpi.drivers.gpio import (
    HeaterRelay,
    PowerRelay,
    PwmMotor,
    RelayMotor,
    make_pin_factory,
)
from matpi.drivers.led import StatusLed

PI3B_REVISION = 0xA02082
PI4B_REVISION = 0xC03111


@pytest.fixture
def pwm_factory() -> Iterator[Any]:
    """PWM-capable mock pins, as make_pin_factory("mock") gives; released they read 0."""
    mock = MockFactory(pin_class=MockPWMPin)
    yield mock
    mock.close()


def history(pin: Any) -> list[float]:
    """Every state the mock pin went through, oldest first (the first is before any device)."""
    return [state.state for state in pin.states]


def on_durations(pin: Any) -> list[float]:
    """How long each completed on-phase of a 0/1 pin lasted."""
    states = pin.states
    return [now.timestamp for before, now in itertools.pairwise(states) if before.state]


# --- relays -----------------------------------------------------------------


def test_heater_active_high_is_off_when_built_switches_and_is_off_after_close(factory: Any) -> None:
    heater = HeaterRelay(17, pin_factory=factory)
    pin = factory.pin(17)
    assert pin.function == "output"
    assert pin.state == 0
    assert not heater.is_on

    heater.on()
    assert pin.state == 1
    assert heater.is_on
    heater.off()
    heater.on()
    heater.close()

    assert history(pin) == [0, 1, 0, 1, 0]
    assert pin.function == "input"
    assert heater.closed
    assert not heater.is_on


def test_heater_active_low_drives_the_pin_high_for_off(factory: Any) -> None:
    heater = HeaterRelay(17, active_high=False, pin_factory=factory)
    pin = factory.pin(17)
    assert pin.state == 1

    heater.on()
    assert pin.state == 0
    heater.off()
    heater.on()
    heater.close()

    # The first 0 is the mock input before the relay took the pin.
    assert history(pin) == [0, 1, 0, 1, 0, 1]
    assert pin.state == 1


def test_heater_close_is_idempotent_off_after_close_is_harmless_on_is_refused(
    factory: Any,
) -> None:
    heater = HeaterRelay(17, pin_factory=factory)
    heater.on()
    heater.close()
    heater.close()
    heater.off()
    with pytest.raises(DriverError, match="heater relay on pin 17 is closed"):
        heater.on()
    assert history(factory.pin(17)) == [0, 1, 0]


def test_heater_as_context_manager_is_off_and_released_after_the_block(factory: Any) -> None:
    with HeaterRelay(17, active_high=False, pin_factory=factory) as heater:
        heater.on()
    assert heater.closed
    assert factory.pin(17).state == 1
    HeaterRelay(17, pin_factory=factory).close()  # the pin is free again


def test_power_relay_names_itself_when_its_pin_is_busy(factory: Any) -> None:
    heater = HeaterRelay(17, pin_factory=factory)
    with pytest.raises(DriverError, match=r"power relay: pin 17 is already in use"):
        PowerRelay(17, pin_factory=factory)
    heater.close()


# --- motors -----------------------------------------------------------------


def test_pwm_motor_duty_is_clamped_and_nan_stops_it(pwm_factory: Any) -> None:
    motor = PwmMotor(18, frequency_hz=200, pin_factory=pwm_factory)
    pin = pwm_factory.pin(18)
    assert pin.state == 0
    assert pin.frequency == 200

    motor.set_duty(0.5)
    assert motor.duty == 0.5
    motor.set_duty(1.7)
    motor.set_duty(-0.2)
    motor.set_duty(0.25)
    motor.set_duty(math.nan)
    motor.set_duty(0.75)
    motor.off()

    assert history(pin) == [0, 0.5, 1.0, 0.0, 0.25, 0.0, 0.75, 0.0]


def test_pwm_motor_active_low_and_close(pwm_factory: Any) -> None:
    motor = PwmMotor(18, active_high=False, pin_factory=pwm_factory)
    pin = pwm_factory.pin(18)
    motor.set_duty(0.25)
    assert pin.state == 0.75
    motor.close()
    motor.close()
    motor.set_duty(0.0)  # stopping a closed motor is harmless
    with pytest.raises(DriverError, match="closed"):
        motor.set_duty(0.5)
    assert motor.duty == 0.0
    assert pin.frequency is None


def test_pwm_motor_on_a_pin_without_pwm_says_so() -> None:
    plain = MockFactory()
    with pytest.raises(DriverError, match=r"vibration motor: pin 18 cannot do PWM"):
        PwmMotor(18, pin_factory=plain)
    plain.close()


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_relay_motor_never_toggles_faster_than_min_toggle_s(factory: Any) -> None:
    clock = FakeClock()
    motor = RelayMotor(22, active_high=True, min_toggle_s=2.0, clock=clock, pin_factory=factory)
    pin = factory.pin(22)

    motor.set_duty(0.4)  # first switch: nothing to wait for
    assert motor.is_on

    clock.now_s += 0.5
    motor.set_duty(0.0)
    assert motor.is_on
    assert motor.pending is False
    clock.now_s += 1.4  # 1.9 s since the switch
    motor.set_duty(0.0)
    assert motor.is_on
    clock.now_s += 0.2  # 2.1 s
    motor.set_duty(0.0)
    assert not motor.is_on
    assert motor.pending is None

    clock.now_s += 0.1
    motor.set_duty(1.0)
    assert not motor.is_on
    assert motor.pending is True
    clock.now_s += 2.0
    motor.set_duty(1.0)
    assert motor.is_on

    assert history(pin) == [0, 1, 0, 1]


@pytest.mark.parametrize("pace", [4.0, 6.0, 7.5, 8.0])
def test_relay_motor_follows_breathe_and_never_toggles_faster_than_its_minimum(
    factory: Any, pace: float
) -> None:
    """Driven every 0.1 s by the on/off form, over five breaths: on for each inhale, off for
    each exhale, each switch at least 2 s after the last and none held back."""
    clock = FakeClock()
    motor = RelayMotor(22, active_high=True, min_toggle_s=2.0, clock=clock, pin_factory=factory)
    start_s = clock.now_s
    period_s = 60.0 / pace
    switches: list[float] = []
    for step in range(int(5 * period_s * 10)):
        clock.now_s = start_s + step / 10
        was_on = motor.is_on
        motor.set_duty(vibration_duty(Pattern.BREATHE, 40.0, step / 10, breaths_per_min=pace,
                                      on_off=True))
        assert motor.pending is None  # the pattern never asks inside the window
        if motor.is_on != was_on:
            switches.append(clock.now_s - start_s)
    gaps = [b - a for a, b in itertools.pairwise(switches)]
    assert len(switches) == 10
    assert min(gaps) >= 2.0
    assert gaps == pytest.approx([0.4 * period_s, 0.6 * period_s] * 4 + [0.4 * period_s],
                                 abs=0.11)
    motor.close()


def test_relay_motor_off_is_immediate_and_counts_as_a_switch(factory: Any) -> None:
    clock = FakeClock()
    motor = RelayMotor(22, active_high=False, min_toggle_s=2.0, clock=clock, pin_factory=factory)
    pin = factory.pin(22)
    motor.set_duty(1.0)
    clock.now_s += 0.1
    motor.set_duty(0.0)
    assert motor.is_on  # a set_duty(0) inside the window waits ...
    motor.off()
    assert not motor.is_on  # ... but off() does not
    assert motor.pending is None

    clock.now_s += 1.0
    motor.set_duty(1.0)
    assert not motor.is_on  # the off() restarted the window
    motor.close()
    # active low: 1 is off
    assert history(pin) == [0, 1, 0, 1]


def test_relay_motor_request_withdrawn_inside_the_window_is_forgotten(factory: Any) -> None:
    clock = FakeClock()
    motor = RelayMotor(22, active_high=True, clock=clock, pin_factory=factory)
    motor.set_duty(1.0)
    clock.now_s += 0.5
    motor.set_duty(0.0)
    assert motor.pending is False
    clock.now_s += 0.5
    motor.set_duty(0.8)
    assert motor.pending is None
    clock.now_s += 5.0
    motor.set_duty(0.8)
    assert history(factory.pin(22)) == [0, 1]
    motor.close()
    motor.set_duty(0.0)
    with pytest.raises(DriverError, match="closed"):
        motor.set_duty(1.0)


# --- button -----------------------------------------------------------------

BOUNCE_S = 0.05
HOLD_S = 0.8
DOUBLE_PRESS_S = 0.4
PRESS_S = 0.15
QUIET_S = DOUBLE_PRESS_S + 0.4
WAIT_S = 3.0


@pytest.fixture
def events() -> "queue.Queue[Event]":
    return queue.Queue()


@pytest.fixture
def button(factory: Any, events: "queue.Queue[Event]") -> Iterator[ButtonGestures]:
    gestures = ButtonGestures(
        23,
        events.put,
        bounce_s=BOUNCE_S,
        hold_s=HOLD_S,
        double_press_s=DOUBLE_PRESS_S,
        pin_factory=factory,
    )
    yield gestures
    gestures.close()


def tap(pin: Any, held_s: float = PRESS_S) -> None:
    pin.drive_low()
    time.sleep(held_s)
    pin.drive_high()


def bounce(pin: Any, end_low: bool) -> None:
    """A few millisecond-long contact bounces ending at the given level."""
    for _ in range(3):
        pin.drive_low()
        time.sleep(0.002)
        pin.drive_high()
        time.sleep(0.002)
    if end_low:
        pin.drive_low()


def nothing_more(events: "queue.Queue[Event]") -> bool:
    time.sleep(QUIET_S)
    return events.empty()


def test_short_press_is_posted_once_the_double_press_window_has_passed(
    button: ButtonGestures, factory: Any, events: "queue.Queue[Event]"
) -> None:
    pin = factory.pin(23)
    assert pin.state == 1  # pulled up, released
    tap(pin)
    time.sleep(BOUNCE_S + 0.1)
    assert events.empty()  # still inside the double-press window
    assert events.get(timeout=WAIT_S) == Press()
    assert nothing_more(events)


def test_long_press_fires_while_held_and_the_release_posts_nothing(
    button: ButtonGestures, factory: Any, events: "queue.Queue[Event]"
) -> None:
    pin = factory.pin(23)
    pin.drive_low()
    time.sleep(HOLD_S / 2)
    assert events.empty()
    assert events.get(timeout=WAIT_S) == LongPress()
    assert pin.state == 0  # still held when it fired
    pin.drive_high()
    assert nothing_more(events)


def test_double_press_posts_one_double_press_and_no_press(
    button: ButtonGestures, factory: Any, events: "queue.Queue[Event]"
) -> None:
    pin = factory.pin(23)
    tap(pin)
    time.sleep(PRESS_S)
    tap(pin)
    assert events.get(timeout=WAIT_S) == DoublePress()
    assert nothing_more(events)


def test_a_press_then_a_hold_inside_the_window_is_one_long_press(
    button: ButtonGestures, factory: Any, events: "queue.Queue[Event]"
) -> None:
    pin = factory.pin(23)
    tap(pin)
    time.sleep(PRESS_S)
    pin.drive_low()
    assert events.get(timeout=WAIT_S) == LongPress()
    pin.drive_high()
    assert nothing_more(events)


def test_two_presses_further_apart_than_the_window_are_two_presses(
    button: ButtonGestures, factory: Any, events: "queue.Queue[Event]"
) -> None:
    pin = factory.pin(23)
    tap(pin)
    assert events.get(timeout=WAIT_S) == Press()
    tap(pin)
    assert events.get(timeout=WAIT_S) == Press()
    assert nothing_more(events)


def test_contact_bounce_makes_one_press(
    button: ButtonGestures, factory: Any, events: "queue.Queue[Event]"
) -> None:
    pin = factory.pin(23)
    bounce(pin, end_low=True)
    time.sleep(PRESS_S)
    bounce(pin, end_low=False)
    assert events.get(timeout=WAIT_S) == Press()
    assert nothing_more(events)


def test_a_spike_shorter_than_bounce_s_is_not_a_press(
    button: ButtonGestures, factory: Any, events: "queue.Queue[Event]"
) -> None:
    bounce(factory.pin(23), end_low=False)
    assert nothing_more(events)


def test_close_drops_a_press_still_waiting_for_its_window(
    button: ButtonGestures, factory: Any, events: "queue.Queue[Event]"
) -> None:
    tap(factory.pin(23))
    time.sleep(BOUNCE_S + 0.1)
    button.close()
    button.close()
    assert button.closed
    assert nothing_more(events)


def test_button_to_3v3_with_pull_down(factory: Any, events: "queue.Queue[Event]") -> None:
    with ButtonGestures(
        24,
        events.put,
        pull_up=False,
        bounce_s=BOUNCE_S,
        hold_s=HOLD_S,
        double_press_s=DOUBLE_PRESS_S,
        pin_factory=factory,
    ):
        pin = factory.pin(24)
        assert pin.state == 0
        pin.drive_high()
        time.sleep(PRESS_S)
        pin.drive_low()
        assert events.get(timeout=WAIT_S) == Press()


def test_button_timings_are_checked(factory: Any, events: "queue.Queue[Event]") -> None:
    with pytest.raises(DriverError, match="bounce_s < hold_s"):
        ButtonGestures(23, events.put, bounce_s=1.0, hold_s=0.5, pin_factory=factory)
    ButtonGestures(23, events.put, pin_factory=factory).close()  # nothing was left holding 23


# --- status LED -------------------------------------------------------------

SAMPLE_S = 1.0


def shown_for(pwm_factory: Any, led: Led, seconds: float = SAMPLE_S, pin_number: int = 12) -> Any:
    status = StatusLed(pin_number, pin_factory=pwm_factory)
    status.show(led)
    time.sleep(seconds)
    status.close()
    return pwm_factory.pin(pin_number)


def test_status_led_is_dark_until_shown(pwm_factory: Any) -> None:
    status = StatusLed(12, pin_factory=pwm_factory)
    assert pwm_factory.pin(12).state == 0
    assert status.showing is None
    status.close()


def test_running_is_solid_on(pwm_factory: Any) -> None:
    pin = shown_for(pwm_factory, Led.RUNNING, seconds=0.5)
    assert history(pin) == [0, 1, 0]  # the last 0 is close()


def test_idle_is_one_short_blip_every_few_seconds(pwm_factory: Any) -> None:
    pin = shown_for(pwm_factory, Led.IDLE, seconds=0.5)
    assert history(pin) == [0, 1, 0]
    assert on_durations(pin)[0] < 0.3


def test_awaiting_press_blinks_fast_and_fault_faster(pwm_factory: Any) -> None:
    awaiting = shown_for(pwm_factory, Led.AWAITING_PRESS, pin_number=12)
    fault = shown_for(pwm_factory, Led.FAULT, pin_number=13)
    assert set(history(awaiting)) == set(history(fault)) == {0, 1}
    assert len(history(awaiting)) >= 4
    assert len(history(fault)) > len(history(awaiting))
    assert statistics.median(on_durations(fault)) < statistics.median(on_durations(awaiting))


def test_cooldown_pulses_through_levels_between_off_and_on(pwm_factory: Any) -> None:
    # Past one whole fade in: a loaded machine may start the pulse late.
    levels = history(shown_for(pwm_factory, Led.COOLDOWN, seconds=2.5))
    assert any(0 < level < 1 for level in levels)
    assert max(levels) > 0.9


def test_nobody_on_the_mat_is_a_double_blink(pwm_factory: Any) -> None:
    pin = shown_for(pwm_factory, Led.NOBODY, seconds=2.6)
    flashes = on_durations(pin)
    assert set(history(pin)) == {0, 1}
    assert 4 <= len(flashes) <= 6  # two every 1.2 s
    assert all(flash < 0.3 for flash in flashes)


def test_showing_the_same_led_again_does_not_restart_the_pattern(pwm_factory: Any) -> None:
    status = StatusLed(12, pin_factory=pwm_factory)
    status.show(Led.IDLE)
    time.sleep(0.3)
    status.show(Led.IDLE)  # a restart would blip again now
    time.sleep(0.3)
    assert history(pwm_factory.pin(12)) == [0, 1, 0]
    assert status.showing == Led.IDLE
    status.close()


def test_fault_beeps_three_times_on_entering_and_not_when_shown_again(pwm_factory: Any) -> None:
    status = StatusLed(12, buzzer_pin=16, pin_factory=pwm_factory)
    buzzer = pwm_factory.pin(16)
    status.show(Led.FAULT)
    time.sleep(0.3)
    status.show(Led.FAULT)
    time.sleep(1.2)
    assert history(buzzer) == [0, 1, 0, 1, 0, 1, 0]
    status.show(Led.IDLE)
    status.show(Led.FAULT)
    status.show(Led.RUNNING)  # leaving fault silences the buzzer at once
    assert buzzer.state == 0
    status.close()


def test_active_low_led_and_close(pwm_factory: Any) -> None:
    status = StatusLed(12, active_high=False, pin_factory=pwm_factory)
    pin = pwm_factory.pin(12)
    assert pin.state == 1
    status.show(Led.RUNNING)
    assert pin.state == 0
    status.close()
    status.close()
    assert pin.function == "input"
    assert history(pin)[:-1] == [0, 1, 0, 1]  # then the released mock PWM pin reads 0
    with pytest.raises(DriverError, match="closed"):
        status.show(Led.IDLE)


def test_led_releases_its_pin_when_the_buzzer_pin_is_busy(pwm_factory: Any) -> None:
    heater = HeaterRelay(17, pin_factory=pwm_factory)
    with pytest.raises(DriverError, match=r"buzzer: pin 17 is already in use"):
        StatusLed(12, buzzer_pin=17, pin_factory=pwm_factory)
    StatusLed(12, pin_factory=pwm_factory).close()  # 12 was given back
    heater.close()


# --- pin factories ----------------------------------------------------------


def test_make_pin_factory_auto_and_mock() -> None:
    assert make_pin_factory("auto") is None
    mock = make_pin_factory("mock")
    assert mock is not None
    motor = PwmMotor(18, pin_factory=mock)
    motor.set_duty(0.5)
    assert mock.pin(18).state == 0.5
    motor.close()
    mock.close()


def test_make_pin_factory_rejects_an_unknown_name() -> None:
    with pytest.raises(DriverError, match=r"unknown pin factory 'pigpoi': choose one of auto, "):
        make_pin_factory("pigpoi")


def test_same_pin_twice_names_the_pin(factory: Any) -> None:
    heater = HeaterRelay(17, pin_factory=factory)
    with pytest.raises(DriverError, match=r"heater relay: pin 17 is already in use"):
        HeaterRelay(17, pin_factory=factory)
    heater.close()


def test_a_pin_the_board_does_not_have_is_named(factory: Any) -> None:
    with pytest.raises(DriverError, match=r"heater relay: 99 is not a pin on this board"):
        HeaterRelay(99, pin_factory=factory)


@pytest.fixture
def no_cached_lgpio_factory() -> Iterator[None]:
    """Forces a fresh import of gpiozero's lgpio module, whatever lgpio is for this test."""
    sys.modules.pop("gpiozero.pins.lgpio", None)
    yield
    sys.modules.pop("gpiozero.pins.lgpio", None)


def fake_lgpio_that_cannot_open_a_chip() -> types.ModuleType:
    lgpio = types.ModuleType("lgpio")

    class LgpioError(Exception):
        pass

    def gpiochip_open(chip: int) -> int:
        raise LgpioError("can not open gpiochip")

    for constant, value in {
        "SET_PULL_NONE": 0,
        "SET_PULL_UP": 1,
        "SET_PULL_DOWN": 2,
        "BOTH_EDGES": 3,
        "RISING_EDGE": 1,
        "FALLING_EDGE": 2,
    }.items():
        setattr(lgpio, constant, value)
    lgpio.error = LgpioError  # type: ignore[attr-defined]
    lgpio.gpiochip_open = gpiochip_open  # type: ignore[attr-defined]
    return lgpio


@pytest.mark.usefixtures("no_cached_lgpio_factory")
def test_lgpio_here_fails_with_a_message_naming_lgpio() -> None:
    with pytest.raises(DriverError, match=r"pin factory 'lgpio'") as failure:
        make_pin_factory("lgpio")
    assert any(
        reason in str(failure.value)
        for reason in ("not installed", "could not open the GPIO chip", "finds no Raspberry Pi")
    )


@pytest.mark.usefixtures("no_cached_lgpio_factory")
def test_lgpio_missing_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lgpio", None)  # import lgpio raises ImportError
    with pytest.raises(
        DriverError, match=r"'lgpio' needs the lgpio library, which is not installed.*python3-lgpio"
    ):
        make_pin_factory("lgpio")


@pytest.mark.usefixtures("no_cached_lgpio_factory")
def test_lgpio_that_cannot_open_the_gpio_chip_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lgpio", fake_lgpio_that_cannot_open_a_chip())
    monkeypatch.setattr(gpiozero.pins.local, "get_pi_revision", lambda: PI4B_REVISION)
    with pytest.raises(
        DriverError,
        match=r"'lgpio' \(lgpio\) could not open the GPIO chip.*gpio group: can not open gpiochip",
    ):
        make_pin_factory("lgpio")


@pytest.mark.usefixtures("no_cached_lgpio_factory")
def test_lgpio_off_a_pi_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_revision() -> int:
        raise PinUnknownPi("unable to locate Pi revision")

    monkeypatch.setitem(sys.modules, "lgpio", fake_lgpio_that_cannot_open_a_chip())
    monkeypatch.setattr(gpiozero.pins.local, "get_pi_revision", no_revision)
    with pytest.raises(DriverError, match=r"finds no Raspberry Pi here.*use pin factory 'mock'"):
        make_pin_factory("lgpio")


# --- RPi.GPIO on fakeRPiGPIO ------------------------------------------------


@pytest.fixture
def fake_rpi_gpio(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], Any]]:
    """Records fakeRPiGPIO's setup and output calls, with a Pi 3B revision supplied."""
    monkeypatch.setattr(RPi.GPIO, "VERBOSE", False)
    monkeypatch.setattr(gpiozero.pins.local, "get_pi_revision", lambda: PI3B_REVISION)
    calls: list[tuple[str, tuple[Any, ...], Any]] = []
    for name in ("setup", "output"):
        original = getattr(RPi.GPIO, name)

        def recorded(
            *args: Any, _name: str = name, _original: Any = original, **kwargs: Any
        ) -> Any:
            calls.append((_name, args, kwargs))
            return _original(*args, **kwargs)

        monkeypatch.setattr(RPi.GPIO, name, recorded)
    return calls


def test_heater_on_the_rpigpio_factory_reaches_gpio_output(
    fake_rpi_gpio: list[tuple[str, tuple[Any, ...], Any]],
) -> None:
    rpigpio = make_pin_factory("rpigpio")
    assert rpigpio is not None
    try:
        heater = HeaterRelay(17, active_high=False, pin_factory=rpigpio)
        heater.on()
        heater.off()
        heater.close()
    finally:
        rpigpio.close()
    assert fake_rpi_gpio == [
        ("setup", (17, "IN", "PUD_OFF"), {}),  # gpiozero claims the pin as an input first
        ("setup", (17, "OUT"), {"initial": True}),  # output and off in one step
        ("output", (17, False), {}),  # on
        ("output", (17, True), {}),  # off
        ("output", (17, True), {}),  # close switches off again before releasing
    ]


def test_rpigpio_off_a_pi_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_revision() -> int:
        raise PinUnknownPi("unable to locate Pi revision")

    monkeypatch.setattr(RPi.GPIO, "VERBOSE", False)
    monkeypatch.setattr(gpiozero.pins.local, "get_pi_revision", no_revision)
    with pytest.raises(DriverError, match=r"'rpigpio' \(RPi.GPIO\) finds no Raspberry Pi here"):
        make_pin_factory("rpigpio")
