"""The session state machine: idle, preheat, running, cooldown, fault.

Pure: it never reads a clock, sleeps, or touches a pin. The controller hands it
each event with the monotonic time and the calendar day, and applies the
outputs it returns. Same events at the same times give the same outputs.

    machine = SessionMachine(Rules(), now=0.0, today=date(2026, 1, 1))
    notices = machine.step(Press(), now=1.0, today=date(2026, 1, 1))
    machine.outputs(now=1.0).heater
"""

from dataclasses import dataclass, field, replace
from datetime import date

from matpi.core import limits
from matpi.core.events import (
    Adjust,
    Adjusted,
    ButtonGesture,
    ClockSet,
    ClockStepped,
    DoublePress,
    DriverFault,
    EndReason,
    Event,
    FaultCleared,
    FaultRaised,
    Gesture,
    HeatSteppedDown,
    HeatStopped,
    Led,
    LongPress,
    Notice,
    Outputs,
    PreheatEnded,
    PreheatStarted,
    Press,
    ProgramSelected,
    Reading,
    Refused,
    SelectProgram,
    SessionEnded,
    SessionStarted,
    Snapshot,
    Source,
    Start,
    State,
    Stop,
    Tick,
)
from matpi.core.padmodel import PadEstimate
from matpi.core.patterns import vibration_duty
from matpi.core.programs import HeatLevel, Program
from matpi.core.rules import Rules
from matpi.core.supervision import (
    ModelGapGuard,
    NotHeatingGuard,
    OverheatGuard,
    RunawayGuard,
    Supervisor,
)
from matpi.core.thermal import DoseMeter, HeatControl, Thermostat, TimeProportioning
from matpi.core.usage import Usage

IDLE_TICK_S = 60.0
"""Longest the controller sleeps when nothing at all is due."""

ACTIVE_TICK_S = 1.0
"""How often a running session is re-evaluated: patterns, heater refresh."""

MIN_SESSION_MIN = 1.0
"""A start that could run for less than this (daily limit) is refused."""

PREHEAT_WINDOW_S = 3600.0
"""The window in which at most `limits.MAX_PREHEATS_PER_HOUR` unconfirmed preheats start."""

DOSE_STEP_DOWN_AT = 0.75
"""Share of the dose limit at which the heat level steps down once, as heated seats do."""

_LOWER = {HeatLevel.HIGH: HeatLevel.MEDIUM, HeatLevel.MEDIUM: HeatLevel.LOW,
          HeatLevel.LOW: HeatLevel.OFF, HeatLevel.OFF: HeatLevel.OFF}


@dataclass
class _Session:
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


def _changed(program: Program, change: Adjust) -> Program:
    """`program` with the settings an Adjust names; the rest as they were."""
    return replace(
        program,
        heat=program.heat if change.heat is None else change.heat,
        pattern=program.pattern if change.pattern is None else change.pattern,
        intensity_pct=(
            program.intensity_pct if change.intensity_pct is None else change.intensity_pct
        ),
    )


_GESTURES = {Press: Gesture.PRESS, LongPress: Gesture.LONG_PRESS,
             DoublePress: Gesture.DOUBLE_PRESS}


def _rank(level: HeatLevel) -> int:
    return list(HeatLevel).index(level)


class SessionMachine:
    """Decides, from events and time, what the mat does. See module docstring."""

    def __init__(
        self,
        rules: Rules,
        now: float,
        today: date,
        *,
        usage: Usage | None = None,
        cooldown_until: float | None = None,
        fault: str | None = None,
        fault_clearable: bool = True,
        preheats: tuple[float, ...] = (),
    ) -> None:
        """`fault` comes back latched after a restart. A fault that is not clearable
        (the usage history cannot be read, so the daily cap is unknown) refuses the
        long press too: only fixing its cause and restarting ends it. `preheats` are
        the (monotonic) start times of recent preheats nobody confirmed."""
        self.rules = rules
        self.usage = usage or Usage(day=today)
        self.state = State.IDLE
        self.selected = rules.default_program
        self.choice = rules.programs[self.selected]
        self._duration_override: float | None = None
        self.fault: str | None = None
        self.cooldown_until = cooldown_until if cooldown_until is not None else now
        self._session: _Session | None = None
        self._preheat_until = 0.0
        self._supervisor = Supervisor(rules.sensors, rules.trip_c, now)
        self._thermostat: HeatControl = (
            TimeProportioning(rules.ssr_window_s, rules.ssr_band_c)
            if rules.heater_kind == "ssr"
            else Thermostat(rules.hysteresis_c, rules.min_on_s, rules.min_off_s)
        )
        # An SSR settles a little under the setpoint at part duty: check it only where it
        # heats at full duty, below its proportional band.
        band_c = rules.check_band_c if rules.heater_kind == "relay" else max(
            rules.check_band_c, rules.ssr_band_c)
        self._not_heating = NotHeatingGuard(rules.check_gain_c, rules.check_window_s, band_c,
                                            rules.check_max_error_cs)
        self._runaway = RunawayGuard(rules.runaway_settle_s, rules.runaway_window_s,
                                     rules.runaway_rise_c)
        self._estimate = PadEstimate(rules.pad)
        self._model_gap = ModelGapGuard()
        self._overheat = OverheatGuard(limits.OVERHEAT_FAULT_C)
        self._unconfirmed = list(preheats)
        self._between = DoseMeter()
        """The dose outside sessions (a pad cooling down), for the day's budget."""
        self._heater = False
        self._fault_clearable = fault_clearable
        if fault is not None:
            self._raise(fault, now)
        elif self.cooldown_until > now:
            self.state = State.COOLDOWN

    # --- the one entry point ------------------------------------------------

    def step(self, event: Event, now: float, today: date) -> list[Notice]:
        """Feed one event at `now`; returns what happened worth telling."""
        notices: list[Notice] = []
        if isinstance(event, Press | LongPress | DoublePress):
            notices.append(ButtonGesture(_GESTURES[type(event)]))
        if isinstance(event, ClockStepped):
            self.usage.relabel(today)
            ages = tuple(now - t for t in self._unconfirmed if now - t < PREHEAT_WINDOW_S)
            notices.append(ClockSet(self.usage.day.isoformat(), self.usage.minutes_today,
                                    self.usage.dose_today, ages))
        else:
            self.usage.roll(today)
        self._account(now)
        # Time first: a press after the preheat's deadline finds the preheat over.
        notices += self._expire(now)
        match event:
            case Reading():
                reason = self._supervisor.reading(event, now)
                temperature = self._supervisor.temperature()
                if temperature is not None:
                    self._estimate.seed(temperature, now)
                if reason:
                    notices += self._raise(reason, now)
            case DriverFault(reason=reason):
                notices += self._raise(reason, now)
            case Press() | DoublePress() if self.state in (State.RUNNING, State.PREHEAT):
                notices += self._on_press_active(now, today)
            case Press():
                notices += self._on_press_still(now, today)
            case DoublePress():
                notices += self._cycle_program()
            case LongPress():
                notices += self._on_long_press(now, today)
            case Start():
                notices += self._on_start(event, now, today)
            case Stop():
                notices += self._on_stop(now, today)
            case SelectProgram(program=name):
                notices += self._select(name)
            case Adjust():
                notices += self._adjust(event, now)
            case Tick() | ClockStepped():
                pass
        notices += self._expire(now)
        self._heater = self._heater_demand(now)
        return notices

    # --- what the drivers and the world see ---------------------------------

    def outputs(self, now: float) -> Outputs:
        """Outputs for this moment; `step` must have been called at `now` first."""
        session = self._session
        vibration = 0.0
        if self.state is State.RUNNING and session is not None:
            vibration = vibration_duty(
                session.program.pattern, session.program.intensity_pct, now - session.started_at
            )
        active = self.state in (State.RUNNING, State.PREHEAT)
        return Outputs(heater=self._heater, vibration=vibration, led=self._led(), power=active)

    def snapshot(self, now: float) -> Snapshot:
        session = self._session
        program = session.program if session else self.choice
        elapsed = 0.0
        remaining = 0.0
        planned_min = self._chosen_min()
        if session is not None:
            planned_min = session.planned_s / 60.0
            if self.state is State.RUNNING:
                elapsed = now - session.started_at
                remaining = max(session.planned_s - elapsed, 0.0)
            else:
                remaining = session.planned_s
        today_min = self._used_min(now)
        temperature = self._supervisor.temperature()
        return Snapshot(
            state=self.state,
            program=program.name,
            awaiting_press=self.state is State.PREHEAT,
            elapsed_s=int(elapsed),
            remaining_s=round(remaining),
            planned_min=round(planned_min, 1),
            heat_level=program.heat,
            setpoint_c=self._setpoint(),
            temperature_c=None if temperature is None else round(temperature, 1),
            heater_on=self._heater,
            pattern=program.pattern,
            intensity_pct=program.intensity_pct,
            vibration=self.outputs(now).vibration,
            dose_cem43=round(session.dose_before + session.dose.total, 3) if session else 0.0,
            fault=self.fault,
            cooldown_remaining_s=int(max(self.cooldown_until - now, 0.0)),
            today_min=round(today_min, 1),
            daily_remaining_min=round(max(self.rules.daily_max_min - today_min, 0.0), 1),
            dose_today_cem43=round(self.usage.dose_today + (session.dose.total if session else 0.0),
                                   3),
            usage_day=self.usage.day.isoformat(),
            streak_days=self.usage.streak(),
        )

    def next_deadline(self, now: float) -> float:
        """The latest time by which the controller must send a Tick."""
        deadlines = [self._supervisor.fault_deadline()]
        if self.state in (State.RUNNING, State.PREHEAT):
            deadlines.append(now + ACTIVE_TICK_S)
        session = self._session
        if self.state is State.RUNNING and session is not None:
            deadlines.append(session.started_at + session.planned_s)
        if self.state in (State.RUNNING, State.PREHEAT) and session is not None:
            deadlines.append(now + (self.rules.daily_max_min - self._used_min(now)) * 60.0)
        if self.state is State.PREHEAT:
            deadlines.append(self._preheat_until)
        if self.state is State.COOLDOWN:
            deadlines.append(self.cooldown_until)
        if self.state is not State.FAULT:
            deadlines.append(self._supervisor.next_deadline())
        # A deadline already past has done its work (a stale sensor, say): waiting for it
        # again would spin the controller.
        return min((d for d in deadlines if d > now), default=now + IDLE_TICK_S)

    # --- transitions --------------------------------------------------------

    def _on_press_active(self, now: float, today: date) -> list[Notice]:
        session = self._session
        if self.state is State.PREHEAT and session is not None:
            return self._confirm(session, now)
        return self._end(EndReason.STOPPED, now)

    def _on_press_still(self, now: float, today: date) -> list[Notice]:
        if self.state is State.IDLE:
            return self._on_start(Start(Source.LOCAL), now, today)
        if self.state is State.COOLDOWN:
            return [Refused("press", self._cooldown_reason(now))]
        return [Refused("press", "fault latched: hold the button to reset once the mat is cool")]

    def _on_long_press(self, now: float, today: date) -> list[Notice]:
        if self.state in (State.RUNNING, State.PREHEAT):
            return self._end(EndReason.STOPPED, now)
        if self.state is not State.FAULT:
            return []
        if not self._fault_clearable:
            return [Refused("reset", f"{self.fault}: this cannot be reset at the mat")]
        temperature = self._surface_c()
        if not self._supervisor.heat_allowed(now) or temperature is None:
            return [Refused("reset", "no valid temperature reading: check the sensor")]
        if temperature >= self.rules.reset_below_c:
            return [Refused("reset", f"mat at {temperature:.1f} °C: wait until it is below "
                                     f"{self.rules.reset_below_c:g} °C")]
        self.fault = None
        self.state = State.COOLDOWN if self.cooldown_until > now else State.IDLE
        return [FaultCleared()]

    def _on_start(self, start: Start, now: float, today: date) -> list[Notice]:
        """Every check first: a refused start changes nothing, not even the program."""
        name = start.program or self.selected
        if name not in self.rules.programs:
            known = ", ".join(sorted(self.rules.programs))
            return [Refused("start", f"unknown program {name!r}; known: {known}")]
        if self.state is not State.IDLE:
            return [Refused("start", self._busy_reason(now))]
        same = name == self.selected
        program = self.choice if same else self.rules.programs[name]
        planned_min = self._planned_min(program, self._duration_override if same else None)
        if start.duration_min is not None:
            if not MIN_SESSION_MIN <= start.duration_min <= self.rules.session_max_min:
                return [Refused("start", f"duration_min = {start.duration_min:g}: must be "
                                         f"{MIN_SESSION_MIN:g} to {self.rules.session_max_min:g}")]
            planned_min = start.duration_min
        allowance = self.rules.daily_max_min - self.usage.minutes_today
        if allowance < MIN_SESSION_MIN:
            return [Refused("start", f"daily limit of {self.rules.daily_max_min:g} min reached")]
        remote = start.source is Source.REMOTE
        if remote and self._preheats_in_window(now) >= limits.MAX_PREHEATS_PER_HOUR:
            return [Refused("start", f"{limits.MAX_PREHEATS_PER_HOUR} remote starts in the last "
                                     "hour were not confirmed at the mat: press the button on "
                                     "the mat to start")]
        if not same:
            self._select(name)
        planned_s = min(planned_min, allowance, self.rules.session_max_min) * 60.0
        cut = allowance < planned_min
        if remote:
            # A remote start only preheats: heat with nobody known to be on the mat is
            # bounded in time, counted as use and dose, and needs a press to go on.
            session = _Session(program, planned_s, now, Source.REMOTE, cut, preheat=True)
            session.dose.add(self._surface_c(), now)
            self._session = session
            self._preheat_until = now + self.rules.preheat_max_min * 60.0
            self._unconfirmed.append(now)
            self.state = State.PREHEAT
            return [PreheatStarted(program.name, self.rules.preheat_max_min)]
        return self._begin_running(program, planned_s, now, start.source, cut)

    def _confirm(self, preheat: _Session, now: float) -> list[Notice]:
        """A press at the mat turns the preheat into a session, within what is left today."""
        elapsed_s = now - preheat.started_at
        self.usage.minutes_today += elapsed_s / 60.0
        self.usage.dose_today += preheat.dose.total
        if preheat.started_at in self._unconfirmed:
            self._unconfirmed.remove(preheat.started_at)
        self._session = None
        allowance_s = (self.rules.daily_max_min - self.usage.minutes_today) * 60.0
        # The preheat's heat counts towards the session's ceiling too: one heated stretch.
        left_s = min(allowance_s, self.rules.session_max_min * 60.0 - elapsed_s)
        too_late = left_s < MIN_SESSION_MIN * 60.0
        reason = EndReason.DAILY_LIMIT if allowance_s <= left_s else EndReason.PREHEAT_TIMEOUT
        ended = PreheatEnded(preheat.program.name, reason if too_late else EndReason.CONFIRMED,
                             round(elapsed_s, 1), round(preheat.dose.total, 3),
                             preheat.dose.peak_c)
        if too_late:
            self._cool_down(now)
            return [ended, Refused("press", "the preheat used up the heat time left "
                                            f"({left_s / 60.0:.1f} min)")]
        planned_s = min(preheat.planned_s, left_s)
        cut = preheat.cut_by_daily_limit or allowance_s < preheat.planned_s
        notices = self._begin_running(preheat.program, planned_s, now, Source.LOCAL, cut)
        session = self._session
        assert session is not None
        session.dose_before, session.preheat_s = preheat.dose.total, elapsed_s
        session.heat_stopped, session.heat_cap = preheat.heat_stopped, preheat.heat_cap
        return [ended, *notices]

    def _begin_running(
        self, program: Program, planned_s: float, now: float, source: Source, cut: bool
    ) -> list[Notice]:
        self._session = _Session(program, planned_s, now, source, cut)
        self._session.dose.add(self._surface_c(), now)
        self.state = State.RUNNING
        return [SessionStarted(program.name, round(planned_s / 60.0, 2), source)]

    def _on_stop(self, now: float, today: date) -> list[Notice]:
        if self.state in (State.RUNNING, State.PREHEAT):
            return self._end(EndReason.STOPPED, now)
        return []

    def _select(self, name: str) -> list[Notice]:
        if name not in self.rules.programs:
            known = ", ".join(sorted(self.rules.programs))
            return [Refused("program", f"unknown program {name!r}; known: {known}")]
        self.selected = name
        self.choice = self.rules.programs[name]
        self._duration_override = None
        return [ProgramSelected(name)]

    def _adjust(self, change: Adjust, now: float) -> list[Notice]:
        intensity, duration = change.intensity_pct, change.duration_min
        if intensity is not None and not 0.0 <= intensity <= 100.0:
            return [Refused("intensity", f"intensity_pct = {intensity:g}: must be 0 to 100")]
        if duration is not None and not MIN_SESSION_MIN <= duration <= self.rules.session_max_min:
            return [Refused("duration", f"duration_min = {duration:g}: must be "
                                        f"{MIN_SESSION_MIN:g} to {self.rules.session_max_min:g}")]
        session = self._session
        cap = session.heat_cap if session else None
        if change.heat is not None and cap is not None and _rank(change.heat) > _rank(cap):
            return [Refused("heat", f"heat = {change.heat}: limited to {cap} for the rest of "
                                    "this session (thermal dose)")]
        self.choice = _changed(self.choice, change)
        if duration is not None:
            self._duration_override = duration
        if session is not None:
            session.program = _changed(session.program, change)
            if duration is not None:
                self._replan(session, duration, now)
        planned = session.planned_s / 60.0 if session else self._chosen_min()
        return [Adjusted(self.choice.heat, self.choice.pattern, self.choice.intensity_pct,
                         round(planned, 2))]

    def _replan(self, session: _Session, duration_min: float, now: float) -> None:
        """A new length for a session under way, inside the daily allowance and the session
        ceiling (which counts the preheat the session grew out of)."""
        elapsed_min = (now - session.started_at) / 60.0 if self.state is State.RUNNING else 0.0
        allowance = self.rules.daily_max_min - self.usage.minutes_today
        ceiling = self.rules.session_max_min - session.preheat_s / 60.0
        session.cut_by_daily_limit = allowance < duration_min
        session.planned_s = max(min(duration_min, allowance, ceiling), elapsed_min) * 60.0

    def _cycle_program(self) -> list[Notice]:
        if self.state not in (State.IDLE, State.COOLDOWN):
            return []
        names = list(self.rules.programs)
        return self._select(names[(names.index(self.selected) + 1) % len(names)])

    def _raise(self, reason: str, now: float) -> list[Notice]:
        if self.state is State.FAULT:
            return []
        notices: list[Notice] = []
        if self.state in (State.RUNNING, State.PREHEAT):
            notices += self._end(EndReason.FAULT, now)
        self.fault = reason
        self.state = State.FAULT
        self._heater = False
        self._thermostat.force_off(now)
        return [*notices, FaultRaised(reason)]

    def _end(self, reason: EndReason, now: float) -> list[Notice]:
        """End the session or preheat: its minutes and dose count, a cooldown follows."""
        session = self._session
        assert session is not None
        self._session = None
        self._heater = False
        self._thermostat.force_off(now)
        elapsed_s = min(now - session.started_at, session.planned_s)
        if session.preheat:
            # A preheat nobody confirmed counts like a session and is followed by a
            # cooldown: else remote starts and stops could keep an empty mat warm for ever.
            elapsed_s = now - session.started_at
        self.usage.minutes_today += elapsed_s / 60.0
        self.usage.dose_today += session.dose.total
        if reason is EndReason.COMPLETED:
            self.usage.count_completed(session.program)
        self._cool_down(now)
        ended = PreheatEnded if session.preheat else SessionEnded
        # The preheat a session grew out of reported its own dose when it was confirmed.
        return [ended(session.program.name, reason, round(elapsed_s, 1),
                      round(session.dose.total, 3), session.dose.peak_c)]

    def _cool_down(self, now: float) -> None:
        self.cooldown_until = now + self.rules.cooldown_min * 60.0
        self.state = State.COOLDOWN

    def _expire(self, now: float) -> list[Notice]:
        """Apply the passage of time: guards, the session's end, the preheat's, the cooldown's."""
        notices: list[Notice] = []
        reason = self._guards(now)
        if reason:
            notices += self._raise(reason, now)
        session = self._session
        if self.state in (State.RUNNING, State.PREHEAT) and session is not None:
            if self._used_min(now) >= self.rules.daily_max_min:
                notices += self._end(EndReason.DAILY_LIMIT, now)
            elif self.state is State.PREHEAT and now >= self._preheat_until:
                notices += self._end(EndReason.PREHEAT_TIMEOUT, now)
            elif self.state is State.RUNNING and now - session.started_at >= session.planned_s:
                cut = session.cut_by_daily_limit
                notices += self._end(EndReason.DAILY_LIMIT if cut else EndReason.COMPLETED, now)
            else:
                notices += self._limit_dose(session)
        if self.state is State.COOLDOWN and now >= self.cooldown_until:
            self.state = State.IDLE
        return notices

    def _guards(self, now: float) -> str | None:
        """Every time-based guard, fed the heater state of the interval just past."""
        reading = self._supervisor.temperature()
        surface = self._surface_c()
        active = self.state in (State.RUNNING, State.PREHEAT)
        setpoint = self._setpoint()
        reasons = (
            self._supervisor.check(now),
            self._not_heating.update(reading, setpoint, self._thermostat.demanding, now),
            self._runaway.update(reading, self._heater, now),
            self._model_gap.update(reading, self._estimate.temp_c, active, now),
            self._overheat.update(surface, setpoint, active),
        )
        return next((r for r in reasons if r), None)

    def _limit_dose(self, session: _Session) -> list[Notice]:
        """Step the heat down at 75 % of the dose limit; stop it at the limit.

        The limit is the tighter of the session's (its preheat included) and what is
        left of the day's budget.
        """
        session_left = self.rules.dose_max_cem43 - session.dose_before
        daily_left = self.rules.daily_dose_max_cem43 - self.usage.dose_today
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

    def _heater_demand(self, now: float) -> bool:
        """Heat only when every guard says yes, right now."""
        setpoint = self._setpoint()
        surface = self._surface_c()
        session = self._session
        # A session exists only while running or preheating, and a stopped heat has no
        # setpoint; setpoints sit a degree under the trip, so the cut comes before it.
        if (
            session is None
            or setpoint is None
            or surface is None
            or not self._supervisor.heat_allowed(now)
            or surface >= setpoint + limits.OVERSHOOT_CUT_C
        ):
            self._thermostat.force_off(now)
            return False
        return self._thermostat.update(surface, setpoint, now)

    # --- helpers ------------------------------------------------------------

    def _surface_c(self) -> float | None:
        """The higher of the sensor and the estimate: control, dose and trip use the worst case."""
        reading = self._supervisor.temperature()
        if reading is None:
            return None
        estimate = self._estimate.temp_c
        return reading if estimate is None else max(reading, estimate)

    def _used_min(self, now: float) -> float:
        """Minutes used today, the session or preheat under way included."""
        session = self._session
        running = self.state in (State.RUNNING, State.PREHEAT) and session is not None
        elapsed_s = now - session.started_at if running and session is not None else 0.0
        return self.usage.minutes_today + elapsed_s / 60.0

    def _preheats_in_window(self, now: float) -> int:
        self._unconfirmed = [t for t in self._unconfirmed if now - t < PREHEAT_WINDOW_S]
        return len(self._unconfirmed)

    def _account(self, now: float) -> None:
        """The interval just past: the estimate with the heater as it was, and the dose.

        Outside a session the dose still counts towards the day: a pad cooling down
        after a session warms whoever still lies on it.
        """
        self._estimate.advance(heating=self._heater, now=now)
        if self._session is not None:
            self._session.dose.add(self._surface_c(), now)
            self._between.add(None, now)
        else:
            before = self._between.total
            self._between.add(self._surface_c(), now)
            self.usage.dose_today += self._between.total - before

    def _chosen_min(self) -> float:
        """The length the next start gets: the override, or the program's (grown) length."""
        return self._planned_min(self.choice, self._duration_override)

    def _planned_min(self, program: Program, override: float | None) -> float:
        if override is not None:
            return override
        planned = program.planned_min(self.usage.progress_days.get(program.name, 0))
        return min(planned, self.rules.session_max_min)

    def _setpoint(self) -> float | None:
        session = self._session
        if session is None or session.heat_stopped or session.program.heat is HeatLevel.OFF:
            return None
        return self.rules.setpoint(session.program.heat)

    def _led(self) -> Led:
        return {
            State.IDLE: Led.IDLE,
            State.PREHEAT: Led.AWAITING_PRESS,
            State.RUNNING: Led.RUNNING,
            State.COOLDOWN: Led.COOLDOWN,
            State.FAULT: Led.FAULT,
        }[self.state]

    def _cooldown_reason(self, now: float) -> str:
        return f"cooling down: {max(self.cooldown_until - now, 0.0) / 60.0:.1f} min left"

    def _busy_reason(self, now: float) -> str:
        if self.state is State.COOLDOWN:
            return self._cooldown_reason(now)
        if self.state is State.FAULT:
            return f"fault latched ({self.fault}): reset it at the mat"
        return f"a session is already {self.state}"
