"""The imperative shell: one thread, one inbox, the only writer of outputs.

Edges (button, thermometer poller, MQTT, web, signals) call `post` and
return. The loop feeds each event and the time to the pure session machine,
applies the outputs it returns, tells the listeners, and waits on the inbox
until the machine's next deadline: no busy polling. In the daemon the inbox is
a `NetLoop`, which serves the MQTT socket on this thread while it waits.

Heat is off at boot, off when an output fails (a latched fault), and off on
the way out however the loop ends, exception included. A stop on request
ends a running session first, so that its minutes are counted to the second.
"""

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from matpi.core.events import (
    ClockStepped,
    DriverFault,
    Event,
    FaultCleared,
    Notice,
    Outputs,
    Snapshot,
    Source,
    Stop,
    Tick,
)
from matpi.core.session import SessionMachine
from matpi.drivers.base import MatDrivers
from matpi.drivers.clock import Clock

log = logging.getLogger(__name__)

REFRESH_S = 1.0
"""Real seconds between refreshes of an output that is on: the heater's dead-man gives
3 s, the mat board's 2 s for heater and motor alike."""


class Inbox(Protocol):
    """Where edges post and the controller waits: a `queue.SimpleQueue`, or the `NetLoop`
    that also serves the MQTT socket while the controller waits."""

    def put(self, item: Any) -> None: ...

    def get(self, *, timeout: float) -> Any:
        """Raises queue.Empty when nothing came within `timeout` seconds."""


Listener = Callable[[Snapshot, list[Notice]], None]
"""Told of every new snapshot and notice, in the controller thread: must not block."""


@dataclass(frozen=True)
class _Shutdown:
    reason: str


class Controller:
    """Runs a mat: see the module docstring."""

    def __init__(
        self,
        machine: SessionMachine,
        drivers: MatDrivers,
        clock: Clock,
        listeners: list[Listener] | None = None,
        inbox: Inbox | None = None,
        alive: Callable[[], None] | None = None,
        alive_every_s: float = 0.0,
        alive_slack_s: float = 0.0,
    ) -> None:
        """`inbox` lets edges built before the controller (the button) post to it.
        `alive` is called from inside the loop every `alive_every_s` real seconds (the
        systemd watchdog): a wedged loop stops calling it. Up to `alive_slack_s` later,
        it waits for the loop to wake for an event (a mat at rest reads its sensors every
        2 s) rather than waking it only for the call."""
        self.machine = machine
        self._drivers = drivers
        self._clock = clock
        self._listeners = list(listeners or [])
        self._queue: Inbox = inbox if inbox is not None else queue.SimpleQueue[Any]()
        self._applied: Outputs | None = None
        self._last_snapshot: Snapshot | None = None
        self._alive = alive
        self._alive_every_s = alive_every_s
        self._alive_slack_s = alive_slack_s
        self._alive_due = 0.0

    def post(self, event: Event) -> None:
        """Hand an event to the controller thread; safe from any thread or signal handler."""
        self._queue.put(event)

    def request_stop(self, reason: str = "stop requested") -> None:
        self._queue.put(_Shutdown(reason))

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def run(self) -> None:
        """Loop until `request_stop`; every output is off when this returns or raises."""
        try:
            self._drivers.all_off()
            self._step(Tick())
            while True:
                now = self._clock.now()
                wait_s = self._clock.real_seconds(self.machine.next_deadline(now) - now)
                if self._applied is not None and (self._applied.heater or self._applied.vibration):
                    wait_s = min(wait_s, REFRESH_S)
                wait_s = min(wait_s, self._tell_alive())
                try:
                    item = self._queue.get(timeout=wait_s)
                except queue.Empty:
                    item = Tick()
                if isinstance(item, _Shutdown):
                    log.info("controller stopping: %s", item.reason)
                    # Ended, not cut off: the history gets the session's exact minutes
                    # and dose, and the cooldown from now, before the process exits.
                    self._step(Stop(Source.LOCAL))
                    return
                self._step(item)
        finally:
            self._drivers.all_off()

    def _tell_alive(self) -> float:
        """Calls `alive` when due; returns the real seconds the loop may wait for it."""
        if self._alive is None:
            return float("inf")
        real_now = time.monotonic()
        if real_now >= self._alive_due:
            self._alive()
            self._alive_due = real_now + self._alive_every_s
        return self._alive_due + self._alive_slack_s - real_now

    def _step(self, event: Event) -> None:
        now, today = self._clock.now(), self._clock.today()
        notices: list[Notice] = []
        if self._clock.stepped():
            # Before the event, so that a step to a later date never looks like midnight.
            notices += self.machine.step(ClockStepped(), now, today)
        notices += self.machine.step(event, now, today)
        try:
            self._apply(self.machine.outputs(now))
        except Exception as exc:
            log.exception("applying outputs failed")
            self._applied = None
            try:
                self._drivers.all_off()
            except Exception:
                log.exception("switching every output off failed too")
            # The fault reaches the core (and so the history) whatever the outputs do next.
            notices += self.machine.step(DriverFault(f"output failed: {exc}"), now, today)
            try:
                self._apply(self.machine.outputs(now))
            except Exception:
                log.exception("outputs still failing; retried on the next step")
                self._applied = None
        if self._drivers.reset is not None and any(isinstance(n, FaultCleared) for n in notices):
            try:
                self._drivers.reset()
            except Exception as exc:
                notices += self.machine.step(DriverFault(f"reset refused: {exc}"), now, today)
                self._apply(self.machine.outputs(now))
        self._tell(self.machine.snapshot(now), notices)

    def _apply(self, outputs: Outputs) -> None:
        last = self._applied
        power = self._drivers.power
        if power is not None and outputs.power and (last is None or not last.power):
            power.on()
        # An output that is on is refreshed every step: the dead-men want to hear from us.
        if outputs.heater:
            self._drivers.heater.on()
        elif last is None or last.heater:
            self._drivers.heater.off()
        if outputs.vibration > 0:
            self._drivers.motor.set_duty(outputs.vibration)
        elif last is None or last.vibration > 0:
            self._drivers.motor.off()
        if power is not None and not outputs.power and (last is None or last.power):
            power.off()
        if last is None or (outputs.led, outputs.breath) != (last.led, last.breath):
            self._drivers.indicator.show(outputs.led, outputs.breath)
        self._applied = outputs

    def _tell(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        if snapshot == self._last_snapshot and not notices:
            return
        self._last_snapshot = snapshot
        for listener in self._listeners:
            try:
                listener(snapshot, notices)
            except Exception:
                log.exception("listener %r failed", listener)
