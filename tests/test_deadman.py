"""The heater's own dead-man: off by itself when the controller stops refreshing it."""

import threading
import time

from matpi.drivers.deadman import RefreshedHeater


class RecordingSwitch:
    def __init__(self) -> None:
        self.is_on = False
        self.closed = False

    def on(self) -> None:
        self.is_on = True

    def off(self) -> None:
        self.is_on = False

    def close(self) -> None:
        self.closed = True


def test_heater_goes_off_when_not_refreshed() -> None:
    switch = RecordingSwitch()
    expired = threading.Event()
    heater = RefreshedHeater(switch, max_on_s=0.2, on_expired=expired.set)
    heater.on()
    started = time.monotonic()
    assert switch.is_on
    assert expired.wait(timeout=5.0)
    assert not switch.is_on
    assert time.monotonic() - started >= 0.2
    heater.close()
    assert switch.closed


def test_refreshing_keeps_it_on_and_off_is_immediate() -> None:
    switch = RecordingSwitch()
    expired = threading.Event()
    heater = RefreshedHeater(switch, max_on_s=0.3, on_expired=expired.set)
    for _ in range(8):
        heater.on()
        time.sleep(0.05)
    assert switch.is_on and not expired.is_set()
    heater.off()
    assert not switch.is_on
    time.sleep(0.4)
    assert not expired.is_set()  # off by request is not an expiry
    heater.close()


def test_on_after_close_does_nothing() -> None:
    switch = RecordingSwitch()
    heater = RefreshedHeater(switch, max_on_s=1.0)
    heater.close()
    heater.on()
    assert not switch.is_on
