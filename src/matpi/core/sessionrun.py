"""A session under way, and the arithmetic on it that needs nothing else (pure).

`Run` is what the session machine keeps of the session or preheat in progress;
the functions here change a program as an Adjust asks and decide the dose
step-down and stop, from the run and the budgets left.
"""

from dataclasses import dataclass, field, replace

from matpi.core.events import Adjust, HeatSteppedDown, HeatStopped, Notice, Source
from matpi.core.programs import HeatLevel, Program
from matpi.core.thermal import DoseMeter

DOSE_STEP_DOWN_AT = 0.75
"""Share of the dose limit at which the heat level steps down once, as heated seats do."""

_LOWER = {HeatLevel.HIGH: HeatLevel.MEDIUM, HeatLevel.MEDIUM: HeatLevel.LOW,
          HeatLevel.LOW: HeatLevel.OFF, HeatLevel.OFF: HeatLevel.OFF}


@dataclass
class Run:
    """A session under way, or a preheat waiting for its press (`preheat`)."""

    program: Program
    planned_s: float
    started_at: float
    source: Source
    cut_by_daily_limit: bool = False
    preheat: bool = False
    dose: DoseMeter = field(default_factory=DoseMeter)
    dose_before: float = 0.0
    """Dose of the preheat this session grew out of: the session's limit counts it."""
    preheat_s: float = 0.0
    """Heat time of that preheat: the session's 30-minute ceiling counts it too."""
    heat_stopped: bool = False
    heat_cap: HeatLevel | None = None
    """After the dose step-down, the highest level this session may use."""


def changed(program: Program, change: Adjust) -> Program:
    """`program` with the settings an Adjust names; the rest as they were."""
    return replace(
        program,
        heat=program.heat if change.heat is None else change.heat,
        pattern=program.pattern if change.pattern is None else change.pattern,
        intensity_pct=(
            program.intensity_pct if change.intensity_pct is None else change.intensity_pct
        ),
        breaths_per_min=(
            program.breaths_per_min if change.breaths_per_min is None else change.breaths_per_min
        ),
    )


def rank(level: HeatLevel) -> int:
    """Heat levels in order: OFF lowest."""
    return list(HeatLevel).index(level)


def limit_dose(session: Run, session_left: float, daily_left: float) -> list[Notice]:
    """Step the heat down at 75 % of the dose limit; stop it at the limit.

    The limit is the tighter of the session's (its preheat included) and what is
    left of the day's budget. Each happens once a session; `session` keeps it.
    """
    limit = min(session_left, daily_left)
    which = "the session's" if session_left <= daily_left else "today's"
    dose = session.dose.total
    if not session.heat_stopped and dose >= limit:
        session.heat_stopped = True
        return [HeatStopped(f"thermal dose reached {which} limit ({dose:.2f} of "
                            f"{max(limit, 0.0):.2f} CEM43 left): heat off, vibration goes on")]
    if session.heat_cap is None and dose >= DOSE_STEP_DOWN_AT * limit:
        lower = _LOWER[session.program.heat]
        session.heat_cap = lower
        session.program = replace(session.program, heat=lower)
        return [HeatSteppedDown(lower, f"thermal dose {dose:.2f} CEM43 is "
                                       f"{DOSE_STEP_DOWN_AT:.0%} of {which} limit "
                                       f"({limit:.2f})")]
    return []
