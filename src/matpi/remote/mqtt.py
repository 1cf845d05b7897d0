"""The MQTT bridge: paho-mqtt 2.x on the controller's loop, between a broker and the mat.

The mat never needs the broker: `start` only schedules a connection, a
connector thread makes it and each reconnection (to the next of `[mqtt]
hosts`, after a jittered delay: see `brokers`), and every broker event is
logged. Once connected, the socket is served by the controller's `NetLoop`:
a command is read, checked and posted on the thread that applies it, and the
state it changes is written on the thread that made it.
Incoming commands go through `RemoteCommands` and reach the core only as
events posted to the controller; the controller's listener publishes what
changed. Nothing here touches the mat's state.

Topics live under `<base_topic>/<device_id>` (see `homeassistant.Topics`):
`availability` (retained, `offline` is the will), `state` (retained JSON),
`event`, `button`, `error`, and one `<command>/set` per command. The client
speaks MQTT 5 so that a command published with retain is seen as retained even
while matpi is connected, and is refused every time instead of only on replay.
When the state goes out is `statepace`'s to decide.

Over 400 lines on purpose: one paho client and the hand-offs around it (connector
to loop, controller to loop); split, the rule that only the loop's thread touches a
connected client would be spread over several modules.

    loop = NetLoop()
    controller = Controller(machine, drivers, clock, inbox=loop)
    bridge = MqttBridge(config.mqtt, config.device, config.rules, controller.post, loop=loop)
    controller.add_listener(bridge.listener)
    bridge.start()
    ...                       # the controller runs, then stops
    bridge.close()
"""

import json
import logging
import queue
import random
import socket
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
from matpi.remote.netloop import NetLoop, TimerHandle
from matpi.remote.payloads import SessionEnd, button_gestures, notice_payload
from matpi.remote.statepace import StatePacer
from matpi.remote.tally import Tally

log = logging.getLogger(__name__)

BIRTH_DELAY_MAX_S = 5.0
"""Discovery follows Home Assistant's `online` after a random delay up to this, so that
many devices do not answer a restart at the same instant."""

CLOSE_TIMEOUT_S = 2.0
"""How long `close` waits for `offline` to reach the broker."""

KEEPALIVE_CHECKS = 10
"""paho's keepalive is checked this many times per keepalive period while connected."""


def keepalive_check_s(keepalive_s: float) -> float:
    """How often paho checks the keepalive: a tenth of it apart, at most once a second, so
    that an idle mat does not wake every second for it as paho's own loop would."""
    return max(1.0, keepalive_s / KEEPALIVE_CHECKS)


def keepalive_slack_s(keepalive_s: float) -> float:
    """How much later than due a check may wait for the loop to wake anyway (a mat at
    rest reads its sensors every 2 s): 3 s at the default 30 s, so an idle mat does not
    wake for the check alone. With the check's own interval, a ping goes out at most a
    fifth of the keepalive late; the broker waits one and a half keepalives before it
    drops the mat."""
    return max(0.0, keepalive_s / 5 - keepalive_check_s(keepalive_s))

_STOP = object()
"""Ends the bridge's own loop thread."""

KNOWN_COMMANDS = frozenset(Command)
REPORT_INTERVAL_S = 60.0
"""A count of what could not be sent is logged at once, then at most once a minute."""

QOS_STATE = 0
"""Latest wins: a QoS 1 state queued across a reconnect would be resent after the fresh
one and leave a stale retained state; the fresh one is sent on every connect instead."""
QOS = 1

Post = Callable[[Event], None]
"""Hands an event to the controller thread (same shape as drivers.base.Post)."""


class MqttBridge:
    """Connects one mat to an MQTT broker and Home Assistant.

    Threads: the loop's thread (the controller's, when the daemon passes its
    `NetLoop`; a thread of the bridge's own otherwise) reads and writes the
    socket, runs the timers (heartbeat, held state, discovery, keepalive) and
    calls `listener`; a connector thread makes each connection (DNS, TCP, TLS
    and the wait before the next try may take seconds) and hands the socket
    to the loop. No other thread touches the client while it is connected.

        bridge = MqttBridge(config.mqtt, config.device, config.rules, controller.post,
                            loop=inbox)
        bridge.start()
        bridge.close()    # once the loop's thread has stopped
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
        loop: NetLoop | None = None,
    ) -> None:
        """`commands` lets the daemon share one start limit between MQTT and the web page;
        `loop` is the controller's inbox, so that commands and states cross no thread."""
        self._config = config
        self._topics = Topics.of(config, device)
        self._status_topic = status_topic(config)
        self._commands = commands or RemoteCommands(rules)
        self._discovery = (discovery_messages(device, rules, config, version=version)
                           + absent_messages(device, rules, config) if config.discovery else [])
        self.birth_delay_max_s = BIRTH_DELAY_MAX_S
        """May be shortened before `start` (tests do), as may `state`'s intervals."""
        self._loop = loop or NetLoop()
        self._own_thread = (threading.Thread(target=self._serve, name="matpi-mqtt", daemon=True)
                            if loop is None else None)
        self._connected = False
        self._closing = False
        self.state = StatePacer(self._loop.call_later, self._publish_state)
        self._misc_timer: TimerHandle | None = None
        self._keepalive_check_s = keepalive_check_s(config.keepalive_s)
        self._keepalive_slack_s = keepalive_slack_s(config.keepalive_s)
        self._ends_at = SessionEnd(wall)
        """When the running session ends: epoch seconds and as published."""
        self._coalescer = SettingsCoalescer(post, call_later=self._loop.call_later)
        self._replies_on_way: dict[str, paho.MQTTMessageInfo] = {}
        self.replies_coalesced = self._tally(
            "error replies not sent: a reply to the same command was still on its way "
            "(each rejection is in the journal above)")
        self.not_sent = self._tally(
            "message(s) not sent at once: no broker connection (events are dropped; the "
            "state and QoS 1 messages follow on reconnect)")
        self._problems: dict[BrokerAddress, str] = {}
        """The last problem logged per broker, so that a retry does not log it again."""
        self.reconnect = Reconnect(config.brokers, config.host_order)
        """Its backoff may be shortened before `start` (tests do)."""
        self._connect_wanted = threading.Event()
        self._next_delay_s = 0.0
        self._connector = threading.Thread(target=self._run_connector,
                                           name="matpi-mqtt-connect", daemon=True)
        self._client: paho.Client | None = None
        self._setup_error: str | None = None
        try:
            self._client = make_client(config, config.client_id or f"matpi-{device.id}")
        except MqttError as exc:
            self._setup_error = str(exc)
            return
        client = self._client
        client.will_set(self._topics.availability, "offline", qos=QOS, retain=True)
        # No queue limit: paho counts every unacknowledged QoS 1 message against it while
        # connected too, and silently refused events and replies past 100. What is sent is
        # bounded here instead: nothing while disconnected, a state replaced by the next,
        # one error reply per command on its way, settings changes coalesced.
        client.max_queued_messages_set(0)
        client.on_connect = _guarded(self._on_connect)
        client.on_disconnect = _guarded(self._on_disconnect)
        client.on_message = _guarded(self._on_message)
        client.on_socket_close = _guarded(self._on_socket_close)
        # paho then only queues what is published: the loop writes it when the socket can
        # take it, and `_tell` at once. A QoS 1 command's acknowledgement no longer goes out
        # before the command is applied, and the connector thread never writes.
        client.on_socket_register_write = _wants_write

    def _tally(self, what: str) -> Tally:
        """A count of `what`, in the journal at once and then once a minute at most."""
        return Tally(lambda n: log.warning("MQTT: %d %s", n, what), REPORT_INTERVAL_S,
                     self._loop.call_later)

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        """Schedule the connection and return at once; never raises for a missing broker."""
        if self._client is None:
            log.error("MQTT disabled: %s", self._setup_error)
            return
        log.info("MQTT: connecting to %s", self.reconnect.address)
        if self._own_thread is not None:
            self._own_thread.start()
        self._connector.start()
        self._connect_wanted.set()

    def listener(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        """Controller listener: publish the new state and the notices; never waits."""
        if self._loop.on_loop_thread():
            self._tell(snapshot, notices)
        else:  # the client is the loop thread's alone (a loop of the bridge's own, or the
            # controller's first step, before its first wait)
            self._loop.call_soon(lambda: self._tell(snapshot, notices))

    def close(self) -> None:
        """Publish `offline` (retained), disconnect cleanly and stop the threads.

        The loop's own thread must have stopped (the controller's, when shared): the
        caller drives the loop here until the broker confirms `offline`."""
        if self._closing:
            return
        self._closing = True
        self.reconnect.stop()
        self._connect_wanted.set()
        if self._own_thread is not None and self._own_thread.is_alive():
            self._loop.put(_STOP)
            self._own_thread.join(timeout=CLOSE_TIMEOUT_S)
        if self._connector.is_alive():
            self._connector.join(timeout=CLOSE_TIMEOUT_S)
        self._cancel_timers()
        client = self._client
        if client is not None:
            self._say_goodbye(client)
        self.replies_coalesced.close()
        self.not_sent.close()

    def _say_goodbye(self, client: paho.Client) -> None:
        connected, self._connected = self._connected, False
        if connected:  # no state follows: nothing runs the loop but this thread now
            info = client.publish(self._topics.availability, "offline", qos=QOS, retain=True)
            if not self._loop.drive(info.is_published, CLOSE_TIMEOUT_S):
                log.warning("MQTT: offline not confirmed within %g s", CLOSE_TIMEOUT_S)
        client.disconnect()
        client.loop_write()  # DISCONNECT, and paho closes the socket once it is written
        log.info("MQTT: disconnected")

    def _serve(self) -> None:
        """The bridge's own loop thread, when no loop was given."""
        while True:
            try:
                if self._loop.get(timeout=60.0) is _STOP:
                    return
            except queue.Empty:
                continue

    # --- the connector thread ---------------------------------------------------

    def _run_connector(self) -> None:
        """Connects whenever the loop asks, after the delay it set; blocking is fine here."""
        client = self._client
        assert client is not None
        while True:
            self._connect_wanted.wait()
            self.reconnect.wait(self._next_delay_s)
            if self._closing:
                return
            address = self.reconnect.address
            try:
                client.connect(address.host, address.port, self._config.keepalive_s)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                self._report(f"unreachable ({exc})")
                self._plan_next_try()
                continue
            self._connect_wanted.clear()
            self._loop.call_soon(self._attach)

    def _plan_next_try(self) -> None:
        """The next broker and the jittered wait before it (see `brokers`)."""
        before = self.reconnect.address
        address, self._next_delay_s = self.reconnect.next_attempt()
        level = logging.DEBUG if address == before else logging.INFO
        log.log(level, "MQTT: trying %s in %.1f s", address, self._next_delay_s)

    # --- the loop's thread ------------------------------------------------------

    def _attach(self) -> None:
        """The connector has sent CONNECT: the socket is the loop's from here on."""
        client = self._client
        sock = client.socket() if client is not None else None
        if self._closing or client is None or not isinstance(sock, socket.socket):
            return
        self._loop.watch(sock, self._readable, self._writable, client.want_write)
        self._check_keepalive_later()

    def _readable(self) -> None:
        client = self._client
        assert client is not None
        client.loop_read()
        sock = client.socket()
        while sock is not None and getattr(sock, "pending", lambda: 0)() > 0:
            client.loop_read()  # TLS: decrypted bytes that select cannot see
            sock = client.socket()
        # What the callbacks queued (a QoS 1 acknowledgement, an error reply) is written with
        # the state or by the next turn of the loop, after the command has been applied.

    def _writable(self) -> None:
        assert self._client is not None
        self._client.loop_write()

    def _misc(self) -> None:
        """Keepalive pings and the broker's silence while connected: `keepalive_check_s`
        apart, or up to `keepalive_slack_s` later to go with a wake the loop has anyway."""
        assert self._client is not None
        if self._client.socket() is None:
            return
        self._client.loop_misc()
        if self._client.socket() is not None:
            self._check_keepalive_later()

    def _check_keepalive_later(self) -> None:
        self._misc_timer = self._loop.call_later(
            self._keepalive_check_s, self._misc, slack_s=self._keepalive_slack_s)

    def _tell(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        self.state.update(snapshot, self._ends_at(snapshot))
        client = self._client
        if client is None or not self._connected:
            # The retained state follows on reconnect; events are not kept for later.
            for _ in notices:
                self.not_sent.count()
            return
        if self.state.offer():
            _flush(client)  # the state first, before the events are even written out
        for notice in notices:
            self._send(client, self._topics.event, notice_payload(notice))
            if isinstance(notice, Refused):
                reply = {"command": notice.command, "message": notice.reason}
                self._reply(client, notice.command, json.dumps(reply, ensure_ascii=False))
        for gesture in button_gestures(notices):
            self._send(client, self._topics.button, button_event(gesture))
        _flush(client)

    def _on_connect(self, client: paho.Client, userdata: object, flags: object,
                    reason: Any, properties: object) -> None:
        if reason.is_failure:  # the broker closes; on_disconnect tries the next broker
            self._report(f"refused the connection: {reason}")
            return
        if self._closing:
            return
        log.info("MQTT: connected to %s", self.reconnect.address)
        self._problems.clear()
        self.reconnect.connected()
        commands = SubscribeOptions(qos=QOS, retainAsPublished=True)
        client.subscribe([(self._topics.commands, commands),
                          (self._status_topic, SubscribeOptions(qos=QOS))])
        self._send(client, self._topics.availability, "online", retain=True)
        self._connected = True
        self.state.publish_now()
        self._publish_discovery()

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: object,
                       reason: Any, properties: object) -> None:
        was_connected, self._connected = self._connected, False
        self._cancel_timers()
        if self._closing:
            return
        if was_connected:
            log.warning("MQTT: connection to %s lost (%s)", self.reconnect.address, reason)
        self._plan_next_try()
        # Once paho has returned from the read that found the loss: the connector's
        # reconnect must not overlap paho's own clean-up of the same client.
        self._loop.call_soon(self._connect_wanted.set)

    def _on_socket_close(self, client: paho.Client, userdata: object, sock: Any) -> None:
        if isinstance(sock, socket.socket):
            self._loop.unwatch(sock)

    def _on_message(self, client: paho.Client, userdata: object, message: Any) -> None:
        topic, payload = message.topic, message.payload
        if topic == self._status_topic:
            if payload == b"online" and self._discovery:
                delay_s = random.uniform(0.0, self.birth_delay_max_s)
                log.info("MQTT: Home Assistant is online; discovery again in %.1f s", delay_s)
                self._loop.call_later(delay_s, self._publish_discovery)
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

    # --- helpers ----------------------------------------------------------------

    def _publish_state(self, state_json: str) -> bool:
        """The pacer's way out: the retained state, while connected."""
        if self._client is None or not self._connected:
            return False
        self._send(self._client, self._topics.state, state_json, qos=QOS_STATE, retain=True)
        return True

    def _cancel_timers(self) -> None:
        self.state.cancel()
        if self._misc_timer is not None:
            self._misc_timer.cancel()
        self._misc_timer = None

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

    def _publish_discovery(self) -> None:
        client = self._client
        if client is None or not self._connected:
            return
        for topic, payload in self._discovery:
            self._send(client, topic, payload, retain=True)

    def _report(self, problem: str) -> None:
        """A problem of the current broker: logged when it starts or changes, not at every
        retry; kept per broker, so that going round several does not repeat it either."""
        address = self.reconnect.address
        level = logging.DEBUG if self._problems.get(address) == problem else logging.WARNING
        log.log(level, "MQTT: broker %s %s", address, problem)
        self._problems[address] = problem


def _flush(client: paho.Client) -> None:
    """Writes what is queued now rather than a turn of the loop later; never from inside a
    paho callback (paho's own write may call back)."""
    if client.want_write():
        client.loop_write()


def _wants_write(client: paho.Client, userdata: object, sock: Any) -> None:
    """Nothing to do: the loop asks `want_write` before each wait."""


def _guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """A paho callback that logs its exceptions: one escaping would reach the loop, far
    from its cause."""

    def guarded(*args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("MQTT: %s failed", callback.__name__)

    return guarded
