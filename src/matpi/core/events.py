"""What flows into and out of the pure core.

Edges (button, sensors, MQTT, web, signals) turn what happens into these
events and put them on the controller's queue; the core answers with notices
(for logs, MQTT events and history) and outputs (for the drivers).
"""

from dataclasses import dataclass, field
from enum import StrEnum

from matpi.core.patterns import DEFAULT_BREATHS_PER_MIN, Pattern
from matpi.core.programs import HeatLevel


class Source(StrEnum):
    """Where a command came from: only a local action may confirm or clear."""

    LOCAL = "local"
    REMOTE = "remote"


class State(StrEnum):
    """The session machine's states."""

    IDLE = "idle"
    PREHEAT = "preheat"
    RUNNING = "running"
    COOLDOWN = "cooldown"
    FAULT = "fault"


class Led(StrEnum):
    """What the status LED shows; one pattern per state, plus the remote-start wait."""

    IDLE = "idle"
    AWAITING_PRESS = "awaiting_press"
    RUNNING = "running"
    COOLDOWN = "cooldown"
    FAULT = "fault"
    NOBODY = "nobody"
    """Waiting for someone to lie on the mat: a press on an empty mat was refused, or
    a session is paused because its person got up (occupancy sensor only)."""


class EndReason(StrEnum):
    """Why a session or a preheat ended."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    FAULT = "fault"
    DAILY_LIMIT = "daily_limit"
    PREHEAT_TIMEOUT = "preheat_timeout"
    CONFIRMED = "confirmed"
    """A preheat that a press at the mat turned into a session."""
    VACATED = "vacated"
    """Nobody lay on the mat for the grace time (occupancy sensor only)."""


# --- events into the core -------------------------------------------------


@dataclass(frozen=True)
class Press:
    """A short press of the button on the mat."""


@dataclass(frozen=True)
class LongPress:
    """The button held down: stops a session, or clears a fault once cool."""


@dataclass(frozen=True)
class DoublePress:
    """Two quick presses: cycles the program while idle."""


@dataclass(frozen=True)
class Start:
    """Start a session; a remote start only preheats until someone presses at the mat."""

    source: Source
    program: str | None = None
    duration_min: float | None = None


@dataclass(frozen=True)
class Stop:
    """Stop a session or a preheat. Always allowed, from anywhere."""

    source: Source


@dataclass(frozen=True)
class SelectProgram:
    """Choose the program the next start uses."""

    program: str
    source: Source


@dataclass(frozen=True)
class Adjust:
    """Change heat, pattern, intensity or length of the chosen program (and of a running session).

    Fields left None stay as they are. The core checks every value against its limits.
    """

    source: Source
    heat: HeatLevel | None = None
    pattern: Pattern | None = None
    intensity_pct: float | None = None
    duration_min: float | None = None
    breaths_per_min: float | None = None
    """The pace of the `breathe` pattern."""


@dataclass(frozen=True)
class Reading:
    """One temperature sample: a value, or the error that stopped the sensor giving one."""

    sensor: str
    value_c: float | None
    error: str | None = None


@dataclass(frozen=True)
class Readings:
    """Every sensor read at one moment (the simulator's, the mat board's), taken in one step.

    A step per sensor would run the guards, the outputs and the snapshot once more for
    each: on an idle mat that is most of the controller's work every second. Sensors
    that block to read (a DS18B20 converts for 750 ms) come one `Reading` at a time.
    """

    readings: tuple[Reading, ...]


@dataclass(frozen=True)
class DriverFault:
    """A driver could not do its job (output failed, board lost): latches a fault."""

    reason: str


@dataclass(frozen=True)
class Occupancy:
    """The occupancy sensor, debounced: someone lies on the mat, or it is empty."""

    occupied: bool


@dataclass(frozen=True)
class Tick:
    """Time passed; sent by the controller when a deadline is due."""


@dataclass(frozen=True)
class ClockStepped:
    """The wall clock jumped (NTP after a boot without a clock battery, or by hand).

    The calendar day given with this event is the new one; the use already
    counted today stays counted: a step never frees minutes or dose.
    """


Event = (
    Press
    | LongPress
    | DoublePress
    | Start
    | Stop
    | SelectProgram
    | Adjust
    | Reading
    | Readings
    | DriverFault
    | Occupancy
    | Tick
    | ClockStepped
)


# --- notices out of the core ----------------------------------------------


class Gesture(StrEnum):
    PRESS = "press"
    LONG_PRESS = "long_press"
    DOUBLE_PRESS = "double_press"


@dataclass(frozen=True)
class ButtonGesture:
    """The button on the mat was used (whatever it then did)."""

    gesture: Gesture


@dataclass(frozen=True)
class SessionStarted:
    program: str
    planned_min: float
    source: Source


@dataclass(frozen=True)
class PreheatStarted:
    program: str
    until_min: float


@dataclass(frozen=True)
class SessionEnded:
    program: str
    reason: EndReason
    elapsed_s: float
    dose_cem43: float
    peak_c: float | None


@dataclass(frozen=True)
class PreheatEnded:
    """A preheat ended (confirmed, stopped, timed out): its heat counts towards the day."""

    program: str
    reason: EndReason
    elapsed_s: float
    dose_cem43: float
    peak_c: float | None


@dataclass(frozen=True)
class ClockSet:
    """The wall clock was set; the day's use carried over to `day` (an ISO date), so that
    a restart after the step still knows it."""

    day: str
    minutes_today: float
    dose_today: float
    preheat_ages_s: tuple[float, ...]
    """How long ago each unconfirmed preheat of the last hour started."""


@dataclass(frozen=True)
class FaultRaised:
    reason: str


@dataclass(frozen=True)
class FaultCleared:
    pass


@dataclass(frozen=True)
class HeatStopped:
    """Heat ended early in a session that goes on (the dose limit), and why."""

    reason: str


@dataclass(frozen=True)
class HeatSteppedDown:
    """Heat lowered for the rest of the session (the dose nears its limit), and why."""

    level: HeatLevel
    reason: str


@dataclass(frozen=True)
class ProgramSelected:
    program: str


@dataclass(frozen=True)
class Adjusted:
    """The chosen program's settings after an Adjust."""

    heat: HeatLevel
    pattern: Pattern
    intensity_pct: float
    planned_min: float
    breaths_per_min: float = DEFAULT_BREATHS_PER_MIN


@dataclass(frozen=True)
class Refused:
    """A command the core would not carry out, and why; nothing changed."""

    command: str
    reason: str


Notice = (
    ButtonGesture
    | SessionStarted
    | PreheatStarted
    | PreheatEnded
    | SessionEnded
    | ClockSet
    | FaultRaised
    | FaultCleared
    | HeatStopped
    | HeatSteppedDown
    | ProgramSelected
    | Adjusted
    | Refused
)


@dataclass(frozen=True)
class Breath:
    """A breathing pace to follow: breaths start at `origin` on the controller's clock."""

    origin: float
    breaths_per_min: float


@dataclass(frozen=True)
class Outputs:
    """Everything the drivers should show right now."""

    heater: bool
    vibration: float
    led: Led
    power: bool
    """The master relay feeding heater and motor: closed only during a session."""
    breath: Breath | None = None
    """While the `breathe` pattern runs: the pace a PWM status LED breathes with."""


@dataclass(frozen=True)
class Snapshot:
    """The state as the outside world sees it (MQTT, web, terminal)."""

    state: State
    program: str
    awaiting_press: bool
    elapsed_s: int
    remaining_s: int
    planned_min: float
    heat_level: HeatLevel
    setpoint_c: float | None
    temperature_c: float | None
    """The hottest sensor with a fresh, valid reading; None when none has one (a stale
    value is never shown as the mat's temperature)."""
    heater_on: bool
    pattern: Pattern
    intensity_pct: float
    vibration: float
    dose_cem43: float
    fault: str | None
    cooldown_remaining_s: int
    today_min: float
    daily_remaining_min: float
    dose_today_cem43: float
    """The day's thermal dose so far: sessions, preheats and the warm pad between them."""
    usage_day: str
    """The calendar day (ISO date) that today's minutes and dose belong to."""
    streak_days: int
    preheat_remaining_s: int = 0
    """Seconds until an unconfirmed preheat switches itself off; 0 when none waits."""
    breaths_per_min: float = DEFAULT_BREATHS_PER_MIN
    """The pace of the `breathe` pattern."""
    occupied: bool | None = None
    """Whether someone lies on the mat, by the occupancy sensor; None without one."""
    breath_s: float | None = field(default=None, compare=False)
    """While the `breathe` pattern runs: seconds into the breath under way (0 = inhale
    starts), at the moment of the snapshot, for a page to draw the breath in step.
    Not compared: it changes every step, and a snapshot is re-sent only on a change."""
