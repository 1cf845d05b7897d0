"""`matpi selftest`: for the installer, each part of a freshly wired mat in turn.

Sensors are read first (a wrong wiring shows before anything switches), then
every output is switched on briefly (the heater for at most 1 s), then the
button must be pressed, and someone must lie down on the mat and get up again
(with an occupancy sensor). Each part gets one row: PASS or FAIL and why.
"""

import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from matpi.core import limits
from matpi.core.events import DoublePress, Event, Led, LongPress, Occupancy, Press
from matpi.drivers.base import MatDrivers

MAX_HEATER_ON_S = 1.0
OUTPUT_ON_S = 1.0


@dataclass(frozen=True)
class Check:
    part: str
    passed: bool
    detail: str


def run_selftest(
    drivers: MatDrivers,
    gestures: "queue.SimpleQueue[Event]",
    *,
    has_button: bool,
    has_occupancy: bool = False,
    button_timeout_s: float = 30.0,
    say: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Check]:
    """Exercise every part once; outputs are off again whatever happens."""
    checks = [_read(t.name, t.read) for t in drivers.thermometers]
    try:
        checks.append(_pulse("heater", drivers.heater.on, drivers.heater.off, MAX_HEATER_ON_S,
                             say, sleep))
        if drivers.power is not None:
            checks.append(_pulse("power relay", drivers.power.on, drivers.power.off,
                                 OUTPUT_ON_S, say, sleep))
        checks.append(_pulse("vibration", lambda: drivers.motor.set_duty(0.5),
                             drivers.motor.off, OUTPUT_ON_S, say, sleep))
        checks.append(_led(drivers, say, sleep))
    finally:
        drivers.all_off()
    if has_button:
        checks.append(_button(gestures, button_timeout_s, say))
    if has_occupancy:
        checks.append(_occupancy(gestures, button_timeout_s, say))
    return checks


def _read(name: str, read: Callable[[], object]) -> Check:
    part = f"sensor {name}"
    try:
        reading = read()
    except Exception as exc:
        return Check(part, False, f"read failed: {exc}")
    value = getattr(reading, "value_c", None)
    if value is None:
        return Check(part, False, getattr(reading, "error", None) or "no value")
    if not limits.SENSOR_MIN_C <= value <= limits.SENSOR_MAX_C:
        return Check(part, False, f"{value:.1f} °C is outside {limits.SENSOR_MIN_C:g}-"
                                  f"{limits.SENSOR_MAX_C:g} °C: open or shorted?")
    return Check(part, True, f"{value:.1f} °C")


def _pulse(
    part: str, on: Callable[[], None], off: Callable[[], None], seconds: float,
    say: Callable[[str], None], sleep: Callable[[float], None],
) -> Check:
    say(f"{part}: on for {seconds:g} s, listen for the click ...")
    try:
        on()
        sleep(seconds)
    except Exception as exc:
        return Check(part, False, f"could not switch on: {exc}")
    finally:
        off()
    return Check(part, True, f"switched on for {seconds:g} s, then off")


def _led(drivers: MatDrivers, say: Callable[[str], None], sleep: Callable[[float], None]) -> Check:
    say("status LED: showing each pattern for 1 s ...")
    try:
        for led in Led:
            drivers.indicator.show(led)
            sleep(1.0)
        drivers.indicator.show(Led.IDLE)
    except Exception as exc:
        return Check("status LED", False, str(exc))
    return Check("status LED", True, "showed " + ", ".join(led.value for led in Led))


def _arrivals(gestures: "queue.SimpleQueue[Event]", timeout_s: float) -> Iterator[Event]:
    """The events the drivers post, as they come, until `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            yield gestures.get(timeout=left)
        except queue.Empty:
            return


def _button(
    gestures: "queue.SimpleQueue[Event]", timeout_s: float, say: Callable[[str], None]
) -> Check:
    say(f"button: press the button on the mat now (waiting {timeout_s:g} s) ...")
    for event in _arrivals(gestures, timeout_s):
        if isinstance(event, Press | LongPress | DoublePress):
            return Check("button", True, f"{type(event).__name__} seen")
    return Check("button", False, f"no press within {timeout_s:g} s: check the wiring to GND")


def _occupancy(
    gestures: "queue.SimpleQueue[Event]", timeout_s: float, say: Callable[[str], None]
) -> Check:
    """Both edges: a sensor that only ever reads one level would pass on one."""
    say(f"occupancy sensor: lie down on the mat, then get up (waiting {timeout_s:g} s) ...")
    wanted = [True, False]
    for event in _arrivals(gestures, timeout_s):
        if isinstance(event, Occupancy) and event.occupied == wanted[0]:
            wanted.pop(0)
            if not wanted:
                break
    if not wanted:
        return Check("occupancy sensor", True, "saw someone lie down and get up")
    missing = "lie down" if wanted == [True, False] else "get up"
    return Check("occupancy sensor", False,
                 f"did not see anyone {missing} within {timeout_s:g} s: check the wiring, "
                 "and [occupancy] active_high")


def table(checks: list[Check]) -> str:
    """The result as an aligned text table."""
    width = max(len(c.part) for c in checks)
    rows = [f"{'part':<{width}}  result  detail"]
    rows += [f"{c.part:<{width}}  {'PASS' if c.passed else 'FAIL':<6}  {c.detail}" for c in checks]
    return "\n".join(rows)
