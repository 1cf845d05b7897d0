"""What the session machine knows, shows and keeps: the model under its table (pure).

`SessionMachine` (session.py) is this model plus its table of transitions.
Here is what the rows' guards read and what their actions share: the session
under way and the day's use, the heater and every guard that may stop it, the
books a session's end settles, and what the drivers and the world are shown.
Nothing here moves the machine from one state to another; only a row does
(the constructor aside, which puts a restarted mat where it was left).

Pure as the rest of the core: no clock, no I/O; `now` is always given.

Over 400 lines on purpose: one class, whose state the table's guards and actions
share; split, a guard's reads and the actions' writes of the same fields would lie
in different files.
"""

from datetime import date

from matpi.core import limits
from matpi.core.events import (
    Breath,
    EndReason,
    FaultRaised,
    Led,
    Notice,
    Outputs,
    PreheatEnded,
    ProgramSelected,
    Reading,
    SessionEnded,
    SessionStarted,
    Snapshot,
    Source,
    State,
)
from matpi.core.padmodel import PadEstimate
from matpi.core.patterns import Pattern, breath_into_s, next_breath_edge, vibration_duty
from matpi.core.programs import HeatLevel, Program
from matpi.core.rules import Rules
from matpi.core.sessionrun import Run, limit_dose
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

NOBODY_SHOWN_S = 3.0
"""How long the LED says "nobody on the mat" after a press on an empty mat."""

PREHEAT_WINDOW_S = 3600.0
"""The window in which at most `limits.MAX_PREHEATS_PER_HOUR` unconfirmed preheats start."""


_LED_OF_STATE = {State.IDLE: Led.IDLE, State.PREHEAT: Led.AWAITING_PRESS,
                 State.RUNNING: Led.RUNNING, State.COOLDOWN: Led.COOLDOWN, State.FAULT: Led.FAULT}
"""What the LED shows in each state, unless it says that nobody is on the mat."""


class SessionModel:
    """The session machine without its table. See the module docstring."""

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
        self._session: Run | None = None
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
        self.occupied: bool | None = False if rules.occupancy_sensor else None
        """By the occupancy sensor; None without one. Empty until the sensor says so."""
        self._left_at = now
        """When the mat last became empty (with the sensor)."""
        self._nobody_until = 0.0
        """Until when the LED says that a press found the mat empty."""
        self._alarm: str | None = None
        """The fault the supervision found last (a reading, or time): the rows latch it."""
        if fault is not None:
            self._latch(fault, now)
            self.state = State.FAULT
        elif self.cooldown_until > now:
            self.state = State.COOLDOWN

    # --- what the drivers and the world see ---------------------------------

    def outputs(self, now: float) -> Outputs:
        """Outputs for this moment; `step` must have been called at `now` first."""
        active = self.state in (State.RUNNING, State.PREHEAT)
        breathing = self._breathing()
        return Outputs(heater=self._heater, vibration=self._vibration(now), led=self._led(now),
                       power=active,
                       breath=None if breathing is None
                       else Breath(breathing.started_at, breathing.program.breaths_per_min))

    def _vibration(self, now: float) -> float:
        """The motor's duty: only while a session runs with its person on the mat."""
        session = self._session
        if self.state is State.RUNNING and session is not None and self._someone_on():
            return vibration_duty(
                session.program.pattern, session.program.intensity_pct, now - session.started_at,
                breaths_per_min=session.program.breaths_per_min,
                on_off=self.rules.motor_kind == "relay",
            )
        return 0.0

    def _breathing(self) -> Run | None:
        """The session under way when it runs the `breathe` pattern."""
        session = self._session
        if (self.state is State.RUNNING and session is not None
                and session.program.pattern is Pattern.BREATHE):
            return session
        return None

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
        temperature = self._supervisor.fresh_temperature(now)
        return Snapshot(
            state=self.state,
            program=program.name,
            awaiting_press=self.state is State.PREHEAT,
            elapsed_s=int(elapsed),
            remaining_s=int(remaining),  # whole seconds left, as every countdown shows them
            planned_min=round(planned_min, 1),
            heat_level=program.heat,
            setpoint_c=self._setpoint(),
            temperature_c=None if temperature is None else round(temperature, 1),
            heater_on=self._heater,
            pattern=program.pattern,
            intensity_pct=program.intensity_pct,
            vibration=self._vibration(now),
            dose_cem43=round(session.dose_before + session.dose.total, 3) if session else 0.0,
            fault=self.fault,
            cooldown_remaining_s=int(max(self.cooldown_until - now, 0.0)),
            today_min=round(today_min, 1),
            daily_remaining_min=round(max(self.rules.daily_max_min - today_min, 0.0), 1),
            dose_today_cem43=round(self.usage.dose_today + (session.dose.total if session else 0.0),
                                   3),
            usage_day=self.usage.day.isoformat(),
            streak_days=self.usage.streak(),
            preheat_remaining_s=int(max(self._preheat_until - now, 0.0))
            if self.state is State.PREHEAT else 0,
            breaths_per_min=program.breaths_per_min,
            breath_s=self._breath_s(now),
            occupied=self.occupied,
        )

    def _breath_s(self, now: float) -> float | None:
        breathing = self._breathing()
        if breathing is None:
            return None
        return round(breath_into_s(now - breathing.started_at,
                                   breathing.program.breaths_per_min), 3)

    def next_deadline(self, now: float) -> float:
        """The latest time by which the controller must send a Tick."""
        deadlines = [self._supervisor.fault_deadline()]
        if self.state in (State.RUNNING, State.PREHEAT):
            deadlines.append(now + ACTIVE_TICK_S)
        session = self._session
        if self.state is State.RUNNING and session is not None:
            deadlines.append(session.started_at + session.planned_s)
            if not self._someone_on():
                deadlines.append(self._left_at + self.rules.vacated_grace_s)
            if self.rules.motor_kind == "relay" and session.program.pattern is Pattern.BREATHE:
                # The relay follows inhale and exhale: switch at the edge, not up to a tick late.
                deadlines.append(session.started_at + next_breath_edge(
                    now - session.started_at, session.program.breaths_per_min))
        if self.state in (State.RUNNING, State.PREHEAT) and session is not None:
            deadlines.append(now + (self.rules.daily_max_min - self._used_min(now)) * 60.0)
        if self.state is State.PREHEAT:
            deadlines.append(self._preheat_until)
        if self.state is State.COOLDOWN:
            deadlines.append(self.cooldown_until)
        if self.state is not State.FAULT:
            deadlines.append(self._supervisor.next_deadline())
        deadlines.append(self._nobody_until)
        # A deadline already past has done its work (a stale sensor, say): waiting for it
        # again would spin the controller.
        return min((d for d in deadlines if d > now), default=now + IDLE_TICK_S)

    def _led(self, now: float) -> Led:
        paused = self.state is State.RUNNING and not self._someone_on()
        refused = self.state in (State.IDLE, State.PREHEAT) and now < self._nobody_until
        if paused or refused:
            return Led.NOBODY
        return _LED_OF_STATE[self.state]

    # --- the books: what starting and ending a session settles -----------------

    def _take_start(self, start_program: str | None, duration_min: float | None,
                    ) -> tuple[Program, float, bool]:
        """The program, planned length (s) and daily cut of a start every guard let
        through; its program becomes the chosen one."""
        name = start_program or self.selected
        same = name == self.selected
        program = self.choice if same else self.rules.programs[name]
        planned_min = self._planned_min(program, self._duration_override if same else None)
        if duration_min is not None:
            planned_min = duration_min
        allowance = self.rules.daily_max_min - self.usage.minutes_today
        if not same:
            self._select(name)
        planned_s = min(planned_min, allowance, self.rules.session_max_min) * 60.0
        return program, planned_s, allowance < planned_min

    def _begin_running(
        self, program: Program, planned_s: float, now: float, source: Source, cut: bool
    ) -> list[Notice]:
        self._session = Run(program, planned_s, now, source, cut)
        self._session.dose.add(self._surface_c(), now)
        return [SessionStarted(program.name, round(planned_s / 60.0, 2), source)]

    def _left_if_confirmed(self, now: float) -> tuple[float, float]:
        """(today's allowance, the session's time) in s, were the preheat confirmed now.

        The preheat's heat counts towards both: preheat and session are one heated stretch."""
        preheat = self._under_way()
        elapsed_s = now - preheat.started_at
        allowance_s = (self.rules.daily_max_min
                       - (self.usage.minutes_today + elapsed_s / 60.0)) * 60.0
        return allowance_s, min(allowance_s, self.rules.session_max_min * 60.0 - elapsed_s)

    def _settle_preheat(self, now: float) -> Run:
        """A preheat ends at a press, whatever follows: its minutes and dose count today."""
        preheat = self._under_way()
        elapsed_s = now - preheat.started_at
        self.usage.minutes_today += elapsed_s / 60.0
        self.usage.dose_today += preheat.dose.total
        if preheat.started_at in self._unconfirmed:
            self._unconfirmed.remove(preheat.started_at)
        self._session = None
        return preheat

    @staticmethod
    def _preheat_ended(preheat: Run, reason: EndReason, now: float) -> Notice:
        return PreheatEnded(preheat.program.name, reason, round(now - preheat.started_at, 1),
                            round(preheat.dose.total, 3), preheat.dose.peak_c)

    def _close(self, reason: EndReason, now: float) -> list[Notice]:
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
        """The cooldown runs from now. The row decides the state: COOLDOWN, or FAULT (and
        a fault cleared before the cooldown is over goes on into it)."""
        self.cooldown_until = now + self.rules.cooldown_min * 60.0

    def _latch(self, reason: str, now: float) -> list[Notice]:
        """Latch a fault: a session under way ends, and heat goes off at once."""
        active = self.state in (State.RUNNING, State.PREHEAT)
        notices = self._close(EndReason.FAULT, now) if active else []
        self.fault = reason
        self._heater = False
        self._thermostat.force_off(now)
        return [*notices, FaultRaised(reason)]

    def _select(self, name: str) -> list[Notice]:
        self.selected = name
        self.choice = self.rules.programs[name]
        self._duration_override = None
        return [ProgramSelected(name)]

    def _replan(self, session: Run, duration_min: float, now: float) -> None:
        """A new length for a session under way, inside the daily allowance and the session
        ceiling (which counts the preheat the session grew out of)."""
        elapsed_min = (now - session.started_at) / 60.0 if self.state is State.RUNNING else 0.0
        allowance = self.rules.daily_max_min - self.usage.minutes_today
        ceiling = self.rules.session_max_min - session.preheat_s / 60.0
        session.cut_by_daily_limit = allowance < duration_min
        session.planned_s = max(min(duration_min, allowance, ceiling), elapsed_min) * 60.0

    def _limit_dose(self, session: Run) -> list[Notice]:
        """The dose step-down and stop, against the session's limit (its preheat included)
        and what is left of the day's budget."""
        session_left = self.rules.dose_max_cem43 - session.dose_before
        daily_left = self.rules.daily_dose_max_cem43 - self.usage.dose_today
        return limit_dose(session, session_left, daily_left)

    # --- the heater: supervision, the interval past, the demand --------------------

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

    def _take(self, readings: tuple[Reading, ...], now: float) -> str | None:
        """Feed the supervisor every reading, in order; returns the first fault confirmed."""
        reason = self._supervisor.readings(readings, now)
        temperature = self._supervisor.temperature()
        if temperature is not None:
            self._estimate.seed(temperature, now)
        return reason

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

    def _heater_demand(self, now: float) -> bool:
        """Heat only when every guard says yes, right now."""
        setpoint = self._setpoint()
        surface = self._surface_c()
        session = self._session
        # A session exists only while running or preheating, and a stopped heat has no
        # setpoint; setpoints sit a degree under the trip, so the cut comes before it.
        # A preheat warms the empty mat for its person: someone already lying there (asleep,
        # say) is heated only once they press. A session heats only its person.
        if (
            session is None
            or (self.state is State.RUNNING and not self._someone_on())
            or (self.state is State.PREHEAT and self.occupied is True)
            or setpoint is None
            or surface is None
            or not self._supervisor.heat_allowed(now)
            or surface >= setpoint + limits.OVERSHOOT_CUT_C
        ):
            self._thermostat.force_off(now)
            return False
        return self._thermostat.update(surface, setpoint, now)

    def _surface_c(self) -> float | None:
        """The higher of the sensor and the estimate: control, dose and trip use the worst case."""
        reading = self._supervisor.temperature()
        if reading is None:
            return None
        estimate = self._estimate.temp_c
        return reading if estimate is None else max(reading, estimate)

    def _setpoint(self) -> float | None:
        session = self._session
        if session is None or session.heat_stopped or session.program.heat is HeatLevel.OFF:
            return None
        return self.rules.setpoint(session.program.heat)

    # --- helpers ------------------------------------------------------------

    def _someone_on(self) -> bool:
        """Someone lies on the mat, or no occupancy sensor says otherwise."""
        return self.occupied is not False

    def _under_way(self) -> Run:
        """The session or preheat, for code that runs only while one is under way."""
        session = self._session
        assert session is not None
        return session

    def _heat_cap(self) -> HeatLevel | None:
        return self._session.heat_cap if self._session else None

    def _used_min(self, now: float) -> float:
        """Minutes used today, the session or preheat under way included."""
        session = self._session
        running = self.state in (State.RUNNING, State.PREHEAT) and session is not None
        elapsed_s = now - session.started_at if running and session is not None else 0.0
        return self.usage.minutes_today + elapsed_s / 60.0

    def _preheats_in_window(self, now: float) -> int:
        return sum(1 for t in self._unconfirmed if now - t < PREHEAT_WINDOW_S)

    def _chosen_min(self) -> float:
        """The length the next start gets: the override, or the program's (grown) length."""
        return self._planned_min(self.choice, self._duration_override)

    def _planned_min(self, program: Program, override: float | None) -> float:
        if override is not None:
            return override
        planned = program.planned_min(self.usage.progress_days.get(program.name, 0))
        return min(planned, self.rules.session_max_min)

    def _length_ok(self, duration_min: float) -> bool:
        return MIN_SESSION_MIN <= duration_min <= self.rules.session_max_min
