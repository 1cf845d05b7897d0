"""The figures behind issue #13: each hazard played on the simulated pad, as the tests do.

Prints, per hazard, the pad's true peak while current flowed in the element,
the thermal dose the person received (from the true surface temperature), the
heated minutes and how the mat ended up. It reuses the fault-injection rig of
tests/test_faults.py, so run it from a checkout:

    .venv/bin/python bench/hazard_figures.py
"""

import sys
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from matpi.core.events import Press, Reading, Source, Start, Stop
from matpi.core.padmodel import PadModel
from matpi.core.programs import HeatLevel
from matpi.core.rules import Rules
from matpi.core.thermal import cem43_per_min
from matpi.drivers.sim import SimFault
from test_faults import Rig


def _figures(rig: Rig) -> str:
    log = [(t, c) for t, c, _ in rig.truth_log]
    dose = sum(cem43_per_min(c) * (t1 - t0) / 60.0 for (t0, c), (t1, _) in pairwise(log))
    steps = [(t, heating) for t, _, heating in rig.truth_log]
    heated_min = sum(t1 - t0 for (t0, heating), (t1, _) in pairwise(steps) if heating) / 60.0
    state = rig.machine.fault or rig.machine.state.value
    return (f"peak {rig.hottest_while_heating():5.1f} °C  dose {dose:5.2f} CEM43  "
            f"heated {heated_min:5.1f} min  -> {state[:60]}")


def start_stop_loop() -> Rig:
    rig = Rig(rules=Rules(daily_max_min=120.0, cooldown_min=5.0))
    for _ in range(8 * 60):
        rig.send(Start(Source.REMOTE, "deep"))
        rig.run(50.0)
        rig.send(Stop(Source.REMOTE))
        rig.run(10.0)
    return rig


def welded() -> Rig:
    rig = Rig()
    rig.start()
    rig.pad.inject(SimFault.RELAY_WELDED)
    rig.run(60 * 60)
    return rig


def overshoot_config() -> Rig:
    rig = Rig(rules=Rules(pad=PadModel(heater_w=40.0), min_on_s=300.0, hysteresis_c=3.0))
    rig.start()
    rig.run(20 * 60)
    return rig


def offset(offset_c: float, *sensors: str) -> Callable[[], Rig]:
    """`sensors` (all when none are named) read `offset_c` off the true surface."""
    def play() -> Rig:
        rig = Rig()
        wrong = set(sensors or rig.rules.sensors)
        rig.override = lambda r: r if r.sensor not in wrong or r.value_c is None else Reading(
            r.sensor, r.value_c + offset_c)
        rig.run(2.0)
        rig.send(Start(Source.LOCAL, "deep"))
        rig.run(40 * 60)
        return rig
    return play


def preheat_then_session() -> Rig:
    rig = Rig(rules=Rules(daily_max_min=30.0, cooldown_min=5.0))
    rig.run(2.0)
    rig.send(Start(Source.REMOTE, "deep"))
    rig.run(9 * 60)
    rig.send(Press())
    rig.run(30 * 60)
    return rig


def daily_dose() -> Rig:
    setpoints = {HeatLevel.LOW: 37.0, HeatLevel.MEDIUM: 39.0, HeatLevel.HIGH: 42.0}
    rig = Rig(rules=Rules(setpoints_c=setpoints, daily_max_min=120.0, cooldown_min=5.0))
    rig.run(2.0)
    for _ in range(4):
        rig.send(Start(Source.LOCAL, "deep"))
        rig.run(36 * 60)
    return rig


HAZARDS: dict[str, Callable[[], Rig]] = {
    "1 remote start/stop loop, 8 h": start_stop_loop,
    "2 welded heater relay, 1 h": welded,
    "3 relay held 300 s, pad faster than its model": overshoot_config,
    "4 one sensor 2 °C low": offset(-2.0, "mat"),
    "4 one sensor 5 °C low": offset(-5.0, "mat"),
    "4 one sensor 10 °C low": offset(-10.0, "mat"),
    "4 both sensors 2 °C low (one cold spot)": offset(-2.0),
    "4 both sensors 5 °C low (one cold spot)": offset(-5.0),
    "7 preheat 9 min then a session, cap 30 min": preheat_then_session,
    "13 four 30-min sessions at 42 °C": daily_dose,
}


def main() -> None:
    for name, play in HAZARDS.items():
        print(f"{name:<48} {_figures(play())}")


if __name__ == "__main__":
    main()
