"""Absolute safety ceilings. Config may lower every one of them and raise none.

The numbers and their sources are in the project's safety documentation
(docs/SAFETY.md): a person lies on this heater, often tired, sometimes with
reduced sensation, so each ceiling leaves a wide margin to a contact burn.
"""

from typing import Final

MAX_SESSION_MIN: Final = 30.0
"""Longest session: heated massage mats switch off after 15-30 min; the FDA
reports second-degree burns in under 20 min when lying on a pad."""

MAX_SETPOINT_C: Final = 42.0
"""Highest surface setpoint: 9 CEM43 takes 36 min at 42 °C, hours at 40-41 °C."""

TRIP_C: Final = 45.0
"""Over-temperature trip: the heat-pain threshold (44-46 °C) and 9 CEM43 in 2.3 min."""

MAX_DOSE_CEM43: Final = 9.0
"""Thermal dose per session (van Rhoon 2013: under 9 CEM43 no tissue damage)."""

MAX_DAILY_DOSE_CEM43: Final = 9.0
"""Thermal dose per calendar day, preheats included: skin does not reset between
sessions, so short sessions must not add up past the per-session bound."""

MIN_COOLDOWN_MIN: Final = 5.0
"""Shortest pause between sessions, so skin can recover before the next dose."""

MAX_DAILY_MIN: Final = 120.0
"""Most use in one calendar day."""

MAX_PREHEAT_MIN: Final = 10.0
"""Longest preheat of an empty mat before someone presses the button at it."""

MAX_VACATED_GRACE_S: Final = 300.0
"""The longest a session waits, unheated and still, for its person to lie back down
before it ends (occupancy sensor): longer, and a stranger's body meets a session that
nobody restarted."""

MAX_PREHEATS_PER_HOUR: Final = 2
"""Remote starts nobody confirmed at the mat, at most, in any hour: a loop of remote
starts and stops must not keep a mat warm for someone who never pressed anything."""

MAX_RESET_BELOW_C: Final = 35.0
"""A latched fault clears at the mat only once the surface is below this (the mat
board's firmware uses the same number)."""

MAX_OVERSHOOT_C: Final = 1.0
"""Most the surface may rise above its setpoint, on the documented pad model, with
the configured relay times: config refuses settings that overshoot more."""

OVERSHOOT_CUT_C: Final = 0.5
"""Heat goes off at once when the surface is this far above the setpoint, whatever
a relay's minimum on-time asks."""

OVERHEAT_FAULT_C: Final = 0.8
"""A surface this far above the setpoint in force latches a fault and drops the power
relay: the heater relay did not stop the heat (welded), or something else heats."""

STALE_HEAT_OFF_S: Final = 3.0
"""Heat goes off when no valid reading arrived for this long (Klipper: 3 s)."""

STALE_FAULT_S: Final = 10.0
"""A reading missing this long latches a fault."""

MAX_POLL_S: Final = 2.0
"""The slowest the sensors may be read: a reading arrives well inside STALE_HEAT_OFF_S.
`[hardware] poll_s` may not exceed it, and while no session can heat (idle, cooldown,
fault) the mat reads its sensors this often, whatever poll_s says (at real speed; a
read the core counts as bad is tried again poll_s later)."""

SENSOR_MIN_C: Final = 5.0
"""Below this a sensor is open-circuit or off the mat (Marlin MINTEMP)."""

SENSOR_MAX_C: Final = 60.0
"""Above this a sensor is shorted: no mat surface should ever read it."""

MAX_CHECK_WINDOW_S: Final = 120.0
"""Longest a heater may take to gain its check step before the not-heating guard counts."""

MAX_CHECK_ERROR_CS: Final = 300.0
"""Most shortfall (°C·s) the not-heating guard tolerates (Klipper's default is 120)."""

MAX_RUNAWAY_RISE_C: Final = 2.0
"""Largest rise with the heater off that the runaway guard may overlook."""
