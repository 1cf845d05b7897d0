"""Press at the mat -> heater on: the button's release to the heater pin, on mock GPIO.

Builds the real GPIO mat (the example config with gpiozero's mock pins, two fake
DS18B20 files at 23 °C), its controller and sensor poller, and for each trial a
fresh session machine: it presses the button for 100 ms and times, from the release,

- release -> Press posted: gesture decoding, bounded below by the double-press window
  (`[button] double_press_s`, 0.35 s by default: a single press is only known to be
  single once that window has passed);
- Press posted -> heater pin on: the controller's queue, the session machine, the
  heater driver;
- the whole, release -> heater on.

One uncounted trial comes first: the first mat pays for cold imports and caches.
Target (issue #17): release -> heater on, p99 <= 100 ms. The double-press window bounds it
from below, with the button's settle after it: at 0.1 s, the least the config allows, that
is already 150 ms, so the target is missed at every window the config allows.

    PYTHONPATH=src .venv/bin/python bench/bench_press.py               # 50 trials
    PYTHONPATH=src .venv/bin/python bench/bench_press.py --double-press-s 0.1
"""

import argparse
import queue
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench_daemon import EXAMPLE, fake_w1  # a script beside this one
from soak import percentile  # a script beside this one

from matpi.config.load import load_config
from matpi.config.settings import Config
from matpi.core.events import Event, Press
from matpi.core.session import SessionMachine
from matpi.drivers.clock import Clock
from matpi.drivers.hardware import build_gpio_mat
from matpi.drivers.polling import ThermometerPoller
from matpi.service.controller import Controller

HEATER_PIN, BUTTON_PIN = 5, 27
HELD_S = 0.1
TIMEOUT_S = 5.0
TARGET_MS = 100.0
"""Issue #17: press at the mat -> heater on, p99 at most this after the release."""


class PressTimes:
    """Stamps the Press the button posts, on its way into the controller's inbox."""

    def __init__(self, inbox: "queue.SimpleQueue[Event]") -> None:
        self._inbox = inbox
        self.press_at: float | None = None

    def post(self, event: Event) -> None:
        if isinstance(event, Press):
            self.press_at = time.perf_counter()
        self._inbox.put(event)


def wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {TIMEOUT_S:g} s")
        time.sleep(0.0002)


def trial(config: Config, w1: Path) -> tuple[float, float]:
    """(release -> Press posted, Press posted -> heater on), in seconds, for one fresh mat."""
    inbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
    stamps = PressTimes(inbox)
    drivers = build_gpio_mat(config.hardware, stamps.post, w1_dir=w1)
    heater, button = drivers.pin_factory.pin(HEATER_PIN), drivers.pin_factory.pin(BUTTON_PIN)
    clock = Clock()
    machine = SessionMachine(config.rules, clock.now(), clock.today())
    controller = Controller(machine, drivers, clock, inbox=inbox)
    poller = ThermometerPoller(drivers.thermometers, controller.post, clock, 0.25)
    thread = threading.Thread(target=controller.run, name="matpi-controller")
    thread.start()
    poller.start()
    try:
        wait(lambda: machine.snapshot(clock.now()).temperature_c is not None, "reading")
        button.drive_low()
        time.sleep(HELD_S)
        released_at = time.perf_counter()
        button.drive_high()
        wait(lambda: heater.state == 0, "heater on")  # the example's relay is active-low
        on_at = time.perf_counter()
        assert stamps.press_at is not None
        return stamps.press_at - released_at, on_at - stamps.press_at
    finally:
        controller.request_stop("bench done")
        thread.join(timeout=TIMEOUT_S)
        poller.close()
        drivers.close()


def row(name: str, seconds: list[float]) -> str:
    ms = [s * 1000.0 for s in seconds]
    return (f"{name:<28} {statistics.median(ms):9.2f} {percentile(ms, 99):9.2f} "
            f"{max(ms):9.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--double-press-s", type=float, default=0.35,
                        help="the button's double-press window (0.1 to 1.0; default 0.35)")
    args = parser.parse_args()
    print("$", shlex.join([sys.executable, *sys.argv]))
    with tempfile.TemporaryDirectory(prefix="matpi-bench-press-") as folder:
        config_path = Path(folder) / "mock.toml"
        config_path.write_text(EXAMPLE.read_text().replace('pin_factory = "auto"',
                                                          'pin_factory = "mock"'))
        w1 = fake_w1(Path(folder) / "w1")
        config = load_config(config_path)
        button = replace(config.hardware.button, double_press_s=args.double_press_s)
        config = replace(config, hardware=replace(config.hardware, button=button))
        settle_s = button.bounce_s
        trial(config, w1)  # warm-up, not counted
        results = [trial(config, w1) for _ in range(args.trials)]
    decode = [r[0] for r in results]
    act = [r[1] for r in results]
    total = [d + a for d, a in results]
    print(f"{args.trials} presses after one to warm up, double-press window "
          f"{args.double_press_s * 1000:.0f} ms")
    print(f"{'ms':<28} {'p50':>9} {'p99':>9} {'max':>9}")
    print(row("release -> Press posted", decode))
    print(row("Press posted -> heater on", act))
    print(row("release -> heater on", total))
    p99_ms = percentile([s * 1000.0 for s in total], 99)
    print(f"target (issue #17): release -> heater on p99 <= {TARGET_MS:g} ms: {p99_ms:.2f} ms "
          f"{'ok' if p99_ms <= TARGET_MS else 'MISSED'}: a single press is only known once "
          "the double-press window has passed")
    print(f"bound: the double-press window ({args.double_press_s * 1000:.0f} ms) plus the "
          f"button's {1000 * settle_s:.0f} ms settle; "
          "the rest is the controller")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
