"""The settings the pure core runs by, checked against the ceilings in `limits`.

`config.py` turns a TOML file into these with friendly messages; the checks
here are the last word, so that no caller can build a core with a raised limit.
"""

from dataclasses import dataclass, field

from matpi import limits
from matpi.programs import BUILTIN_PROGRAMS, DEFAULT_PROGRAM, HeatLevel, Program


class CeilingError(ValueError):
    """A setting asked for more than a matpi safety ceiling allows."""


@dataclass(frozen=True)
class Rules:
    """Limits, setpoints and programs of one mat. Defaults are the safe side."""

    session_max_min: float = limits.MAX_SESSION_MIN
    trip_c: float = limits.TRIP_C
    dose_max_cem43: float = limits.MAX_DOSE_CEM43
    cooldown_min: float = 10.0
    daily_max_min: float = 60.0
    preheat_max_min: float = 10.0
    reset_below_c: float = 35.0
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
    sensors: tuple[str, ...] = ("mat",)
    programs: dict[str, Program] = field(default_factory=lambda: dict(BUILTIN_PROGRAMS))
    default_program: str = DEFAULT_PROGRAM
    remote_start_needs_press: bool = True

    def __post_init__(self) -> None:
        for problem in ceiling_problems(self):
            raise CeilingError(problem)

    def setpoint(self, level: HeatLevel) -> float | None:
        return None if level is HeatLevel.OFF else self.setpoints_c[level]


def ceiling_problems(rules: Rules) -> list[str]:
    """Every way `rules` exceeds a safety ceiling, as readable sentences."""
    problems: list[str] = []

    def at_most(name: str, value: float, ceiling: float) -> None:
        if value > ceiling:
            problems.append(f"{name} = {value:g} is above the matpi ceiling of {ceiling:g}")

    at_most("session_max_min", rules.session_max_min, limits.MAX_SESSION_MIN)
    at_most("trip_c", rules.trip_c, limits.TRIP_C)
    at_most("dose_max_cem43", rules.dose_max_cem43, limits.MAX_DOSE_CEM43)
    at_most("daily_max_min", rules.daily_max_min, limits.MAX_DAILY_MIN)
    at_most("preheat_max_min", rules.preheat_max_min, limits.MAX_PREHEAT_MIN)
    if rules.cooldown_min < limits.MIN_COOLDOWN_MIN:
        problems.append(
            f"cooldown_min = {rules.cooldown_min:g} is below the matpi floor of "
            f"{limits.MIN_COOLDOWN_MIN:g}"
        )
    for level, setpoint in rules.setpoints_c.items():
        at_most(f"setpoint {level}", setpoint, min(limits.MAX_SETPOINT_C, rules.trip_c - 1.0))
    for program in rules.programs.values():
        at_most(f"program {program.name} duration_min", program.duration_min, rules.session_max_min)
        if program.progression:
            at_most(
                f"program {program.name} max_duration_min",
                program.max_duration_min,
                rules.session_max_min,
            )
    if rules.default_program not in rules.programs:
        problems.append(f"default_program {rules.default_program!r} is not a known program")
    at_most("check_window_s", rules.check_window_s, limits.MAX_CHECK_WINDOW_S)
    at_most("check_max_error_cs", rules.check_max_error_cs, limits.MAX_CHECK_ERROR_CS)
    at_most("runaway_rise_c", rules.runaway_rise_c, limits.MAX_RUNAWAY_RISE_C)
    if rules.heater_kind not in ("relay", "ssr"):
        problems.append(f"heater_kind {rules.heater_kind!r} must be relay or ssr")
    if not rules.sensors:
        problems.append("at least one temperature sensor is needed")
    return problems
