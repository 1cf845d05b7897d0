"""The MQTT bridge: paho-mqtt 2.x in its own thread, between a broker and the controller.

The mat never needs the broker: `start` only schedules a connection, paho
reconnects with backoff in its own thread, and every broker event is logged.
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

import json
import logging
import math
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from matpi import __version__
from matpi.config.settings import DeviceConfig, MqttConfig
from matpi.core.events import (
    Event,
    Notice,
    Refused,
    Snapshot,
)
from matpi.core.rules import Rules
from matpi.remote.commands import Rejection, RemoteCommands
from matpi.remote.homeassistant import Topics, button_event, discovery_messages, status_topic
from matpi.remote.payloads import SessionEnd, button_gestures, notice_payload, state_payload

log = logging.getLogger(__name__)

HEARTBEAT_S = 60.0
"""The retained state is published again after this long without a change."""

BIRTH_DELAY_MAX_S = 5.0
"""Discovery follows Home Assistant's `online` after a random delay up to this, so that
many devices do not answer a restart at the same instant."""

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
"""paho's reconnect backoff doubles from the minimum up to the maximum."""

CLOSE_TIMEOUT_S = 2.0
"""How long `close` waits for `offline` to reach the broker."""

MAX_QUEUED_MESSAGES = 100
"""Bounds what paho holds while the connection is down (publishing then is skipped)."""

QOS_STATE = 0
"""Latest wins: a QoS 1 state queued across a reconnect would be resent after the fresh
one and leave a stale retained state; the fresh one is sent on every connect instead."""
QOS = 1

Post = Callable[[Event], None]
"""Hands an event to the controller thread (same shape as drivers.base.Post)."""


class MqttError(ConnectionError):
    """The broker could not be reached or set up for a one-off publish."""


class MqttBridge:
    """Connects one mat to an MQTT broker and Home Assistant.

    Threads: paho's network loop (commands in, connection events), a timer
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
                           if config.discovery else [])
        self.heartbeat_s = HEARTBEAT_S
        self.birth_delay_max_s = BIRTH_DELAY_MAX_S
        """Both may be shortened before `start` (tests do)."""
        self._lock = threading.Lock()
        """Orders the state publishes of the controller, paho and timer threads."""
        self._wake = threading.Condition(self._lock)
        self._connected = False
        self._closing = False
        self._state_json: str | None = None
        self._state_sent_at = -math.inf
        self._discovery_due: float | None = None
        self._ends_at = SessionEnd(wall)
        """When the running session ends: epoch seconds and as published."""
        self._problem: str | None = None
        self._timer = threading.Thread(target=self._run_timers, name="matpi-mqtt-timers",
                                       daemon=True)
        self._client: paho.Client | None = None
        self._setup_error: str | None = None
        try:
            self._client = _make_client(config, config.client_id or f"matpi-{device.id}")
        except MqttError as exc:
            self._setup_error = str(exc)
            return
        client = self._client
        client.will_set(self._topics.availability, "offline", qos=QOS, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.max_queued_messages_set(MAX_QUEUED_MESSAGES)
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
        log.info("MQTT: connecting to %s:%d", self._config.host, self._config.port)
        self._client.connect_async(self._config.host, self._config.port,
                                   self._config.keepalive_s)
        self._client.loop_start()
        self._timer.start()

    def listener(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        """Controller listener: publish the new state and the notices; only queues, never waits."""
        payload = state_payload(snapshot, self._ends_at(snapshot))
        client = self._client
        with self._lock:
            self._state_json = payload
            if client is None or not self._connected:
                return
            self._publish_state(client, payload)
        for notice in notices:
            client.publish(self._topics.event, notice_payload(notice), qos=QOS)
            if isinstance(notice, Refused):
                reply = {"command": notice.command, "message": notice.reason}
                client.publish(self._topics.error, json.dumps(reply, ensure_ascii=False), qos=QOS)
        for gesture in button_gestures(notices):
            client.publish(self._topics.button, button_event(gesture), qos=QOS)

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
        client.loop_stop()
        log.info("MQTT: disconnected")

    # --- paho's thread --------------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: object, flags: object,
                    reason: Any, properties: object) -> None:
        if reason.is_failure:
            self._report(f"broker {self._where()} refused the connection: {reason}")
            return
        log.info("MQTT: connected to %s", self._where())
        self._problem = None
        commands = SubscribeOptions(qos=QOS, retainAsPublished=True)
        client.subscribe([(self._topics.commands, commands),
                          (self._status_topic, SubscribeOptions(qos=QOS))])
        with self._lock:  # `close` sets _closing under it: online never follows offline
            if self._closing:
                return
            client.publish(self._topics.availability, "online", qos=QOS, retain=True)
            self._connected = True
            if self._state_json is not None:
                self._publish_state(client, self._state_json)
        self._publish_discovery(client)

    def _on_connect_fail(self, client: paho.Client, userdata: object) -> None:
        self._report(f"broker {self._where()} unreachable; retrying every "
                     f"{RECONNECT_MIN_S}-{RECONNECT_MAX_S} s")

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: object,
                       reason: Any, properties: object) -> None:
        with self._lock:
            was_connected, self._connected = self._connected, False
        if was_connected and not self._closing:
            log.warning("MQTT: connection to %s lost (%s); reconnecting", self._where(), reason)

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
            client.publish(self._topics.error, json.dumps(outcome.as_dict(), ensure_ascii=False),
                           qos=QOS)
            return
        for event in outcome:
            self._post(event)

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
                if (client is not None and self._connected and self._state_json is not None
                        and now - self._state_sent_at >= self.heartbeat_s):
                    self._publish_state(client, self._state_json)
                heartbeat_in_s = self._state_sent_at + self.heartbeat_s - now
                wait_s = heartbeat_in_s if heartbeat_in_s > 0 else self.heartbeat_s
                if self._discovery_due is not None:
                    wait_s = min(wait_s, self._discovery_due - now)
                if not discovery:
                    self._wake.wait(timeout=max(wait_s, 0.0))
            if discovery and client is not None and self._connected:
                self._publish_discovery(client)

    # --- helpers ----------------------------------------------------------------

    def _publish_state(self, client: paho.Client, payload: str) -> None:
        """Caller holds the lock, so two threads cannot publish states out of order."""
        client.publish(self._topics.state, payload, qos=QOS_STATE, retain=True)
        self._state_sent_at = time.monotonic()

    def _publish_discovery(self, client: paho.Client) -> None:
        for topic, payload in self._discovery:
            client.publish(topic, payload, qos=QOS, retain=True)

    def _report(self, problem: str) -> None:
        """A broker problem: logged when it starts or changes, not at every retry."""
        if problem != self._problem:
            log.warning("MQTT: %s", problem)
            self._problem = problem
        else:
            log.debug("MQTT: %s", problem)

    def _where(self) -> str:
        return f"{self._config.host}:{self._config.port}"


def publish_once(config: MqttConfig, messages: list[tuple[str, str]], *,
                 timeout_s: float = 10.0) -> None:
    """Connect, publish every (topic, payload) retained at QoS 1, and disconnect.

    For `matpi discovery --remove` and the like, run while the daemon may be
    running too: it uses its own client id.

    Raises:
        MqttError: the broker could not be reached, refused us, or did not confirm in time.
    """
    client = _make_client(config, f"{config.client_id or 'matpi'}-once-{os.getpid()}")
    connected = threading.Event()
    refusal: list[str] = []

    def on_connect(client: paho.Client, userdata: object, flags: object, reason: Any,
                   properties: object) -> None:
        if reason.is_failure:
            refusal.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(config.host, config.port, config.keepalive_s)
    except OSError as exc:
        raise MqttError(f"MQTT broker {config.host}:{config.port}: {exc}") from exc
    client.loop_start()
    try:
        if not connected.wait(timeout_s) or refusal:
            why = refusal[0] if refusal else "no answer"
            raise MqttError(f"MQTT broker {config.host}:{config.port}: {why}")
        infos = [client.publish(topic, payload, qos=QOS, retain=True)
                 for topic, payload in messages]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            try:
                info.wait_for_publish(timeout=max(deadline - time.monotonic(), 0.0))
            except (RuntimeError, ValueError) as exc:
                raise MqttError(f"MQTT broker {config.host}:{config.port}: {exc}") from exc
            if not info.is_published():
                raise MqttError(f"MQTT broker {config.host}:{config.port}: publish not "
                                f"confirmed within {timeout_s:g} s")
    finally:
        client.disconnect()
        client.loop_stop()


def _guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """A paho callback that logs its exceptions: one escaping would end paho's thread,
    and MQTT with it."""

    def guarded(*args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("MQTT: %s failed", callback.__name__)

    return guarded


def _make_client(config: MqttConfig, client_id: str) -> paho.Client:
    """A paho client with the credentials and TLS of `config`.

    Raises:
        MqttError: a password, CA or certificate file could not be read.
    """
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5)
    password = config.password
    if config.password_file is not None:
        try:
            password = Path(config.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise MqttError(f"cannot read password_file {config.password_file}: "
                            f"{exc.strerror}") from exc
    if config.username is not None or password is not None:
        client.username_pw_set(config.username, password)
    if config.tls:
        try:
            client.tls_set(ca_certs=config.ca_file, certfile=config.cert_file,
                           keyfile=config.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise MqttError(f"TLS set-up failed (ca_file {config.ca_file}, cert_file "
                            f"{config.cert_file}): {exc}") from exc
    client.on_socket_open = _no_delay
    return client


def _no_delay(client: paho.Client, userdata: object, sock: Any) -> None:
    """Small packets go out at once: without TCP_NODELAY a QoS 1 round trip waits ~40 ms
    for a delayed ACK."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError) as exc:
        log.debug("MQTT: TCP_NODELAY not set: %s", exc)
