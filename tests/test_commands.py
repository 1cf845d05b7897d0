"""Remote commands: what each request becomes, and every way a bad one is refused."""

import math

import pytest

from matpi.core.events import Adjust, Event, SelectProgram, Source, Start, Stop
from matpi.core.patterns import Pattern
from matpi.core.programs import BUILTIN_PROGRAMS, HeatLevel, Program
from matpi.core.rules import Rules
from matpi.remote.commands import (
    MAX_PAYLOAD_BYTES,
    Command,
    Payload,
    Rejection,
    RemoteCommands,
    StartLimiter,
)

REMOTE = Source.REMOTE


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def commands(clock: FakeClock) -> RemoteCommands:
    return RemoteCommands(Rules(), limiter=StartLimiter(clock=clock))


def accepted(outcome: list[Event] | Rejection) -> list[Event]:
    assert not isinstance(outcome, Rejection), outcome
    return outcome


def rejected(outcome: list[Event] | Rejection) -> Rejection:
    assert isinstance(outcome, Rejection), outcome
    return outcome


@pytest.mark.parametrize(("command", "payload", "events"), [
    ("session", b"ON", [Start(REMOTE)]),
    ("session", b"OFF", [Stop(REMOTE)]),
    ("session", True, [Start(REMOTE)]),
    ("start", b"", [Start(REMOTE)]),
    ("start", b"PRESS", [Start(REMOTE)]),
    ("start", b'{"program": "back"}', [Start(REMOTE, "back")]),
    ("start", b'{"program": "neck", "duration_min": 12}', [Start(REMOTE, "neck", 12.0)]),
    ("start", {"duration_min": 7.5}, [Start(REMOTE, None, 7.5)]),
    ("start", None, [Start(REMOTE)]),
    ("stop", b"", [Stop(REMOTE)]),
    ("stop", b"PRESS", [Stop(REMOTE)]),
    ("program", b"evening", [SelectProgram("evening", REMOTE)]),
    ("program", " deep\n", [SelectProgram("deep", REMOTE)]),
    ("heat", b"off", [Adjust(REMOTE, heat=HeatLevel.OFF)]),
    ("heat", "high", [Adjust(REMOTE, heat=HeatLevel.HIGH)]),
    ("pattern", b"wave", [Adjust(REMOTE, pattern=Pattern.WAVE)]),
    ("intensity", b"0", [Adjust(REMOTE, intensity_pct=0.0)]),
    ("intensity", b"100", [Adjust(REMOTE, intensity_pct=100.0)]),
    ("intensity", b"42.5", [Adjust(REMOTE, intensity_pct=42.5)]),
    ("intensity", 70, [Adjust(REMOTE, intensity_pct=70.0)]),
    ("breaths", b"4", [Adjust(REMOTE, breaths_per_min=4.0)]),
    ("breaths", b"6.5", [Adjust(REMOTE, breaths_per_min=6.5)]),
    ("breaths", 8, [Adjust(REMOTE, breaths_per_min=8.0)]),
    ("pattern", b"breathe", [Adjust(REMOTE, pattern=Pattern.BREATHE)]),
    ("duration", b"1", [Adjust(REMOTE, duration_min=1.0)]),
    ("duration", b"30", [Adjust(REMOTE, duration_min=30.0)]),
    ("duration", 12.0, [Adjust(REMOTE, duration_min=12.0)]),
])
def test_a_good_request_becomes_remote_events(
    commands: RemoteCommands, command: str, payload: Payload, events: list[Event]
) -> None:
    assert accepted(commands.handle(command, payload)) == events


# (command, payload, field named in the rejection, words of what is allowed)
BAD_REQUESTS: list[tuple[str, Payload, str, str]] = [
    ("launch", b"ON", "command", "one of: session, start, stop"),
    ("session", b"on please", "session", "ON or OFF"),
    ("session", b"1", "session", "ON or OFF"),
    ("session", 1, "session", "text"),
    ("start", b"GO", "start", '"program": "back"'),
    ("start", b"[1, 2]", "start", "an object"),
    ("start", b'{"program": "sauna"}', "program", "one of: beginner, neck, back"),
    ("start", b'{"program": 3}', "program", "text"),
    ("start", b'{"duration_min": 45}', "duration_min", "a number from 1 to 30"),
    ("start", b'{"duration_min": "ten"}', "duration_min", "a number from 1 to 30"),
    ("start", b'{"duration_min": true}', "duration_min", "a number from 1 to 30"),
    ("start", b'{"heat": "high"}', "heat", "allowed keys: program, duration_min"),
    ("start", b'{"program": "back", "trip_c": 60}', "trip_c", "unknown key"),
    ("stop", b"NOW", "stop", "empty or PRESS"),
    ("program", b"sauna", "program", "one of: beginner, neck, back, evening, deep"),
    ("program", b"", "program", "one of:"),
    ("program", 5, "program", "text"),
    ("heat", b"extreme", "heat", "one of: off, low, medium, high"),
    ("heat", b"HIGH", "heat", "one of: off, low, medium, high"),
    ("heat", b"\xff\xfe", "heat", "UTF-8 text"),
    ("pattern", b"earthquake", "pattern", "one of: off, steady, pulse, wave, slow"),
    ("intensity", b"150", "intensity_pct", "a number from 0 to 100"),
    ("intensity", b"-1", "intensity_pct", "a number from 0 to 100"),
    ("intensity", b"nan", "intensity_pct", "a number from 0 to 100"),
    ("intensity", b"inf", "intensity_pct", "a number from 0 to 100"),
    ("intensity", b"1e2", "intensity_pct", "a number from 0 to 100"),
    ("intensity", b"5_0", "intensity_pct", "a number from 0 to 100"),
    ("intensity", b"fifty", "intensity_pct", "a number from 0 to 100"),
    ("intensity", b"", "intensity_pct", "a number from 0 to 100"),
    ("intensity", b'{"value": 50}', "intensity_pct", "a number from 0 to 100"),
    ("intensity", True, "intensity_pct", "a number from 0 to 100"),
    ("intensity", math.nan, "intensity_pct", "a number from 0 to 100"),
    ("intensity", 10**400, "intensity_pct", "a number from 0 to 100"),
    ("intensity", [50], "intensity_pct", "a number from 0 to 100"),
    ("intensity", None, "intensity_pct", "a number from 0 to 100"),
    ("breaths", b"3.5", "breaths_per_min", "a number from 4 to 8"),
    ("breaths", b"9", "breaths_per_min", "a number from 4 to 8"),
    ("breaths", b"nan", "breaths_per_min", "a number from 4 to 8"),
    ("breaths", b"six", "breaths_per_min", "a number from 4 to 8"),
    ("duration", b"0", "duration_min", "a number from 1 to 30"),
    ("duration", b"31", "duration_min", "a number from 1 to 30"),
    ("duration", b"999999999999999999999999", "duration_min", "a number from 1 to 30"),
    ("heat", b"x" * (MAX_PAYLOAD_BYTES + 1), "payload", f"at most {MAX_PAYLOAD_BYTES} bytes"),
    ("start", {"program": "x" * 2000}, "payload", f"at most {MAX_PAYLOAD_BYTES} bytes"),
]


@pytest.mark.parametrize(("command", "payload", "field", "allowed"), BAD_REQUESTS)
def test_a_bad_request_is_rejected_naming_field_value_and_what_is_allowed(
    commands: RemoteCommands, command: str, payload: Payload, field: str, allowed: str
) -> None:
    rejection = rejected(commands.handle(command, payload))
    assert rejection.field == field
    assert allowed in rejection.allowed
    assert rejection.value
    assert len(rejection.value) <= 65
    assert rejection.message == f"{rejection.command}: {field} = {rejection.value}: " \
                                f"{rejection.allowed}"
    assert set(rejection.as_dict()) == {"command", "field", "value", "allowed", "message"}


def test_the_rejection_echoes_the_value_as_sent(commands: RemoteCommands) -> None:
    rejection = rejected(commands.handle("intensity", b"170"))
    assert rejection.as_dict() == {
        "command": "intensity", "field": "intensity_pct", "value": "170",
        "allowed": "a number from 0 to 100",
        "message": "intensity: intensity_pct = 170: a number from 0 to 100",
    }


def test_an_oversized_payload_is_measured_in_bytes(commands: RemoteCommands) -> None:
    rejection = rejected(commands.handle("heat", "é" * 600))  # 1200 bytes in UTF-8
    assert (rejection.field, rejection.value) == ("payload", "1200 bytes")


@pytest.mark.parametrize("command", list(Command))
def test_a_retained_command_is_refused_whatever_it_says(
    commands: RemoteCommands, command: Command
) -> None:
    rejection = rejected(commands.handle(command, b"ON", retained=True))
    assert rejection.field == "retain"
    assert "without retain" in rejection.allowed


def test_ranges_follow_the_rules_of_this_mat() -> None:
    programs = dict(BUILTIN_PROGRAMS)
    programs = {name: p for name, p in programs.items() if p.duration_min <= 20}
    programs["morning"] = Program("morning", 8.0, HeatLevel.LOW, Pattern.PULSE, 40.0)
    rules = Rules(session_max_min=20.0, programs=programs)
    commands = RemoteCommands(rules)
    assert rejected(commands.handle("duration", b"25")).allowed == "a number from 1 to 20"
    assert accepted(commands.handle("duration", b"20"))
    assert accepted(commands.handle("program", b"morning")) == [
        SelectProgram("morning", REMOTE)]
    assert "morning" in rejected(commands.handle("program", b"deep")).allowed


def test_starts_are_limited_to_six_a_minute_and_a_stop_always_passes(
    commands: RemoteCommands, clock: FakeClock
) -> None:
    for _ in range(6):
        assert accepted(commands.handle("session", b"ON")) == [Start(REMOTE)]
        clock.now_s += 1.0
        assert accepted(commands.handle("stop", b"")) == [Stop(REMOTE)]
        clock.now_s += 1.0
    rejection = rejected(commands.handle("start", b""))
    assert rejection.field == "rate"
    assert rejection.allowed == "at most 6 in 60 s; try again in 48 s"  # first one at -12 s
    assert rejected(commands.handle("session", b"ON")).field == "rate"
    assert accepted(commands.handle("session", b"OFF")) == [Stop(REMOTE)]
    assert accepted(commands.handle("intensity", b"50"))  # settings are not limited
    clock.now_s += 60.0
    assert accepted(commands.handle("start", b"")) == [Start(REMOTE)]


def test_a_stream_of_stops_never_uses_up_the_starts(
    commands: RemoteCommands, clock: FakeClock
) -> None:
    """Before: stops counted towards the limit, so 100 stops (a looping automation, anyone)
    made every later remote start "rate limited"."""
    for _ in range(100):
        assert accepted(commands.handle("stop", b"")) == [Stop(REMOTE)]
        assert accepted(commands.handle("session", b"OFF")) == [Stop(REMOTE)]
    assert accepted(commands.handle("start", b"")) == [Start(REMOTE)]


def test_a_bad_start_does_not_use_up_the_rate(
    commands: RemoteCommands, clock: FakeClock
) -> None:
    for _ in range(20):
        rejected(commands.handle("start", b'{"program": "sauna"}'))
    assert accepted(commands.handle("start", b""))


def test_a_shared_limiter_counts_every_edge(clock: FakeClock) -> None:
    limiter = StartLimiter(max_per_window=2, window_s=10.0, clock=clock)
    mqtt, web = RemoteCommands(Rules(), limiter=limiter), RemoteCommands(Rules(), limiter=limiter)
    accepted(mqtt.handle("start", b""))
    accepted(web.handle("start", None))
    assert rejected(mqtt.handle("start", b"")).field == "rate"


def test_a_long_bad_value_is_cut_short_in_the_reply(commands: RemoteCommands) -> None:
    rejection = rejected(commands.handle("program", b"a" * 500))
    assert rejection.value == "a" * 64 + "…"


def test_lenient_parsing_is_what_the_readme_says(commands: RemoteCommands) -> None:
    """README, MQTT: spaces around a payload and leading zeros are accepted; names are not
    folded to lower case."""
    assert accepted(commands.handle("intensity", b" 030")) == [
        Adjust(REMOTE, intensity_pct=30.0)]
    assert accepted(commands.handle("heat", b" high ")) == [Adjust(REMOTE, heat=HeatLevel.HIGH)]
    assert rejected(commands.handle("heat", b"HIGH")).field == "heat"
