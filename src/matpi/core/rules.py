"""The settings the pure core runs by, checked against the ceilings in `limits`.

`config.py` turns a TOML file into these with friendly messages, reading its
bounds from `BOUNDS` here; `Rules` checks every value again itself (finite, in
range, within the ceilings, no overshoot past the setpoint), so that no caller
can build a core with a raised limit or a NaN.
"""

import math
from dataclasses import dataclass, field

from matpi.core import limits
from matpi.core.padmodel import PadModel
from matpi.core.patterns import MAX_BREATHS_PER_MIN, MIN_BREATHS_PER_MIN
from matpi.core.programs import BUILTIN_PROGRAMS, DEFAULT_PROGRAM, HeatLevel, Program


class CeilingError(ValueError):
    """A setting asked for more than a matpi safety ceiling allows."""


BOUNDS: dict[str, tuple[float, float]] = {
    "session_max_min": (1.0, limits.MAX_SESSION_MIN),
    "trip_c": (38.0, limits.TRIP_C),
    "dose_max_cem43": (0.1, limits.MAX_DOSE_CEM43),
    "daily_dose_max_cem43": (0.1, limits.MAX_DAILY_DOSE_CEM43),
    "cooldown_min": (limits.MIN_COOLDOWN_MIN, 240.0),
    # 0 is what an unusable history leaves: no session at all.
    "daily_max_min": (0.0, limits.MAX_DAILY_MIN),
    "preheat_max_min": (1.0, limits.MAX_PREHEAT_MIN),
    "reset_below_c": (20.0, limits.MAX_RESET_BELOW_C),
    "hysteresis_c": (0.1, 3.0),
    "min_on_s": (1.0, 300.0),
    "min_off_s": (1.0, 300.0),
    "ssr_window_s": (2.0, 30.0),
    "ssr_band_c": (0.5, 5.0),
    "check_gain_c": (0.5, 5.0),
    "check_window_s": (10.0, limits.MAX_CHECK_WINDOW_S),
    "check_band_c": (0.0, 2.0),
    "check_max_error_cs": (10.0, limits.MAX_CHECK_ERROR_CS),
    "runaway_settle_s": (0.0, 120.0),
    "runaway_window_s": (10.0, 300.0),
    "runaway_rise_c": (0.3, limits.MAX_RUNAWAY_RISE_C),
    "vacated_grace_s": (5.0, limits.MAX_VACATED_GRACE_S),
}
"""Allowed range of each numeric setting: the ceilings, and what keeps a guard meaningful."""

RELAY_MIN_TIME_S = 10.0
"""A mechanical relay switched faster than this wears out within months (SAFETY.md)."""

SETPOINT_LOW_C = 25.0

PAD_BOUNDS: dict[str, tuple[float, float]] = {
    "heater_w": (5.0, 1000.0),
    "capacity_j_per_k": (50.0, 100000.0),
    "room_loss_w_per_k": (0.1, 100.0),
    "body_w_per_k": (0.0, 100.0),
    "room_c": (5.0, 35.0),
    "body_c": (30.0, 37.0),
}
"""Plausible constants of a pad model (see `matpi.core.padmodel`)."""


@dataclass(frozen=True)
class Rules:
    """Limits, setpoints and programs of one mat. Defaults are the safe side."""

    session_max_min: float = limits.MAX_SESSION_MIN
    trip_c: float = limits.TRIP_C
    dose_max_cem43: float = limits.MAX_DOSE_CEM43
    daily_dose_max_cem43: float = limits.MAX_DAILY_DOSE_CEM43
    cooldown_min: float = 10.0
    daily_max_min: float = 60.0
    preheat_max_min: float = limits.MAX_PREHEAT_MIN
    reset_below_c: float = limits.MAX_RESET_BELOW_C
    setpoints_c: dict[HeatLevel, float] = field(
        default_factory=lambda: {HeatLevel.LOW: 37.0, HeatLevel.MEDIUM: 39.0, HeatLevel.HIGH: 41.0}
    )
    heater_kind: str = "relay"
    """"relay": on/off with minimum times; "ssr": time-proportioning."""
    hysteresis_c: float = 0.5
    min_on_s: float = 30.0
    min_off_s: float = 30.0
    ssr_window_s: float = 10.0
    ssr_band_c: float = 2.0
    check_gain_c: float = 1.0
    check_window_s: float = 60.0
    check_band_c: float = 0.0
    check_max_error_cs: float = 120.0
    runaway_settle_s: float = 30.0
    runaway_window_s: float = 60.0
    runaway_rise_c: float = 1.0
    pad: PadModel = field(default_factory=PadModel)
    """The pad's thermal model: the overshoot check and the estimate beside the sensor."""
    sensors: tuple[str, ...] = ("mat", "mat2")
    """Heat follows the hotter: one sensor that reads low cannot overheat the mat."""
    programs: dict[str, Program] = field(default_factory=lambda: dict(BUILTIN_PROGRAMS))
    default_program: str = DEFAULT_PROGRAM
    motor_kind: str = "pwm"
    """"pwm": any duty; "relay": on/off only, so `breathe` shows its on/off form."""
    occupancy_sensor: bool = False
    """An occupancy sensor is wired: heat and vibration only while someone lies on the
    mat, which counts as empty until the sensor says otherwise."""
    vacated_grace_s: float = 60.0
    """With the sensor: how long a session waits, paused, for its person to come back."""

    def __post_init__(self) -> None:
        for problem in ceiling_problems(self):
            raise CeilingError(problem)

    def setpoint(self, level: HeatLevel) -> float | None:
        return None if level is HeatLevel.OFF else self.setpoints_c[level]

    def worst_overshoot_c(self, setpoint_c: float) -> float:
        """How far above `setpoint_c` the heater control can push a bare pad on `pad`.

        A relay comes on `hysteresis_c` below and must stay on `min_on_s`; an SSR
        at full duty for one window from `ssr_band_c` below.
        """
        if self.heater_kind == "ssr":
            return self.pad.overshoot_c(setpoint_c, self.ssr_band_c, self.ssr_window_s)
        return self.pad.overshoot_c(setpoint_c, self.hysteresis_c, self.min_on_s)


def _in_range(problems: list[str], name: str, value: float, low: float, high: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f"{name} = {value!r} must be a finite number")
        return False
    if not low <= value <= high:
        problems.append(f"{name} = {value:g} must be {low:g} to {high:g} (matpi bounds)")
        return False
    return True


def ceiling_problems(rules: Rules) -> list[str]:
    """Every way `rules` leaves its bounds or exceeds a safety ceiling, as sentences."""
    problems: list[str] = []
    numbers_ok = all([_in_range(problems, name, getattr(rules, name), low, high)
                      for name, (low, high) in BOUNDS.items()])
    pad_ok = all([_in_range(problems, f"pad {name}", getattr(rules.pad, name), low, high)
                  for name, (low, high) in PAD_BOUNDS.items()])
    if rules.heater_kind not in ("relay", "ssr"):
        problems.append(f"heater_kind {rules.heater_kind!r} must be relay or ssr")
    elif rules.heater_kind == "relay":
        for name in ("min_on_s", "min_off_s"):
            if getattr(rules, name) < RELAY_MIN_TIME_S:
                problems.append(f"{name} = {getattr(rules, name):g} must be at least "
                                f"{RELAY_MIN_TIME_S:g} for a relay (contact wear)")
    setpoint_high = min(limits.MAX_SETPOINT_C, rules.trip_c - 1.0)
    setpoints_ok = True
    for level in (HeatLevel.LOW, HeatLevel.MEDIUM, HeatLevel.HIGH):
        setpoint = rules.setpoints_c.get(level)
        if setpoint is None:
            problems.append(f"setpoint {level} is missing")
            setpoints_ok = False
        else:
            setpoints_ok &= _in_range(problems, f"setpoint {level}", setpoint, SETPOINT_LOW_C,
                                      setpoint_high)
    if numbers_ok and pad_ok and setpoints_ok and rules.heater_kind in ("relay", "ssr"):
        problems += _overshoot_problems(rules)
    for program in rules.programs.values():
        _in_range(problems, f"program {program.name} duration_min", program.duration_min,
                  1.0, rules.session_max_min)
        _in_range(problems, f"program {program.name} intensity_pct", program.intensity_pct,
                  0.0, 100.0)
        _in_range(problems, f"program {program.name} breaths_per_min", program.breaths_per_min,
                  MIN_BREATHS_PER_MIN, MAX_BREATHS_PER_MIN)
        if program.progression:
            _in_range(problems, f"program {program.name} max_duration_min",
                      program.max_duration_min, program.duration_min, rules.session_max_min)
            _in_range(problems, f"program {program.name} step_min", program.step_min, 0.0, 10.0)
    if rules.motor_kind not in ("pwm", "relay"):
        problems.append(f"motor_kind {rules.motor_kind!r} must be pwm or relay")
    if rules.default_program not in rules.programs:
        problems.append(f"default_program {rules.default_program!r} is not a known program")
    if len(set(rules.sensors)) < 2:
        problems.append(f"sensors = {list(rules.sensors)}: two temperature sensors are needed; "
                        "heat follows the hotter, so one that reads low cannot overheat the mat")
    return problems


def _overshoot_problems(rules: Rules) -> list[str]:
    worst = max(rules.setpoints_c.values(), key=rules.worst_overshoot_c)
    overshoot = rules.worst_overshoot_c(worst)
    if overshoot <= limits.MAX_OVERSHOOT_C:
        return []
    if rules.heater_kind == "ssr":
        keys = f"window_s = {rules.ssr_window_s:g} with band_c = {rules.ssr_band_c:g}"
        fix = "a shorter window_s or a wider band_c"
    else:
        keys = f"min_on_s = {rules.min_on_s:g} with hysteresis_c = {rules.hysteresis_c:g}"
        fix = "a shorter min_on_s or a wider hysteresis_c"
    return [f"{keys} overshoots the {worst:g} °C setpoint by {overshoot:.1f} °C on the pad "
            f"model (at most {limits.MAX_OVERSHOOT_C:g} °C allowed): choose {fix}"]
