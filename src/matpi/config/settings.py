"""The mat's config as frozen dataclasses; `load` reads a TOML file into them.

Simulation needs no file at all: `Config()` holds the embedded defaults.
"""

from dataclasses import dataclass, field

from matpi.core.rules import Rules

PIN_FACTORIES = ("auto", "lgpio", "rpigpio", "mock")


@dataclass(frozen=True)
class DeviceConfig:
    id: str = "matpi"
    name: str = "Acupressure mat"


DEFAULT_HEATER_PIN = 5
DEFAULT_POWER_PIN = 6
"""GPIO 0-8 are pulled high at power-on: an active-low relay board on them stays off
from power-up until matpi runs (GPIO 9-27 are pulled low and would switch it on)."""


@dataclass(frozen=True)
class HeaterConfig:
    pin: int = DEFAULT_HEATER_PIN
    active_high: bool = False


@dataclass(frozen=True)
class VibrationConfig:
    kind: str = "pwm"  # pwm | relay | none
    pin: int | None = 18
    active_high: bool = True
    frequency_hz: float = 100.0
    min_toggle_s: float = 2.0


@dataclass(frozen=True)
class ButtonConfig:
    pin: int | None = 27
    pull_up: bool = True
    bounce_s: float = 0.05
    hold_s: float = 2.0
    double_press_s: float = 0.35


@dataclass(frozen=True)
class OccupancyConfig:
    """The optional occupancy sensor; no pin, no sensor."""

    pin: int | None = None
    active_high: bool = False
    debounce_s: float = 0.3


@dataclass(frozen=True)
class LedConfig:
    pin: int | None = 22
    active_high: bool = True
    buzzer_pin: int | None = None


@dataclass(frozen=True)
class SensorConfig:
    name: str = "mat"
    kind: str = "ds18b20"  # ds18b20 | ntc
    device_id: str = ""
    channel: int = 0
    beta: float = 3950.0
    r25_ohm: float = 10000.0
    series_ohm: float = 10000.0
    steinhart_hart: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class BoardConfig:
    port: str = "/dev/ttyACM0"
    baud: int = 115200


@dataclass(frozen=True)
class HardwareConfig:
    driver: str = "gpio"  # gpio | board
    pin_factory: str = "auto"
    poll_s: float = 1.0
    heater: HeaterConfig = field(default_factory=HeaterConfig)
    vibration: VibrationConfig = field(default_factory=VibrationConfig)
    power_pin: int | None = DEFAULT_POWER_PIN
    """The master relay feeding the heater: the second way to cut a welded heater relay."""
    power_active_high: bool = False
    power_omitted_because: str = ""
    """Set instead of a power relay: the hardware that cuts the element on its own."""
    button: ButtonConfig = field(default_factory=ButtonConfig)
    led: LedConfig = field(default_factory=LedConfig)
    occupancy: OccupancyConfig = field(default_factory=OccupancyConfig)
    sensors: tuple[SensorConfig, ...] = (SensorConfig(), SensorConfig(name="mat2"))
    board: BoardConfig = field(default_factory=BoardConfig)


@dataclass(frozen=True)
class BrokerAddress:
    """One broker of `[mqtt] hosts`, shown as the config writes it (IPv6 in brackets)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


HOST_ORDERS = ("in_order", "random")


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = False
    host: str = "localhost"
    port: int = 1883
    hosts: tuple[BrokerAddress, ...] = ()
    """Several brokers (the nodes of one cluster) instead of `host`; `port` is their default."""
    host_order: str = "in_order"  # in_order | random
    client_id: str = ""
    keepalive_s: int = 30
    username: str | None = None
    password: str | None = None
    password_file: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    base_topic: str = "matpi"
    discovery: bool = True
    discovery_prefix: str = "homeassistant"

    @property
    def brokers(self) -> tuple[BrokerAddress, ...]:
        """Every broker to try, in the configured order: `hosts`, or `host` alone."""
        return self.hosts or (BrokerAddress(self.host, self.port),)


@dataclass(frozen=True)
class WebConfig:
    """The mat's own page. Off unless a config turns it on: an update must not open a port."""

    enabled: bool = False
    listen: str = "0.0.0.0"
    port: int = 8080
    password_file: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    """Host names beyond the home-network ones the page answers to (remote.web.security)."""


@dataclass(frozen=True)
class Config:
    """Everything a mat is configured with; defaults run the simulator."""

    source: str = "<defaults>"
    device: DeviceConfig = field(default_factory=DeviceConfig)
    rules: Rules = field(default_factory=Rules)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    web: WebConfig = field(default_factory=WebConfig)
