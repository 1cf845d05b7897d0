"""MQTT traffic (issue #17): a session's counting numbers alone go out at most every
`STATE_EVERY_S` (10 s), anything a person would see at once, and the last state always
follows. Against the real mosquitto the suite starts."""

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest

from broker import Broker, needs_mosquitto
from conftest import wait_for
from matpi.config.settings import DeviceConfig
from matpi.core.events import Snapshot, State
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.remote.mqtt import MqttBridge
from matpi.remote.statepace import COUNTING_FIELDS
from test_mqtt import BASE, Observer, mqtt_config

pytestmark = needs_mosquitto

EVERY_S = 0.5
STATE = f"{BASE}/state"


@pytest.fixture
def observer(broker: Broker) -> Iterator[Observer]:
    o = Observer(broker, topics=(STATE,)).connect()
    yield o
    o.close()


@pytest.fixture
def bridge(broker: Broker, observer: Observer) -> Iterator[MqttBridge]:
    b = MqttBridge(mqtt_config(broker, discovery=False), DeviceConfig(), Rules(), lambda e: None)
    b.state.every_s = EVERY_S
    b.start()
    wait_for(lambda: b.connected, what="bridge connected")
    yield b
    b.close()


def running() -> Snapshot:
    idle = SessionMachine(Rules(), 0.0, date(2026, 12, 7)).snapshot(0.0)
    return replace(idle, state=State.RUNNING, remaining_s=600, temperature_c=30.0)


def test_only_counting_numbers_changing_go_out_at_most_once_an_interval(
    bridge: MqttBridge, observer: Observer
) -> None:
    snapshot = running()
    bridge.listener(snapshot, [])
    first = observer.wait(STATE, lambda m: m.json()["state"] == "running")
    started = time.monotonic()
    for tick in range(1, 101):  # 2 s of a session at 50 snapshots a second (the time left
        # moves with the wall clock here, so that the end time stays where it is)
        snapshot = replace(snapshot, remaining_s=600 - int(time.monotonic() - started),
                           elapsed_s=tick, temperature_c=30.0 + tick / 10,
                           dose_cem43=tick / 1000)
        bridge.listener(snapshot, [])
        time.sleep(0.02)
    elapsed_s = time.monotonic() - started
    # the last one always follows, within one interval
    last = observer.wait(STATE, lambda m: m.json()["elapsed_s"] == 100, since=first.at)
    sent = observer.on(STATE, since=first.at + 1e-6)
    assert len(sent) <= elapsed_s / EVERY_S + 2, [m.json()["elapsed_s"] for m in sent]
    gaps = [b.at - a.at for a, b in zip([first, *sent], sent, strict=False)]
    assert min(gaps) >= EVERY_S * 0.8
    assert last.at - started <= elapsed_s + EVERY_S + 0.5


@pytest.mark.parametrize("change", [
    {"state": State.COOLDOWN}, {"heater_on": True}, {"fault": "test: sensor"},
    {"intensity_pct": 80.0}, {"occupied": False},
])
def test_what_a_person_would_see_goes_out_at_once(
    bridge: MqttBridge, observer: Observer, change: dict[str, object]
) -> None:
    snapshot = running()
    bridge.listener(snapshot, [])
    first = observer.wait(STATE, lambda m: m.json()["state"] == "running")
    bridge.listener(replace(snapshot, remaining_s=599), [])  # held: a counting number
    asked_at = time.monotonic()
    bridge.listener(replace(snapshot, remaining_s=598, **change), [])  # type: ignore[arg-type]
    [seen] = [observer.wait(STATE, since=first.at + 1e-6)]
    assert seen.at - asked_at < EVERY_S * 0.8
    assert seen.json()["remaining_s"] == 598


def test_the_counting_fields_are_snapshot_fields() -> None:
    """A renamed field would silently become one that goes out at once."""
    assert set(Snapshot.__dataclass_fields__) >= COUNTING_FIELDS
