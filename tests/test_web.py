"""The mat's page and its JSON API against a real server on a free loopback port.

A simulated mat runs in this process with its controller thread and the web
server thread, exactly as the daemon assembles them; requests are plain
http.client calls (no client library between the test and the server) and
the event stream is read line by line. Every wait is for a condition with a
deadline; no sleep stands in for an assertion.
"""

import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest

from broker import Broker, needs_mosquitto
from conftest import wait_for
from matpi.config.load import load_config
from matpi.config.settings import Config, MqttConfig, WebConfig
from matpi.core.errors import ConfigError
from matpi.core.events import DriverFault, Press, Snapshot, State
from matpi.core.patterns import INHALE_SHARE
from matpi.core.rules import Rules
from matpi.remote.web.live import MAX_SUBSCRIBERS
from matpi.remote.web.logins import LoginLimiter
from matpi.remote.web.security import (
    PasswordError,
    PasswordFile,
    Sessions,
    same_origin,
)
from matpi.remote.web.server import WebError
from matpi.service.app import Mat, assemble
from matpi.store.history import HISTORY_FILENAME, History
from matpi.store.historyview import render_history
from test_mqtt import Observer

MATPI = [sys.executable, "-m", "matpi"]
EXAMPLE_CONFIG = Path(__file__).parent.parent / "config" / "matpi.toml"

TIMEOUT_S = 10.0
MISSING = object()


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    text: str

    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def error(self) -> dict[str, str]:
        error: dict[str, str] = self.json()["error"]
        return error


@dataclass
class Served:
    """A simulated mat with its page on 127.0.0.1:<free port>, the controller running
    (or, without `mat`, the page of a daemon run as a subprocess)."""

    mat: Mat | None
    port: int

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read().decode())
        finally:
            connection.close()

    def get(self, path: str, **headers: str) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, value: object, *, cookie: str | None = None,
             **headers: str) -> Reply:
        """A POST as the page sends it: JSON, same origin (unless headers say otherwise)."""
        sent = {"Content-Type": "application/json", "Origin": self.origin, **headers}
        if cookie:
            sent["Cookie"] = cookie
        return self.request("POST", path, json.dumps(value).encode(), sent)

    def command(self, command: str, value: object = MISSING, **headers: str) -> Reply:
        body = {"command": command} if value is MISSING else {"command": command, "value": value}
        return self.post("/api/command", body, **headers)

    def snapshot(self) -> Snapshot:
        assert self.mat is not None
        return self.mat.controller.machine.snapshot(self.mat.clock.now())

    def settings(self) -> tuple[Any, ...]:
        """What a command could change (not the temperature, which moves by itself)."""
        s = self.snapshot()
        return (s.state, s.program, s.heat_level, s.pattern, s.intensity_pct, s.planned_min,
                s.fault, s.awaiting_press)


@contextmanager
def serving(state_dir: Path, mqtt: MqttConfig | None = None, **web: Any) -> Iterator[Served]:
    """A running simulated mat serving its page; everything stopped on the way out."""
    config = Config(web=WebConfig(enabled=True, listen="127.0.0.1", port=0, **web),
                    mqtt=mqtt or MqttConfig())
    mat = assemble(config, state_dir, simulate=True)
    assert mat.web is not None
    thread = threading.Thread(target=mat.controller.run, name="test-controller")
    thread.start()
    try:
        mat.start_edges()
        assert mat.web.port is not None, "the page did not start"
        served = Served(mat, mat.web.port)
        wait_for(lambda: served.get("/api/state").status in (200, 401), what="a first state")
        yield served
    finally:
        mat.controller.request_stop("test over")
        thread.join(timeout=TIMEOUT_S)
        mat.close()


@dataclass
class Event:
    name: str
    data: Any
    at: float


@dataclass
class EventStream:
    """Reads `GET /api/events` in a thread and keeps every event with its arrival time."""

    port: int
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)
        self._connection.request("GET", "/api/events", headers=self.headers)
        self.response = self._connection.getresponse()
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.response.status == 200:
            self._thread.start()

    def _read(self) -> None:
        name = "message"
        try:
            for raw in iter(self.response.readline, b""):  # undoes the chunking
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line[len("event: "):]
                elif line.startswith("data: "):
                    with self._lock:
                        self.events.append(Event(name, json.loads(line[6:]), time.monotonic()))
                elif not line:
                    name = "message"
        except (OSError, ValueError, http.client.HTTPException):
            return  # closed by the test or the server

    def wait(self, name: str, test: Callable[[Any], bool] = lambda d: True, *,
             since: float = 0.0, timeout_s: float = TIMEOUT_S) -> Event:
        def found() -> Event | None:
            with self._lock:
                return next((e for e in self.events
                             if e.name == name and e.at >= since and test(e.data)), None)

        event: Event = wait_for(found, timeout_s, f"a {name} event")
        return event

    def close(self) -> None:
        sock = self._connection.sock
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # the reader sees the end ...
        if self._thread.is_alive():
            self._thread.join(timeout=TIMEOUT_S)
        self._connection.close()  # ... before the connection goes away under it


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as s:
        yield s


@pytest.fixture
def stream(served: Served) -> Iterator[EventStream]:
    s = EventStream(served.port)
    s.wait("state")
    yield s
    s.close()


# --- reading ------------------------------------------------------------------------


def test_the_state_is_the_mqtt_state_payload(served: Served) -> None:
    reply = served.get("/api/state")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    state = reply.json()
    assert set(state) == {f.name for f in fields(Snapshot)} | {"ends_at"}
    assert state["state"] == "idle" and state["program"] == "beginner"


def test_the_page_and_its_files_are_served_with_a_strict_policy(served: Served) -> None:
    page = served.get("/")
    assert page.status == 200 and "<title>" in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "Server" not in page.headers
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css"),
                       ("icon.svg", "image/svg+xml")):
        reply = served.get(f"/static/{name}")
        assert reply.status == 200 and reply.headers["Content-Type"].startswith(kind)
    again = served.get("/", **{"If-None-Match": page.headers["ETag"]})
    assert again.status == 304


def test_the_page_fetches_nothing_from_elsewhere(served: Served) -> None:
    for name in ("/", "/static/app.js", "/static/app.css"):
        text = served.get(name).text
        assert "https://" not in text and "//cdn" not in text, name


@pytest.mark.parametrize("path", ["/static/../security.py", "/static/nothing.js", "/api/nothing",
                                  "/etc/passwd"])
def test_unknown_paths_get_a_json_404(served: Served, path: str) -> None:
    reply = served.get(path)
    assert reply.status == 404
    assert reply.error["field"] == "path"


def test_options_list_what_the_page_may_offer(served: Served) -> None:
    options = served.get("/api/options").json()
    assert [p["name"] for p in options["programs"]] == list(Rules().programs)
    assert options["heat_levels"] == ["off", "low", "medium", "high"]
    assert options["patterns"] == ["off", "steady", "pulse", "wave", "slow", "breathe"]
    assert options["inhale_share"] == INHALE_SHARE  # the page's breathing guide reads it
    assert options["duration_min"] == {"min": 1.0, "max": 30.0}
    assert options["limits"]["dose_max_cem43"] == Rules().dose_max_cem43
    assert options["password"] is False


def test_history_is_the_data_of_matpi_history_json(served: Served, tmp_path: Path) -> None:
    assert served.command("start").status == 202
    served.mat.controller.post(Press())
    wait_for(lambda: served.snapshot().state is State.RUNNING)
    assert served.command("stop").status == 202
    wait_for(lambda: served.get("/api/state").json()["state"] == "cooldown")

    def from_the_file() -> Any:
        history = History.open(tmp_path / HISTORY_FILENAME)
        try:
            return json.loads(render_history(history, 30, served.mat.clock.today(), "json"))
        finally:
            history.close()

    # The history's writer thread saves the session's end a moment after the state shows
    # it: wait for the saved end, then the page and the file must agree.
    expected = wait_for(lambda: (found := from_the_file())["sessions"][-1:]
                        and found["sessions"][-1]["end_reason"] == "stopped" and found,
                        what="the stopped session saved")
    reply = served.get("/api/history?days=30")
    assert reply.status == 200
    assert reply.json() == expected
    assert [s["kind"] for s in expected["sessions"]] == ["preheat", "session"]


@pytest.mark.parametrize("days", ["0", "367", "ten", "-1", "1.5"])
def test_history_days_out_of_range_is_refused(served: Served, days: str) -> None:
    reply = served.get(f"/api/history?days={days}")
    assert reply.status == 400
    assert reply.error["field"] == "days" and "1 to 366" in reply.error["allowed"]


# --- commands -----------------------------------------------------------------------


def test_a_remote_start_preheats_until_the_button_at_the_mat(
    served: Served, stream: EventStream
) -> None:
    reply = served.command("start", {"program": "back", "duration_min": 15})
    assert (reply.status, reply.json()) == (202, {"accepted": "start"})
    state = stream.wait("state", lambda s: s["state"] == "preheat").data
    assert state["awaiting_press"] is True and state["program"] == "back"
    assert stream.wait("curve", lambda c: c["program"] == "back")
    served.mat.controller.post(Press())
    running = stream.wait("state", lambda s: s["state"] == "running").data
    assert running["planned_min"] == 15.0 and running["ends_at"] is not None


def test_stop_ends_a_preheat(served: Served, stream: EventStream) -> None:
    served.command("session", "ON")
    stream.wait("state", lambda s: s["state"] == "preheat")
    assert served.command("stop").status == 202
    stream.wait("state", lambda s: s["state"] in ("idle", "cooldown"))


@pytest.mark.parametrize(
    ("command", "value", "field", "expected"),
    [
        ("program", "deep", "program", "deep"),
        ("heat", "high", "heat_level", "high"),
        ("pattern", "wave", "pattern", "wave"),
        ("intensity", 70, "intensity_pct", 70.0),
        ("intensity", "42.5", "intensity_pct", 42.5),
        ("duration", 12, "planned_min", 12.0),
    ],
)
def test_each_setting_reaches_the_mat(served: Served, stream: EventStream, command: str,
                                      value: object, field: str, expected: object) -> None:
    assert served.command(command, value).status == 202
    stream.wait("state", lambda s: s[field] == expected)
    assert getattr(served.snapshot(), field) == expected


def test_the_session_switch_starts_and_stops(served: Served, stream: EventStream) -> None:
    assert served.command("session", True).status == 202
    stream.wait("state", lambda s: s["state"] == "preheat")
    assert served.command("session", "OFF").status == 202
    stream.wait("state", lambda s: s["state"] != "preheat")


BAD_WEB_REQUESTS: list[tuple[str, object, str, str]] = [
    ("launch", None, "command", "one of: session, start, stop"),
    ("reset", None, "command", "one of:"),
    ("session", "on please", "session", "ON or OFF"),
    ("start", {"program": "sauna"}, "program", "one of: beginner, neck, back"),
    ("start", {"duration_min": 45}, "duration_min", "a number from 1 to 30"),
    ("start", {"trip_c": 60}, "trip_c", "unknown key"),
    ("start", [1, 2], "start", "an object"),
    ("stop", "NOW", "stop", "empty or PRESS"),
    ("program", "sauna", "program", "one of: beginner, neck, back, evening, deep"),
    ("heat", "extreme", "heat", "one of: off, low, medium, high"),
    ("heat", None, "heat", "text"),
    ("pattern", 3, "pattern", "text"),
    ("intensity", 150, "intensity_pct", "a number from 0 to 100"),
    ("intensity", "nan", "intensity_pct", "a number from 0 to 100"),
    ("intensity", 1e309, "intensity_pct", "a number from 0 to 100"),
    ("intensity", True, "intensity_pct", "a number from 0 to 100"),
    ("duration", 45, "duration_min", "a number from 1 to 30"),
    ("duration", "", "duration_min", "a number from 1 to 30"),
    ("duration", 0.5, "duration_min", "a number from 1 to 30"),
]


@pytest.mark.parametrize(("command", "value", "field", "allowed"), BAD_WEB_REQUESTS)
def test_a_bad_value_is_refused_naming_field_and_what_is_allowed_and_changes_nothing(
    served: Served, command: str, value: object, field: str, allowed: str
) -> None:
    before = served.settings()
    reply = served.command(command, value)
    assert reply.status == 400
    error = reply.error
    assert error["field"] == field and allowed in error["allowed"]
    assert error["message"] == f"{error['command']}: {field} = {error['value']}: " \
                               f"{error['allowed']}"
    assert served.settings() == before


@pytest.mark.parametrize(
    ("body", "field", "allowed"),
    [
        (b"not json", "body", "a JSON object"),
        (b"\xff\xfe", "body", "a JSON object"),
        (b'["heat", "high"]', "body", "a JSON object"),
        (b'{"value": "high"}', "command", "a command name as text"),
        (b'{"command": 7}', "command", "a command name as text"),
        (b'{"command": "heat", "value": "high", "force": true}', "force",
         "unknown key; allowed keys: command, value"),
        (b"", "body", "a JSON object"),
    ],
)
def test_a_malformed_body_is_refused_and_changes_nothing(
    served: Served, body: bytes, field: str, allowed: str
) -> None:
    before = served.settings()
    reply = served.request("POST", "/api/command", body, {
        "Content-Type": "application/json", "Origin": served.origin})
    assert reply.status == 400
    assert reply.error["field"] == field and reply.error["allowed"].startswith(allowed)
    assert served.settings() == before


def test_the_mats_own_refusal_arrives_on_the_stream(served: Served, stream: EventStream) -> None:
    served.command("start")
    stream.wait("state", lambda s: s["state"] == "preheat")
    served.mat.controller.post(Press())
    stream.wait("state", lambda s: s["state"] == "running")
    served.command("stop")
    stream.wait("state", lambda s: s["state"] == "cooldown")
    assert served.command("start").status == 202  # valid: the mat decides
    refused = stream.wait("notice", lambda n: n["event"] == "refused").data
    assert refused["command"] == "start" and "cooling down" in refused["reason"]
    assert served.snapshot().state is State.COOLDOWN


def test_starts_are_rate_limited_and_stop_never_is(served: Served) -> None:
    for _ in range(6):
        assert served.command("start").status == 202
        assert served.command("stop").status == 202
    reply = served.command("start")
    assert reply.status == 429
    assert reply.error["field"] == "rate" and "at most 6 in 60 s" in reply.error["allowed"]
    assert 0 < int(reply.headers["Retry-After"]) <= 60
    assert served.command("stop").status == 202


def test_a_fault_shows_and_cannot_be_cleared_from_the_page(
    served: Served, stream: EventStream
) -> None:
    served.mat.controller.post(DriverFault("over-temperature: sensor mat reads 46.0 °C"))
    state = stream.wait("state", lambda s: s["state"] == "fault").data
    assert state["fault"] == "over-temperature: sensor mat reads 46.0 °C"
    stream.wait("notice", lambda n: n["event"] == "fault_raised")
    for command, value in (("reset", None), ("clear_fault", None), ("session", "ON"),
                           ("start", None)):
        served.command(command, value)
    assert served.command("stop").status == 202  # always allowed, and harmless
    wait_for(lambda: any(e.data["event"] == "refused" for e in stream.events
                         if e.name == "notice"))
    assert served.snapshot().state is State.FAULT
    assert served.snapshot().fault == "over-temperature: sensor mat reads 46.0 °C"


@needs_mosquitto
def test_mqtt_and_the_page_share_one_start_limit(tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    broker.start()
    observer = Observer(broker).connect()
    try:
        mqtt = MqttConfig(enabled=True, host=broker.host, port=broker.port)
        with serving(tmp_path, mqtt=mqtt) as served:
            observer.wait("matpi/matpi/availability", lambda m: m.payload == b"online")
            observer.client.publish("matpi/matpi/start/set", b"PRESS")
            wait_for(lambda: served.snapshot().state is State.PREHEAT)
            assert served.command("stop").status == 202
            wait_for(lambda: served.snapshot().state is State.COOLDOWN)  # as after a session
            for _ in range(5):  # refused by the core (cooling down), counted by the limit
                sent = time.monotonic()
                observer.client.publish("matpi/matpi/start/set", b"PRESS")
                refusal = observer.wait("matpi/matpi/error", since=sent).json()
                assert "cooling down" in refusal["message"]
            reply = served.command("start")
            assert reply.status == 429 and reply.error["field"] == "rate"
            sent = time.monotonic()
            observer.client.publish("matpi/matpi/start/set", b"PRESS")
            error = observer.wait("matpi/matpi/error", since=sent).json()
            assert error["field"] == "rate"
            assert served.snapshot().state is State.COOLDOWN
    finally:
        observer.close()
        broker.stop()


# --- who may ask -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},
        {"Origin": "", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_request_from_another_site_is_refused(served: Served, headers: dict[str, str]) -> None:
    before = served.settings()
    sent = {"Content-Type": "application/json", **headers}
    if not sent["Origin"]:
        del sent["Origin"]
    reply = served.request("POST", "/api/command", b'{"command": "start"}', sent)
    assert reply.status == 403
    assert reply.error["field"] == "Origin"
    assert served.settings() == before


def test_a_script_without_a_browser_may_post(served: Served) -> None:
    reply = served.request("POST", "/api/command", b'{"command": "heat", "value": "off"}',
                           {"Content-Type": "application/json"})
    assert reply.status == 202


def test_a_state_change_needs_post_with_json(served: Served) -> None:
    assert served.get("/api/command").status == 405
    reply = served.request("POST", "/api/command", b"command=start", {
        "Content-Type": "application/x-www-form-urlencoded", "Origin": served.origin})
    assert reply.status == 415
    assert reply.error["field"] == "Content-Type" and reply.error["allowed"] == "application/json"
    assert served.request("POST", "/api/state", b"{}", {
        "Content-Type": "application/json", "Origin": served.origin}).status == 405


def test_an_oversized_body_is_refused_with_413(served: Served) -> None:
    body = json.dumps({"command": "heat", "value": "x" * 5000}).encode()
    reply = served.request("POST", "/api/command", body, {
        "Content-Type": "application/json", "Origin": served.origin})
    assert reply.status == 413
    assert reply.error["field"] == "body" and "at most 4096 bytes" in reply.error["allowed"]

    # A huge one is refused from its headers: the answer comes before the body is sent.
    with socket.create_connection(("127.0.0.1", served.port), timeout=TIMEOUT_S) as sock:
        sock.sendall(b"POST /api/command HTTP/1.1\r\nHost: " + served.origin[7:].encode() + b"\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 2000000000\r\n"
                     b"Origin: " + served.origin.encode() + b"\r\n\r\n{")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert served.get("/api/state").status == 200  # the server is fine


def test_an_oversized_chunked_body_is_refused_with_413(served: Served) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=TIMEOUT_S)
    try:
        connection.request("POST", "/api/command", body=iter([b"{" + b" " * 3000] * 2),
                           headers={"Content-Type": "application/json",
                                    "Origin": served.origin}, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413
    finally:
        connection.close()
    assert served.get("/api/state").status == 200  # the server is fine


@pytest.mark.parametrize("host", ["evil.example.com", "mat.evil.example:8080", ""])
def test_a_foreign_host_name_is_refused(served: Served, host: str) -> None:
    reply = served.get("/api/state", Host=host)
    assert reply.status == 403 and reply.error["field"] == "Host"


@pytest.mark.parametrize("host", ["matpi.local", "matpi", "192.168.1.20:8080", "[::1]:8080",
                                  "matpi.fritz.box", "localhost:8080"])
def test_home_network_names_are_served(served: Served, host: str) -> None:
    assert served.get("/api/state", Host=host).status == 200


def test_allowed_hosts_adds_names(tmp_path: Path) -> None:
    with serving(tmp_path, allowed_hosts=("mat.example.org",)) as served:
        assert served.get("/api/state", Host="mat.example.org").status == 200
        assert served.get("/api/state", Host="other.example.org").status == 403


# --- with a password ---------------------------------------------------------------------


def log_in(served: Served, password: str = "correct horse") -> Reply:
    return served.post("/api/login", {"password": password})


def session_cookie(reply: Reply) -> str:
    cookie = SimpleCookie(reply.headers["Set-Cookie"])
    return f"matpi_session={cookie['matpi_session'].value}"


def test_with_a_password_every_api_request_needs_a_login(locked: Served) -> None:
    for path in ("/api/state", "/api/options", "/api/history", "/api/events"):
        reply = locked.get(path)
        assert reply.status == 401, path
        assert reply.error["field"] == "session"
    assert locked.command("start").status == 401
    assert locked.snapshot().state is State.IDLE
    assert locked.get("/").status == 200  # the page itself, to show the login form


def test_a_login_gives_a_strict_http_only_cookie(locked: Served) -> None:
    reply = log_in(locked)
    assert reply.status == 200
    raw = reply.headers["Set-Cookie"]
    assert "HttpOnly" in raw and "SameSite=Strict" in raw and "Path=/" in raw
    cookie = session_cookie(reply)
    assert locked.get("/api/state", Cookie=cookie).status == 200
    assert locked.command("heat", "high", Cookie=cookie).status == 202
    stream = EventStream(locked.port, {"Cookie": cookie})
    try:
        stream.wait("state", lambda s: s["heat_level"] == "high")
    finally:
        stream.close()
    assert locked.post("/api/logout", {}, cookie=cookie).status == 200
    assert locked.get("/api/state", Cookie=cookie).status == 401


def test_wrong_passwords_are_refused_then_rate_limited(locked: Served) -> None:
    for _ in range(5):
        reply = log_in(locked, "wrong horse")
        assert reply.status == 401 and reply.error["field"] == "password"
        assert "Set-Cookie" not in reply.headers
    limited = log_in(locked)  # even the right one waits: the limit comes before the check
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) > 0


def test_a_new_password_ends_earlier_logins(locked: Served, tmp_path: Path) -> None:
    cookie = session_cookie(log_in(locked))
    stream = EventStream(locked.port, {"Cookie": cookie})
    stream.wait("state")
    PasswordFile(tmp_path / "web-password").write("battery staple")
    assert locked.get("/api/state", Cookie=cookie).status == 401
    locked.mat.controller.post(DriverFault("a change to wake the stream"))
    wait_for(lambda: not stream._thread.is_alive(), what="the open stream ended")
    stream.close()
    assert log_in(locked, "battery staple").status == 200


def test_a_login_must_come_from_the_page_too(locked: Served) -> None:
    reply = locked.post("/api/login", {"password": "correct horse"},
                        Origin="http://evil.example")
    assert reply.status == 403


def test_a_missing_password_file_keeps_the_page_off(tmp_path: Path) -> None:
    config = Config(web=WebConfig(enabled=True, listen="127.0.0.1", port=0,
                                  password_file=str(tmp_path / "nothing")))
    mat = assemble(config, tmp_path, simulate=True)
    try:
        assert mat.web is not None
        with pytest.raises(WebError, match="matpi web-password"):
            mat.web.start()
        mat.web.listener(mat.controller.machine.snapshot(mat.clock.now()), [])  # no effect
        assert mat.web.url is None
    finally:
        mat.close()


def test_a_taken_port_leaves_the_mat_running_without_its_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = Config(web=WebConfig(enabled=True, listen="127.0.0.1", port=port))
        mat = assemble(config, tmp_path, simulate=True)
        try:
            mat.start_edges()
        finally:
            mat.close()
    assert mat.web is not None and mat.web.url is None
    assert f"web page off: cannot listen on 127.0.0.1:{port}" in caplog.text


# --- the stream ---------------------------------------------------------------------------


def test_the_stream_opens_with_the_curve_and_the_state(served: Served) -> None:
    stream = EventStream(served.port)
    try:
        assert stream.response.headers["Content-Type"].startswith("text/event-stream")
        curve = stream.wait("curve")
        state = stream.wait("state")
        assert curve.at <= state.at and state.data["state"] == "idle"
    finally:
        stream.close()


def test_the_curve_grows_while_the_mat_heats(served: Served, stream: EventStream) -> None:
    served.command("start")
    first = stream.wait("point")
    assert first.data[0] == 0.0 and first.data[2] is not None
    served.mat.controller.post(Press())
    stream.wait("state", lambda s: s["state"] == "running")
    state = served.get("/api/state").json()
    assert state["setpoint_c"] == first.data[2]


def test_a_state_change_reaches_the_stream_at_once(served: Served, stream: EventStream) -> None:
    for percent in (10, 20, 30):
        sent = time.monotonic()
        served.command("intensity", percent)
        event = stream.wait("state", lambda s, p=percent: s["intensity_pct"] == p, since=sent)
        assert event.at - sent < 1.0  # the benchmark measures it; here: it comes, and soon


def test_too_many_open_streams_are_refused(served: Served) -> None:
    streams = [EventStream(served.port) for _ in range(MAX_SUBSCRIBERS)]
    try:
        for s in streams:
            s.wait("state")
        extra = EventStream(served.port)
        assert extra.response.status == 503
        extra.close()
    finally:
        for s in streams:
            s.close()
    wait_for(lambda: EventStream(served.port).response.status == 200)


# --- the parts on their own ----------------------------------------------------------------


def test_the_password_file_holds_a_salted_scrypt_hash(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    PasswordFile(path).write("correct horse")
    line = path.read_text().strip()
    assert line.startswith("scrypt:16384:8:1:") and "correct" not in line
    assert path.stat().st_mode & 0o777 == 0o600
    PasswordFile(path).write("correct horse")
    assert path.read_text().strip() != line  # a fresh salt each time
    assert PasswordFile(path).verify("correct horse")
    assert not PasswordFile(path).verify("correct horsE")


@pytest.mark.parametrize("content", ["", "plain-text-password", "scrypt:1048576:32:16:AA==:AA==",
                                     "scrypt:100:8:1:AA==:AA==", "scrypt:16384:8:1:!!:AA=="])
def test_a_tampered_password_file_lets_nobody_in(tmp_path: Path, content: str) -> None:
    path = tmp_path / "pw"
    path.write_text(content)
    assert not PasswordFile(path).verify(content)
    with pytest.raises(PasswordError, match="matpi web-password"):
        PasswordFile(path).check_readable()


@pytest.mark.parametrize(("password", "why"), [("short", "at least 8"), ("x" * 300, "at most 256"),
                                               ("tab\there!", "control characters")])
def test_an_unfit_password_is_refused(tmp_path: Path, password: str, why: str) -> None:
    with pytest.raises(PasswordError, match=why):
        PasswordFile(tmp_path / "pw").write(password)
    assert not (tmp_path / "pw").exists()


def test_sessions_expire_and_are_bounded(tmp_path: Path) -> None:
    password = PasswordFile(tmp_path / "pw")
    password.write("correct horse")
    now = [0.0]
    sessions = Sessions(password, clock=lambda: now[0])
    first = sessions.create()
    assert sessions.valid(first) and not sessions.valid("made-up") and not sessions.valid(None)
    now[0] += sessions.lifetime_s
    assert not sessions.valid(first)
    tokens = [sessions.create() for _ in range(40)]
    assert not sessions.valid(tokens[0]) and sessions.valid(tokens[-1])


def test_the_login_limit_slides(tmp_path: Path) -> None:
    now = [0.0]
    limiter = LoginLimiter(clock=lambda: now[0])
    for _ in range(5):
        assert limiter.try_login("10.0.0.5") == 0.0
    assert limiter.try_login("10.0.0.5") == 60.0
    now[0] = 60.0
    assert limiter.try_login("10.0.0.5") == 0.0


@pytest.mark.parametrize(
    ("origin", "fetch_site", "host", "allowed"),
    [
        ("http://matpi.local:8080", "same-origin", "matpi.local:8080", True),
        ("http://MATPI.local:8080", None, "matpi.local:8080", True),
        ("https://matpi.local:8080", None, "matpi.local:8080", True),
        ("http://matpi.local:8081", None, "matpi.local:8080", False),
        ("http://evil.example", "cross-site", "matpi.local:8080", False),
        ("null", None, "matpi.local:8080", False),
        (None, None, "matpi.local:8080", True),
        (None, "none", "matpi.local:8080", True),
        (None, "same-site", "matpi.local:8080", False),
        (None, "cross-site", "matpi.local:8080", False),
    ],
)
def test_same_origin(origin: str | None, fetch_site: str | None, host: str,
                     allowed: bool) -> None:
    assert same_origin(origin, fetch_site, host) is allowed


# --- config and command line -----------------------------------------------------------------


def test_the_web_table_is_read(tmp_path: Path) -> None:
    path = tmp_path / "matpi.toml"
    path.write_text('[web]\nenabled = true\nlisten = "::"\nport = 8123\n'
                    'password_file = "/var/lib/matpi/web-password"\n'
                    'allowed_hosts = ["Mat.Example.org."]\n')
    assert load_config(path).web == WebConfig(
        enabled=True, listen="::", port=8123, password_file="/var/lib/matpi/web-password",
        allowed_hosts=("mat.example.org",))
    assert load_config(EXAMPLE_CONFIG).web.port == 8080


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('port = 80000', "[web] port = 80000: must be at most 65535"),
        ('listen = "my-pi"', '[web] listen = "my-pi": must be an IP address of this machine'),
        ('enabled = "yes"', '[web] enabled = "yes": must be true or false'),
        ('password = "hunter22"', "[web] password: unknown key; did you mean password_file?"),
        ('allowed_hosts = "mat.example.org"', "[web] allowed_hosts = \"mat.example.org\": must "
                                              "be a list of host names"),
        ('allowed_hosts = ["http://mat.example.org"]', "(no scheme, port or path)"),
    ],
)
def test_a_bad_web_table_names_file_key_value_and_what_is_allowed(
    tmp_path: Path, table: str, message: str
) -> None:
    path = tmp_path / "matpi.toml"
    path.write_text(f"[web]\n{table}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(p.startswith(f"{path}: ") and message in p for p in caught.value.problems), \
        caught.value.problems


def test_matpi_web_password_writes_the_configured_file(tmp_path: Path) -> None:
    config = tmp_path / "matpi.toml"
    config.write_text(f'[web]\npassword_file = "{tmp_path}/state/web-password"\n')
    result = subprocess.run([*MATPI, "web-password", "--config", str(config)],
                            input="correct horse\n", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"set in {tmp_path}/state/web-password" in result.stdout
    assert PasswordFile(tmp_path / "state" / "web-password").verify("correct horse")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--file", "PW"], "short\n", "at least 8 characters; nothing changed"),
        (["--config", "CONFIG"], "correct horse\n", "has no [web] password_file"),
    ],
)
def test_matpi_web_password_explains_a_refusal(
    tmp_path: Path, args: list[str], stdin: str, message: str
) -> None:
    (tmp_path / "matpi.toml").write_text("")
    args = [a.replace("PW", str(tmp_path / "pw")).replace("CONFIG", str(tmp_path / "matpi.toml"))
            for a in args]
    result = subprocess.run([*MATPI, "web-password", *args], input=stdin, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "pw").exists()


def test_a_simulation_serves_its_page_on_loopback_and_reads_its_button_from_stdin(
    tmp_path: Path,
) -> None:
    process = subprocess.Popen(
        [*MATPI, "run", "--simulate", "--state-dir", str(tmp_path), "--web-port", "0",
         "--sim-stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    assert process.stdin is not None and process.stdout is not None
    try:
        banner = process.stdout.readline()
        match = re.search(r"the mat's page: http://127\.0\.0\.1:(\d+)/", banner)
        assert match, banner
        served = Served(None, int(match.group(1)))
        wait_for(lambda: served.get("/api/state").status == 200)
        process.stdin.write("wiggle\npress\n")
        process.stdin.flush()
        wait_for(lambda: served.get("/api/state").json()["state"] == "running")
        process.stdin.write("fault sensor_disconnected\n")
        process.stdin.flush()
        state = wait_for(lambda: (s := served.get("/api/state").json())["state"] == "fault"
                         and s)
        assert "sensor" in state["fault"]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.stderr is not None
    assert "'wiggle': not understood" in process.stderr.read()


def test_sim_stdin_needs_a_simulation(tmp_path: Path) -> None:
    result = subprocess.run([*MATPI, "run", "--config", str(EXAMPLE_CONFIG), "--sim-stdin"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--sim-stdin goes with --simulate" in result.stderr


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_bad_web_port_is_explained(port: str) -> None:
    result = subprocess.run([*MATPI, "run", "--simulate", "--web-port", port],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "must be 0 to 65535" in result.stderr


@pytest.mark.parametrize(("before", "shown"), [
    ("", "True None"),  # blocked: tornado's log takes it as "no colours"
    ("import curses; ", "False <module 'curses'"),  # loaded before the page: it stays
])
def test_the_page_keeps_tornado_from_loading_curses(before: str, shown: str) -> None:
    """tornado.log imports curses only to colour its own lines: 0.5 MiB the page blocks."""
    probe = (f"{before}import sys, matpi.remote.web.server, tornado.log; "
             "print(tornado.log.curses is None, repr(sys.modules.get('curses')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.startswith(shown)
