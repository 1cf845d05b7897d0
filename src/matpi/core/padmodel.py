"""The heating pad as one lumped heat capacity: the documented thermal model.

    C dT/dt = P·heating + k_body·(T_body − T)·body − k_room·(T − T_room)

It has an exact solution over any interval with the heater and the body
contact held, so it serves three purposes with one set of numbers: the
simulator's pad, the config check that a relay's minimum on-time cannot
overshoot the setpoint, and the estimate the core runs beside the sensor so
that a sensor reading low cannot hide heat (`PadEstimate`). Pure: no clock.
"""

import math
from dataclasses import dataclass

MAX_STEP_S = 5.0
"""Longest interval integrated in one piece, so the body contact is re-decided often."""


@dataclass(frozen=True)
class PadModel:
    """Physical constants of a pad (SI units); the defaults are a 100 W pad of 1,500 J/K.

    With these a bare pad warms from 21 °C to 39 °C in about 6 min and would
    settle near 61 °C with the heater stuck on.
    """

    heater_w: float = 100.0
    capacity_j_per_k: float = 1500.0
    room_loss_w_per_k: float = 2.5
    body_w_per_k: float = 1.5
    room_c: float = 21.0
    body_c: float = 34.0

    def after(self, temp_c: float, seconds: float, *, heating: bool, body: bool) -> float:
        """The temperature `seconds` later, heater and body contact held as given."""
        if seconds <= 0.0:
            return temp_c
        lying = 1.0 if body else 0.0
        conductance = self.room_loss_w_per_k + self.body_w_per_k * lying
        power = self.heater_w if heating else 0.0
        settle_c = (power + self.room_loss_w_per_k * self.room_c
                    + self.body_w_per_k * self.body_c * lying) / conductance
        tau_s = self.capacity_j_per_k / conductance
        return settle_c + (temp_c - settle_c) * math.exp(-seconds / tau_s)

    def overshoot_c(self, setpoint_c: float, below_c: float, on_s: float) -> float:
        """How far above `setpoint_c` the pad ends up when the heater comes on `below_c`
        under it and stays on `on_s`, on a bare pad (the fastest rise)."""
        return self.after(setpoint_c - below_c, on_s, heating=True, body=False) - setpoint_c


class PadEstimate:
    """The pad temperature the heater's on-time implies, run beside the sensor.

    A lower bound for a real pad that matches the model: the body only ever
    counts where it cools the pad (above body temperature), and the estimate
    starts at no less than the room temperature. So when the sensors read far
    below it, they (both: one alone is outvoted by the other) or their contact
    with the pad are wrong, or the element does not heat; the core also trusts
    the higher of reading and estimate for control, dose and the overheat guard.

        estimate = PadEstimate(PadModel(), temp_c=30.0, now=0.0)
        estimate.advance(heating=True, now=60.0)
    """

    def __init__(self, model: PadModel) -> None:
        self._model = model
        self.temp_c: float | None = None
        self._at = 0.0

    def seed(self, reading_c: float, now: float) -> None:
        """Start from the first valid reading, never below the room temperature: sensors
        that read low from the start must not drag the estimate down with them."""
        if self.temp_c is None:
            self.temp_c = max(reading_c, self._model.room_c)
            self._at = now

    def advance(self, *, heating: bool, now: float) -> None:
        """Account the interval since the last call with the heater as it was in it."""
        temp_c = self.temp_c
        if temp_c is None:
            return
        left_s = now - self._at
        self._at = max(now, self._at)
        while left_s > 0.0:
            dt = min(left_s, MAX_STEP_S)
            temp_c = self._model.after(temp_c, dt, heating=heating,
                                       body=temp_c > self._model.body_c)
            left_s -= dt
        self.temp_c = temp_c
