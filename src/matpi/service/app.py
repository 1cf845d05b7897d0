"""Assembles one running mat: drivers, stored state, the controller and its edges.

The order matters for safety: every output is built off, the stored state
(cooldown, today's use, a latched fault) is restored before the first event,
and on the way out the outputs go off before MQTT says offline.
"""

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from matpi.config.settings import Config
from matpi.core import limits
from matpi.core.clockmark import ClockMark
from matpi.core.errors import HistoryError
from matpi.core.events import DriverFault
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.core.usage import Usage
from matpi.drivers.base import MatDrivers
from matpi.drivers.clock import Clock, clock_mark
from matpi.drivers.deadman import RefreshedHeater
from matpi.drivers.polling import ThermometerPoller
from matpi.drivers.settled import SettledLevel
from matpi.drivers.sim import SimThermometer, SimulatedMat
from matpi.remote.commands import RemoteCommands, StartLimiter
from matpi.remote.netloop import NetLoop
from matpi.remote.openssl import import_paho
from matpi.service import systemd
from matpi.service.controller import Controller
from matpi.store.history import HISTORY_FILENAME, UNUSABLE_FAULT, History, Restored
from matpi.store.recorder import HistoryRecorder

if TYPE_CHECKING:
    from matpi.remote.mqtt import MqttBridge
    from matpi.remote.web.server import WebServer

log = logging.getLogger(__name__)

SIM_POLL_S = 0.5
"""How often (mat seconds) a faster-than-real simulation reads its sensors: a loaded
machine that falls behind its scaled clock must not make a reading stale. At real
speed the simulated sensors are read as often as `[hardware] poll_s` reads real ones."""


@dataclass
class Mat:
    """A running mat's parts."""

    controller: Controller
    drivers: MatDrivers
    poller: ThermometerPoller
    clock: Clock
    sim: SimulatedMat | None
    bridge: "MqttBridge | None"
    history: History | None
    loop: NetLoop
    """The controller's inbox and wait: what else runs on its thread schedules here."""
    web: "WebServer | None" = None
    recorder: HistoryRecorder | None = None

    def start_edges(self) -> None:
        """Sampling, MQTT and the page start; the controller thread is started by the caller.

        The mat never needs its page: a port that is taken or a password file
        that cannot be read is logged, and the mat runs without the page.
        """
        self.poller.start()
        if self.bridge is not None:
            self.bridge.start()
        if self.web is not None:
            from matpi.remote.web.server import WebError

            try:
                self.web.start()
            except WebError as exc:
                log.error("web page off: %s", exc)

    def close(self) -> None:
        """Stop sampling, outputs off and every device released, the history's last writes
        saved, then say offline."""
        self.poller.close()
        try:
            self.drivers.close()
        finally:
            # The controller has stopped: its last writes (the session's end) are saved first.
            if self.recorder is not None and not self.recorder.close():
                log.error("history writes still pending at exit: the disk is stuck")
            elif self.history is not None:
                self.history.close()
            if self.bridge is not None:
                self.bridge.close()
            if self.web is not None:
                self.web.close()


def assemble(
    config: Config,
    state_dir: Path,
    *,
    simulate: bool,
    speed: float = 1.0,
    board_sim: bool = False,
) -> Mat:
    """The controller with simulated or real drivers and its stored state, all outputs off.

    Raises:
        DriverError: a part could not be set up (named in the message).
    """
    _import_edges(config)
    clock = Clock(speed)
    # The controller waits on it, and the MQTT socket is served on the controller's thread.
    inbox = NetLoop()
    sim = SimulatedMat(clock) if simulate else None
    drivers = _drivers(config, sim, inbox, board_sim, real_time=speed == 1.0)
    _add_dead_man(drivers, inbox)
    history, saved, rules = _restore(config, state_dir, clock)
    now = clock.now()
    machine = SessionMachine(
        rules, now, clock.today(), usage=saved.usage,
        cooldown_until=now + saved.cooldown_remaining_s, fault=saved.fault,
        fault_clearable=history is not None,
        preheats=tuple(now - age_s for age_s in saved.preheat_ages_s),
    )
    watchdog_s = systemd.watchdog_interval_s()
    controller = Controller(machine, drivers, clock, inbox=inbox,
                            alive=systemd.watchdog if watchdog_s else None,
                            alive_every_s=watchdog_s / 2 if watchdog_s else 0.0,
                            alive_slack_s=watchdog_s / 10 if watchdog_s else 0.0)
    # Thermometers that answer at once are read on the controller's thread, in its loop.
    # A mat that cannot heat reads them less often, at real speed: a faster simulation
    # keeps its short poll, so that a loaded machine never makes a reading stale. The
    # first listener, so that a session's full pace waits for no other.
    poller = ThermometerPoller(drivers.thermometers, controller.post, clock,
                               drivers.poll_interval_s, timers=inbox,
                               resting_s=limits.MAX_POLL_S if speed == 1.0 else None)
    controller.add_listener(poller.pace)
    recorder = None
    if history is not None:
        recorder = history_recorder(history, clock, rules, inbox)
        controller.add_listener(recorder)
    # One limit on remote starts, however they arrive: MQTT and the page share it.
    commands = RemoteCommands(rules, limiter=StartLimiter())
    bridge = None
    if config.mqtt.enabled:
        from matpi.remote.mqtt import MqttBridge

        bridge = MqttBridge(config.mqtt, config.device, rules, controller.post, wall=clock.wall,
                            commands=commands, loop=inbox)
        controller.add_listener(bridge.listener)
    web = None
    if config.web.enabled:
        from matpi.remote.web.server import WebServer

        web = WebServer(config.web, device=config.device, rules=rules, commands=commands,
                        post=controller.post, clock=clock,
                        history_path=history.path if history is not None else None)
        controller.add_listener(web.listener)
    return Mat(controller, drivers, poller, clock, sim, bridge, history, inbox, web, recorder)


def history_recorder(history: History, clock: Clock, rules: Rules, inbox: NetLoop
                     ) -> HistoryRecorder:
    """The controller's listener that keeps the history: a failed or stuck write comes back
    to the controller as a fault, and every write carries a clock mark on the real clock."""
    return HistoryRecorder(history, clock.wall, monotonic=clock.now,
                           cooldown_min=rules.cooldown_min, mark=_marker(clock),
                           on_error=lambda why: inbox.put(DriverFault(why)))


def _import_edges(config: Config) -> None:
    """MQTT's and the page's modules, only when on, and before the mat's clock starts.

    Only when on: paho costs a mat without MQTT about 4 MiB (9 with TLS), the page one
    without it about 12. Before the clock: importing takes tens of milliseconds,
    which would count against the first reading (at --speed 600, 17 ms of real time are
    the 10 s after which a mat that has read nothing latches a fault).
    """
    if config.mqtt.enabled:
        # Without TLS and without the page, paho comes without OpenSSL: 4.4 MiB less.
        import_paho(config)
        importlib.import_module("matpi.remote.mqtt")
    if config.web.enabled:
        importlib.import_module("matpi.remote.web.server")


def _add_dead_man(drivers: MatDrivers, inbox: NetLoop) -> None:
    """The heater switches itself off unless refreshed, and stays off once it had to:
    only the local fault reset (which the controller passes on as `reset`) rearms it."""
    heater = RefreshedHeater(
        drivers.heater,
        on_expired=lambda: inbox.put(DriverFault("heater demand not refreshed for 3 s: "
                                                 "controller loop stalled")),
    )
    board_reset = drivers.reset

    def reset() -> None:
        if board_reset is not None:
            board_reset()
        heater.rearm()

    drivers.heater = heater
    drivers.reset = reset


def _marker(clock: Clock) -> Callable[[], ClockMark] | None:
    """Clock marks for the history, on the real clock only (a scaled one has no boot clock)."""
    if clock.speed != 1.0:
        return None
    return lambda: clock_mark(clock.wall())


def _drivers(
    config: Config, sim: SimulatedMat | None, inbox: NetLoop, board_sim: bool,
    *, real_time: bool,
) -> MatDrivers:
    # The drivers of real pins and of the serial board are imported only when used:
    # gpiozero and pyserial cost a simulated mat about 10 MiB it has no use for.
    first, *others = config.rules.sensors
    if sim is not None and board_sim:
        from matpi.drivers.boardsim import simulated_board

        # The board reads the first sensor; the others sit on the Pi, as on a real board mat.
        drivers = simulated_board(sim, inbox.put, sensor=first)
        drivers.thermometers += [SimThermometer(sim, name) for name in others]
        return _sensing_occupancy(config, sim, drivers, inbox)
    if sim is not None:
        poll_s = config.hardware.poll_s if real_time else SIM_POLL_S
        return _sensing_occupancy(config, sim, sim.drivers(config.rules.sensors, poll_s), inbox)
    from matpi.drivers.hardware import build_board_mat, build_gpio_mat

    if config.hardware.driver == "board":
        return build_board_mat(config.hardware, inbox.put)
    return build_gpio_mat(config.hardware, inbox.put)


def _sensing_occupancy(config: Config, sim: SimulatedMat, drivers: MatDrivers,
                       inbox: NetLoop) -> MatDrivers:
    """The simulated mat's occupancy sensor, when the rules have one: it reads the
    simulated person, debounced as the real one is."""
    if config.rules.occupancy_sensor:
        level = SettledLevel(sim.occupancy_sensed, inbox.put, config.hardware.occupancy.debounce_s)
        sim.watch_occupancy(level.changed)
        level.changed()
        drivers.closers.append(level.close)
    return drivers


def _restore(
    config: Config, state_dir: Path, clock: Clock
) -> tuple[History | None, Restored, Rules]:
    """The usage history and what it says; without it, a mat that starts no session.

    A history that cannot be read or written would forget the daily cap and
    the cooldown, so the mat comes up with a fault that no press at the mat
    can clear, and a daily cap of zero behind it, until the file is fixed.
    """
    try:
        history = History.open(state_dir / HISTORY_FILENAME)
        marker = _marker(clock)
        mark = None if marker is None else marker()
        now_wall = clock.wall() if mark is None else mark.wall  # one moment for all three
        saved = history.restore(now_wall, clock.today(), config.rules, mark=mark)
        # Settled in this clock's terms, so that the next restart starts from it.
        history.settle(saved, now_wall, mark)
        return history, saved, config.rules
    except HistoryError as exc:
        log.error("%s", exc)
        blocked = Restored(Usage(day=clock.today()), 0.0, UNUSABLE_FAULT)
        return None, blocked, replace(config.rules, daily_max_min=0.0)
