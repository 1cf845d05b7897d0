"""The MQTT bridge: paho-mqtt 2.x in its own thread, between a broker and the controller.

The mat never needs the broker: `start` only schedules a connection, paho's
thread reconnects (to the next of `[mqtt] hosts`, after a jittered delay: see
`brokers`), and every broker event is logged.
Incoming commands go through `RemoteCommands` and reach the core only as
events posted to the controller; the controller's listener publishes what
changed. Nothing here touches the mat's state.

Topics live under `<base_topic>/<device_id>` (see `homeassistant.Topics`):
`availability` (retained, `offline` is the will), `state` (retained JSON),
`event`, `button`, `error`, and one `<command>/set` per command. The client
speaks MQTT 5 so that a command published with retain is seen as retained even
while matpi is connected, and is refused every time instead of only on replay.

    bridge = MqttBridge(config.mqtt, config.device, config.rules, controller.post)
    controller.add_listener(bridge.listener)
    bridge.start()
    ...
    bridge.close()
"""

import dataclasses
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.subscribeoptions import SubscribeOptions

from matpi import __version__
from matpi.config.settings import BrokerAddress, DeviceConfig, MqttConfig
from matpi.core.events import (
    Event,
    Notice,
    Refused,
    Snapshot,
)
from matpi.core.rules import Rules
from matpi.remote.brokers import Reconnect
from matpi.remote.coalesce import SettingsCoalescer
from matpi.remote.commands import Command, Rejection, RemoteCommands
from matpi.remote.homeassistant import (
    Topics,
    absent_messages,
    button_event,
    discovery_messages,
    status_topic,
)
from matpi.remote.mqttclient import MqttError, make_client
from matpi.remote.payloads import SessionEnd, button_gestures, notice_payload, state_payload
from matpi.remote.tally import Tally

log = logging.getLogger(__name__)

HEARTBEAT_S = 60.0
"""The retained state is published again after this long without a change."""

STATE_EVERY_S = 10.0
"""A state whose only changes are counting numbers goes out at most this often: Home
Assistant's recorder stores every state, and `ends_at` already lets it count down."""

COUNTING_FIELDS = frozenset({
    "elapsed_s", "remaining_s", "cooldown_remaining_s", "preheat_remaining_s",
    "temperature_c", "vibration", "dose_cem43", "dose_today_cem43", "today_min",
    "daily_remaining_min",
})
"""Snapshot fields that move on by themselves while a session runs or the mat cools:
their changes alone wait for `STATE_EVERY_S`. Any other field (state, program, heat,
heater, fault, occupancy, the end time...) goes out at once."""

_SHOWN_FIELDS = tuple(f.name for f in dataclasses.fields(Snapshot)
                      if f.compare and f.name not in COUNTING_FIELDS)

BIRTH_DELAY_MAX_S = 5.0
"""Discovery follows Home Assistant's `online` after a random delay up to this, so that
many devices do not answer a restart at the same instant."""

CLOSE_TIMEOUT_S = 2.0
"""How long `close` waits for `offline` to reach the broker."""

KNOWN_COMMANDS = frozenset(Command)
REPORT_INTERVAL_S = 60.0
"""A count of what could not be sent is logged at once, then at most once a minute."""

QOS_STATE = 0
"""Latest wins: a QoS 1 state queued across a reconnect would be resent after the fresh
one and leave a stale retained state; the fresh one is sent on every connect instead."""
QOS = 1

Post = Callable[[Event], None]
"""Hands an event to the controller thread (same shape as drivers.base.Post)."""


def _tally(what: str) -> Tally:
    """A count of `what`, in the journal at once and then once a minute at most."""
    def later(delay_s: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(delay_s, action)
        timer.daemon = True
        timer.start()

    return Tally(lambda n: log.warning("MQTT: %d %s", n, what), REPORT_INTERVAL_S, later)


class MqttBridge:
    """Connects one mat to an MQTT broker and Home Assistant.

    Threads: paho's network loop (commands in, connection events, the wait
    before the next broker is tried), a timer
    thread (heartbeat, delayed discovery), and the controller thread, which
    calls `listener`. None of them blocks another for longer than a publish
    takes to be queued.

        bridge = MqttBridge(config.mqtt, config.device, config.rules, controller.post)
        bridge.start()
        bridge.close()
    """

    def __init__(
        self,
        config: MqttConfig,
        device: DeviceConfig,
        rules: Rules,
        post: Post,
        *,
        wall: Callable[[], float] = time.time,
        version: str = __version__,
        commands: RemoteCommands | None = None,
    ) -> None:
        """`commands` lets the daemon share one start limit between MQTT and the web page."""
        self._config = config
        self._post = post
        self._topics = Topics.of(config, device)
        self._status_topic = status_topic(config)
        self._commands = commands or RemoteCommands(rules)
        self._discovery = (discovery_messages(device, rules, config, version=version)
                           + absent_messages(device, rules, config) if config.discovery else [])
        self.heartbeat_s = HEARTBEAT_S
        self.birth_delay_max_s = BIRTH_DELAY_MAX_S
        self.state_every_s = STATE_EVERY_S
        """All three may be shortened before `start` (tests do)."""
        self._lock = threading.Lock()
        """Orders the state publishes of the controller, paho and timer threads."""
        self._wake = threading.Condition(self._lock)
        self._connected = False
        self._closing = False
        self._state_json: str | None = None
        self._state_shown: tuple[object, ...] = ()
        """What a person sees in `_state_json`: the fields outside COUNTING_FIELDS."""
        self._shown_sent: tuple[object, ...] | None = None
        self._json_sent: str | None = None
        self._state_sent_at = -math.inf
        self._discovery_due: float | None = None
        self._ends_at = SessionEnd(wall)
        """When the running session ends: epoch seconds and as published."""
        self._coalescer = SettingsCoalescer(post)
        self._replies_on_way: dict[str, paho.MQTTMessageInfo] = {}
        self._replies_lock = threading.Lock()
        self.replies_coalesced = _tally(
            "error replies not sent: a reply to the same command was still on its way "
            "(each rejection is in the journal above)")
        self.not_sent = _tally("message(s) not sent at once: no broker connection (events "
                               "are dropped; the state and QoS 1 messages follow on reconnect)")
        self._problems: dict[BrokerAddress, str] = {}
        """The last problem logged per broker, so that a retry does not log it again."""
        self.reconnect = Reconnect(config.brokers, config.host_order)
        """Its backoff may be shortened before `start` (tests do)."""
        self._timer = threading.Thread(target=self._run_timers, name="matpi-mqtt-timers",
                                       daemon=True)
        self._client: paho.Client | None = None
        self._setup_error: str | None = None
        try:
            self._client = make_client(config, config.client_id or f"matpi-{device.id}")
        except MqttError as exc:
            self._setup_error = str(exc)
            return
        client = self._client
        client.will_set(self._topics.availability, "offline", qos=QOS, retain=True)
        # paho's own wait is off: it would retry the same broker, without jitter. The bridge
        # waits in on_connect_fail and on_disconnect instead (`_try_next`).
        client.reconnect_delay_set(0, 0)
        # No queue limit: paho counts every unacknowledged QoS 1 message against it while
        # connected too, and silently refused events and replies past 100. What is sent is
        # bounded here instead: nothing while disconnected, a state replaced by the next,
        # one error reply per command on its way, settings changes coalesced.
        client.max_queued_messages_set(0)
        client.on_connect = _guarded(self._on_connect)
        client.on_connect_fail = _guarded(self._on_connect_fail)
        client.on_disconnect = _guarded(self._on_disconnect)
        client.on_message = _guarded(self._on_message)

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        """Schedule the connection and return at once; never raises for a missing broker."""
        if self._client is None:
            log.error("MQTT disabled: %s", self._setup_error)
            return
        address = self.reconnect.address
        log.info("MQTT: connecting to %s", address)
        self._client.connect_async(address.host, address.port, self._config.keepalive_s)
        self._client.loop_start()
        self._timer.start()

    def listener(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        """Controller listener: publish the new state and the notices; only queues, never waits."""
        ends_at = self._ends_at(snapshot)
        payload = state_payload(snapshot, ends_at)
        client = self._client
        with self._lock:
            self._state_json = payload
            self._state_shown = (*(getattr(snapshot, name) for name in _SHOWN_FIELDS), ends_at)
            if client is None or not self._connected:
                # The retained state follows on reconnect; events are not kept for later.
                for _ in notices:
                    self.not_sent.count()
                return
            if (self._state_shown != self._shown_sent
                    or time.monotonic() - self._state_sent_at >= self.state_every_s):
                self._publish_state(client, payload)
            else:
                self._wake.notify()  # the timer sends it when its time comes
        for notice in notices:
            self._send(client, self._topics.event, notice_payload(notice))
            if isinstance(notice, Refused):
                reply = {"command": notice.command, "message": notice.reason}
                self._reply(client, notice.command, json.dumps(reply, ensure_ascii=False))
        for gesture in button_gestures(notices):
            self._send(client, self._topics.button, button_event(gesture))

    def close(self) -> None:
        """Publish `offline` (retained), disconnect cleanly and stop both threads."""
        with self._wake:
            if self._closing:
                return
            self._closing = True
            self._wake.notify()
        if self._timer.is_alive():
            self._timer.join(timeout=CLOSE_TIMEOUT_S)
        client = self._client
        if client is None:
            return
        with self._lock:  # no state may follow offline
            connected, self._connected = self._connected, False
        if connected:
            info = client.publish(self._topics.availability, "offline", qos=QOS, retain=True)
            try:
                info.wait_for_publish(timeout=CLOSE_TIMEOUT_S)
            except (RuntimeError, ValueError) as exc:
                log.warning("MQTT: could not publish offline: %s", exc)
        client.disconnect()
        self.reconnect.stop()  # after disconnect: a backoff cut short finds paho told to stop
        client.loop_stop()
        self.replies_coalesced.close()
        self.not_sent.close()
        log.info("MQTT: disconnected")

    # --- paho's thread --------------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: object, flags: object,
                    reason: Any, properties: object) -> None:
        if reason.is_failure:  # on_disconnect follows and tries the next broker
            self._report(f"refused the connection: {reason}")
            return
        log.info("MQTT: connected to %s", self.reconnect.address)
        self._problems.clear()
        self.reconnect.connected()
        commands = SubscribeOptions(qos=QOS, retainAsPublished=True)
        client.subscribe([(self._topics.commands, commands),
                          (self._status_topic, SubscribeOptions(qos=QOS))])
        with self._lock:  # `close` sets _closing under it: online never follows offline
            if self._closing:
                return
            self._send(client, self._topics.availability, "online", retain=True)
            self._connected = True
            if self._state_json is not None:
                self._publish_state(client, self._state_json)
        self._publish_discovery(client)

    def _on_connect_fail(self, client: paho.Client, userdata: object) -> None:
        self._report("unreachable")
        self._try_next(client)

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: object,
                       reason: Any, properties: object) -> None:
        with self._lock:
            was_connected, self._connected = self._connected, False
        if was_connected and not self._closing:
            log.warning("MQTT: connection to %s lost (%s)", self.reconnect.address, reason)
        self._try_next(client)

    def _try_next(self, client: paho.Client) -> None:
        """Point paho at the next broker and wait the jittered delay here, in paho's thread.

        No connection exists meanwhile, so nothing waits for this thread (the listener and
        the timers publish nothing while disconnected), and `close` cuts the wait short.
        paho connects to `address` as soon as this returns."""
        with self._lock:  # `close` sets _closing under it: no new try is set up after it
            if self._closing:
                return
            before = self.reconnect.address
            address, delay_s = self.reconnect.next_attempt()
            client.connect_async(address.host, address.port, self._config.keepalive_s)
        level = logging.DEBUG if address == before else logging.INFO
        log.log(level, "MQTT: trying %s in %.1f s", address, delay_s)
        self.reconnect.wait(delay_s)

    def _on_message(self, client: paho.Client, userdata: object, message: Any) -> None:
        topic, payload = message.topic, message.payload
        if topic == self._status_topic:
            if payload == b"online" and self._discovery:
                self._schedule_discovery()
            return
        command = self._topics.command_name(topic)
        if command is None:
            return
        outcome = self._commands.handle(command, payload, retained=bool(message.retain))
        if isinstance(outcome, Rejection):
            self._reply(client, outcome.command,
                        json.dumps(outcome.as_dict(), ensure_ascii=False))
            return
        for event in outcome:
            self._coalescer.post(event)

    # --- timers ---------------------------------------------------------------

    def _schedule_discovery(self) -> None:
        delay_s = random.uniform(0.0, self.birth_delay_max_s)
        log.info("MQTT: Home Assistant is online; discovery again in %.1f s", delay_s)
        with self._wake:
            self._discovery_due = time.monotonic() + delay_s
            self._wake.notify()

    def _run_timers(self) -> None:
        """Heartbeat and delayed discovery; asleep until the next one is due."""
        while True:
            discovery = False
            with self._wake:
                if self._closing:
                    return
                now = time.monotonic()
                if self._discovery_due is not None and now >= self._discovery_due:
                    self._discovery_due = None
                    discovery = True
                client = self._client
                held = self._state_json != self._json_sent
                every_s = self.state_every_s if held else self.heartbeat_s
                if (client is not None and self._connected and self._state_json is not None
                        and now - self._state_sent_at >= every_s):
                    self._publish_state(client, self._state_json)
                    every_s = self.heartbeat_s
                due_in_s = self._state_sent_at + every_s - now
                wait_s = due_in_s if due_in_s > 0 else every_s
                if self._discovery_due is not None:
                    wait_s = min(wait_s, self._discovery_due - now)
                if not discovery:
                    self._wake.wait(timeout=max(wait_s, 0.0))
            if discovery and client is not None and self._connected:
                self._publish_discovery(client)

    # --- helpers ----------------------------------------------------------------

    def _publish_state(self, client: paho.Client, payload: str) -> None:
        """Caller holds the lock, so two threads cannot publish states out of order."""
        self._send(client, self._topics.state, payload, qos=QOS_STATE, retain=True)
        self._state_sent_at = time.monotonic()
        self._json_sent = payload
        self._shown_sent = self._state_shown
        self._wake.notify()  # the timer counts its heartbeat from here

    def _send(self, client: paho.Client, topic: str, payload: str, *, qos: int = QOS,
              retain: bool = False) -> paho.MQTTMessageInfo:
        """Every publish is checked: one that paho refuses (the connection just dropped)
        is counted and reported; paho still sends a QoS 1 one after it reconnects."""
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self.not_sent.count()
        return info

    def _reply(self, client: paho.Client, command: str, payload: str) -> None:
        """An error reply, unless one for the same command is still on its way: a flood of
        bad commands then costs one reply in flight per command, and a count. Unknown
        command names share one place, so that inventing names grows nothing."""
        key = command if command in KNOWN_COMMANDS else "?"
        with self._replies_lock:
            earlier = self._replies_on_way.get(key)
            if earlier is not None and earlier.rc == paho.MQTT_ERR_SUCCESS \
                    and not earlier.is_published():
                self.replies_coalesced.count()
                return
            info = self._send(client, self._topics.error, payload)
            if info.rc == paho.MQTT_ERR_SUCCESS:
                self._replies_on_way[key] = info
            else:
                self._replies_on_way.pop(key, None)

    def _publish_discovery(self, client: paho.Client) -> None:
        for topic, payload in self._discovery:
            self._send(client, topic, payload, retain=True)

    def _report(self, problem: str) -> None:
        """A problem of the current broker: logged when it starts or changes, not at every
        retry; kept per broker, so that going round several does not repeat it either."""
        address = self.reconnect.address
        level = logging.DEBUG if self._problems.get(address) == problem else logging.WARNING
        log.log(level, "MQTT: broker %s %s", address, problem)
        self._problems[address] = problem


def _guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """A paho callback that logs its exceptions: one escaping would end paho's thread,
    and MQTT with it."""

    def guarded(*args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("MQTT: %s failed", callback.__name__)

    return guarded
