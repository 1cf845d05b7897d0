"""A state table: rows of (states, event kind, guard) -> target state, action (pure).

The session machine keeps every transition in one table of these rows, as h11
keeps its own in `_state.py`: a reader sees them all at once, and the tests
walk them. The rows for one state and one event kind are tried top to bottom;
the first whose guard holds fires: its action runs, then the machine moves to
the row's target (`STAY`: it stays). A refusal is a row too: its guard says
when, its action says why, and its target is `STAY`.

Every (state, kind) pair ends in exactly one `ALWAYS` row, so no event ever
falls through the table; `index` refuses a table where one would. Pure: rows
are data, and the guards and actions they name are the machine's.

    TABLE = (
        row(NOT_FAULT, DriverFault, ALWAYS, FAULT, Machine._latch_driver_fault),
        row(FAULT, LongPress, Machine._too_warm, STAY, Refuse("reset", Machine._warm)),
        ...
    )
    ROWS = index(TABLE, kinds=(LongPress, DriverFault, ...))  # (state, kind) -> rows
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from matpi.core.events import Event, Notice, Refused, State

M = TypeVar("M")

IDLE, PREHEAT, RUNNING = State.IDLE, State.PREHEAT, State.RUNNING
COOLDOWN, FAULT = State.COOLDOWN, State.FAULT

ANY_STATE: Final = tuple(State)
"""Rows for these apply in every state: settings, readings, time."""
NOT_FAULT: Final = (IDLE, PREHEAT, RUNNING, COOLDOWN)
ACTIVE: Final = (PREHEAT, RUNNING)
"""A session or a preheat under way: the only states in which the heater may be on."""
RESTING: Final = (IDLE, COOLDOWN, FAULT)

STAY: Final = None
"""A row's target when the machine stays in the state it was in."""


class Time:
    """Not an event: the kind of the rows looked up as time passes, before and after
    every event (time first: a press after a deadline finds it passed)."""


def always(machine: object, event: Event, now: float) -> bool:
    """The guard of the last row of each (state, kind): whatever else, this."""
    return True


ALWAYS: Final = always


@dataclass(frozen=True)
class Transition(Generic[M]):
    """One row: in any of `states`, on an event of kind `event`, if `guard` holds,
    run `action` and move to `target` (None: stay)."""

    states: tuple[State, ...]
    event: type
    guard: Callable[[M, Event, float], bool]
    target: State | None
    action: Callable[[M, Event, float], list[Notice]]

    def __str__(self) -> str:
        states, guard, action = "|".join(self.states), _name(self.guard), _name(self.action)
        target = "stay" if self.target is None else self.target
        return f"{states} --{self.event.__name__} [{guard}]--> {target}: {action}"


@dataclass(frozen=True)
class Refuse(Generic[M]):
    """The action of a refusal row: no to `command`, with the reason `why` gives.

    Nothing else happens; a refusal row's target is `STAY`.
    """

    command: str
    why: Callable[[M, Event, float], str]

    def __call__(self, machine: M, event: Event, now: float) -> list[Notice]:
        return [Refused(self.command, self.why(machine, event, now))]

    def __str__(self) -> str:
        return f"refuse {self.command} ({_name(self.why)})"


def _name(f: object) -> str:
    return str(getattr(f, "__name__", f))


def row(
    states: State | tuple[State, ...],
    event: type,
    guard: Callable[[M, Event, float], bool],
    target: State | None,
    action: Callable[[M, Event, float], list[Notice]],
) -> Transition[M]:
    """A row, for one state or several."""
    return Transition(states if isinstance(states, tuple) else (states,), event, guard,
                      target, action)


def index(
    table: Iterable[Transition[M]], kinds: Iterable[type]
) -> dict[tuple[State, type], tuple[Transition[M], ...]]:
    """The rows of each (state, kind) pair, in table order: what a machine looks up.

    Args:
        table: the rows, in the order they are to be tried.
        kinds: every event kind the table must answer (Time included).

    Returns:
        For every state and kind, its rows, the ALWAYS row last.

    Raises:
        ValueError: a pair has no row, a row of an unknown kind, or a pair whose
            rows do not end in exactly one `ALWAYS` row (an event could fall
            through, or a row could never fire).
    """
    kinds = tuple(kinds)
    rows: dict[tuple[State, type], list[Transition[M]]] = {
        (state, kind): [] for state in State for kind in kinds}
    for r in table:
        for state in r.states:
            if (state, r.event) not in rows:
                raise ValueError(f"{r}: {r.event.__name__} is not an event kind of the table")
            rows[state, r.event].append(r)
    for (state, kind), found in rows.items():
        unguarded = [r for r in found if r.guard is ALWAYS]
        if len(unguarded) != 1 or found[-1].guard is not ALWAYS:
            raise ValueError(f"{kind.__name__} in {state}: the rows must end in exactly one "
                             f"ALWAYS row, not {[str(r) for r in found]}")
    return {pair: tuple(found) for pair, found in rows.items()}
