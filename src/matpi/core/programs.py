"""Named session programs and the beginner's progression.

The built-ins follow the usual guidance for acupressure mats: start with a few
minutes, lengthen the sessions over the first weeks, 20-30 min at most.
"""

from dataclasses import dataclass
from enum import StrEnum

from matpi.core.patterns import DEFAULT_BREATHS_PER_MIN, Pattern


class HeatLevel(StrEnum):
    """Heat levels; each maps to a surface setpoint in the config."""

    OFF = "off"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class Program:
    """What one session does: how long, how warm, how it vibrates.

    `progression` programs start at `duration_min` and grow by `step_min` for
    each day with a completed session, up to `max_duration_min`.
    """

    name: str
    duration_min: float
    heat: HeatLevel
    pattern: Pattern
    intensity_pct: float
    progression: bool = False
    step_min: float = 0.0
    max_duration_min: float = 0.0
    breaths_per_min: float = DEFAULT_BREATHS_PER_MIN
    """The pace of the `breathe` pattern (4..8, `patterns.MIN/MAX_BREATHS_PER_MIN`)."""

    def planned_min(self, completed_days: int) -> float:
        """Session length given the number of days with a completed session."""
        if not self.progression:
            return self.duration_min
        grown = self.duration_min + self.step_min * max(completed_days, 0)
        return min(grown, self.max_duration_min)


BUILTIN_PROGRAMS: dict[str, Program] = {
    p.name: p
    for p in (
        Program(
            "beginner", 5.0, HeatLevel.LOW, Pattern.STEADY, 30.0,
            progression=True, step_min=1.0, max_duration_min=20.0,
        ),
        Program("neck", 10.0, HeatLevel.LOW, Pattern.WAVE, 30.0),
        Program("back", 20.0, HeatLevel.MEDIUM, Pattern.WAVE, 60.0),
        Program("evening", 20.0, HeatLevel.LOW, Pattern.BREATHE, 40.0),
        Program("deep", 30.0, HeatLevel.HIGH, Pattern.PULSE, 80.0),
    )
}

DEFAULT_PROGRAM = "beginner"
