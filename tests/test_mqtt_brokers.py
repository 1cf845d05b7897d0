"""A fleet on one broker, and a mat past one broker (issue #17): `[mqtt] hosts` and its
errors, the jittered backoff, and failover between two real mosquitto processes.

Every wait is for a condition with a deadline; every broker and bridge is stopped in a
fixture or a `finally`.
"""

import itertools
import logging
import random
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from broker import Broker, free_port, needs_mosquitto
from conftest import wait_for
from matpi.config.load import load_config
from matpi.config.settings import BrokerAddress, DeviceConfig, MqttConfig
from matpi.core.errors import ConfigError
from matpi.core.events import Press, State
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.remote.brokers import STABLE_S, Backoff, Reconnect
from matpi.remote.homeassistant import discovery_messages
from matpi.remote.mqtt import MqttBridge, keepalive_check_s, keepalive_slack_s
from matpi.remote.mqttclient import MqttError, publish_once
from test_mqtt import BASE, Observer, Rig

FAILOVER_S = 10.0
"""How long a mat may take to reach the other broker (its backoff is shortened here)."""


def fast() -> Backoff:
    return Backoff(0.05, 0.5)


def address(broker: Broker) -> BrokerAddress:
    return BrokerAddress(broker.host, broker.port)


# --- [mqtt] hosts and host_order -----------------------------------------------


def load(tmp_path: Path, text: str) -> MqttConfig:
    path = tmp_path / "matpi.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path).mqtt


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return [p.removeprefix(f"{tmp_path}/matpi.toml: ") for p in caught.value.problems]


def test_hosts_are_read_with_their_ports_and_order(tmp_path: Path) -> None:
    config = load(tmp_path, '[mqtt]\nport = 8883\nhost_order = "random"\nhosts = '
                            '["mqtt1.local:1883", "mqtt2.local", "10.0.0.5:8884", "[::1]:1885",'
                            ' "[fd00::5]"]\n')
    assert config.brokers == (BrokerAddress("mqtt1.local", 1883),
                              BrokerAddress("mqtt2.local", 8883),
                              BrokerAddress("10.0.0.5", 8884), BrokerAddress("::1", 1885),
                              BrokerAddress("fd00::5", 8883))
    assert [str(b) for b in config.brokers[3:]] == ["[::1]:1885", "[fd00::5]:8883"]
    assert config.host_order == "random"


def test_host_alone_still_works_and_ids_follow_the_device(tmp_path: Path) -> None:
    config = load(tmp_path, '[device]\nid = "mat7"\n[mqtt]\nhost = "broker"\nport = 1884\n')
    assert config.brokers == (BrokerAddress("broker", 1884),)
    assert config.host_order == "in_order"
    assert config.client_id == "matpi-mat7"


FORM = 'must be "host" or "host:port" (IPv6 in brackets: "[fd00::5]:1883")'


@pytest.mark.parametrize(("text", "expected"), [
    ('host = "a"\nhosts = ["b"]',
     "[mqtt] hosts = ['b']: set host (one broker) or hosts (several), not both"),
    ('hosts = "a,b"', '[mqtt] hosts = "a,b": must be a list of brokers like '
                      '["mqtt1.local:1883", "mqtt2.local", "[fd00::5]:8883"]'),
    ("hosts = []", '[mqtt] hosts = []: must be a list of brokers like '
                   '["mqtt1.local:1883", "mqtt2.local", "[fd00::5]:8883"]'),
    ("hosts = [1883]", f"[mqtt] hosts[0] = 1883: {FORM}, a string in quotes"),
    ('hosts = ["a", "mqtt://b"]',
     f'[mqtt] hosts[1] = "mqtt://b": {FORM}, without scheme, user, path or spaces'),
    ('hosts = ["mat@b"]', f'[mqtt] hosts[0] = "mat@b": {FORM}, without scheme, user, path or '
                          "spaces"),
    ('hosts = ["::1"]', f'[mqtt] hosts[0] = "::1": {FORM}: an IPv6 address needs brackets'),
    ('hosts = ["[mqtt1]:1883"]',
     f'[mqtt] hosts[0] = "[mqtt1]:1883": {FORM}: brackets hold an IPv6 address'),
    ('hosts = ["[::1"]', f'[mqtt] hosts[0] = "[::1": {FORM}'),
    ('hosts = ["[::1]1883"]', f'[mqtt] hosts[0] = "[::1]1883": {FORM}'),
    ('hosts = [":1883"]', f'[mqtt] hosts[0] = ":1883": {FORM}: the host is missing or '
                          "malformed"),
    ('hosts = ["a:0"]', f'[mqtt] hosts[0] = "a:0": {FORM}: the port is a whole number from 1 '
                        "to 65535"),
    ('hosts = ["a:65536"]', f'[mqtt] hosts[0] = "a:65536": {FORM}: the port is a whole number '
                            "from 1 to 65535"),
    ('hosts = ["a:mqtt"]', f'[mqtt] hosts[0] = "a:mqtt": {FORM}: the port is a whole number '
                           "from 1 to 65535"),
    ('hosts = ["a", "a:1883"]', '[mqtt] hosts[1] = "a:1883": a:1883 is listed twice'),
    ('host_order = "round_robin"',
     '[mqtt] host_order = "round_robin": must be one of in_order, random'),
])
def test_every_wrong_broker_setting_names_key_value_and_what_is_allowed(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert problems(tmp_path, f"[mqtt]\n{text}\n") == [expected]


def test_every_bad_host_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, '[mqtt]\nhosts = ["good", "::1", "x:0"]\n')
    assert [p.split(" = ")[0] for p in found] == ["[mqtt] hosts[1]", "[mqtt] hosts[2]"]


# --- backoff and the choice of broker ----------------------------------------


def test_the_backoff_ceiling_doubles_to_its_cap_and_starts_over_on_reset() -> None:
    highest = Backoff(uniform=lambda low, high: high)
    assert [highest.next_s() for _ in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    highest.reset()
    assert highest.next_s() == 1
    lowest = Backoff(uniform=lambda low, high: low)
    assert {lowest.next_s() for _ in range(9)} == {0.0}


def test_fifty_mats_spread_their_retries_over_the_whole_window() -> None:
    """Full jitter: no two mats that lost the same broker come back at the same instant."""
    mats = [Backoff(uniform=random.Random(seed).uniform) for seed in range(50)]
    for ceiling_s in (1, 2, 4, 8, 16, 32, 60, 60):
        delays = sorted(mat.next_s() for mat in mats)
        assert all(0.0 <= d <= ceiling_s for d in delays)
        assert delays[0] < ceiling_s * 0.1 and delays[-1] > ceiling_s * 0.9
        assert len(set(delays)) == len(delays)


ABC = (BrokerAddress("a", 1), BrokerAddress("b", 2), BrokerAddress("c", 3))


def test_in_order_moves_to_the_next_broker_and_wraps() -> None:
    reconnect = Reconnect(ABC, "in_order", backoff=Backoff(uniform=lambda low, high: high))
    assert reconnect.address == ABC[0]
    tries = [reconnect.next_attempt() for _ in range(4)]
    assert tries == [(ABC[1], 1), (ABC[2], 2), (ABC[0], 4), (ABC[1], 8)]


def test_random_order_starts_anywhere_and_always_moves_to_another_broker() -> None:
    starts = {Reconnect(ABC, "random", rng=random.Random(seed)).address for seed in range(30)}
    assert starts == set(ABC)
    reconnect = Reconnect(ABC, "random", rng=random.Random(1))
    seen = []
    for _ in range(60):
        before = reconnect.address
        after, _delay = reconnect.next_attempt()
        assert after != before
        seen.append(after)
    assert set(seen) == set(ABC)


def test_one_broker_is_retried_itself() -> None:
    reconnect = Reconnect(ABC[:1], "random")
    assert [reconnect.next_attempt()[0] for _ in range(3)] == [ABC[0]] * 3


def test_only_a_connection_that_stayed_up_resets_the_backoff() -> None:
    now = [0.0]
    reconnect = Reconnect(ABC, "in_order", backoff=Backoff(uniform=lambda low, high: high),
                          monotonic=lambda: now[0])
    assert [reconnect.next_attempt()[1] for _ in range(3)] == [1, 2, 4]
    reconnect.connected()
    now[0] += STABLE_S - 1  # flapping: dropped too soon
    assert reconnect.next_attempt()[1] == 8
    reconnect.connected()
    now[0] += STABLE_S
    assert reconnect.next_attempt()[1] == 1


def test_stop_cuts_a_wait_short() -> None:
    reconnect = Reconnect(ABC, "in_order")
    reconnect.stop()
    started = time.monotonic()
    reconnect.wait(30.0)
    assert time.monotonic() - started < 1.0


# --- against real brokers -------------------------------------------------------


def broker_in(directory: Path) -> Broker:
    directory.mkdir()
    return Broker(directory)


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    pair = (broker_in(tmp_path / "a"), broker_in(tmp_path / "b"))
    try:
        for b in pair:
            b.start()
        yield pair
    finally:
        for b in pair:
            b.stop()


def failover_rig(*brokers: Broker) -> Rig:
    rig = Rig(MqttConfig(enabled=True, hosts=tuple(address(b) for b in brokers)))
    rig.bridge.reconnect.backoff = fast()
    rig.bridge.birth_delay_max_s = 0.2
    return rig


@needs_mosquitto
def test_a_mat_moves_to_the_other_broker_and_back(two: tuple[Broker, Broker]) -> None:
    first, second = two
    rig = failover_rig(first, second)
    expected = discovery_messages(DeviceConfig(), rig.rules, rig.config, version="9.9.9")
    watch_first = Observer(first).connect()
    watch_second = Observer(second).connect()
    rig.start()
    try:
        watch_first.wait(f"{BASE}/state")
        assert rig.bridge.reconnect.address == address(first)
        rig.controller.post(Press())
        wait_for(lambda: rig.machine.state is State.RUNNING, what="session running")
        first.stop()

        watch_second.wait(f"{BASE}/state", lambda m: m.json()["state"] == "running",
                          timeout_s=FAILOVER_S)
        watch_second.wait(expected[-1][0])  # the mat's last message on connecting
        assert rig.bridge.reconnect.address == address(second)
        late = Observer(second).connect()  # sees only what the second broker kept
        try:
            online = late.wait(f"{BASE}/availability")
            assert (online.payload, online.retain) == (b"online", True)
            state = late.wait(f"{BASE}/state")
            assert state.retain and state.json()["state"] == "running"
            for topic, payload in expected:
                message = late.wait(topic)
                assert message.retain and message.payload.decode() == payload
            birth_at = time.monotonic()
            late.publish("homeassistant/status", "online")
            late.wait(expected[0][0], since=birth_at)
        finally:
            late.close()
        assert rig.machine.state is State.RUNNING and rig.mat.motor_duty > 0

        first.start()  # same port, nothing retained; the in-order list wraps round to it
        back = Observer(first).connect()
        try:
            second.stop()
            back.wait(f"{BASE}/availability", lambda m: m.payload == b"online",
                      timeout_s=FAILOVER_S)
            back.wait(f"{BASE}/state", lambda m: m.json()["state"] == "running")
        finally:
            back.close()
    finally:
        rig.stop()
        watch_first.close()
        watch_second.close()


def test_the_keepalive_is_checked_a_tenth_of_it_apart_and_at_most_once_a_second() -> None:
    assert [keepalive_check_s(k) for k in (5, 10, 30, 3600)] == [1.0, 1.0, 3.0, 360.0]


def test_a_keepalive_check_waits_for_a_wake_until_a_fifth_of_the_keepalive_at_most() -> None:
    """The check's interval and its slack together: a ping is at most a fifth late."""
    keepalives = (5, 10, 30, 3600)
    assert [keepalive_slack_s(k) for k in keepalives] == [0.0, 1.0, 3.0, 360.0]
    assert all(keepalive_check_s(k) + keepalive_slack_s(k) <= k / 5 for k in keepalives)


@needs_mosquitto
def test_a_mat_leaves_a_broker_that_hangs_for_the_next(two: tuple[Broker, Broker]) -> None:
    """A hung broker keeps the connection open: only the keepalive tells, after at most
    two keepalives, each checked up to a fifth late (the ping, then its missing answer)."""
    first, second = two
    keepalive_s = 5
    rig = Rig(MqttConfig(enabled=True, keepalive_s=keepalive_s,
                         hosts=(address(first), address(second))))
    rig.bridge.reconnect.backoff = fast()
    watch_second = Observer(second).connect()
    rig.start()
    try:
        wait_for(lambda: rig.bridge.connected, what="connected to the first broker")
        assert rig.bridge.reconnect.address == address(first)
        late_s = keepalive_check_s(keepalive_s) + keepalive_slack_s(keepalive_s)
        first.freeze()
        hung_at = time.monotonic()
        watch_second.wait(f"{BASE}/availability", lambda m: m.payload == b"online",
                          timeout_s=2 * (keepalive_s + late_s) + FAILOVER_S)
        assert rig.bridge.reconnect.address == address(second)
        assert time.monotonic() - hung_at >= keepalive_s  # the keepalive told, nothing sooner
    finally:
        rig.stop()
        watch_second.close()


@needs_mosquitto
def test_a_mat_starts_on_the_second_broker_when_the_first_is_down(tmp_path: Path) -> None:
    down = broker_in(tmp_path / "down")  # its port is chosen, nothing listens
    up = broker_in(tmp_path / "up")
    up.start()
    watcher = Observer(up).connect()
    rig = failover_rig(down, up)
    try:
        started = time.monotonic()
        rig.start()
        assert time.monotonic() - started < 1.0
        watcher.wait(f"{BASE}/availability", lambda m: m.payload == b"online",
                     timeout_s=FAILOVER_S)
        watcher.wait(f"{BASE}/state")
        assert rig.bridge.reconnect.address == address(up)
    finally:
        rig.stop()
        watcher.close()
        up.stop()


def dead_addresses() -> tuple[BrokerAddress, BrokerAddress]:
    ports = {free_port()}
    while len(ports) < 2:
        ports.add(free_port())
    first, second = (BrokerAddress("127.0.0.1", port) for port in sorted(ports))
    return first, second


def test_the_bridge_waits_its_backoff_before_each_try(caplog: pytest.LogCaptureFixture) -> None:
    bridge = MqttBridge(MqttConfig(enabled=True, hosts=dead_addresses()), DeviceConfig(),
                        Rules(), lambda event: None)
    bridge.reconnect.backoff = Backoff(0.2, 0.2, uniform=lambda low, high: high)
    with caplog.at_level(logging.DEBUG, logger="matpi.remote.mqtt"):
        bridge.start()
        try:
            wait_for(lambda: caplog.text.count("unreachable") >= 3, what="three tries")
        finally:
            bridge.close()
    tries = [r.created for r in caplog.records if "unreachable" in r.getMessage()]
    assert all(later - earlier >= 0.19 for earlier, later in itertools.pairwise(tries))


def test_close_during_a_long_backoff_is_prompt_and_problems_are_logged_once_per_broker(
    caplog: pytest.LogCaptureFixture
) -> None:
    dead = dead_addresses()
    bridge = MqttBridge(MqttConfig(enabled=True, hosts=dead), DeviceConfig(), Rules(),
                        lambda event: None)
    bridge.reconnect.backoff = Backoff(0.01, 0.02)
    with caplog.at_level(logging.DEBUG, logger="matpi.remote.mqtt"):
        bridge.start()
        try:
            wait_for(lambda: caplog.text.count("unreachable") >= 6, what="three rounds")
            bridge.reconnect.backoff = Backoff(600.0, 600.0, uniform=lambda low, high: high)
            wait_for(lambda: "in 600.0 s" in caplog.text, what="a long wait begun")
            warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert sorted(warned) == [f"MQTT: broker {d} unreachable ([Errno 111] Connection "
                                      f"refused)" for d in dead]
        finally:
            started = time.monotonic()
            bridge.close()
    assert time.monotonic() - started < 3.0
    assert not bridge.connected


# --- a fleet on one broker --------------------------------------------------------


@needs_mosquitto
def test_a_fleet_shares_one_broker_and_a_dashboard_sees_every_mat(broker: Broker) -> None:
    dashboard = Observer(broker, topics=("matpi/+/state",)).connect()
    shared = Observer(broker, topics=("$share/fleet/matpi/+/state",)).connect()
    mats = [MqttBridge(MqttConfig(enabled=True, host=broker.host, port=broker.port),
                       DeviceConfig(id=f"mat{n}"), Rules(), lambda event: None)
            for n in (1, 2)]
    snapshot = SessionMachine(Rules(), 0.0, date(2026, 3, 2)).snapshot(0.0)
    try:
        for mat in mats:
            mat.start()
        wait_for(lambda: all(m.connected for m in mats), what="both mats connected")
        for mat in mats:
            mat.listener(snapshot, [])
        for topic in ("matpi/mat1/state", "matpi/mat2/state"):
            dashboard.wait(topic)
            shared.wait(topic)
        assert all(m.connected for m in mats)  # distinct client ids: neither evicted the other
    finally:
        for mat in mats:
            mat.close()
        dashboard.close()
        shared.close()


@needs_mosquitto
def test_a_one_off_publish_tries_each_broker_in_turn(broker: Broker) -> None:
    dead = dead_addresses()
    watcher = Observer(broker, topics=("matpi/once",)).connect()
    try:
        publish_once(MqttConfig(hosts=(dead[0], address(broker))), [("matpi/once", "x")],
                     timeout_s=5.0)
        assert watcher.wait("matpi/once").payload == b"x"
    finally:
        watcher.close()
    with pytest.raises(MqttError) as caught:
        publish_once(MqttConfig(hosts=dead), [("matpi/once", "y")], timeout_s=5.0)
    assert all(f"MQTT broker {d}: " in str(caught.value) for d in dead)
