"""The fault-injection suite: one test per hazard, on the simulated mat.

A deterministic rig steps the pure session machine every 0.5 s against the
simulated pad (thermal model, faults), applying its heater output to the pad
as the controller would. Each test injects one hazard into a session that is
heating normally, then asserts: the heater is off within the stated bound,
the fault reason is the right one, and nothing recovers by itself.

The last test removes each guard in turn and shows its hazard going unnoticed:
every guard has a test that fails without it.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date

import pytest

from conftest import HandClock
from matpi.core.events import (
    Event,
    HeatSteppedDown,
    HeatStopped,
    Notice,
    Reading,
    Source,
    Start,
    State,
    Tick,
)
from matpi.core.padmodel import PadModel
from matpi.core.programs import HeatLevel
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.core.supervision import (
    ModelGapGuard,
    NotHeatingGuard,
    OverheatGuard,
    RunawayGuard,
    Supervisor,
)
from matpi.drivers.sim import SimFault, SimulatedMat

DAY = date(2026, 6, 1)
STEP_S = 0.5


@dataclass
class Rig:
    """Session machine + simulated pad, stepped every 0.5 s; a person lies on the pad."""

    rules: Rules = field(default_factory=Rules)
    model: PadModel = field(default_factory=PadModel)
    sensors_read: bool = True
    override: Callable[[Reading], Reading] | None = None
    power_relay: bool = True
    """False: a mat whose element is fed directly (no master power relay)."""
    resting_read_s: float = 2.0
    """How often the sensors are read while no session can heat, as the daemon reads them
    (`limits.MAX_POLL_S`, written out): the idle and cooldown guards see no more."""

    def __post_init__(self) -> None:
        self.clock = HandClock()
        self.pad = SimulatedMat(self.clock, self.model)
        self.pad.person_lying = True
        self.machine = SessionMachine(self.rules, 0.0, DAY)
        self.notices: list[Notice] = []
        self.heater_log: list[tuple[float, bool]] = []
        self.truth_log: list[tuple[float, float, bool]] = []
        """(time, true surface °C, current flowing in the element) after every step."""
        self.read_at = float("-inf")

    @property
    def now(self) -> float:
        return self.clock.t

    def send(self, event: Event) -> None:
        self.notices += self.machine.step(event, self.now, DAY)
        outputs = self.machine.outputs(self.now)
        self.pad.set_heater(outputs.heater)
        self.pad.set_power(outputs.power or not self.power_relay)
        self.heater_log.append((self.now, outputs.heater))
        self.truth_log.append((self.now, self.pad.surface_c(), self.pad.heating))

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.clock.t = round(self.now + STEP_S, 6)
            resting = self.machine.state not in (State.PREHEAT, State.RUNNING)
            if not self.sensors_read or (
                    resting and self.now - self.read_at < self.resting_read_s - 1e-9):
                self.send(Tick())
                continue
            self.read_at = self.now
            for sensor in self.rules.sensors:
                reading = self.pad.sense(sensor)
                self.send(self.override(reading) if self.override else reading)

    def start(self, program: str = "deep") -> None:
        """A session warmed up to its setpoint and holding it."""
        self.run(2.0)
        self.send(Start(Source.LOCAL, program))
        self.run(8 * 60)
        assert self.machine.state is State.RUNNING, self.notices

    def run_until(self, done: Callable[[], bool], *, limit_s: float) -> None:
        """Step until `done`, failing the test if that takes longer than `limit_s`."""
        end = self.now + limit_s
        while not done():
            assert self.now < end, f"still not done after {limit_s:g} s"
            self.run(STEP_S)

    def hottest_while_heating(self, since: float = 0.0) -> float:
        """The true surface's peak at any moment current flowed in the element."""
        return max((c for t, c, heating in self.truth_log if heating and t >= since),
                   default=0.0)

    def off_since(self) -> float | None:
        """When the heater went off for good (None if it is on now)."""
        last_on = max((t for t, on in self.heater_log if on), default=None)
        if self.heater_log[-1][1]:
            return None
        return last_on

    def assert_latched(self, reason: str, *, off_within_s: float, since: float) -> None:
        """The fault is `reason`, heat went off within the bound, and it stays so."""
        assert self.machine.state is State.FAULT, self.notices[-3:]
        assert reason in (self.machine.fault or ""), self.machine.fault
        last_on = max((t for t, on in self.heater_log if on), default=0.0)
        assert last_on - since <= off_within_s, f"heater on {last_on - since:.1f} s after"
        self.run(15 * 60)
        assert self.machine.state is State.FAULT
        assert not any(on for t, on in self.heater_log if t > last_on)
        out = self.machine.outputs(self.now)
        assert not out.heater and not out.power and out.vibration == 0.0


@pytest.fixture
def rig() -> Iterator[Rig]:
    yield Rig()


def test_session_on_the_simulator_holds_its_setpoint_without_faults(rig: Rig) -> None:
    rig.start("deep")  # high: 41 °C
    temps = []
    for _ in range(20 * 60):
        rig.run(1.0)
        temps.append(rig.pad.surface_c())
    assert rig.machine.fault is None and rig.machine.state is State.RUNNING
    assert min(temps) >= 39.5 and max(temps) <= 41.5  # relay: 0.5 °C band, 30 s minimum off
    rig.run(3 * 60)
    assert rig.machine.state is State.COOLDOWN and rig.machine.fault is None


def test_stale_reading_heat_off_in_3_s_and_fault_in_10(rig: Rig) -> None:
    rig.start()
    since = rig.now
    rig.sensors_read = False  # the sensor poller is gone: no readings at all
    rig.run(3.0)
    assert not rig.machine.outputs(rig.now).heater
    assert rig.machine.state is State.RUNNING
    rig.run(7.0)
    rig.assert_latched("no valid reading for 10 s", off_within_s=3.0, since=since)


def test_disconnected_sensor_latches_after_three_bad_readings(rig: Rig) -> None:
    rig.start()
    since = rig.now
    rig.pad.inject(SimFault.SENSOR_DISCONNECTED)
    rig.run(1.5)
    rig.assert_latched("sensor mat: no response", off_within_s=0.5, since=since)


def test_shorted_sensor_reading_out_of_range_latches(rig: Rig) -> None:
    rig.start()
    since = rig.now
    rig.override = lambda r: Reading(r.sensor, 71.5)
    rig.run(1.5)
    rig.assert_latched("71.5 °C is out of range", off_within_s=0.5, since=since)


def test_over_temperature_trips_at_45(rig: Rig) -> None:
    rig.start()
    since = rig.now
    rig.override = lambda r: Reading(r.sensor, 46.0)  # a hot spot under the sensor
    rig.run(STEP_S)
    assert not rig.machine.outputs(rig.now).heater  # off on the first reading at the trip
    rig.run(STEP_S)
    rig.override = None
    rig.assert_latched("over-temperature: sensor mat reads 46.0 °C, trip at 45 °C",
                       off_within_s=0.0, since=since)


def test_mat_warmed_from_outside_latches_a_fault_before_45() -> None:
    rig = Rig(model=PadModel(room_c=60.0, heater_w=0.0))  # left in the sun
    rig.pad = SimulatedMat(rig.clock, rig.model, start_c=25.0)
    rig.run_until(lambda: rig.machine.state is State.FAULT, limit_s=60 * 60)
    assert rig.pad.surface_c() < 45.0
    assert "heating with the heater off" in (rig.machine.fault or "")


def test_heater_that_does_not_heat_latches_not_heating(rig: Rig) -> None:
    rig.start()
    rig.run(2 * 60)  # cool a little under the setpoint first
    since = rig.now
    rig.pad.inject(SimFault.HEATER_OPEN)
    rig.run(6 * 60)
    rig.assert_latched("reading below the pad model", off_within_s=4 * 60, since=since)


def test_heater_that_does_not_heat_latches_not_heating_with_a_cautious_model() -> None:
    """A pad model that heats slower than the pad leaves the sensor in charge: the
    not-heating check is what catches the open element then."""
    rig = Rig(rules=Rules(pad=PadModel(heater_w=40.0)))
    rig.start()
    rig.run(2 * 60)
    since = rig.now
    rig.pad.inject(SimFault.HEATER_OPEN)
    rig.run(6 * 60)
    rig.assert_latched("not heating", off_within_s=4 * 60, since=since)


def test_sensor_fallen_off_the_heater_latches_disagreement(rig: Rig) -> None:
    rig.start()
    since = rig.now
    rig.pad.inject(SimFault.SENSOR_OFF_HEATER, sensor="mat")
    rig.run(4 * 60)
    rig.assert_latched("sensors disagree", off_within_s=3.0, since=since)
    assert rig.hottest_while_heating() <= 41.0 + 1.0


def test_both_sensors_lifted_off_slowly_latch_below_the_pad_model(rig: Rig) -> None:
    """Both under the same lifted cover, drifting down together: only the estimate sees it."""
    rig.start()
    since = rig.now

    def lifted(r: Reading) -> Reading:  # towards the room at 1 °C a minute, together
        assert r.value_c is not None
        return Reading(r.sensor, max(r.value_c - (rig.now - since) / 60.0, 21.0))

    rig.override = lifted
    rig.run(6 * 60)
    rig.assert_latched("reading below the pad model", off_within_s=6 * 60, since=since)
    assert rig.hottest_while_heating() <= 41.0 + 1.0


def test_sensor_stuck_below_the_setpoint_latches_not_heating(rig: Rig) -> None:
    rig.start()
    rig.pad.inject(SimFault.SENSOR_STUCK)
    rig.run(60)
    rig.pad.set_heater(False)
    rig.override = lambda r: Reading(r.sensor, 36.0)  # stuck low: the thermostat heats on
    since = rig.now
    rig.run(5 * 60)
    rig.assert_latched("reading below the pad model", off_within_s=3 * 60, since=since)
    assert rig.hottest_while_heating() <= 41.0 + 1.0


def test_welded_relay_latches_overheating_and_the_power_relay_cuts_it(rig: Rig) -> None:
    rig.start()
    since = rig.now
    rig.pad.inject(SimFault.RELAY_WELDED)
    rig.run(5 * 60)
    rig.assert_latched("overheating", off_within_s=2 * 60, since=since)
    assert rig.hottest_while_heating(since) <= 41.0 + 1.0  # the power relay cut the element
    assert not rig.pad.heating and rig.pad.surface_c() < 41.0


def test_welded_relay_while_idle_latches_runaway() -> None:
    rig = Rig(power_relay=False)
    rig.pad.person_lying = False
    rig.pad.inject(SimFault.RELAY_WELDED)
    rig.run_until(lambda: rig.machine.state is State.FAULT, limit_s=30 * 60)
    assert "heating with the heater off" in (rig.machine.fault or "")
    assert rig.pad.surface_c() < 38.0  # caught well below burn heat; the fuse does the rest


def test_sensor_stuck_just_below_the_setpoint_keeps_the_pad_at_the_setpoint(rig: Rig) -> None:
    """The pad estimate takes over from a sensor stuck 1 °C under high: no overheating."""
    rig.start()
    since = rig.now
    rig.override = lambda r: Reading(r.sensor, 40.0)
    rig.run(15 * 60)
    assert rig.hottest_while_heating(since) <= 41.0 + 1.0
    assert rig.machine.state is not State.RUNNING or rig.machine.fault is None


def test_sensor_stuck_just_below_the_setpoint_latches_not_heating_with_a_cautious_model() -> None:
    rig = Rig(rules=Rules(pad=PadModel(heater_w=40.0)))
    rig.start()
    since = rig.now
    rig.override = lambda r: Reading(r.sensor, 40.0)  # 1 °C under high: the relay stays on
    rig.run(5 * 60)
    rig.assert_latched("not heating", off_within_s=3 * 60, since=since)
    assert rig.pad.surface_c() < 45.0


def test_ssr_with_a_stuck_sensor_latches_not_heating() -> None:
    rig = Rig(rules=Rules(heater_kind="ssr", pad=PadModel(heater_w=40.0)))
    rig.start()
    since = rig.now
    rig.override = lambda r: Reading(r.sensor, 38.0)  # below the band: the SSR at full duty
    rig.run(5 * 60)
    rig.assert_latched("not heating", off_within_s=4 * 60, since=since)


def test_an_ssr_holds_its_setpoint_for_a_whole_session_without_faults() -> None:
    """The not-heating check must not mistake the SSR's part duty near the setpoint."""
    rig = Rig(rules=Rules(heater_kind="ssr"))
    rig.start()
    rig.run(22 * 60)
    assert rig.machine.fault is None
    assert rig.hottest_while_heating() <= 41.0 + 1.0


def test_two_sensors_disagreeing_latch() -> None:
    rig = Rig(rules=Rules(sensors=("mat", "mat2")))
    rig.start()
    since = rig.now
    rig.pad.inject(SimFault.SENSOR_OFF_HEATER, sensor="mat2")
    rig.run(3.0)
    rig.assert_latched("sensors disagree", off_within_s=2.0, since=since)


def test_single_noise_spikes_neither_trip_nor_heat(rig: Rig) -> None:
    rig.start()
    spikes = {rig.now + 10.0: 58.0, rig.now + 40.0: 49.0, rig.now + 70.0: 2.0}
    rig.override = lambda r: Reading(r.sensor, spikes.get(rig.now, r.value_c))
    rig.run(100)
    assert rig.machine.state is State.RUNNING and rig.machine.fault is None


def _low_spike_heats() -> bool:
    """True if one low reading switches a resting heater on (it must not)."""
    rig = Rig()
    rig.start()
    rig.override = lambda r: Reading(r.sensor, 41.0)  # held at the setpoint: heater rests
    rig.run(60)
    assert not rig.machine.outputs(rig.now).heater
    rig.override = lambda r: Reading(r.sensor, 20.0)
    rig.run(STEP_S)
    return rig.machine.outputs(rig.now).heater


def test_a_low_spike_does_not_switch_the_heater_on() -> None:
    assert not _low_spike_heats()


def test_dose_steps_down_at_75_percent_and_stops_at_the_limit() -> None:
    rig = Rig(rules=Rules(dose_max_cem43=0.16))
    rig.start("deep")
    rig.run(25 * 60)
    downs = [n for n in rig.notices if isinstance(n, HeatSteppedDown)]
    stops = [n for n in rig.notices if isinstance(n, HeatStopped)]
    assert [d.level for d in downs] == [HeatLevel.MEDIUM]
    assert len(stops) == 1
    stop_at = next(t for t, on in reversed(rig.heater_log) if on)
    assert rig.machine.state in (State.RUNNING, State.COOLDOWN)
    assert all(not on for t, on in rig.heater_log if t > stop_at)


GUARDS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], Callable[[], bool]]] = {}


def guard(name: str, disable: Callable[[pytest.MonkeyPatch], None]) -> Callable[
    [Callable[[], bool]], Callable[[], bool]
]:
    """Registers a hazard scenario that returns True when the mat stayed safe."""
    def register(scenario: Callable[[], bool]) -> Callable[[], bool]:
        GUARDS[name] = (disable, scenario)
        return scenario
    return register


def _hazard(inject: Callable[[Rig], None], seconds: float, rules: Rules | None = None) -> bool:
    rig = Rig(rules=rules or Rules())
    rig.start()
    inject(rig)
    rig.run(seconds)
    return rig.machine.state is State.FAULT and not rig.machine.outputs(rig.now).heater


@guard("not heating", lambda mp: mp.setattr(NotHeatingGuard, "update", lambda *a: None))
def _open_heater() -> bool:
    """An open element under a cautious pad model (the sensor in charge)."""
    return _hazard(lambda rig: rig.pad.inject(SimFault.HEATER_OPEN), 5 * 60,
                   Rules(pad=PadModel(heater_w=40.0)))


@guard("runaway", lambda mp: mp.setattr(RunawayGuard, "update", lambda *a: None))
def _welded_idle() -> bool:
    """A welded relay on a mat without a power relay, idle: caught long before the trip."""
    rig = Rig(power_relay=False)
    rig.pad.inject(SimFault.RELAY_WELDED)
    rig.run_until(lambda: rig.machine.state is State.FAULT, limit_s=60 * 60)
    return rig.pad.surface_c() < 40.0


@guard("overheat", lambda mp: mp.setattr(OverheatGuard, "update", lambda *a: None))
def _welded_in_session() -> bool:
    rig = Rig()
    rig.start()
    since = rig.now
    rig.pad.inject(SimFault.RELAY_WELDED)
    rig.run(5 * 60)
    return rig.machine.state is State.FAULT and rig.hottest_while_heating(since) <= 42.0


@guard("pad model gap", lambda mp: mp.setattr(ModelGapGuard, "update", lambda *a: None))
def _offset_five_low() -> bool:
    rig = Rig()
    rig.override = lambda r: Reading(r.sensor, (r.value_c or 0.0) - 5.0)
    rig.run(2.0)
    rig.send(Start(Source.LOCAL, "deep"))
    rig.run(10 * 60)
    return rig.machine.state is State.FAULT


@guard("higher of reading and estimate",
       lambda mp: mp.setattr(SessionMachine, "_surface_c",
                             lambda self: self._supervisor.temperature()))
def _offset_two_low() -> bool:
    rig = Rig()
    rig.override = lambda r: Reading(r.sensor, (r.value_c or 0.0) - 2.0)
    rig.run(2.0)
    rig.send(Start(Source.LOCAL, "deep"))
    rig.run(25 * 60)
    return rig.hottest_while_heating() <= 42.0


@guard("overshoot cut", lambda mp: mp.setattr("matpi.core.limits.OVERSHOOT_CUT_C", 99.0))
def _relay_held_too_long() -> bool:
    """A pad that heats faster than its model, on a slow relay: the cut stops the overshoot."""
    rig = Rig(rules=Rules(pad=PadModel(heater_w=40.0), min_on_s=120.0))
    rig.start()
    rig.run(15 * 60)
    return rig.machine.fault is None and rig.hottest_while_heating() <= 41.7


@guard("stale", lambda mp: mp.setattr(Supervisor, "check", lambda *a: None))
def _silent() -> bool:
    def stop_reading(rig: Rig) -> None:
        rig.sensors_read = False
    return _hazard(stop_reading, 12.0)


@guard("disagreement", lambda mp: mp.setattr(Supervisor, "_disagreement", lambda *a: None))
def _disagree() -> bool:
    return _hazard(lambda rig: rig.pad.inject(SimFault.SENSOR_OFF_HEATER, sensor="mat2"), 3.0,
                   Rules(sensors=("mat", "mat2")))


@guard("out of range", lambda mp: mp.setattr("matpi.core.supervision.OUT_OF_RANGE_IN_ROW", 10**9))
def _shorted() -> bool:
    def short(rig: Rig) -> None:
        rig.override = lambda r: Reading(r.sensor, 71.5)
    return _hazard(short, 3.0)


@guard("median filter", lambda mp: mp.setattr("matpi.core.supervision.MEDIAN_OF", 1))
def _spike() -> bool:
    """One sensor's single high spike neither trips nor reads as a disagreement."""
    rig = Rig()
    rig.start()
    spike_at = rig.now + STEP_S
    rig.override = lambda r: Reading(r.sensor, 49.0) if (
        rig.now == spike_at and r.sensor == "mat") else r
    rig.run(30.0)
    return rig.machine.fault is None


@guard("over-temperature", lambda mp: mp.setattr(Supervisor, "_over_temperature",
                                                 lambda *a: None))
def _hot_spot() -> bool:
    """A sensor reading 46 °C on an idle mat: only the trip looks at an idle, steady pad."""
    rig = Rig()
    rig.override = lambda r: Reading(r.sensor, 46.0)
    rig.run(60.0)
    return rig.machine.state is State.FAULT


@guard("dose limit", lambda mp: mp.setattr(SessionMachine, "_limit_dose", lambda *a: []))
def _dose() -> bool:
    rig = Rig(rules=Rules(dose_max_cem43=0.16))
    rig.start("deep")
    rig.run(18 * 60)
    return any(isinstance(n, HeatStopped) for n in rig.notices)


@pytest.mark.parametrize("name", sorted(GUARDS))
def test_every_guard_is_what_makes_its_hazard_safe(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    disable, scenario = GUARDS[name]
    assert scenario(), f"{name}: unsafe even with the guard"
    disable(monkeypatch)
    assert not scenario(), f"{name}: still caught without the guard; the test proves nothing"
