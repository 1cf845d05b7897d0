"""Time-proportioning of the SSR over its 2 s window."""

import heater


def on_ms(duty_pm):
    return sum(1 for now_ms in range(heater.WINDOW_MS) if heater.conducts(duty_pm, now_ms))


def test_duty_becomes_on_time_within_the_window():
    assert on_ms(250) == 500
    assert heater.conducts(250, 0)
    assert not heater.conducts(250, 500)
    assert heater.conducts(250, heater.WINDOW_MS)


def test_zero_and_full_duty():
    assert on_ms(0) == 0
    assert on_ms(1000) == heater.WINDOW_MS


def test_pulses_shorter_than_a_mains_cycle_are_not_made():
    assert on_ms(5) == 0
    assert on_ms(995) == heater.WINDOW_MS
