"""The MQTT bridge against a real mosquitto: a controller on a simulated mat, in process,
and the daemon as a subprocess for what only a process can show (the will after SIGKILL).

Every wait is for a condition with a deadline; no sleep stands in for an assertion.
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broker import Broker, make_certificate, make_password_file, needs_mosquitto
from conftest import wait_for
from matpi.config.settings import DeviceConfig, MqttConfig
from matpi.core.events import DoublePress, LongPress, Press, State
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.drivers.clock import Clock
from matpi.drivers.polling import ThermometerPoller
from matpi.drivers.sim import SimulatedMat
from matpi.remote.homeassistant import discovery_messages
from matpi.remote.mqtt import MqttBridge
from matpi.remote.mqttclient import publish_once
from matpi.remote.netloop import NetLoop
from matpi.service.controller import Controller
from test_commands import BAD_REQUESTS

pytestmark = needs_mosquitto

BASE = "matpi/matpi"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class Observer:
    """A second client that records everything under the topics it subscribes to."""

    broker: Broker
    topics: tuple[str, ...] = ("#",)
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    messages: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.refused: str | None = None
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        if self.ca_file:
            self.client.tls_set(ca_certs=str(self.ca_file))
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message

    def connect(self) -> "Observer":
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        wait_for(lambda: self._subscribed.is_set() or self.refused, what="observer connected")
        return self

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, reason: Any,
                    properties: object) -> None:
        if reason.is_failure:
            self.refused = str(reason)
            return
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_message(self, client: paho.Client, userdata: object, msg: Any) -> None:
        with self._lock:
            self.messages.append(Message(msg.topic, msg.payload, msg.retain, time.monotonic()))

    def on(self, topic: str, since: float = 0.0) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic and m.at >= since]

    def wait(self, topic: str, test: Callable[[Message], bool] = lambda m: True, *,
             since: float = 0.0, timeout_s: float = TIMEOUT_S) -> Message:
        def found() -> Message | None:
            return next((m for m in self.on(topic, since) if test(m)), None)

        message: Message = wait_for(found, timeout_s, f"a message on {topic}")
        return message

    def last_state(self) -> dict[str, Any]:
        self.wait(f"{BASE}/state")
        state: dict[str, Any] = self.on(f"{BASE}/state")[-1].json()
        return state

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(TIMEOUT_S)


class Rig:
    """A controller on a simulated mat with its MQTT bridge, in this process, as the daemon
    builds them: the bridge's socket is served on the controller's loop, unless `shared`
    is false (the bridge then runs a loop thread of its own)."""

    def __init__(self, config: MqttConfig, *, poll: bool = True, shared: bool = True) -> None:
        self.config = config
        self.clock = Clock()
        self.mat = SimulatedMat(self.clock)
        self.drivers = self.mat.drivers()
        self.rules = Rules()
        self.machine = SessionMachine(self.rules, self.clock.now(), self.clock.today())
        self.loop = NetLoop() if shared else None
        self.controller = Controller(self.machine, self.drivers, self.clock, inbox=self.loop)
        self.bridge = MqttBridge(config, DeviceConfig(), self.rules, self.controller.post,
                                 wall=self.clock.wall, version="9.9.9", loop=self.loop)
        self.controller.add_listener(self.bridge.listener)
        self.poller = (ThermometerPoller(self.drivers.thermometers, self.controller.post,
                                         self.clock, 0.5) if poll else None)
        self.thread = threading.Thread(target=self.controller.run)

    def start(self) -> "Rig":
        self.thread.start()
        if self.poller is not None:
            self.poller.start()
        self.bridge.start()
        return self

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.close()
        self.controller.request_stop()
        self.thread.join(timeout=5.0)
        self.bridge.close()
        assert not self.thread.is_alive()

    def settings(self) -> tuple[Any, ...]:
        s = self.machine.snapshot(self.clock.now())
        return (s.state, s.program, s.heat_level, s.pattern, s.intensity_pct, s.planned_min)


def mqtt_config(broker: Broker, **options: Any) -> MqttConfig:
    return MqttConfig(enabled=True, host=broker.host, port=broker.port, **options)


@pytest.fixture
def observer(broker: Broker) -> Iterator[Observer]:
    o = Observer(broker).connect()
    yield o
    o.close()


@pytest.fixture
def rig(broker: Broker, observer: Observer) -> Iterator[Rig]:
    r = Rig(mqtt_config(broker)).start()
    observer.wait(f"{BASE}/state")
    yield r
    r.stop()


def test_online_state_and_discovery_are_retained(broker: Broker, rig: Rig) -> None:
    late = Observer(broker).connect()  # sees only what the broker kept
    try:
        availability = late.wait(f"{BASE}/availability")
        assert (availability.payload, availability.retain) == (b"online", True)
        state = late.wait(f"{BASE}/state")
        assert state.retain
        assert state.json()["state"] == "idle" and state.json()["ends_at"] is None
        expected = discovery_messages(DeviceConfig(), rig.rules, rig.config, version="9.9.9")
        for topic, payload in expected:
            message = late.wait(topic)
            assert message.retain and message.payload.decode() == payload
    finally:
        late.close()


def test_the_client_socket_sends_small_packets_at_once(rig: Rig) -> None:
    client = rig.bridge._client  # the bridge does not expose its socket otherwise
    assert client is not None
    sock = client.socket()
    assert isinstance(sock, socket.socket)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


@pytest.mark.parametrize(("command", "payload", "field", "value"), [
    ("intensity", "70", "intensity_pct", 70.0),
    ("heat", "high", "heat_level", "high"),
    ("pattern", "pulse", "pattern", "pulse"),
    ("pattern", "breathe", "pattern", "breathe"),
    ("breaths", "7.5", "breaths_per_min", 7.5),
    ("program", "back", "program", "back"),
    ("duration", "12", "planned_min", 12.0),
])
def test_a_command_changes_the_published_state(
    rig: Rig, observer: Observer, command: str, payload: str, field: str, value: Any
) -> None:
    observer.publish(f"{BASE}/{command}/set", payload)
    observer.wait(f"{BASE}/state", lambda m: m.json()[field] == value)
    adjusted = observer.wait(f"{BASE}/event")
    assert adjusted.json()["event"] in ("adjusted", "program_selected")


def test_commands_are_read_and_states_written_on_the_controllers_thread(
    broker: Broker, observer: Observer
) -> None:
    """Issue #17: each hand-off between threads cost 0.1-0.4 ms at the 99th percentile. The
    daemon's bridge has no network thread: its socket is served while the controller waits."""
    rig = Rig(mqtt_config(broker))
    client = rig.bridge._client  # the bridge does not expose its callbacks otherwise
    assert client is not None
    threads: dict[str, set[int]] = {"read": set(), "written": set()}
    on_message, sock_send = client.on_message, client._sock_send

    def reading(*args: Any) -> None:
        threads["read"].add(threading.get_ident())
        on_message(*args)  # type: ignore[misc]

    def writing(buffer: bytes | bytearray) -> int:
        threads["written"].add(threading.get_ident())
        return sock_send(buffer)

    client.on_message = reading
    client._sock_send = writing  # type: ignore[method-assign,assignment]
    rig.start()
    try:
        observer.wait(f"{BASE}/state")
        threads["written"].clear()  # the connector thread wrote CONNECT, as it should
        observer.publish(f"{BASE}/intensity/set", "55")
        observer.wait(f"{BASE}/state", lambda m: m.json()["intensity_pct"] == 55.0)
        assert threads["read"] == threads["written"] == {rig.thread.ident}
        assert client._thread is None  # paho's own loop thread was never started
    finally:
        rig.stop()


def test_a_bridge_without_the_controllers_loop_runs_one_of_its_own(
    broker: Broker, observer: Observer
) -> None:
    """Tools and tests may run the bridge beside a controller with a plain queue."""
    rig = Rig(mqtt_config(broker), shared=False).start()
    try:
        observer.wait(f"{BASE}/state")
        observer.publish(f"{BASE}/intensity/set", "65")
        observer.wait(f"{BASE}/state", lambda m: m.json()["intensity_pct"] == 65.0)
        assert "matpi-mqtt" in [t.name for t in threading.enumerate()]
    finally:
        rig.stop()
    assert observer.wait(f"{BASE}/availability", lambda m: m.payload == b"offline")


MQTT_BAD_REQUESTS = [(c, p, f) for c, p, f, _ in BAD_REQUESTS if isinstance(p, bytes)]


def test_bad_payloads_get_error_replies_and_change_nothing(rig: Rig, observer: Observer) -> None:
    before = rig.settings()
    # One at a time: a second bad command while the first one's reply is still on its way
    # is counted, not answered (tests/test_mqtt_bursts.py), and that is not this test.
    for sent, (command, payload, _) in enumerate(MQTT_BAD_REQUESTS, start=1):
        observer.publish(f"{BASE}/{command}/set", payload)
        wait_for(lambda sent=sent: len(observer.on(f"{BASE}/error")) >= sent,
                 what=f"an error reply to bad payload {sent}")
    replies = [m.json() for m in observer.on(f"{BASE}/error")]
    assert [r["field"] for r in replies] == [f for _, _, f in MQTT_BAD_REQUESTS]
    assert all(r["allowed"] and r["value"] and r["message"] for r in replies)
    assert rig.settings() == before
    assert not observer.on(f"{BASE}/event")


def test_a_retained_command_is_refused_on_replay_and_live(broker: Broker, observer: Observer) -> (
    None
):
    observer.publish(f"{BASE}/session/set", "ON", retain=True)
    observer.publish(f"{BASE}/intensity/set", "5", retain=True)
    rig = Rig(mqtt_config(broker)).start()
    try:
        wait_for(lambda: len(observer.on(f"{BASE}/error")) >= 2, what="two retain replies")
        observer.publish(f"{BASE}/heat/set", "high", retain=True)  # while connected
        wait_for(lambda: len(observer.on(f"{BASE}/error")) >= 3, what="a third retain reply")
        assert {m.json()["field"] for m in observer.on(f"{BASE}/error")} == {"retain"}
        state = observer.last_state()
        assert (state["state"], state["intensity_pct"], state["heat_level"]) == \
            ("idle", 30.0, "low")
        assert rig.machine.state is State.IDLE
    finally:
        rig.stop()


def test_a_remote_start_preheats_until_a_press_at_the_mat(rig: Rig, observer: Observer) -> None:
    observer.publish(f"{BASE}/session/set", "ON")
    observer.wait(f"{BASE}/state", lambda m: m.json()["awaiting_press"])
    assert observer.wait(f"{BASE}/event").json()["event"] == "preheat_started"
    rig.controller.post(Press())
    running = observer.wait(f"{BASE}/state", lambda m: m.json()["state"] == "running").json()
    ends_at = datetime.fromisoformat(running["ends_at"])
    assert ends_at.utcoffset() is not None
    left_s = ends_at.timestamp() - rig.clock.wall()
    assert abs(left_s - running["remaining_s"]) <= 3
    assert observer.wait(f"{BASE}/button").json() == {"event_type": "press"}
    observer.publish(f"{BASE}/stop/set", "PRESS")
    ended = observer.wait(f"{BASE}/event", lambda m: m.json()["event"] == "session_ended")
    assert ended.json()["reason"] == "stopped"
    assert observer.wait(f"{BASE}/state",
                         lambda m: m.json()["state"] == "cooldown").json()["ends_at"] is None


def test_a_core_refusal_reaches_the_error_topic(rig: Rig, observer: Observer) -> None:
    observer.publish(f"{BASE}/start/set", '{"program": "neck"}')
    observer.wait(f"{BASE}/state", lambda m: m.json()["state"] == "preheat")
    observer.publish(f"{BASE}/start/set", "")
    reply = observer.wait(f"{BASE}/error").json()
    assert reply["command"] == "start" and "already preheat" in reply["message"]
    refused = observer.wait(f"{BASE}/event", lambda m: m.json()["event"] == "refused")
    assert refused.json()["command"] == "start"


def test_the_session_goes_on_across_a_broker_restart(broker: Broker, rig: Rig) -> None:
    rig.controller.post(Press())
    wait_for(lambda: rig.machine.state is State.RUNNING, what="session running")
    broker.restart()  # it keeps nothing: what arrives now, the bridge sent again
    watcher = Observer(broker, topics=(f"{BASE}/state", f"{BASE}/availability")).connect()
    try:
        # The loss is not waited for: a jittered reconnect may come before the watcher.
        online = watcher.wait(f"{BASE}/availability", lambda m: m.payload == b"online",
                              timeout_s=15.0)
        state = watcher.wait(f"{BASE}/state", lambda m: m.json()["state"] == "running")
        assert abs(state.at - online.at) < 2.0
        assert rig.bridge.connected and rig.machine.state is State.RUNNING
        assert rig.mat.motor_duty > 0
    finally:
        watcher.close()


def test_home_assistant_birth_brings_discovery_again(rig: Rig, observer: Observer) -> None:
    rig.bridge.birth_delay_max_s = 0.2
    expected = discovery_messages(DeviceConfig(), rig.rules, rig.config, version="9.9.9")
    observer.wait(expected[-1][0])
    birth_at = time.monotonic()
    observer.publish("homeassistant/status", "online")
    for topic, payload in expected:
        assert observer.wait(topic, since=birth_at).payload.decode() == payload


def test_heartbeat_republishes_an_unchanged_state(broker: Broker, observer: Observer) -> None:
    rig = Rig(mqtt_config(broker), poll=False)
    rig.bridge.state.heartbeat_s = 0.2
    rig.start()
    try:
        first = observer.wait(f"{BASE}/state")
        again = observer.wait(f"{BASE}/state", since=first.at + 0.1)
        assert again.payload == first.payload
    finally:
        rig.stop()


def test_close_without_start_or_broker_is_quiet(tmp_path: Path) -> None:
    bridge = MqttBridge(MqttConfig(enabled=True, port=1), DeviceConfig(), Rules(),
                        lambda event: None)
    bridge.close()
    bridge.close()
    assert not bridge.connected


def test_an_unreadable_password_file_disables_mqtt_not_the_mat(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = MqttConfig(enabled=True, username="mat", password_file=str(tmp_path / "missing"))
    bridge = MqttBridge(config, DeviceConfig(), Rules(), lambda event: None)
    bridge.start()
    bridge.listener(SessionMachine(Rules(), 0.0, date(2026, 3, 2)).snapshot(0.0), [])
    bridge.close()
    assert "MQTT disabled: cannot read password_file" in caplog.text


def test_close_says_offline(broker: Broker, observer: Observer) -> None:
    rig = Rig(mqtt_config(broker)).start()
    observer.wait(f"{BASE}/availability", lambda m: m.payload == b"online")
    rig.stop()
    observer.wait(f"{BASE}/availability", lambda m: m.payload == b"offline")


def test_the_mat_runs_without_a_broker_and_connects_when_one_appears(tmp_path: Path) -> None:
    broker = Broker(tmp_path)  # its port is chosen, nothing listens yet
    rig = Rig(mqtt_config(broker))
    started = time.monotonic()
    rig.start()
    try:
        assert time.monotonic() - started < 1.0
        rig.controller.post(Press())
        wait_for(lambda: rig.machine.state is State.RUNNING and rig.mat.motor_duty > 0,
                 what="a session without a broker")
        broker.start()
        wait_for(lambda: rig.bridge.connected, timeout_s=15.0, what="connected once it is up")
        watcher = Observer(broker).connect()
        assert watcher.wait(f"{BASE}/state").json()["state"] == "running"
        watcher.close()
    finally:
        rig.stop()
        broker.stop()


def test_tls_with_a_password_file(tmp_path: Path) -> None:
    tls = make_certificate(tmp_path)
    broker = Broker(tmp_path, tls=tls,
                    password_file=make_password_file(tmp_path, {"mat": "s3cret"}))
    broker.start()
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    rig = Rig(mqtt_config(broker, tls=True, ca_file=str(tls.cert_file), username="mat",
                          password_file=str(secret)))
    rig.start()
    trusted = Observer(broker, username="mat", password="s3cret", ca_file=tls.cert_file)
    stranger = Observer(broker, ca_file=tls.cert_file)
    try:
        trusted.connect()
        assert trusted.wait(f"{BASE}/availability").payload == b"online"
        trusted.publish(f"{BASE}/intensity/set", "55")
        trusted.wait(f"{BASE}/state", lambda m: m.json()["intensity_pct"] == 55.0)
        stranger.connect()
        assert stranger.refused and "authori" in stranger.refused.lower()
        assert not stranger.messages
    finally:
        trusted.close()
        stranger.close()
        rig.stop()
        broker.stop()


def test_a_refused_login_is_logged_once_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = Broker(tmp_path, password_file=make_password_file(tmp_path, {"mat": "right"}))
    broker.start()
    rig = Rig(mqtt_config(broker, username="mat", password="wrong"))
    try:
        with caplog.at_level(logging.DEBUG, logger="matpi.remote.mqtt"):
            rig.start()
            wait_for(lambda: caplog.text.count("refused the connection") >= 2, timeout_s=15.0,
                     what="two refused attempts")
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len([r for r in warnings if "refused the connection" in r.message]) == 1
        assert not rig.bridge.connected
        rig.controller.post(Press())
        wait_for(lambda: rig.machine.state is State.RUNNING, what="the mat still works")
    finally:
        rig.stop()
        broker.stop()


def test_publish_once_clears_retained_discovery(
    broker: Broker, rig: Rig, observer: Observer
) -> None:
    topic = discovery_messages(DeviceConfig(), rig.rules, rig.config)[0][0]
    observer.wait(topic)
    publish_once(rig.config, [(topic, "")])
    late = Observer(broker).connect()
    try:
        late.wait(f"{BASE}/availability")
        assert not late.on(topic)
    finally:
        late.close()


# --- the daemon as a subprocess ---------------------------------------------


def daemon_config(tmp_path: Path, broker: Broker, more: str = "") -> Path:
    """A config of MQTT only; `more` goes on in its [mqtt] table."""
    path = tmp_path / "matpi.toml"
    path.write_text(f'[mqtt]\nenabled = true\nhost = "{broker.host}"\nport = {broker.port}\n'
                    + more, encoding="utf-8")
    return path


@pytest.mark.slow
def test_the_daemon_goes_offline_by_its_will_when_killed(
    tmp_path: Path, broker: Broker, observer: Observer
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "matpi", "run", "--simulate", "--config",
         str(daemon_config(tmp_path, broker))],
        stdout=log, stderr=log, env=env,
    )
    try:
        observer.wait(f"{BASE}/availability", lambda m: m.payload == b"online", timeout_s=20.0)
        observer.publish(f"{BASE}/intensity/set", "64")
        observer.wait(f"{BASE}/state", lambda m: m.json()["intensity_pct"] == 64.0)
        killed_at = time.monotonic()
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=10.0)
        observer.wait(f"{BASE}/availability", lambda m: m.payload == b"offline",
                      since=killed_at)
    finally:
        if daemon.poll() is None:
            os.kill(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=10.0)
        log.close()


def _openssl_mapped(pid: int) -> bool:
    """OpenSSL's library, or the modules that load it (a Python may link it statically)."""
    maps = Path(f"/proc/{pid}/maps").read_text(encoding="utf-8")
    return any(name in maps for name in ("libcrypto", "/_ssl.", "/_hashlib."))


def _stop(daemon: "subprocess.Popen[bytes]") -> None:
    daemon.terminate()
    try:
        daemon.wait(timeout=10.0)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait(timeout=10.0)


@pytest.mark.slow
def test_a_daemon_without_tls_runs_without_openssl_through_a_broker_restart(
    tmp_path: Path, broker: Broker, observer: Observer
) -> None:
    """paho without OpenSSL (matpi.remote.openssl): nothing of it mapped, a restarted
    broker (a clean end of stream to paho) reconnected to, commands obeyed, and no error
    on the way. paho's except clauses themselves are tested in tests/test_openssl.py."""
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "matpi", "run", "--simulate", "--config",
             str(daemon_config(tmp_path, broker)), "--state-dir", str(tmp_path / "state")],
            stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        observer.wait(f"{BASE}/availability", lambda m: m.payload == b"online", timeout_s=20.0)
        assert not _openssl_mapped(daemon.pid)
        observer.close()
        broker.restart()
        back = Observer(broker).connect()
        try:
            back.wait(f"{BASE}/availability", lambda m: m.payload == b"online",
                      timeout_s=20.0)
            back.publish(f"{BASE}/intensity/set", "64")
            back.wait(f"{BASE}/state", lambda m: m.json()["intensity_pct"] == 64.0)
        finally:
            back.close()
    finally:
        _stop(daemon)
    logged = log_path.read_text(encoding="utf-8")
    assert "Traceback" not in logged and "Error" not in logged, logged


@pytest.mark.slow
def test_a_daemon_with_tls_has_openssl(tmp_path: Path) -> None:
    tls = make_certificate(tmp_path)
    broker = Broker(tmp_path, tls=tls)
    broker.start()
    watcher = Observer(broker, ca_file=tls.cert_file)
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "matpi", "run", "--simulate", "--config",
             str(daemon_config(tmp_path, broker, f'tls = true\nca_file = "{tls.cert_file}"\n')),
             "--state-dir", str(tmp_path / "state")],
            stdout=log, stderr=log)
    try:
        watcher.connect()
        watcher.wait(f"{BASE}/availability", lambda m: m.payload == b"online", timeout_s=20.0)
        assert _openssl_mapped(daemon.pid), log_path.read_text(encoding="utf-8")
    finally:
        try:
            _stop(daemon)
        finally:
            watcher.close()
            broker.stop()


def test_every_button_gesture_reaches_the_button_event(rig: Rig, observer: Observer) -> None:
    for event, kind in ((DoublePress(), "double_press"), (LongPress(), "long_press")):
        rig.controller.post(event)
        observer.wait(f"{BASE}/button", lambda m, kind=kind: m.json() == {"event_type": kind})
