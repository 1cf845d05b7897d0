"""Home Assistant MQTT discovery for one mat, as pure data.

One retained config payload per entity, on
`<prefix>/<platform>/<device_id>/<key>/config`. That form works on every Home
Assistant release with MQTT discovery, and removing or changing one entity is
one message; the payloads are small and hold nothing that changes at run time,
so republishing them costs nothing.

A heated blanket in Home Assistant is a switch plus a level select, not a
climate entity, and this follows that: a Session switch, selects for program,
heat level and vibration pattern, numbers for intensity, breathing pace and
session length.
Switching the session on from Home Assistant is a remote start: by default a
bounded preheat that becomes a session only when someone presses the button at
the mat.

    for topic, payload in discovery_messages(config.device, config.rules, config.mqtt):
        client.publish(topic, payload, qos=1, retain=True)
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from matpi import __version__
from matpi.config.settings import DeviceConfig, MqttConfig
from matpi.core.events import State
from matpi.core.patterns import MAX_BREATHS_PER_MIN, MIN_BREATHS_PER_MIN, Pattern
from matpi.core.programs import HeatLevel
from matpi.core.rules import Rules
from matpi.core.session import MIN_SESSION_MIN
from matpi.remote.commands import PRESS_PAYLOAD, Command

ORIGIN_NAME = "matpi"
MANUFACTURER = "matpi"
MODEL = "Heated vibrating acupressure mat"
BUTTON_GESTURES = ("press", "long_press", "double_press")
"""The event types of the Button entity."""

_NOT_TOPIC_SAFE = re.compile(r"[^a-zA-Z0-9_-]")
_NOT_ENTITY_ID_SAFE = re.compile(r"[^a-z0-9_]")


@dataclass(frozen=True)
class Topics:
    """The mat's MQTT topics under `<base_topic>/<device_id>`, shared by bridge and discovery."""

    base: str

    @classmethod
    def of(cls, mqtt: MqttConfig, device: DeviceConfig) -> "Topics":
        return cls(f"{mqtt.base_topic}/{device.id}")

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        """One retained JSON snapshot."""
        return f"{self.base}/state"

    @property
    def event(self) -> str:
        """Every core notice as JSON, not retained."""
        return f"{self.base}/event"

    @property
    def button(self) -> str:
        """Button gestures for Home Assistant's event entity, not retained."""
        return f"{self.base}/button"

    @property
    def error(self) -> str:
        """Replies to rejected or refused commands."""
        return f"{self.base}/error"

    @property
    def commands(self) -> str:
        """The subscription that covers every command topic."""
        return f"{self.base}/+/set"

    def command(self, command: Command) -> str:
        return f"{self.base}/{command}/set"

    def command_name(self, topic: str) -> str | None:
        """`intensity` for `<base>/intensity/set`; None for any other topic."""
        prefix, suffix = f"{self.base}/", "/set"
        if topic.startswith(prefix) and topic.endswith(suffix):
            name = topic[len(prefix):-len(suffix)]
            return name if name and "/" not in name else None
        return None


@dataclass(frozen=True)
class Entity:
    """One Home Assistant entity: its platform, a stable key and its own options."""

    platform: str
    key: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)


def entities(rules: Rules, topics: Topics) -> list[Entity]:
    """Every entity of a mat, with the options that are not common to all of them."""
    state = {"state_topic": topics.state}

    def command(name: Command) -> dict[str, str]:
        return {"command_topic": topics.command(name)}

    return [
        Entity("switch", "session", "Session", {
            **state, **command(Command.SESSION),
            "value_template": "{{ 'ON' if value_json.state in ['preheat', 'running'] "
                              "else 'OFF' }}",
            "icon": "mdi:play-circle-outline",
        }),
        Entity("button", "stop", "Stop", {
            **command(Command.STOP), "payload_press": PRESS_PAYLOAD, "icon": "mdi:stop-circle",
        }),
        Entity("select", "program", "Program", {
            **state, **command(Command.PROGRAM), "options": list(rules.programs),
            "value_template": "{{ value_json.program }}", "icon": "mdi:format-list-bulleted",
        }),
        Entity("select", "heat_level", "Heat level", {
            **state, **command(Command.HEAT), "options": [h.value for h in HeatLevel],
            "value_template": "{{ value_json.heat_level }}", "icon": "mdi:heat-wave",
        }),
        Entity("select", "vibration_pattern", "Vibration pattern", {
            **state, **command(Command.PATTERN), "options": [p.value for p in Pattern],
            "value_template": "{{ value_json.pattern }}", "icon": "mdi:sine-wave",
        }),
        Entity("number", "vibration_intensity", "Vibration intensity", {
            **state, **command(Command.INTENSITY), "min": 0, "max": 100, "step": 1,
            "unit_of_measurement": "%", "mode": "slider",
            "value_template": "{{ value_json.intensity_pct }}", "icon": "mdi:vibrate",
        }),
        Entity("number", "breathing_pace", "Breathing pace", {
            **state, **command(Command.BREATHS), "min": MIN_BREATHS_PER_MIN,
            "max": MAX_BREATHS_PER_MIN, "step": 0.5, "unit_of_measurement": "breaths/min",
            "mode": "slider", "value_template": "{{ value_json.breaths_per_min }}",
            "icon": "mdi:lungs",
        }),
        Entity("number", "session_length", "Session length", {
            **state, **command(Command.DURATION), "min": MIN_SESSION_MIN,
            "max": rules.session_max_min, "step": 1, "unit_of_measurement": "min",
            "device_class": "duration", "mode": "slider",
            "value_template": "{{ value_json.planned_min }}",
        }),
        Entity("sensor", "mat_temperature", "Mat temperature", {
            **state, "device_class": "temperature", "unit_of_measurement": "°C",
            "state_class": "measurement", "suggested_display_precision": 1,
            "value_template": "{{ value_json.temperature_c }}",
        }),
        Entity("sensor", "state", "State", {
            **state, "device_class": "enum", "options": [s.value for s in State],
            "value_template": "{{ value_json.state }}", "icon": "mdi:state-machine",
        }),
        Entity("sensor", "ends_at", "Session ends at", {
            **state, "device_class": "timestamp", "value_template": "{{ value_json.ends_at }}",
        }),
        Entity("sensor", "remaining", "Remaining", {
            **state, "device_class": "duration", "unit_of_measurement": "s",
            "value_template": "{{ value_json.remaining_s }}",
        }),
        Entity("sensor", "thermal_dose", "Thermal dose", {
            **state, "unit_of_measurement": "CEM43", "state_class": "measurement",
            "suggested_display_precision": 2, "value_template": "{{ value_json.dose_cem43 }}",
            "icon": "mdi:thermometer-alert",
        }),
        Entity("sensor", "today_use", "Today's use", {
            **state, "device_class": "duration", "unit_of_measurement": "min",
            "state_class": "total_increasing", "value_template": "{{ value_json.today_min }}",
        }),
        Entity("sensor", "streak", "Streak", {
            **state, "unit_of_measurement": "days", "state_class": "measurement",
            "value_template": "{{ value_json.streak_days }}", "icon": "mdi:fire",
        }),
        Entity("binary_sensor", "fault", "Fault", {
            **state, "device_class": "problem",
            "value_template": "{{ 'ON' if value_json.fault else 'OFF' }}",
        }),
        Entity("sensor", "fault_reason", "Fault reason", {
            **state, "entity_category": "diagnostic",
            # A state over 255 characters would become unknown.
            "value_template": "{{ (value_json.fault or 'none')[:255] }}",
            "icon": "mdi:alert-circle-outline",
        }),
        Entity("event", "button", "Button", {
            "state_topic": topics.button, "event_types": list(BUTTON_GESTURES),
            "icon": "mdi:gesture-tap-button",
        }),
        *([_occupancy_entity(state)] if rules.occupancy_sensor else []),
    ]


def _occupancy_entity(state: dict[str, Any]) -> Entity:
    """Only with an occupancy sensor: without one the mat cannot know."""
    return Entity("binary_sensor", "occupancy", "Occupancy", {
        **state, "device_class": "occupancy",
        "value_template": "{{ 'ON' if value_json.occupied else 'OFF' }}",
    })


def discovery_messages(
    device: DeviceConfig, rules: Rules, mqtt: MqttConfig, *, version: str = __version__
) -> list[tuple[str, str]]:
    """Every discovery config as (topic, JSON payload), to publish retained."""
    topics = Topics.of(mqtt, device)
    node = _topic_safe(device.id)
    object_prefix = _NOT_ENTITY_ID_SAFE.sub("_", device.id.lower())
    common = {
        "availability_topic": topics.availability,
        "qos": 1,
        "device": {
            "identifiers": [f"matpi_{device.id}"],
            "name": device.name,
            "manufacturer": MANUFACTURER,
            "model": MODEL,
            "sw_version": version,
        },
        "origin": {"name": ORIGIN_NAME, "sw_version": version},
    }
    messages = []
    for entity in entities(rules, topics):
        payload = {
            "name": entity.name,
            "unique_id": f"matpi_{device.id}_{entity.key}",
            "default_entity_id": f"{entity.platform}.{object_prefix}_{entity.key}",
            **entity.options,
            **common,
        }
        messages.append((_config_topic(mqtt, node, entity),
                         json.dumps(payload, ensure_ascii=False)))
    return messages


def absent_messages(device: DeviceConfig, rules: Rules, mqtt: MqttConfig) -> list[tuple[str, str]]:
    """An empty retained config for each optional entity this mat lacks: a sensor taken out
    of the config takes its entity out of Home Assistant."""
    node = _topic_safe(device.id)
    have = {_config_topic(mqtt, node, e) for e in entities(rules, Topics.of(mqtt, device))}
    return [(topic, payload) for topic, payload in removal_messages(device, mqtt)
            if topic not in have]


def removal_messages(device: DeviceConfig, mqtt: MqttConfig) -> list[tuple[str, str]]:
    """An empty retained payload for every config topic: Home Assistant drops the entities."""
    node = _topic_safe(device.id)
    # Topics do not depend on the rules; the defaults, with every optional part, list them all.
    return [(_config_topic(mqtt, node, entity), "")
            for entity in entities(Rules(occupancy_sensor=True), Topics.of(mqtt, device))]


def status_topic(mqtt: MqttConfig) -> str:
    """Where Home Assistant announces `online` after it (re)starts."""
    return f"{mqtt.discovery_prefix}/status"


def button_event(gesture: str) -> str:
    """The payload of one Button event."""
    return json.dumps({"event_type": gesture})


def _config_topic(mqtt: MqttConfig, node: str, entity: Entity) -> str:
    return f"{mqtt.discovery_prefix}/{entity.platform}/{node}/{entity.key}/config"


def _topic_safe(device_id: str) -> str:
    """Home Assistant accepts only [a-zA-Z0-9_-] in a discovery node id."""
    return _NOT_TOPIC_SAFE.sub("_", device_id)
