"""Reads a TOML config into `settings`' dataclasses, every problem reported.

Unknown tables and keys are errors, because a misspelt key would otherwise
silently fall back to a default and could drop a guard. Each problem names the
file, the key, the value and what is allowed; all of them are collected before
`ConfigError` is raised, so one run of `matpi check-config` lists them all.

One reader per table, in the file's order, so that every check on a key is
found next to the key it checks; the network's tables ([mqtt], [web]) are
read in `network`. Just over 400 lines for that reason: the readers of the mat's own
tables stay together, in the file's order.
"""

import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from matpi.config.network import mqtt_table, web_table
from matpi.config.reader import Table, suggest
from matpi.config.settings import (
    DEFAULT_HEATER_PIN,
    DEFAULT_POWER_PIN,
    PIN_FACTORIES,
    BoardConfig,
    ButtonConfig,
    Config,
    DeviceConfig,
    HardwareConfig,
    HeaterConfig,
    LedConfig,
    OccupancyConfig,
    SensorConfig,
    VibrationConfig,
)
from matpi.core import limits
from matpi.core.errors import ConfigError
from matpi.core.padmodel import PadModel
from matpi.core.patterns import (
    DEFAULT_BREATHS_PER_MIN,
    MAX_BREATHS_PER_MIN,
    MIN_BREATHS_PER_MIN,
    Pattern,
)
from matpi.core.programs import BUILTIN_PROGRAMS, HeatLevel, Program
from matpi.core.rules import (
    BOUNDS,
    PAD_BOUNDS,
    RELAY_MIN_TIME_S,
    SETPOINT_LOW_C,
    CeilingError,
    Rules,
)


def load_config(path: Path) -> Config:
    """Read and check a config file.

    Raises:
        ConfigError: with every problem found, each naming file, key, value and bound.
    """
    name = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{name}: not valid TOML: {exc}"]) from exc
    return parse_config(data, name)


SECTIONS = ("device", "hardware", "heater", "vibration", "power", "button", "led", "occupancy",
            "sensors", "board", "heat", "pad", "limits", "session", "programs", "mqtt", "web")


def parse_config(data: dict[str, Any], file: str) -> Config:
    problems: list[str] = []
    for section in data:
        if section not in SECTIONS:
            hint = suggest(section, SECTIONS).replace("mean ", "mean [").rstrip("?")
            problems.append(f"{file}: [{section}]: unknown section{hint}{']?' if hint else ''}")

    tables: dict[str, Table] = {}

    def table(name: str) -> Table:
        return tables.setdefault(name, Table(file, name, data.get(name, {}), problems))

    device = _device(table("device"))
    hardware = _hardware(data, table, file, problems)
    control = _heater_control(table("heater"))
    table("heater").finish()
    control["pad"] = _pad(table("pad"))
    control["vacated_grace_s"] = _bounded(table("occupancy"), "grace_s", 60.0,
                                          field="vacated_grace_s",
                                          why="a session waits at most this long, unheated, "
                                              "for its person to lie back down")
    table("occupancy").finish()
    rules = _rules(table("limits"), table("heat"), table("session"), data.get("programs", {}),
                   hardware, control, file, problems)
    mqtt = mqtt_table(table("mqtt"), device)
    web = web_table(table("web"))
    if problems:
        raise ConfigError(problems)
    assert rules is not None
    return Config(source=file, device=device, rules=rules, hardware=hardware, mqtt=mqtt, web=web)


def _device(t: Table) -> DeviceConfig:
    device_id = t.string("id", DeviceConfig.id)
    if not device_id or not all(c.isalnum() or c in "_-" for c in device_id):
        t.problem("id", device_id, "must be letters, digits, _ or - (it is part of MQTT topics)")
    config = DeviceConfig(id=device_id, name=t.string("name", DeviceConfig.name))
    t.finish()
    return config


def _hardware(
    data: dict[str, Any], table: Callable[[str], Table], file: str, problems: list[str]
) -> HardwareConfig:
    hw = table("hardware")
    driver = hw.string("driver", "gpio", choices=("gpio", "board"))
    pin_factory = hw.string("pin_factory", "auto", choices=PIN_FACTORIES)
    poll_s = hw.number("poll_s", 1.0, low=0.25, high=limits.MAX_POLL_S,
                       high_why="a reading must arrive well inside the 3 s stale limit")
    hw.finish()

    h = table("heater")
    heater = HeaterConfig(pin=h.pin("pin", DEFAULT_HEATER_PIN) or 0,
                          active_high=h.boolean("active_high", False))
    v = table("vibration")
    vibration = VibrationConfig(
        kind=v.string("kind", "pwm", choices=("pwm", "relay", "none")),
        pin=v.pin("pin", 18),
        active_high=v.boolean("active_high", True),
        frequency_hz=v.number("frequency_hz", 100.0, low=1.0, high=20000.0),
        min_toggle_s=v.number("min_toggle_s", 2.0, low=0.5, high=60.0),
    )
    p = table("power")
    omitted_because = p.string("omitted_because", "").strip()
    # The mat board's own dead-man and trip cut its SSR; a Pi-side power relay is optional there.
    power_pin = p.pin("pin", None if omitted_because or driver == "board" else DEFAULT_POWER_PIN)
    power_active_high = p.boolean("active_high", False)
    if omitted_because and p.has("pin"):
        p.problem("omitted_because", omitted_because, "set either pin (a power relay) or "
                  "omitted_because (no power relay), not both")
    elif omitted_because and driver == "gpio" and len(omitted_because) < 12:
        p.problem("omitted_because", omitted_because, "name the hardware that cuts the heater "
                  "when its relay welds, e.g. \"72 °C non-resettable thermal fuse in series "
                  "with the element, and an SSR with its own over-temperature cut-out\"")
    b = table("button")
    button = ButtonConfig(
        pin=b.pin("pin", 27),
        pull_up=b.boolean("pull_up", True),
        bounce_s=b.number("bounce_ms", 50.0, low=0.0, high=500.0) / 1000.0,
        hold_s=b.number("hold_s", 2.0, low=0.5, high=10.0),
        double_press_s=b.number("double_press_s", 0.35, low=0.1, high=1.0),
    )
    le = table("led")
    led = LedConfig(pin=le.pin("pin", 22), active_high=le.boolean("active_high", True),
                    buzzer_pin=le.pin("buzzer_pin", None))
    oc = table("occupancy")
    occupancy = OccupancyConfig(
        pin=oc.pin("pin", None), active_high=oc.boolean("active_high", False),
        debounce_s=oc.number("debounce_ms", 300.0, low=20.0, high=2000.0,
                             high_why="leaving must pause the heat within seconds") / 1000.0)
    bo = table("board")
    board = BoardConfig(port=bo.string("port", "/dev/ttyACM0"),
                        baud=bo.integer("baud", 115200, low=9600, high=1000000))
    sensors = _sensors(data.get("sensors", [{}, {}]), file, problems,
                       first_on_pi=0 if driver == "gpio" else 1)
    for t in (v, p, b, le, bo):
        t.finish()
    hardware = HardwareConfig(
        driver=driver, pin_factory=pin_factory, poll_s=poll_s, heater=heater,
        vibration=vibration, power_pin=power_pin, power_active_high=power_active_high,
        power_omitted_because=omitted_because, button=button, led=led, occupancy=occupancy,
        sensors=sensors, board=board,
    )
    _check_pins_unique(hardware, file, problems)
    return hardware


NTC_CALIBRATION = ("r25_ohm", "series_ohm")
"""An NTC's numbers that have no safe default: a wrong one shifts every reading, and the
same default in both sensors would shift both alike, where heat-follows-the-hotter cannot
see it. Each Pi-side NTC states them (and beta or steinhart_hart) from its datasheet."""


def _sensors(
    raw: Any, file: str, problems: list[str], *, first_on_pi: int
) -> tuple[SensorConfig, ...]:
    """The two sensors; those from index `first_on_pi` on are read by the Pi itself."""
    if not isinstance(raw, list) or len(raw) != 2:
        count = len(raw) if isinstance(raw, list) else raw
        problems.append(f"{file}: [[sensors]]: {count} given, two [[sensors]] tables are needed "
                        "(heat follows the hotter sensor, so one that reads low cannot overheat "
                        "the mat; see docs/SAFETY.md)")
        return HardwareConfig.sensors
    sensors = []
    for index, item in enumerate(raw):
        t = Table(file, f"sensors #{index + 1}", item, problems)
        kind = t.string("kind", "ds18b20", choices=("ds18b20", "ntc"))
        coefficients = t.raw("steinhart_hart")
        sh: tuple[float, float, float] | None = None
        if coefficients is not None:
            if (isinstance(coefficients, list) and len(coefficients) == 3
                    and all(isinstance(c, int | float) for c in coefficients)):
                sh = (float(coefficients[0]), float(coefficients[1]), float(coefficients[2]))
            else:
                t.problem("steinhart_hart", coefficients, "must be three numbers [A, B, C]")
        sensor = SensorConfig(
            name=t.string("name", "mat" if index == 0 else f"mat{index + 1}"),
            kind=kind,
            device_id=t.string("device_id", "").lower(),
            channel=t.integer("channel", 0, low=0, high=7),
            beta=t.number("beta", 3950.0, low=1000.0, high=10000.0),
            r25_ohm=t.number("r25_ohm", 10000.0, low=100.0, high=1e6),
            series_ohm=t.number("series_ohm", 10000.0, low=100.0, high=1e6),
            steinhart_hart=sh,
        )
        if kind == "ntc" and index >= first_on_pi:
            for key in (*NTC_CALIBRATION, "beta"):
                if not t.has(key) and not (key == "beta" and sh is not None):
                    t.problem(key, "(left out)", "an NTC needs it from its datasheet: a guessed "
                              "value shifts every reading (beta, or steinhart_hart instead)")
        if kind == "ds18b20" and sensor.device_id and not sensor.device_id.startswith("28-"):
            t.problem("device_id", sensor.device_id, "must be the DS18B20's id under "
                      "/sys/bus/w1/devices, like \"28-0316a2795aff\"")
        t.finish()
        sensors.append(sensor)
    names = [s.name for s in sensors]
    if len(set(names)) != len(names):
        problems.append(f"{file}: [[sensors]] name: each sensor needs its own name, got {names}")
    ids = [s.device_id for s in sensors if s.kind == "ds18b20" and s.device_id]
    if len(set(ids)) != len(ids):
        problems.append(f"{file}: [[sensors]] device_id = {ids[0]}: two sensors would read the "
                        "same DS18B20; give each its own device_id, or a second sensor only "
                        "checks itself")
    channels = [s.channel for s in sensors[first_on_pi:] if s.kind == "ntc"]
    if len(set(channels)) != len(channels):
        problems.append(f"{file}: [[sensors]] channel = {channels[0]}: two NTC sensors on the "
                        "same MCP3008 input; give each its own channel")
    return tuple(sensors)


def _check_pins_unique(hw: HardwareConfig, file: str, problems: list[str]) -> None:
    """No two parts on one Pi pin; with the mat board, heater and motor are on the board."""
    used: dict[int, str] = {}
    on_pi = hw.driver == "gpio"
    pi_sensors = hw.sensors if on_pi else hw.sensors[1:]
    pins = {
        "[heater] pin": hw.heater.pin if on_pi else None,
        "[vibration] pin": hw.vibration.pin if on_pi and hw.vibration.kind != "none" else None,
        "[power] pin": hw.power_pin,
        "[button] pin": hw.button.pin,
        "[led] pin": hw.led.pin,
        "[led] buzzer_pin": hw.led.buzzer_pin,
        "[occupancy] pin": hw.occupancy.pin,
    }
    if any(s.kind == "ntc" for s in pi_sensors):
        pins.update({"MCP3008 SPI CE0": 8, "MCP3008 SPI MISO": 9, "MCP3008 SPI MOSI": 10,
                     "MCP3008 SPI SCLK": 11})
    if any(s.kind == "ds18b20" for s in pi_sensors):
        pins["1-wire data (GPIO4, w1-gpio default)"] = 4
    for key, pin in pins.items():
        if pin is None:
            continue
        if pin in used:
            problems.append(f"{file}: {key} = {pin}: GPIO{pin} is already used by {used[pin]}")
        else:
            used[pin] = key


def _bounded(t: Table, key: str, default: float, *, field: str = "", low: float | None = None,
             why: str = "") -> float:
    """A number within the bounds `Rules` enforces for `field` (one source of truth); the
    field is named like the key unless told."""
    bound_low, bound_high = BOUNDS[field or key]
    return t.number(key, default, low=bound_low if low is None else low, high=bound_high,
                    high_why=why)


def _heater_control(h: Table) -> dict[str, Any]:
    """How the heater is switched and what its supervision expects of it (Rules fields)."""
    kind = h.string("kind", "relay", choices=("relay", "ssr"))
    shortest = RELAY_MIN_TIME_S if kind == "relay" else None
    ceiling = "matpi ceiling: not-heating check"
    return {
        "heater_kind": kind,
        "min_on_s": _bounded(h, "min_on_s", 30.0, low=shortest),
        "min_off_s": _bounded(h, "min_off_s", 30.0, low=shortest),
        "hysteresis_c": _bounded(h, "hysteresis_c", 0.5),
        "ssr_window_s": _bounded(h, "window_s", 10.0, field="ssr_window_s"),
        "ssr_band_c": _bounded(h, "band_c", 2.0, field="ssr_band_c"),
        "check_gain_c": _bounded(h, "check_gain_c", 1.0),
        "check_window_s": _bounded(h, "check_window_s", 60.0, why=ceiling),
        "check_band_c": _bounded(h, "check_band_c", 0.0),
        "check_max_error_cs": _bounded(h, "check_max_error_cs", 120.0,
                                       why=ceiling),
        "runaway_settle_s": _bounded(h, "runaway_settle_s", 30.0),
        "runaway_window_s": _bounded(h, "runaway_window_s", 60.0),
        "runaway_rise_c": _bounded(h, "runaway_rise_c", 1.0,
                                   why="matpi ceiling: runaway check"),
    }


def _pad(t: Table) -> PadModel:
    """The pad's thermal model; the defaults are the documented 100 W pad."""
    defaults = PadModel()
    values = {name: t.number(name, getattr(defaults, name), low=low, high=high)
              for name, (low, high) in PAD_BOUNDS.items()}
    t.finish()
    return PadModel(**values)


def _rules(
    lim: Table, heat: Table, session: Table, programs_raw: Any, hw: HardwareConfig,
    control: dict[str, Any], file: str, problems: list[str],
) -> Rules | None:
    ceiling = "matpi ceiling"
    session_max = _bounded(lim, "session_max_min", limits.MAX_SESSION_MIN,
                           why=f"{ceiling}: no session over {limits.MAX_SESSION_MIN:g} min")
    trip_c = _bounded(lim, "trip_c", limits.TRIP_C,
                      why=f"{ceiling}: over-temperature trip")
    setpoint_high = min(limits.MAX_SETPOINT_C, trip_c - 1.0)
    values = {
        "dose_max_cem43": _bounded(lim, "dose_max_cem43",
                                   limits.MAX_DOSE_CEM43,
                                   why=f"{ceiling}: thermal dose per session"),
        "daily_dose_max_cem43": _bounded(lim, "daily_dose_max_cem43",
                                         limits.MAX_DAILY_DOSE_CEM43,
                                         why=f"{ceiling}: thermal dose per day"),
        "cooldown_min": _bounded(lim, "cooldown_min", 10.0),
        "daily_max_min": _bounded(lim, "daily_max_min", 60.0, low=1.0,
                                  why=f"{ceiling}: use per day"),
        "preheat_max_min": _bounded(lim, "preheat_max_min",
                                    limits.MAX_PREHEAT_MIN,
                                    why=f"{ceiling}: preheat of an empty mat"),
        "reset_below_c": _bounded(lim, "reset_below_c",
                                  limits.MAX_RESET_BELOW_C,
                                  why=f"{ceiling}: a fault clears only once the mat is cool"),
        **control,
    }
    lim.finish()
    setpoints = {
        level: heat.number(f"{level}_c", default, low=SETPOINT_LOW_C, high=setpoint_high,
                           high_why=f"{ceiling}: surface setpoint, and below trip_c")
        for level, default in ((HeatLevel.LOW, 37.0), (HeatLevel.MEDIUM, 39.0),
                               (HeatLevel.HIGH, 41.0))
    }
    heat.finish()
    if not setpoints[HeatLevel.LOW] <= setpoints[HeatLevel.MEDIUM] <= setpoints[HeatLevel.HIGH]:
        problems.append(f"{file}: [heat]: low_c <= medium_c <= high_c is required")
    programs = dict(BUILTIN_PROGRAMS)
    programs.update(_programs(programs_raw, session_max, file, problems))
    for program in list(programs.values()):
        if program.duration_min > session_max:
            programs[program.name] = _shortened(program, session_max)
    default_program = session.string("default_program", "beginner", choices=programs)
    if not session.boolean("remote_start_needs_press", True):
        session.problem("remote_start_needs_press", False, "must be true: a remote start only "
                        "preheats, and heat goes on only after a press at the mat (or leave "
                        "the key out)")
    session.finish()
    if problems:
        return None
    try:
        return Rules(
            session_max_min=session_max, trip_c=trip_c, setpoints_c=setpoints,
            sensors=tuple(s.name for s in hw.sensors), programs=programs,
            default_program=default_program,
            motor_kind="relay" if hw.vibration.kind == "relay" else "pwm",
            occupancy_sensor=hw.occupancy.pin is not None, **values,
        )
    except CeilingError as exc:
        problems.append(f"{file}: [heater] {exc}")
        return None


def _shortened(program: Program, session_max: float) -> Program:
    """A built-in longer than the configured session limit runs up to that limit."""
    return replace(program, duration_min=session_max,
                   max_duration_min=min(program.max_duration_min, session_max))


def _programs(raw: Any, session_max: float, file: str, problems: list[str]) -> dict[str, Program]:
    if not isinstance(raw, dict):
        problems.append(f"{file}: [programs] must hold tables like [programs.morning]")
        return {}
    programs = {}
    for name, item in raw.items():
        t = Table(file, f"programs.{name}", item, problems)
        why = (f"matpi ceiling: no session over {limits.MAX_SESSION_MIN:g} min"
               if session_max >= limits.MAX_SESSION_MIN else "[limits] session_max_min")
        programs[name] = Program(
            name=name,
            duration_min=t.number("duration_min", 10.0, low=1.0, high=session_max, high_why=why),
            heat=HeatLevel(t.string("heat", "low", choices=[h.value for h in HeatLevel])),
            pattern=Pattern(t.string("pattern", "steady", choices=[p.value for p in Pattern])),
            intensity_pct=t.number("intensity_pct", 50.0, low=0.0, high=100.0),
            breaths_per_min=_pace(t),
        )
        t.finish()
    return programs


def _pace(t: Table) -> float:
    """A program's breaths_per_min, with the whole range in the message."""
    pace = t.number("breaths_per_min", DEFAULT_BREATHS_PER_MIN)
    if not MIN_BREATHS_PER_MIN <= pace <= MAX_BREATHS_PER_MIN:
        t.problem("breaths_per_min", t.raw("breaths_per_min"),
                  f"must be {MIN_BREATHS_PER_MIN:g} to {MAX_BREATHS_PER_MIN:g} breaths a minute "
                  "(slow, paced breathing)")
        return DEFAULT_BREATHS_PER_MIN
    return pace
