"""The heater's own dead-man: off by itself when the controller stops refreshing it,
and latched off after that until a local reset rearms it.

Every wait here has a timeout: a broken dead-man must fail a test, not hang it.
"""

import threading
import time

import pytest

from matpi.core.errors import DriverError
from matpi.drivers.deadman import RefreshedHeater

WAIT_S = 5.0


class RecordingSwitch:
    def __init__(self) -> None:
        self.is_on = False
        self.closed = False
        self.calls: list[str] = []

    def on(self) -> None:
        self.calls.append("on")
        self.is_on = True

    def off(self) -> None:
        self.calls.append("off")
        self.is_on = False

    def close(self) -> None:
        self.closed = True


def expired_heater(switch: RecordingSwitch) -> tuple[RefreshedHeater, threading.Event]:
    """A dead-man that has just tripped: heat asked for once, never refreshed."""
    expired = threading.Event()
    heater = RefreshedHeater(switch, max_on_s=0.1, on_expired=expired.set)
    heater.on()
    assert expired.wait(timeout=WAIT_S), "the dead-man did not expire"
    return heater, expired


def test_heater_goes_off_when_not_refreshed() -> None:
    switch = RecordingSwitch()
    expired = threading.Event()
    heater = RefreshedHeater(switch, max_on_s=0.2, on_expired=expired.set)
    try:
        heater.on()
        started = time.monotonic()
        assert switch.is_on
        assert expired.wait(timeout=WAIT_S)
        assert not switch.is_on
        assert time.monotonic() - started >= 0.2
    finally:
        heater.close()
    assert switch.closed


def test_refreshing_keeps_it_on_and_off_is_immediate() -> None:
    switch = RecordingSwitch()
    expired = threading.Event()
    heater = RefreshedHeater(switch, max_on_s=0.3, on_expired=expired.set)
    try:
        for _ in range(8):
            heater.on()
            time.sleep(0.05)
        assert switch.is_on and not expired.is_set()
        heater.off()
        assert not switch.is_on
        assert not expired.wait(timeout=0.4)  # off by request is not an expiry
        assert not heater.tripped
        heater.on()  # and heat may be asked for again
        assert switch.is_on
    finally:
        heater.close()


def test_after_an_expiry_on_raises_and_the_heater_stays_off() -> None:
    switch = RecordingSwitch()
    heater, _ = expired_heater(switch)
    try:
        calls_at_trip = len(switch.calls)
        with pytest.raises(DriverError, match=r"tripped.*reset at the mat"):
            heater.on()
        assert not switch.is_on
        assert "on" not in switch.calls[calls_at_trip:]
        assert heater.tripped
        with pytest.raises(DriverError, match="tripped"):
            heater.on()  # still latched: no number of retries gets heat back
        assert not switch.is_on and heater.tripped
    finally:
        heater.close()


def test_rearm_allows_heat_again_and_the_dead_man_still_watches() -> None:
    switch = RecordingSwitch()
    heater, expired = expired_heater(switch)
    try:
        heater.rearm()
        assert not heater.tripped
        expired.clear()
        heater.on()
        assert switch.is_on
        assert expired.wait(timeout=WAIT_S), "no expiry after rearm"
        assert not switch.is_on and heater.tripped
    finally:
        heater.close()


def test_on_after_close_does_nothing() -> None:
    switch = RecordingSwitch()
    heater = RefreshedHeater(switch, max_on_s=1.0)
    heater.close()
    heater.on()
    assert not switch.is_on
