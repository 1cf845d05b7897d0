"""main.py and hardware.py on a fake `machine`: what happens to the pins, and in which order."""

import sys

import fake_machine

sys.modules["machine"] = fake_machine

import hardware  # noqa: E402
import main  # noqa: E402
import protocol  # noqa: E402
from fakes import FakeClock, Script, raises  # noqa: E402


def boot(until_ms=50, link_kind="uart", actions=()):
    clock = FakeClock()
    main.main(fake_machine, clock, link_kind, keep_running=Script(clock, until_ms, actions))


def event_index(kind, pin_id=None):
    for index, event in enumerate(fake_machine.events):
        if event[0] == kind and (pin_id is None or event[1] == pin_id):
            return index
    raise AssertionError("no " + kind)


def sent_kinds():
    data = b"".join(e[2] for e in fake_machine.events if e[0] == "uart.write")
    return [protocol.decode(line)[1] for line in data.split(b"\n") if line]


def test_outputs_are_driven_off_before_the_watchdog_starts():
    fake_machine.reset()
    boot()
    watchdog = event_index("wdt.init")
    assert event_index("pin", hardware.HEATER_SSR_GPIO) < watchdog
    assert event_index("pwm", hardware.MOTOR_PWM_GPIO) < watchdog
    assert fake_machine.last("pin", hardware.HEATER_SSR_GPIO) == 0
    assert fake_machine.last("pwm", hardware.MOTOR_PWM_GPIO) == 0


def test_the_watchdog_is_armed_and_fed():
    fake_machine.reset()
    boot()
    assert ("wdt.init", None, hardware.WATCHDOG_TIMEOUT_MS) in fake_machine.events
    assert event_index("wdt.feed") > event_index("wdt.init")


def test_the_uart_link_uses_uart0_on_gp0_and_gp1():
    fake_machine.reset()
    boot()
    assert ("uart.init", 0, (115200, 0, 1)) in fake_machine.events
    assert sent_kinds()[0] == "HELLO"


def test_maintenance_jumper_starts_neither_watchdog_nor_loop():
    fake_machine.reset(grounded_pins=(hardware.MAINTENANCE_GPIO,))
    boot()
    kinds = [event[0] for event in fake_machine.events]
    assert "wdt.init" not in kinds
    assert "uart.init" not in kinds
    assert fake_machine.last("pin", hardware.HEATER_SSR_GPIO) == 0


def test_a_watchdog_reset_boots_with_a_latched_fault():
    fake_machine.reset(cause=fake_machine.WDT_RESET)
    boot()
    assert sent_kinds()[:2] == ["HELLO", "FAULT"]


def test_a_crash_in_the_loop_switches_the_outputs_off():
    fake_machine.reset()
    fake_machine.uart_input.append(
        protocol.encode(0, "SYNC", {})
        + b"\n"
        + protocol.encode(1, "HEAT", {"duty_pm": 1000})
        + b"\n"
        + protocol.encode(2, "MOTOR", {"duty_pm": 1000})
        + b"\n"
    )

    def crash():
        assert fake_machine.last("pin", hardware.HEATER_SSR_GPIO) == 1
        raise RuntimeError("bug")

    raises(RuntimeError, boot, 1000, "uart", [(100, crash)])
    assert fake_machine.last("pin", hardware.HEATER_SSR_GPIO) == 0
    assert fake_machine.last("pwm", hardware.MOTOR_PWM_GPIO) == 0


def test_an_unknown_link_kind_is_refused():
    fake_machine.reset()
    raises(ValueError, boot, 50, "wifi")
