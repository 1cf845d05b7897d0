"""Home Assistant discovery payloads: every topic, every key, checked by one helper.

Home Assistant drops unknown keys silently, so a typo would fail invisibly:
`check_payload` holds each platform's known keys (from Home Assistant's MQTT
platform schemas) and the rules its discovery enforces.
"""

import json
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from matpi.config.settings import DeviceConfig, MqttConfig
from matpi.core.events import State
from matpi.core.patterns import Pattern
from matpi.core.programs import BUILTIN_PROGRAMS, HeatLevel, Program
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.remote.homeassistant import (
    BUTTON_GESTURES,
    Topics,
    absent_messages,
    button_event,
    discovery_messages,
    removal_messages,
    status_topic,
)
from matpi.remote.payloads import state_payload

TOPIC = re.compile(r"(?P<component>\w+)/(?:(?P<node>[a-zA-Z0-9_-]+)/)?"
                   r"(?P<object>[a-zA-Z0-9_-]+)/config")
"""Home Assistant's pattern for what follows `<prefix>/` (mqtt/discovery.py)."""
ENTITY_ID = re.compile(r"[a-z_]+\.[a-z0-9_]+")

COMMON_KEYS = {
    "name", "unique_id", "default_entity_id", "availability", "availability_topic",
    "availability_mode", "availability_template", "payload_available", "payload_not_available",
    "device", "origin", "entity_category", "entity_picture", "enabled_by_default", "icon",
    "json_attributes_topic", "json_attributes_template", "qos", "encoding",
}
PLATFORM_KEYS = {
    "switch": {"command_topic", "command_template", "state_topic", "value_template",
               "payload_on", "payload_off", "state_on", "state_off", "optimistic", "retain",
               "device_class"},
    "select": {"command_topic", "command_template", "state_topic", "value_template", "options",
               "optimistic", "retain"},
    "number": {"command_topic", "command_template", "state_topic", "value_template", "min",
               "max", "step", "mode", "unit_of_measurement", "device_class", "optimistic",
               "retain", "payload_reset"},
    "sensor": {"state_topic", "value_template", "device_class", "state_class",
               "unit_of_measurement", "suggested_display_precision", "expire_after",
               "force_update", "last_reset_value_template", "options"},
    "binary_sensor": {"state_topic", "value_template", "device_class", "payload_on",
                      "payload_off", "expire_after", "force_update", "off_delay"},
    "event": {"state_topic", "value_template", "event_types", "device_class"},
    "button": {"command_topic", "command_template", "payload_press", "device_class", "retain"},
}
COMMON_REQUIRED = {"name", "unique_id", "default_entity_id", "availability_topic", "device",
                   "origin"}
REQUIRED_KEYS = {
    "switch": {"command_topic", "state_topic"},
    "select": {"command_topic", "state_topic", "options"},
    "number": {"command_topic", "state_topic", "min", "max"},
    "sensor": {"state_topic"},
    "binary_sensor": {"state_topic"},
    "event": {"state_topic", "event_types"},
    "button": {"command_topic"},
}
DEVICE_KEYS = {"identifiers", "connections", "name", "manufacturer", "model", "model_id",
               "hw_version", "sw_version", "serial_number", "suggested_area", "via_device",
               "configuration_url"}
DURATION_UNITS = {"d", "h", "min", "s"}

EXPECTED = {
    ("switch", "session"), ("button", "stop"), ("select", "program"), ("select", "heat_level"),
    ("select", "vibration_pattern"), ("number", "vibration_intensity"),
    ("number", "breathing_pace"), ("number", "session_length"),
    ("sensor", "mat_temperature"), ("sensor", "state"),
    ("sensor", "ends_at"), ("sensor", "remaining"), ("sensor", "thermal_dose"),
    ("sensor", "today_use"), ("sensor", "streak"), ("binary_sensor", "fault"),
    ("sensor", "fault_reason"), ("event", "button"),
}


def parse_topic(topic: str, mqtt: MqttConfig) -> re.Match[str]:
    prefix = f"{mqtt.discovery_prefix}/"
    assert topic.startswith(prefix), topic
    match = TOPIC.fullmatch(topic[len(prefix):])
    assert match, topic
    return match


def state_fields() -> set[str]:
    machine = SessionMachine(Rules(), 0.0, date(2026, 3, 2))
    return set(json.loads(state_payload(machine.snapshot(0.0), None)))


def test_mqtt_leaves_out_the_breath_moment_that_the_page_draws_with() -> None:
    """breath_s changes at every step: in MQTT's state it would publish every second."""
    machine = SessionMachine(Rules(), 0.0, date(2026, 3, 2))
    assert "breath_s" not in state_fields()
    assert "breath_s" in json.loads(state_payload(machine.snapshot(0.0), None, moment=True))


def check_payload(topic: str, payload: str, device: DeviceConfig, mqtt: MqttConfig) -> (
    dict[str, Any]
):
    """Everything Home Assistant requires of one discovery message, and nothing unknown."""
    match = parse_topic(topic, mqtt)
    component, key = match["component"], match["object"]
    config = json.loads(payload)
    assert isinstance(config, dict)
    assert not set(config) - COMMON_KEYS - PLATFORM_KEYS[component], topic
    assert REQUIRED_KEYS[component] | COMMON_REQUIRED <= set(config), topic

    assert config["unique_id"] == f"matpi_{device.id}_{key}"
    entity_id = config["default_entity_id"]
    assert ENTITY_ID.fullmatch(entity_id) and entity_id.startswith(f"{component}."), entity_id
    name = config["name"]
    assert name and not name.lower().startswith(device.name.lower())

    base = Topics.of(mqtt, device).base
    assert config["availability_topic"] == f"{base}/availability"
    assert "availability" not in config
    for option in ("state_topic", "command_topic"):
        if option in config:
            assert config[option].startswith(f"{base}/")
            assert "+" not in config[option] and "#" not in config[option]
    if "command_topic" in config:
        assert config["command_topic"].endswith("/set")

    dev = config["device"]
    assert set(dev) <= DEVICE_KEYS
    assert dev["identifiers"] == [f"matpi_{device.id}"]
    assert dev["name"] == device.name
    assert all(value is not None for value in dev.values())
    assert config["origin"]["name"] == "matpi"
    assert set(config["origin"]) <= {"name", "sw_version", "support_url"}

    device_class = config.get("device_class")
    if "options" in config and component == "sensor":
        assert device_class == "enum"
        assert "unit_of_measurement" not in config and "state_class" not in config
    if device_class == "temperature":
        assert config["unit_of_measurement"] == "°C"
    if device_class == "duration":
        assert config["unit_of_measurement"] in DURATION_UNITS
    if component in ("sensor", "binary_sensor"):
        assert config.get("entity_category") != "config"
    if "icon" in config:
        assert config["icon"].startswith("mdi:")
    for template in (v for k, v in config.items() if k.endswith("template")):
        assert set(re.findall(r"value_json\.(\w+)", template)) <= state_fields(), template
    return dict(config)


@pytest.fixture
def messages() -> list[tuple[str, str]]:
    return discovery_messages(DeviceConfig(), Rules(), MqttConfig(), version="1.2.3")


def test_every_entity_has_one_retained_config_topic(messages: list[tuple[str, str]]) -> None:
    found = set()
    for topic, _ in messages:
        match = parse_topic(topic, MqttConfig())
        assert match["node"] == "matpi"
        found.add((match["component"], match["object"]))
    assert found == EXPECTED
    assert len(messages) == len(EXPECTED)


def test_every_payload_passes_the_checks(messages: list[tuple[str, str]]) -> None:
    configs = [check_payload(t, p, DeviceConfig(), MqttConfig()) for t, p in messages]
    assert len({c["unique_id"] for c in configs}) == len(configs)
    assert len({c["default_entity_id"] for c in configs}) == len(configs)
    for config in configs:
        assert config["device"]["sw_version"] == "1.2.3"
        assert config["origin"]["sw_version"] == "1.2.3"


def by_key(messages: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    return {topic.split("/")[-2]: json.loads(payload) for topic, payload in messages}


def test_entities_say_what_they_are(messages: list[tuple[str, str]]) -> None:
    configs = by_key(messages)
    assert configs["session"]["command_topic"] == "matpi/matpi/session/set"
    assert configs["stop"]["payload_press"] == "PRESS"
    assert configs["heat_level"]["options"] == [h.value for h in HeatLevel]
    assert configs["vibration_pattern"]["options"] == [p.value for p in Pattern]
    assert configs["state"]["options"] == [s.value for s in State]
    assert (configs["vibration_intensity"]["min"], configs["vibration_intensity"]["max"],
            configs["vibration_intensity"]["unit_of_measurement"]) == (0, 100, "%")
    pace = configs["breathing_pace"]
    assert (pace["min"], pace["max"], pace["step"], pace["unit_of_measurement"]) == (
        4.0, 8.0, 0.5, "breaths/min")
    assert pace["command_topic"].endswith("/breaths/set")
    assert pace["value_template"] == "{{ value_json.breaths_per_min }}"
    assert "breathe" in configs["vibration_pattern"]["options"]
    assert configs["session_length"]["unit_of_measurement"] == "min"
    assert configs["mat_temperature"]["device_class"] == "temperature"
    assert configs["ends_at"]["device_class"] == "timestamp"
    assert configs["remaining"]["device_class"] == "duration"
    assert configs["thermal_dose"]["unit_of_measurement"] == "CEM43"
    assert configs["today_use"]["unit_of_measurement"] == "min"
    assert configs["streak"]["value_template"] == "{{ value_json.streak_days }}"
    assert configs["fault"]["device_class"] == "problem"
    assert configs["fault_reason"]["entity_category"] == "diagnostic"
    assert configs["button"]["event_types"] == list(BUTTON_GESTURES)
    assert configs["button"]["state_topic"] == "matpi/matpi/button"
    assert configs["mat_temperature"]["default_entity_id"] == "sensor.matpi_mat_temperature"


def test_options_and_ranges_follow_the_rules() -> None:
    programs = {n: p for n, p in BUILTIN_PROGRAMS.items() if p.duration_min <= 20}
    programs["morning"] = Program("morning", 8.0, HeatLevel.LOW, Pattern.PULSE, 40.0)
    rules = Rules(session_max_min=20.0, programs=programs)
    configs = by_key(discovery_messages(DeviceConfig(), rules, MqttConfig()))
    assert configs["program"]["options"] == list(programs)
    assert configs["session_length"]["max"] == 20.0


def test_prefix_base_topic_and_device_id_come_from_config() -> None:
    device = DeviceConfig(id="Bedroom-Mat", name="Bedroom mat")
    mqtt = MqttConfig(base_topic="home/mats", discovery_prefix="ha")
    messages = discovery_messages(device, Rules(), mqtt)
    for topic, payload in messages:
        assert topic.startswith("ha/") and "/Bedroom-Mat/" in topic
        config = check_payload(topic, payload, device, mqtt)
        assert config["availability_topic"] == "home/mats/Bedroom-Mat/availability"
        assert config["default_entity_id"].split(".")[1].startswith("bedroom_mat_")
    assert status_topic(mqtt) == "ha/status"


def test_discovery_holds_nothing_that_changes_at_run_time() -> None:
    assert discovery_messages(DeviceConfig(), Rules(), MqttConfig()) == \
        discovery_messages(DeviceConfig(), Rules(), MqttConfig())


def test_removal_empties_every_config_topic(messages: list[tuple[str, str]]) -> None:
    """Those of optional parts too: the mat may have had an occupancy sensor once."""
    removal = removal_messages(DeviceConfig(), MqttConfig())
    absent = absent_messages(DeviceConfig(), Rules(), MqttConfig())
    assert [t for t, _ in removal] == [t for t, _ in messages + absent]
    assert all(payload == "" for _, payload in removal)


def test_an_occupancy_sensor_is_an_occupancy_binary_sensor() -> None:
    rules = Rules(occupancy_sensor=True)
    messages = discovery_messages(DeviceConfig(), rules, MqttConfig())
    occupancy = by_key(messages)["occupancy"]
    check_payload(*next(m for m in messages if "/occupancy/" in m[0]), DeviceConfig(),
                  MqttConfig())
    assert occupancy["device_class"] == "occupancy"
    assert occupancy["value_template"] == "{{ 'ON' if value_json.occupied else 'OFF' }}"
    assert absent_messages(DeviceConfig(), rules, MqttConfig()) == []


def test_without_the_sensor_its_entity_is_emptied_not_announced(
    messages: list[tuple[str, str]]
) -> None:
    assert "occupancy" not in by_key(messages)
    assert absent_messages(DeviceConfig(), Rules(), MqttConfig()) == [
        ("homeassistant/binary_sensor/matpi/occupancy/config", "")]


def test_absent_values_are_null_which_home_assistant_shows_as_unknown() -> None:
    """A template renders null as "None", which an MQTT sensor takes as unknown."""
    machine = SessionMachine(Rules(), 0.0, date(2026, 3, 2))
    state = json.loads(state_payload(machine.snapshot(0.0), None))
    assert state["ends_at"] is None  # rendered "None": Home Assistant shows unknown
    assert state["streak_days"] == 0 and state["fault"] is None


def test_a_button_event_is_what_the_event_entity_expects() -> None:
    assert json.loads(button_event("long_press")) == {"event_type": "long_press"}


def test_topics_map_command_topics_back_to_command_names() -> None:
    topics = Topics("matpi/mat1")
    assert topics.command_name("matpi/mat1/intensity/set") == "intensity"
    assert topics.command_name("matpi/mat1/a/b/set") is None
    assert topics.command_name("matpi/mat1//set") is None
    assert topics.command_name("matpi/mat2/intensity/set") is None
    assert topics.command_name("matpi/mat1/state") is None


def _typo(config: dict[str, Any]) -> None:
    config["unit_of_measurment"] = config.pop("unit_of_measurement")


def _no_unique_id(config: dict[str, Any]) -> None:
    del config["unique_id"]


def _other_device(config: dict[str, Any]) -> None:
    config["device"]["identifiers"] = ["other"]


def _named_like_the_device(config: dict[str, Any]) -> None:
    config["name"] = "Acupressure mat temperature"


def _fahrenheit(config: dict[str, Any]) -> None:
    config["unit_of_measurement"] = "°F"


def _both_availabilities(config: dict[str, Any]) -> None:
    config["availability"] = [{"topic": config["availability_topic"]}]


@pytest.mark.parametrize("mistake", [_typo, _no_unique_id, _other_device, _named_like_the_device,
                                     _fahrenheit, _both_availabilities])
def test_the_checker_catches_each_mistake(
    messages: list[tuple[str, str]], mistake: Callable[[dict[str, Any]], None]
) -> None:
    topic, payload = next(m for m in messages if m[0].endswith("/mat_temperature/config"))
    config = json.loads(payload)
    mistake(config)
    with pytest.raises(AssertionError):
        check_payload(topic, json.dumps(config), DeviceConfig(), MqttConfig())
