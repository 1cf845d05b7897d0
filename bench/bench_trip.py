"""Over-temperature reading in -> heater output off, through the controller thread.

Prints p50 and p99 over N trips (default 1,000). Each trip: the heater is on
in a running session, one over-temperature reading is posted to the
controller's queue (as the thermometer poller does), and the time until the
simulated heater relay is told off is measured with perf_counter_ns. (The
first hot reading switches heat off; the median of three would latch the fault only
on the second, which never comes.)

    .venv/bin/python bench/bench_trip.py [--trips 1000]
"""

import argparse
import statistics
import threading
import time

from matpi.core.events import Reading, Source, Start
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.drivers.base import MatDrivers
from matpi.drivers.clock import Clock
from matpi.drivers.sim import SimulatedMat
from matpi.service.controller import Controller


class TimedHeater:
    """The simulated heater relay, stamping each switch-off."""

    def __init__(self, drivers: MatDrivers) -> None:
        self._inner = drivers.heater
        self.is_on = False
        self.off_at_ns = 0
        self.changed = threading.Event()

    def on(self) -> None:
        self._inner.on()
        if not self.is_on:
            self.is_on = True
            self.changed.set()

    def off(self) -> None:
        self._inner.off()
        if self.is_on:
            self.off_at_ns = time.perf_counter_ns()
            self.is_on = False
            self.changed.set()

    def close(self) -> None:
        self._inner.close()


def wait_until(heater: TimedHeater, on: bool) -> None:
    deadline = time.monotonic() + 5.0
    while heater.is_on != on:
        heater.changed.clear()
        if heater.is_on == on:
            break
        if not heater.changed.wait(timeout=max(deadline - time.monotonic(), 0.0)):
            raise SystemExit(f"heater never went {'on' if on else 'off'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=1000)
    args = parser.parse_args()

    clock = Clock()
    drivers = SimulatedMat(clock).drivers()
    heater = TimedHeater(drivers)
    drivers.heater = heater
    # An SSR has no minimum off-time, so every trip can heat again at once: all trips fit
    # in one session, in real time (the clock is never moved: a jump would be a stale sensor).
    rules = Rules(session_max_min=30.0, daily_max_min=120.0, heater_kind="ssr")
    machine = SessionMachine(rules, clock.now(), clock.today())
    controller = Controller(machine, drivers, clock)
    thread = threading.Thread(target=controller.run)
    thread.start()
    latencies_us: list[float] = []
    try:
        def read_all(value_c: float) -> None:
            """Heat needs every sensor fresh (two by default): all of them read."""
            for name in rules.sensors:
                controller.post(Reading(name, value_c))

        for _ in range(3):
            read_all(30.0)
        controller.post(Start(Source.LOCAL, "deep"))
        for _ in range(args.trips):
            for _ in range(3):  # flush the median filter: each trip is one hot reading
                read_all(30.0)
            wait_until(heater, on=True)
            sent_ns = time.perf_counter_ns()
            controller.post(Reading("mat", 46.0))
            wait_until(heater, on=False)
            latencies_us.append((heater.off_at_ns - sent_ns) / 1000.0)
    finally:
        controller.request_stop()
        thread.join()
    ordered = sorted(latencies_us)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(f"over-temperature reading -> heater off, {len(ordered)} trips through the controller")
    print(f"  p50 {statistics.median(ordered):8.1f} µs")
    print(f"  p99 {p99:8.1f} µs")
    print(f"  max {ordered[-1]:8.1f} µs")


if __name__ == "__main__":
    main()
