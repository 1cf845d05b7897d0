"""Config loading: the example passes, and every wrong setting names file, key, value and bound."""

import subprocess
import sys
from pathlib import Path

import pytest

from matpi.config.load import load_config
from matpi.config.settings import Config
from matpi.core import limits
from matpi.core.errors import ConfigError
from matpi.core.patterns import Pattern
from matpi.core.programs import HeatLevel
from matpi.core.rules import CeilingError, Rules

EXAMPLE = Path(__file__).parent.parent / "config" / "matpi.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "matpi.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return caught.value.problems


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.hardware.heater.pin == 5 and not config.hardware.heater.active_high
    assert config.hardware.power_pin == 6 and not config.hardware.power_active_high
    assert config.rules.programs["morning"].heat is HeatLevel.MEDIUM
    assert config.rules.sensors == ("mat", "mat2")


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")).rules == Config().rules


def test_ninety_minute_program_names_key_and_ceiling(tmp_path: Path) -> None:
    found = problems(tmp_path, "[programs.long]\nduration_min = 90\n")
    assert found == [
        f"{tmp_path}/matpi.toml: [programs.long] duration_min = 90: "
        "must be at most 30 (matpi ceiling: no session over 30 min)"
    ]


@pytest.mark.parametrize("pace", [3.5, 9, 0])
def test_a_program_pace_out_of_range_names_file_key_value_and_range(tmp_path: Path,
                                                                   pace: float) -> None:
    found = problems(tmp_path, f"[programs.calm]\nbreaths_per_min = {pace}\n")
    assert found == [
        f"{tmp_path}/matpi.toml: [programs.calm] breaths_per_min = {pace}: "
        "must be 4 to 8 breaths a minute (slow, paced breathing)"
    ]


def test_a_program_pace_is_read_and_defaults_to_six(tmp_path: Path) -> None:
    rules = load_config(write(tmp_path, "[programs.calm]\npattern = \"breathe\"\n"
                                        "breaths_per_min = 4.5\n[programs.other]\n")).rules
    assert (rules.programs["calm"].pattern, rules.programs["calm"].breaths_per_min) == (
        Pattern.BREATHE, 4.5)
    assert rules.programs["other"].breaths_per_min == 6.0
    assert load_config(EXAMPLE).rules.programs["morning"].breaths_per_min == 6.0


@pytest.mark.parametrize(("kind", "motor_kind"), [("relay", "relay"), ("pwm", "pwm"),
                                                  ("none", "pwm")])
def test_a_relay_motor_makes_the_core_show_breathe_on_off(tmp_path: Path, kind: str,
                                                          motor_kind: str) -> None:
    pin = "" if kind == "none" else "\npin = 13"
    rules = load_config(write(tmp_path, f'[vibration]\nkind = "{kind}"{pin}\n')).rules
    assert rules.motor_kind == motor_kind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[limits]\nsession_max_min = 90", "[limits] session_max_min = 90: must be at most 30"),
        ("[limits]\ntrip_c = 50", "[limits] trip_c = 50: must be at most 45"),
        ("[limits]\ndose_max_cem43 = 20", "[limits] dose_max_cem43 = 20: must be at most 9"),
        ("[limits]\ncooldown_min = 1", "[limits] cooldown_min = 1: must be at least 5"),
        ("[limits]\ndaily_max_min = 500", "[limits] daily_max_min = 500: must be at most 120"),
        ("[heat]\nhigh_c = 55", "[heat] high_c = 55: must be at most 42"),
        ("[limits]\ntrip_c = 40\n[heat]\nhigh_c = 41", "[heat] high_c = 41: must be at most 39"),
        ("[limits]\nsession_max_min = 20\n[programs.x]\nduration_min = 25",
         "[programs.x] duration_min = 25: must be at most 20 ([limits] session_max_min)"),
    ],
)
def test_no_config_can_raise_a_ceiling(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(expected in p for p in found), found


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    found = problems(tmp_path, "[limits]\ntrip_celsius = 40\n")
    assert "[limits] trip_celsius: unknown key; did you mean trip_c?" in found[0]


def test_unknown_section_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    assert problems(tmp_path, "[heatr]\nlow_c = 36\n") == [
        f"{tmp_path}/matpi.toml: [heatr]: unknown section; did you mean [heater]?"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[heater]\npin = "17"', '[heater] pin = "17": must be a whole number'),
        ("[heater]\npin = 40", "[heater] pin = 40: must be at most 27"),
        ("[heater]\nactive_high = 1", "[heater] active_high = 1: must be true or false"),
        ('[hardware]\npin_factory = "pigpio"',
         '[hardware] pin_factory = "pigpio": must be one of auto, lgpio, rpigpio, mock'),
        ('[programs.x]\nheat = "hot"', '[programs.x] heat = "hot": must be one of off, low,'),
        ('[session]\ndefault_program = "sauna"', '[session] default_program = "sauna": must be'),
        ('[[sensors]]\nkind = "ds18b20"\ndevice_id = "10-abc"\n[[sensors]]\nname = "b"',
         '[sensors #1] device_id = "10-abc": must be the DS18B20'),
        ('[[sensors]]\nkind = "ds18b20"', "[[sensors]]: 1 given, two [[sensors]] tables are "
                                         "needed (heat follows the hotter sensor"),
        ('[device]\nid = "my mat"', '[device] id = "my mat": must be letters, digits'),
        ('[mqtt]\npassword = "a"\npassword_file = "/f"', "set password or password_file"),
        ("[limits]\ntrip_c = nan", "[limits] trip_c = nan: must be a number, not infinite or nan"),
        ('[mqtt]\nbase_topic = "home/#"', '[mqtt] base_topic = "home/#": must be a plain topic'),
    ],
)
def test_wrong_values_name_key_value_and_what_is_allowed(
    tmp_path: Path, text: str, expected: str
) -> None:
    found = problems(tmp_path, text)
    assert any(expected in p for p in found), found


def test_a_pin_used_twice_is_rejected(tmp_path: Path) -> None:
    found = problems(tmp_path, "[heater]\npin = 22\n")
    assert found == [f"{tmp_path}/matpi.toml: [led] pin = 22: GPIO22 is already used by "
                     "[heater] pin"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, "[limits]\ntrip_c = 99\ncooldown_min = 0\n[led]\npinn = 3\n")
    assert len(found) == 3


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    found = problems(tmp_path, "[limits\n")
    assert found[0].startswith(f"{tmp_path}/matpi.toml: not valid TOML")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_rules_refuse_a_raised_ceiling_even_without_config() -> None:
    with pytest.raises(CeilingError, match="session_max_min = 45"):
        Rules(session_max_min=45.0)
    with pytest.raises(CeilingError, match="cooldown_min"):
        Rules(cooldown_min=limits.MIN_COOLDOWN_MIN - 1)
    with pytest.raises(CeilingError, match="setpoint high"):
        Rules(setpoints_c={HeatLevel.LOW: 37.0, HeatLevel.MEDIUM: 39.0, HeatLevel.HIGH: 43.0})


def run_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "matpi", "check-config", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_check_config_command(tmp_path: Path) -> None:
    good = run_check(EXAMPLE)
    assert good.returncode == 0 and good.stdout.strip().endswith("OK")
    bad = write(tmp_path, EXAMPLE.read_text().replace("duration_min = 12", "duration_min = 90"))
    result = run_check(bad)
    assert result.returncode == 1
    assert "duration_min = 90: must be at most 30 (matpi ceiling" in result.stderr


# --- issue #13: what the safety case forbids, no config allows --------------------------


def test_a_relay_held_long_enough_to_overshoot_is_refused_naming_both_keys(
    tmp_path: Path,
) -> None:
    """Hazard 3: min_on_s = 300 with hysteresis 3 °C overshot to 45 °C (9.5 CEM43)."""
    [problem] = problems(tmp_path, "[heater]\nmin_on_s = 300\nhysteresis_c = 3.0\n")
    assert "min_on_s = 300 with hysteresis_c = 3" in problem
    assert "at most 1 °C" in problem and "shorter min_on_s" in problem


def test_an_ssr_window_that_overshoots_is_refused_naming_both_keys(tmp_path: Path) -> None:
    text = '[heater]\nkind = "ssr"\nwindow_s = 30\nband_c = 0.5\n[heat]\nlow_c = 25.0\n'
    [problem] = problems(tmp_path, text)
    assert "window_s = 30 with band_c = 0.5 overshoots the 25 °C setpoint" in problem
    assert "at most 1 °C" in problem


def test_the_default_heater_settings_stay_within_one_degree_of_every_setpoint() -> None:
    rules = Rules()
    assert all(rules.worst_overshoot_c(c) <= 1.0 for c in rules.setpoints_c.values())


@pytest.mark.parametrize(("text", "expected"), [
    ("[session]\nremote_start_needs_press = false\n", "remote_start_needs_press = false: must "
                                                      "be true"),
    ("[limits]\npreheat_max_min = 15\n", "preheat_max_min = 15: must be at most 10"),
    ("[limits]\nreset_below_c = 40\n", "reset_below_c = 40: must be at most 35"),
    ("[limits]\ndaily_dose_max_cem43 = 20\n", "daily_dose_max_cem43 = 20: must be at most 9"),
    ("[pad]\nheater_w = 0\n", "heater_w = 0: must be at least 5"),
])
def test_settings_the_safety_case_forbids_are_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Hazard 11: remote start without a press, a 15 min preheat, a reset at 40 °C."""
    assert any(expected in p for p in problems(tmp_path, text)), problems(tmp_path, text)


def test_the_gpio_path_has_a_power_relay_unless_told_what_cuts_the_element(
    tmp_path: Path,
) -> None:
    """Hazard 2: a welded heater relay needs a second, independent way to cut the element."""
    assert load_config(write(tmp_path, "")).hardware.power_pin == 6
    [problem] = problems(tmp_path, '[power]\nomitted_because = "fuse"\n')
    assert "omitted_because" in problem and "name the hardware" in problem
    [problem] = problems(tmp_path, '[power]\npin = 6\nomitted_because = "a 70 °C thermal fuse"\n')
    assert "not both" in problem
    hw = load_config(write(tmp_path, '[power]\nomitted_because = "SSR with a 70 °C thermal fuse '
                                     'in series with the element"\n')).hardware
    assert hw.power_pin is None and "thermal fuse" in hw.power_omitted_because


def test_two_sensors_on_one_ds18b20_are_refused(tmp_path: Path) -> None:
    """Hazard 14: a second sensor reading the same device checks nothing."""
    text = ('[[sensors]]\nname = "a"\ndevice_id = "28-0000000001"\n'
            '[[sensors]]\nname = "b"\ndevice_id = "28-0000000001"\n')
    [problem] = problems(tmp_path, text)
    assert "device_id = 28-0000000001" in problem and "same DS18B20" in problem


def test_board_path_pins_on_the_pi_are_checked_too(tmp_path: Path) -> None:
    text = '[hardware]\ndriver = "board"\n[button]\npin = 22\n'
    [problem] = problems(tmp_path, text)
    assert "[led] pin = 22: GPIO22 is already used by [button] pin" in problem
    load_config(write(tmp_path, '[hardware]\ndriver = "board"\n[heater]\npin = 22\n'))


@pytest.mark.parametrize("field", ["hysteresis_c", "min_on_s", "check_window_s", "trip_c",
                                   "daily_max_min", "cooldown_min", "reset_below_c"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_rules_check_every_limit_themselves(field: str, value: float) -> None:
    """Hazard 9: Rules accepted NaN; the bounds lived only in config.py."""
    with pytest.raises(CeilingError, match=field):
        Rules(**{field: value})


def test_the_default_relay_pins_are_pulled_high_at_power_on() -> None:
    """Hazard 15: GPIO 0-8 boot pulled high, which keeps an active-low relay board off."""
    hw = Config().hardware
    for pin, active_high in ((hw.heater.pin, hw.heater.active_high),
                             (hw.power_pin, hw.power_active_high)):
        assert pin is not None and 0 <= pin <= 8 and pin not in (0, 1, 2, 3, 4, 7, 8)
        assert not active_high


def test_an_ntc_on_the_pi_states_its_calibration(tmp_path: Path) -> None:
    """Second review: two NTCs left at the default beta read 2 °C low together, which
    heat-follows-the-hotter cannot see; no default, so both must say."""
    text = ('[[sensors]]\nkind = "ntc"\nchannel = 0\n'
            '[[sensors]]\nname = "b"\nkind = "ntc"\nchannel = 1\nbeta = 3435\n'
            'r25_ohm = 10000\nseries_ohm = 10000\n')
    found = problems(tmp_path, text)
    assert len(found) == 3
    assert all("[sensors #1]" in p and "needs it from its datasheet" in p for p in found)
    assert {p.split("] ")[1].split(" =")[0] for p in found} == {"r25_ohm", "series_ohm", "beta"}


def test_the_board_ntc_and_a_pi_ntc_may_share_a_channel_number(tmp_path: Path) -> None:
    """The board's NTC is on the board, not on the Pi's MCP3008."""
    text = ('[hardware]\ndriver = "board"\n[[sensors]]\nkind = "ntc"\n'
            '[[sensors]]\nname = "pi"\nkind = "ntc"\nchannel = 0\nbeta = 3435\n'
            'r25_ohm = 10000\nseries_ohm = 10000\n')
    assert load_config(write(tmp_path, text)).rules.sensors == ("mat", "pi")


def test_a_ds18b20_id_is_taken_in_any_case(tmp_path: Path) -> None:
    text = ('[[sensors]]\ndevice_id = "28-0316A2795AFF"\n'
            '[[sensors]]\nname = "b"\ndevice_id = "28-0316a2795aff"\n')
    assert "same DS18B20" in problems(tmp_path, text)[0]
