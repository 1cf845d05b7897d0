"""The session state machine: idle, preheat, running, cooldown, fault.

Pure: it never reads a clock, sleeps, or touches a pin. The controller hands it
each event with the monotonic time and the calendar day, and applies the
outputs it returns. Same events at the same times give the same outputs.

Every transition is a row of `SessionMachine.TRANSITIONS`, at the end of the
class: (states, event kind, guard) -> target, action (see `transitions`). The
guards and actions the rows name are the short methods above it; what they
read and share (the session under way, the day's use, the heater and its
guards, the books) is `sessionmodel`. `step` does, for every event, in order:

1. before the table, in every state: the button gesture is reported, the
   calendar moves on (or is relabelled after a clock step), and the interval
   just past is accounted (pad estimate, dose);
2. time first: every time guard runs, then the `Time` rows fire until the
   state settles (a guard's fault, the session's or preheat's end, the dose
   limit, the end of the cooldown);
3. a Reading, or each of Readings, feeds the supervisor, in every state (a fault too);
4. the event's rows: the first whose guard holds fires;
5. the `Time` rows again (the event may have shortened the session), then
   the heater demand: heat only when every guard says yes, right now.

    machine = SessionMachine(Rules(), now=0.0, today=date(2026, 1, 1))
    notices = machine.step(Press(), now=1.0, today=date(2026, 1, 1))
    machine.outputs(now=1.0).heater

Over 400 lines on purpose: the table and the short methods its rows name stay
in one module, so that a row is followed to its guard and its action without
leaving the file. The rest (the model, the table's machinery, the run's
arithmetic) lives in `sessionmodel`, `transitions` and `sessionrun`.
"""

from datetime import date
from typing import ClassVar

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
    Gesture,
    LongPress,
    Notice,
    Occupancy,
    PreheatStarted,
    Press,
    Reading,
    Readings,
    Refused,
    SelectProgram,
    Source,
    Start,
    Stop,
    Tick,
)
from matpi.core.patterns import MAX_BREATHS_PER_MIN, MIN_BREATHS_PER_MIN
from matpi.core.sessionmodel import (
    ACTIVE_TICK_S,
    IDLE_TICK_S,
    MIN_SESSION_MIN,
    NOBODY_SHOWN_S,
    PREHEAT_WINDOW_S,
    SessionModel,
)
from matpi.core.sessionrun import DOSE_STEP_DOWN_AT, Run, changed, rank
from matpi.core.transitions import (
    ACTIVE,
    ALWAYS,
    ANY_STATE,
    COOLDOWN,
    FAULT,
    IDLE,
    NOT_FAULT,
    PREHEAT,
    RESTING,
    RUNNING,
    STAY,
    Refuse,
    Time,
    Transition,
    index,
    row,
)

__all__ = ["ACTIVE_TICK_S", "DOSE_STEP_DOWN_AT", "EVENT_KINDS", "IDLE_TICK_S", "MIN_SESSION_MIN",
           "PREHEAT_WINDOW_S", "SessionMachine"]

EVENT_KINDS = (Press, DoublePress, LongPress, Start, Stop, SelectProgram, Adjust, Reading,
               Readings, DriverFault, Occupancy, Tick, ClockStepped, Time)
"""Every kind of row in the table: the events, and time passing."""

_GESTURES = {Press: Gesture.PRESS, LongPress: Gesture.LONG_PRESS,
             DoublePress: Gesture.DOUBLE_PRESS}


def _start_of(event: Event) -> Start:
    """What a start asks for; a press at the mat is a local start of the chosen program."""
    return event if isinstance(event, Start) else Start(Source.LOCAL)


def _adjust_of(event: Event) -> Adjust:
    assert isinstance(event, Adjust)
    return event


def _selection_of(event: Event) -> str:
    assert isinstance(event, SelectProgram)
    return event.program


class SessionMachine(SessionModel):
    """Decides, from events and time, what the mat does. See module docstring."""

    fired: tuple[Transition["SessionMachine"], ...] = ()
    """The rows the last `step` fired, in order: for the tests, and for a debugger."""

    # --- the one entry point ------------------------------------------------

    def step(self, event: Event, now: float, today: date) -> list[Notice]:
        """Feed one event at `now`; returns what happened worth telling."""
        self.fired = ()
        notices = self._before_the_table(event, now, today)
        # Time first: a press after the preheat's deadline finds the preheat over.
        notices += self._expire(event, now)
        if isinstance(event, Reading):
            self._alarm = self._take((event,), now)
        elif isinstance(event, Readings):
            self._alarm = self._take(event.readings, now)
        notices += self._fire(type(event), event, now)
        notices += self._expire(event, now)
        self._heater = self._heater_demand(now)
        return notices

    def _before_the_table(self, event: Event, now: float, today: date) -> list[Notice]:
        """What every event does in every state: the gesture, the calendar, the interval."""
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
        return notices

    def _fire(self, kind: type, event: Event, now: float) -> list[Notice]:
        """The first row for this state and `kind` whose guard holds: its action, its target.

        Every (state, kind) ends in an ALWAYS row (`index` checks it when the class is
        built), so a row always fires.
        """
        for transition in self._ROWS[self.state, kind]:
            if transition.guard(self, event, now):
                self.fired += (transition,)
                notices = transition.action(self, event, now)
                if transition.target is not None:
                    self.state = transition.target
                return notices
        raise AssertionError(f"no row fired for {kind.__name__} in {self.state}")

    def _expire(self, event: Event, now: float) -> list[Notice]:
        """The passage of time: every time guard, then the Time rows until the state settles
        (a session that ends at its time goes on into its cooldown's rows)."""
        self._alarm = self._guards(now)
        notices: list[Notice] = []
        for _ in ANY_STATE:  # a chain of Time rows passes each state once at most
            before = self.state
            notices += self._fire(Time, event, now)
            if self.state is before:
                break
        return notices

    # --- guards: pure; true where the row applies -------------------------------

    def _alarmed(self, event: Event, now: float) -> bool:
        """The reading just taken, or a time guard, found a fault."""
        return bool(self._alarm)

    def _unknown_program(self, event: Event, now: float) -> bool:
        return (_start_of(event).program or self.selected) not in self.rules.programs

    def _bad_duration(self, event: Event, now: float) -> bool:
        duration = _start_of(event).duration_min
        return duration is not None and not self._length_ok(duration)

    def _day_used_up(self, event: Event, now: float) -> bool:
        """Less than the shortest session is left today."""
        return self.rules.daily_max_min - self.usage.minutes_today < MIN_SESSION_MIN

    def _preheats_used_up(self, event: Event, now: float) -> bool:
        """A remote start, with the hour's unconfirmed preheats all used."""
        return (self._remote(event, now)
                and self._preheats_in_window(now) >= limits.MAX_PREHEATS_PER_HOUR)

    def _remote(self, event: Event, now: float) -> bool:
        return _start_of(event).source is Source.REMOTE

    def _preheat_spent(self, event: Event, now: float) -> bool:
        """Confirmed now, the session would be shorter than the shortest."""
        return self._left_if_confirmed(now)[1] < MIN_SESSION_MIN * 60.0

    def _unknown_choice(self, event: Event, now: float) -> bool:
        return _selection_of(event) not in self.rules.programs

    def _bad_intensity(self, event: Event, now: float) -> bool:
        intensity = _adjust_of(event).intensity_pct
        return intensity is not None and not 0.0 <= intensity <= 100.0

    def _bad_pace(self, event: Event, now: float) -> bool:
        pace = _adjust_of(event).breaths_per_min
        return pace is not None and not MIN_BREATHS_PER_MIN <= pace <= MAX_BREATHS_PER_MIN

    def _bad_length(self, event: Event, now: float) -> bool:
        duration = _adjust_of(event).duration_min
        return duration is not None and not self._length_ok(duration)

    def _above_heat_cap(self, event: Event, now: float) -> bool:
        """More heat than the dose step-down left this session."""
        heat, cap = _adjust_of(event).heat, self._heat_cap()
        return heat is not None and cap is not None and rank(heat) > rank(cap)

    def _not_clearable(self, event: Event, now: float) -> bool:
        return not self._fault_clearable

    def _no_valid_reading(self, event: Event, now: float) -> bool:
        return not self._supervisor.heat_allowed(now) or self._surface_c() is None

    def _too_warm(self, event: Event, now: float) -> bool:
        temperature = self._surface_c()
        return temperature is not None and temperature >= self.rules.reset_below_c

    def _cooldown_left(self, event: Event, now: float) -> bool:
        return self.cooldown_until > now

    def _day_over(self, event: Event, now: float) -> bool:
        """Today's minutes, the session or preheat under way included, are used up."""
        return self._used_min(now) >= self.rules.daily_max_min

    def _preheat_over(self, event: Event, now: float) -> bool:
        return now >= self._preheat_until

    def _time_up(self, event: Event, now: float) -> bool:
        session = self._under_way()
        return now - session.started_at >= session.planned_s

    def _cooled_down(self, event: Event, now: float) -> bool:
        return now >= self.cooldown_until

    def _nobody_on(self, event: Event, now: float) -> bool:
        """The occupancy sensor says the mat is empty (never true without one)."""
        return not self._someone_on()

    def _vacated_too_long(self, event: Event, now: float) -> bool:
        """The session's person has been off the mat for the grace time."""
        return not self._someone_on() and now - self._left_at >= self.rules.vacated_grace_s

    # --- why a refusal row says no: named as the table shows it --------------------

    def _unknown(self, event: Event, now: float) -> str:
        name = _selection_of(event) if isinstance(event, SelectProgram) else (
            _start_of(event).program or self.selected)
        return f"unknown program {name!r}; known: {', '.join(sorted(self.rules.programs))}"

    def _length(self, event: Event, now: float) -> str:
        duration = (_adjust_of(event) if isinstance(event, Adjust) else _start_of(event)
                    ).duration_min
        return (f"duration_min = {duration:g}: must be "
                f"{MIN_SESSION_MIN:g} to {self.rules.session_max_min:g}")

    def _day_limit(self, event: Event, now: float) -> str:
        return f"daily limit of {self.rules.daily_max_min:g} min reached"

    def _preheats(self, event: Event, now: float) -> str:
        return (f"{limits.MAX_PREHEATS_PER_HOUR} remote starts in the last hour were not "
                "confirmed at the mat: press the button on the mat to start")

    def _busy(self, event: Event, now: float) -> str:
        return f"a session is already {self.state}"

    def _cooling(self, event: Event, now: float) -> str:
        """In m:ss, as the snapshot's whole seconds and every countdown show it."""
        left_s = int(max(self.cooldown_until - now, 0.0))
        return f"cooling down: {left_s // 60}:{left_s % 60:02d} left"

    def _keeps(self, event: Event, now: float) -> str:
        return (f"a session of {self._under_way().program.name} is under way and keeps its "
                "program: choose the next one after it ends, or stop it first")

    def _empty(self, event: Event, now: float) -> str:
        return ("nobody on the mat: lie down on it first (the occupancy sensor reads it "
                "empty)")

    def _latched(self, event: Event, now: float) -> str:
        return f"fault latched ({self.fault}): reset it at the mat"

    def _hold(self, event: Event, now: float) -> str:
        return "fault latched: hold the button to reset once the mat is cool"

    def _not_here(self, event: Event, now: float) -> str:
        return f"{self.fault}: this cannot be reset at the mat"

    def _unread(self, event: Event, now: float) -> str:
        return "no valid temperature reading: check the sensor"

    def _warm(self, event: Event, now: float) -> str:
        return (f"mat at {self._surface_c():.1f} °C: wait until it is below "
                f"{self.rules.reset_below_c:g} °C")

    def _intensity(self, event: Event, now: float) -> str:
        return f"intensity_pct = {_adjust_of(event).intensity_pct:g}: must be 0 to 100"

    def _pace(self, event: Event, now: float) -> str:
        return (f"breaths_per_min = {_adjust_of(event).breaths_per_min:g}: must be "
                f"{MIN_BREATHS_PER_MIN:g} to {MAX_BREATHS_PER_MIN:g}")

    def _capped(self, event: Event, now: float) -> str:
        return (f"heat = {_adjust_of(event).heat}: limited to {self._heat_cap()} for the "
                "rest of this session (thermal dose)")

    # --- actions: the notices; the row's target is the state that follows ---------

    def _ignore(self, event: Event, now: float) -> list[Notice]:
        return []

    def _latch_alarm(self, event: Event, now: float) -> list[Notice]:
        assert self._alarm is not None
        return self._latch(self._alarm, now)

    def _latch_driver_fault(self, event: Event, now: float) -> list[Notice]:
        assert isinstance(event, DriverFault)
        return self._latch(event.reason, now)

    def _refuse_on_empty(self, event: Event, now: float) -> list[Notice]:
        """No start on an empty mat; the LED says so for a moment."""
        self._nobody_until = now + NOBODY_SHOWN_S
        command = "press" if self.state is PREHEAT else "start"
        return [Refused(command, self._empty(event, now))]

    def _note_occupancy(self, event: Event, now: float) -> list[Notice]:
        """Leaving pauses heat and vibration at once (the demand and the outputs read it);
        the grace time counts from here."""
        assert isinstance(event, Occupancy)
        if self.occupied is None:
            return []  # no sensor in the rules: a stray event changes nothing
        if self.occupied and not event.occupied:
            self._left_at = now
        self.occupied = event.occupied
        return []

    def _end_vacated(self, event: Event, now: float) -> list[Notice]:
        return self._close(EndReason.VACATED, now)

    def _begin_session(self, event: Event, now: float) -> list[Notice]:
        start = _start_of(event)
        program, planned_s, cut = self._take_start(start.program, start.duration_min)
        return self._begin_running(program, planned_s, now, start.source, cut)

    def _begin_preheat(self, event: Event, now: float) -> list[Notice]:
        """A remote start only preheats: heat with nobody known to be on the mat is
        bounded in time, counted as use and dose, and needs a press to go on."""
        start = _start_of(event)
        program, planned_s, cut = self._take_start(start.program, start.duration_min)
        session = Run(program, planned_s, now, Source.REMOTE, cut, preheat=True)
        session.dose.add(self._surface_c(), now)
        self._session = session
        self._preheat_until = now + self.rules.preheat_max_min * 60.0
        self._unconfirmed = [t for t in self._unconfirmed if now - t < PREHEAT_WINDOW_S]
        self._unconfirmed.append(now)
        return [PreheatStarted(program.name, self.rules.preheat_max_min)]

    def _confirm(self, event: Event, now: float) -> list[Notice]:
        """A press at the mat turns the preheat into a session, within what is left today."""
        allowance_s, left_s = self._left_if_confirmed(now)
        preheat = self._settle_preheat(now)
        ended = self._preheat_ended(preheat, EndReason.CONFIRMED, now)
        planned_s = min(preheat.planned_s, left_s)
        cut = preheat.cut_by_daily_limit or allowance_s < preheat.planned_s
        notices = self._begin_running(preheat.program, planned_s, now, Source.LOCAL, cut)
        session = self._under_way()
        session.dose_before, session.preheat_s = preheat.dose.total, now - preheat.started_at
        session.heat_stopped, session.heat_cap = preheat.heat_stopped, preheat.heat_cap
        return [ended, *notices]

    def _give_up_preheat(self, event: Event, now: float) -> list[Notice]:
        """The preheat used up what a session could have had: it ends, and the press is
        refused with the time that was left."""
        allowance_s, left_s = self._left_if_confirmed(now)
        preheat = self._settle_preheat(now)
        self._cool_down(now)
        reason = EndReason.DAILY_LIMIT if allowance_s <= left_s else EndReason.PREHEAT_TIMEOUT
        return [self._preheat_ended(preheat, reason, now),
                Refused("press", "the preheat used up the heat time left "
                                 f"({left_s / 60.0:.1f} min)")]

    def _end_stopped(self, event: Event, now: float) -> list[Notice]:
        return self._close(EndReason.STOPPED, now)

    def _end_day_over(self, event: Event, now: float) -> list[Notice]:
        return self._close(EndReason.DAILY_LIMIT, now)

    def _end_preheat_over(self, event: Event, now: float) -> list[Notice]:
        return self._close(EndReason.PREHEAT_TIMEOUT, now)

    def _end_time_up(self, event: Event, now: float) -> list[Notice]:
        cut = self._under_way().cut_by_daily_limit
        return self._close(EndReason.DAILY_LIMIT if cut else EndReason.COMPLETED, now)

    def _limit_heat(self, event: Event, now: float) -> list[Notice]:
        return self._limit_dose(self._under_way())

    def _clear_fault(self, event: Event, now: float) -> list[Notice]:
        self.fault = None
        return [FaultCleared()]

    def _cycle_program(self, event: Event, now: float) -> list[Notice]:
        """The next program; from one that is gone from the rules, the first."""
        names = list(self.rules.programs)
        after = names.index(self.selected) + 1 if self.selected in names else 0
        return self._select(names[after % len(names)])

    def _select_program(self, event: Event, now: float) -> list[Notice]:
        return self._select(_selection_of(event))

    def _adjust(self, event: Event, now: float) -> list[Notice]:
        """The chosen program's settings, and the session's under way, as the Adjust says."""
        change = _adjust_of(event)
        session = self._session
        self.choice = changed(self.choice, change)
        if change.duration_min is not None:
            self._duration_override = change.duration_min
        if session is not None:
            session.program = changed(session.program, change)
            if change.duration_min is not None:
                self._replan(session, change.duration_min, now)
        planned = session.planned_s / 60.0 if session else self._chosen_min()
        return [Adjusted(self.choice.heat, self.choice.pattern, self.choice.intensity_pct,
                         round(planned, 2), self.choice.breaths_per_min)]

    # --- the table ----------------------------------------------------------------
    # For each state and event kind the rows are tried top to bottom; the first whose
    # guard holds fires. The Time rows are looked up before and after every event.

    TRANSITIONS: ClassVar[tuple[Transition["SessionMachine"], ...]] = (
        #   states     event          guard              target    action
        # --- time passing, in every state: a guard's fault first, then the deadlines
        row(NOT_FAULT, Time,          _alarmed,          FAULT,    _latch_alarm),
        row(ACTIVE,    Time,          _day_over,         COOLDOWN, _end_day_over),
        row(PREHEAT,   Time,          _preheat_over,     COOLDOWN, _end_preheat_over),
        row(RUNNING,   Time,          _time_up,          COOLDOWN, _end_time_up),
        row(RUNNING,   Time,          _vacated_too_long, COOLDOWN, _end_vacated),
        row(ACTIVE,    Time,          ALWAYS,            STAY,     _limit_heat),
        row(COOLDOWN,  Time,          _cooled_down,      IDLE,     _ignore),
        row(RESTING,   Time,          ALWAYS,            STAY,     _ignore),
        # --- in every state: a fault latches (the supervisor took the reading before)
        row(NOT_FAULT, Reading,       _alarmed,          FAULT,    _latch_alarm),
        row(ANY_STATE, Reading,       ALWAYS,            STAY,     _ignore),
        row(NOT_FAULT, Readings,      _alarmed,          FAULT,    _latch_alarm),
        row(ANY_STATE, Readings,      ALWAYS,            STAY,     _ignore),
        row(NOT_FAULT, DriverFault,   ALWAYS,            FAULT,    _latch_driver_fault),
        row(FAULT,     DriverFault,   ALWAYS,            STAY,     _ignore),  # first one stays
        # the occupancy sensor: leaving pauses heat and vibration; see _vacated_too_long
        row(ANY_STATE, Occupancy,     ALWAYS,            STAY,     _note_occupancy),
        # Tick and ClockStepped did their work before the table: time, the calendar.
        row(ANY_STATE, Tick,          ALWAYS,            STAY,     _ignore),
        row(ANY_STATE, ClockStepped,  ALWAYS,            STAY,     _ignore),
        # --- in every state: the chosen program and its settings, within the limits
        row(ANY_STATE, SelectProgram, _unknown_choice,   STAY,     Refuse("program", _unknown)),
        row(ACTIVE,    SelectProgram, ALWAYS,            STAY,     Refuse("program", _keeps)),
        row(RESTING,   SelectProgram, ALWAYS,            STAY,     _select_program),
        row(ANY_STATE, Adjust,        _bad_intensity,    STAY,     Refuse("intensity", _intensity)),
        row(ANY_STATE, Adjust,        _bad_pace,         STAY,     Refuse("breaths", _pace)),
        row(ANY_STATE, Adjust,        _bad_length,       STAY,     Refuse("duration", _length)),
        row(ACTIVE,    Adjust,        _above_heat_cap,   STAY,     Refuse("heat", _capped)),
        row(ANY_STATE, Adjust,        ALWAYS,            STAY,     _adjust),
        row(ANY_STATE, Start,         _unknown_program,  STAY,     Refuse("start", _unknown)),
        # --- idle: a press or a local start runs a session; a remote start only preheats
        row(IDLE,      Press,         _unknown_program,  STAY,     Refuse("start", _unknown)),
        row(IDLE,      Press,         _day_used_up,      STAY,     Refuse("start", _day_limit)),
        row(IDLE,      Press,         _nobody_on,        STAY,     _refuse_on_empty),
        row(IDLE,      Press,         ALWAYS,            RUNNING,  _begin_session),
        row(IDLE,      Start,         _bad_duration,     STAY,     Refuse("start", _length)),
        row(IDLE,      Start,         _day_used_up,      STAY,     Refuse("start", _day_limit)),
        row(IDLE,      Start,         _preheats_used_up, STAY,     Refuse("start", _preheats)),
        row(IDLE,      Start,         _remote,           PREHEAT,  _begin_preheat),
        row(IDLE,      Start,         _nobody_on,        STAY,     _refuse_on_empty),
        row(IDLE,      Start,         ALWAYS,            RUNNING,  _begin_session),
        row(IDLE,      DoublePress,   ALWAYS,            STAY,     _cycle_program),
        row(IDLE,      LongPress,     ALWAYS,            STAY,     _ignore),
        row(IDLE,      Stop,          ALWAYS,            STAY,     _ignore),
        # --- preheat: a press at the mat confirms it, if a session still fits
        row(PREHEAT,   Press,         _preheat_spent,    COOLDOWN, _give_up_preheat),
        row(PREHEAT,   Press,         _nobody_on,        STAY,     _refuse_on_empty),
        row(PREHEAT,   Press,         ALWAYS,            RUNNING,  _confirm),
        row(PREHEAT,   DoublePress,   _preheat_spent,    COOLDOWN, _give_up_preheat),
        row(PREHEAT,   DoublePress,   _nobody_on,        STAY,     _refuse_on_empty),
        row(PREHEAT,   DoublePress,   ALWAYS,            RUNNING,  _confirm),
        # --- running: any press stops it
        row(RUNNING,   Press,         ALWAYS,            COOLDOWN, _end_stopped),
        row(RUNNING,   DoublePress,   ALWAYS,            COOLDOWN, _end_stopped),
        # --- preheat or running: a long press or a stop, local or remote, ends it
        row(ACTIVE,    LongPress,     ALWAYS,            COOLDOWN, _end_stopped),
        row(ACTIVE,    Stop,          ALWAYS,            COOLDOWN, _end_stopped),
        row(ACTIVE,    Start,         ALWAYS,            STAY,     Refuse("start", _busy)),
        # --- cooldown: nothing starts until it is over
        row(COOLDOWN,  Press,         ALWAYS,            STAY,     Refuse("press", _cooling)),
        row(COOLDOWN,  Start,         ALWAYS,            STAY,     Refuse("start", _cooling)),
        row(COOLDOWN,  DoublePress,   ALWAYS,            STAY,     _cycle_program),
        row(COOLDOWN,  LongPress,     ALWAYS,            STAY,     _ignore),
        row(COOLDOWN,  Stop,          ALWAYS,            STAY,     _ignore),
        # --- fault: latched; only a long press at the mat clears it, and only when cool
        row(FAULT,     LongPress,     _not_clearable,    STAY,     Refuse("reset", _not_here)),
        row(FAULT,     LongPress,     _no_valid_reading, STAY,     Refuse("reset", _unread)),
        row(FAULT,     LongPress,     _too_warm,         STAY,     Refuse("reset", _warm)),
        row(FAULT,     LongPress,     _cooldown_left,    COOLDOWN, _clear_fault),
        row(FAULT,     LongPress,     ALWAYS,            IDLE,     _clear_fault),
        row(FAULT,     Press,         ALWAYS,            STAY,     Refuse("press", _hold)),
        row(FAULT,     Start,         ALWAYS,            STAY,     Refuse("start", _latched)),
        row(FAULT,     DoublePress,   ALWAYS,            STAY,     _ignore),
        row(FAULT,     Stop,          ALWAYS,            STAY,     _ignore),  # never clears
    )
    _ROWS = index(TRANSITIONS, EVENT_KINDS)
