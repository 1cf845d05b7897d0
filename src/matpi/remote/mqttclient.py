"""A paho client as matpi's config asks for it (credentials, TLS, small packets sent at
once), and the one-off publish of `matpi discovery --remove`."""

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from matpi.config.settings import BrokerAddress, MqttConfig

log = logging.getLogger(__name__)

QOS = 1


class MqttError(ConnectionError):
    """The broker could not be reached or set up for a one-off publish."""


def publish_once(config: MqttConfig, messages: list[tuple[str, str]], *,
                 timeout_s: float = 10.0) -> None:
    """Connect, publish every (topic, payload) retained at QoS 1, and disconnect.

    For `matpi discovery --remove` and the like, run while the daemon may be
    running too: it uses its own client id. With several brokers, each is tried
    in the listed order until one confirms every message.

    Raises:
        MqttError: no broker could be reached, accepted us and confirmed in time.
    """
    client = make_client(config, f"{config.client_id or 'matpi'}-once-{os.getpid()}")
    problems: list[str] = []
    for address in config.brokers:
        try:
            _publish_to(client, address, config.keepalive_s, messages, timeout_s)
            return
        except MqttError as exc:
            problems.append(f"MQTT broker {address}: {exc}")
    raise MqttError("; ".join(problems))


def _publish_to(client: paho.Client, address: BrokerAddress, keepalive_s: int,
                messages: list[tuple[str, str]], timeout_s: float) -> None:
    connected = threading.Event()
    refusal: list[str] = []

    def on_connect(client: paho.Client, userdata: object, flags: object, reason: Any,
                   properties: object) -> None:
        if reason.is_failure:
            refusal.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(address.host, address.port, keepalive_s)
    except OSError as exc:
        raise MqttError(str(exc)) from exc
    client.loop_start()
    try:
        if not connected.wait(timeout_s) or refusal:
            raise MqttError(refusal[0] if refusal else "no answer")
        infos = [client.publish(topic, payload, qos=QOS, retain=True)
                 for topic, payload in messages]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            try:
                info.wait_for_publish(timeout=max(deadline - time.monotonic(), 0.0))
            except (RuntimeError, ValueError) as exc:
                raise MqttError(str(exc)) from exc
            if not info.is_published():
                raise MqttError(f"publish not confirmed within {timeout_s:g} s")
    finally:
        client.disconnect()
        client.loop_stop()


def make_client(config: MqttConfig, client_id: str) -> paho.Client:
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
        except OSError as exc:  # ssl.SSLError is an OSError
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
