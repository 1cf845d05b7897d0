"""The occupancy sensor through every outside path, with real parts: the daemon's button
and simulated person on stdin, MQTT against a real mosquitto, the page's JSON API, a
crash and restart, and a sensor stuck either way.

tests/test_occupancy.py pins the core's rules with a hand clock; these show that the
edges deliver them: that `--sim-occupancy` and `[occupancy] pin` really put a sensor
in the mat, that `occupied` reaches every client, and that no path around the button
(a remote start, a restart) heats a session nobody lies on. The daemon runs at SPEED
and its state is read from its page's live stream, which carries every snapshot (the
printed lines show only changes of state, not a pause). Every wait has a deadline.
"""

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from broker import Broker, needs_mosquitto
from conftest import wait_for
from matpi.config.load import load_config
from matpi.core.events import Press
from matpi.service.app import Mat, assemble
from test_daemon import session_rows
from test_mqtt import BASE, Observer
from test_web import EventStream, Served

MATPI = [sys.executable, "-m", "matpi"]
SPEED = 5
"""As the browser test: fast enough for a short grace and session, slow enough that a
loaded 2-core machine never starves the sensor poller into a stale-reading fault
(10 s of mat time: 2 s here)."""
GRACE_S = 15
"""[occupancy] grace_s: 3 s here, long enough to see the pause before the end."""
LATE_S = 2.0 * SPEED
"""How late (mat seconds) a busy machine may wake the controller for a deadline."""
WAIT_S = 30.0
SESSION_WAIT_S = 60.0
"""For the end of a 1-minute session: 12 s here, with room for a loaded machine."""
OCCUPANCY_CONFIG = "homeassistant/binary_sensor/matpi/occupancy/config"
STATE = f"{BASE}/state"

Snap = dict[str, Any]


def config_text(*, pin: bool = False, default_program: str = "beginner", web: bool = True,
                mqtt_port: int | None = None) -> str:
    """A config with a short grace and a 1-minute program; the page on (the daemon's
    --web-port 0 picks its port). `pin` turns the sensor on as a real mat's config does."""
    lines = ["[occupancy]", f"grace_s = {GRACE_S}", *(["pin = 17"] if pin else []),
             "[programs.quick]", "duration_min = 1",
             "[session]", f'default_program = "{default_program}"',
             "[web]", f"enabled = {str(web).lower()}", 'listen = "127.0.0.1"']
    if mqtt_port is not None:
        lines += ["[mqtt]", "enabled = true", 'host = "127.0.0.1"', f"port = {mqtt_port}"]
    return "\n".join(lines) + "\n"


class Daemon:
    """`matpi run --simulate --sim-stdin` as systemd would run it: its button and person
    on stdin, its printed lines kept by a reader thread, its page's live stream read."""

    def __init__(self, config: Path, state_dir: Path, flags: tuple[str, ...]) -> None:
        self.process = subprocess.Popen(
            [*MATPI, "run", "--simulate", "--speed", str(SPEED), "--sim-stdin",
             "--web-port", "0", "--state-dir", str(state_dir), "--config", str(config), *flags],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.events: EventStream | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def ready(self) -> "Daemon":
        banner = self.wait_line("the mat's page: ")
        match = re.search(r"the mat's page: http://127\.0\.0\.1:(\d+)/", banner)
        assert match, banner
        self.page = Served(None, int(match.group(1)))
        self.events = EventStream(self.page.port)
        self.state(lambda s: s["occupied"] is not None)  # the stream is live
        return self

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def mark(self) -> int:
        with self._lock:
            return len(self.lines)

    def wait_line(self, text: str, after: int = 0, timeout_s: float = WAIT_S) -> str:
        def found() -> str:
            with self._lock:
                return next((line for line in self.lines[after:] if text in line), "")

        return wait_for(found, timeout_s, f"a line with {text!r}")

    def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def state(self, test: Callable[[Snap], bool], since: float = 0.0,
              timeout_s: float = WAIT_S) -> tuple[Snap, float]:
        """The first state the page streamed since `since` that passes `test`, and when."""
        assert self.events is not None
        event = self.events.wait("state", test, since=since, timeout_s=timeout_s)
        return event.data, event.at

    def states(self, since: float, until: float = float("inf")) -> list[Snap]:
        assert self.events is not None
        return [e.data for e in list(self.events.events)
                if e.name == "state" and since <= e.at <= until]

    def notice(self, event: str, since: float, timeout_s: float = WAIT_S) -> Snap:
        assert self.events is not None
        found = self.events.wait("notice", lambda n: n["event"] == event, since=since,
                                 timeout_s=timeout_s)
        data: Snap = found.data
        return data

    def lie_down_and_press(self) -> tuple[Snap, float]:
        """Someone lies down, the sensor settles, a press starts the session."""
        self.tell("person on")
        self.state(lambda s: s["occupied"] is True)
        since = time.monotonic()
        self.tell("press")
        return self.state(lambda s: s["state"] == "running", since)

    def stop(self, signal_kill: bool = False) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None
        if self.process.poll() is None:
            if signal_kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        with suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()


Launch = Callable[..., Daemon]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Starts daemons on `tmp_path`'s state folder (or another); each is stopped at the end."""
    started: list[Daemon] = []

    def start(config: str, *flags: str, state_dir: Path | None = None) -> Daemon:
        path = tmp_path / f"matpi-{len(started)}.toml"
        path.write_text(config, encoding="utf-8")
        daemon = Daemon(path, state_dir or tmp_path / "state", flags)
        started.append(daemon)
        return daemon.ready()

    yield start
    for daemon in started:
        daemon.stop()


def history_json(state_dir: Path) -> Snap:
    """`matpi history --json`, as a person would run it after the session."""
    done = subprocess.run([*MATPI, "history", "--json", "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=30, check=True)
    history: Snap = json.loads(done.stdout)
    return history


def assert_paused_until_the_end(daemon: Daemon, paused_at: float, ended_at: float) -> None:
    """Every snapshot from the pause to the end: running, nobody on it, no heat, no motor."""
    during = daemon.states(paused_at, ended_at)
    assert during, "no state between the pause and the end"
    for s in during:
        if s["state"] == "running":
            assert s["occupied"] is False and not s["heater_on"] and s["vibration"] == 0, s


@pytest.mark.slow
def test_the_button_path_refuses_an_empty_mat_and_ends_a_vacated_session(
        launch: Launch, tmp_path: Path) -> None:
    """The whole story at the mat: a press with nobody on it starts nothing; leaving
    pauses heat and motor at once; after the grace the session ends and counts."""
    mat = launch(config_text(), "--sim-occupancy")
    mark = mat.mark()
    mat.tell("press")
    refused = mat.wait_line("refused", after=mark)
    assert "refused start: nobody on the mat" in refused, refused
    page = mat.page.get("/api/state").json()
    assert (page["state"], page["heater_on"], page["occupied"]) == ("idle", False, False)

    running, _ = mat.lie_down_and_press()
    assert running["occupied"] is True
    mat.state(lambda s: s["heater_on"] and s["vibration"] > 0)  # a cold mat heats at once
    left = time.monotonic()
    mat.tell("person off")
    paused, paused_at = mat.state(lambda s: s["occupied"] is False, left)
    assert paused["state"] == "running" and not paused["heater_on"] and paused["vibration"] == 0
    ended = mat.notice("session_ended", left)
    ended_at = time.monotonic()
    assert ended["reason"] == "vacated"
    # The grace counts from the moment the sensor settled on "empty", not from the press.
    assert GRACE_S <= ended["elapsed_s"] - paused["elapsed_s"] <= GRACE_S + LATE_S, ended
    assert_paused_until_the_end(mat, paused_at, ended_at)
    mat.wait_line("session ended (vacated)")
    after, _ = mat.state(lambda s: s["state"] == "cooldown", left)
    assert after["today_min"] > 0 and not after["heater_on"]

    mat.stop()
    [row] = history_json(tmp_path / "state")["sessions"]
    assert (row["kind"], row["end_reason"]) == ("session", "vacated")
    assert row["actual_min"] == pytest.approx(ended["elapsed_s"] / 60.0, abs=0.02)


@contextmanager
def mat_on_mqtt(tmp_path: Path, broker: Broker, *, sensor: bool) -> Iterator[Mat]:
    """The daemon's mat, assembled in this process from a config file (sensor by
    `[occupancy] pin`), with its controller thread and MQTT bridge running."""
    path = tmp_path / "matpi.toml"
    path.write_text(config_text(pin=sensor, web=False, mqtt_port=broker.port), encoding="utf-8")
    mat = assemble(load_config(path), tmp_path, simulate=True)
    thread = threading.Thread(target=mat.controller.run, name="test-controller")
    thread.start()
    try:
        mat.start_edges()
        yield mat
    finally:
        mat.controller.request_stop("test over")
        thread.join(timeout=10)
        mat.close()


def occupied_is(value: bool) -> Callable[[Snap], bool]:
    return lambda s: s["occupied"] is value


def on_state(test: Callable[[Snap], bool]) -> Callable[[Any], bool]:
    return lambda message: bool(test(message.json()))


@needs_mosquitto
def test_mqtt_shows_occupancy_and_a_remote_start_only_preheats_the_empty_mat(
        tmp_path: Path, broker: Broker) -> None:
    """Home Assistant learns of the sensor (an occupancy binary_sensor) and reads it from
    the state; its start warms the empty mat, and only someone on it confirms."""
    observer = Observer(broker).connect()
    try:
        with mat_on_mqtt(tmp_path, broker, sensor=True) as mat:
            assert mat.sim is not None
            observer.wait(STATE, on_state(lambda s: s["occupied"] is False))
            entity = observer.wait(OCCUPANCY_CONFIG).json()
            assert entity["device_class"] == "occupancy" and entity["state_topic"] == STATE
            assert entity["value_template"] == "{{ 'ON' if value_json.occupied else 'OFF' }}"

            started = time.monotonic()
            observer.publish(f"{BASE}/session/set", "ON")
            observer.wait(STATE, on_state(lambda s: s["state"] == "preheat" and s["heater_on"]
                                          and s["occupied"] is False), since=started)
            mat.controller.post(Press())  # at the mat, with nobody lying on it
            refused = observer.wait(f"{BASE}/event", lambda m: m.json()["event"] == "refused",
                                    since=started).json()
            assert refused["command"] == "press" and "nobody on the mat" in refused["reason"]
            mat.sim.set_person(True)
            observer.wait(STATE, on_state(lambda s: s["occupied"] is True), since=started)
            lay_down = time.monotonic()
            mat.controller.post(Press())
            observer.wait(STATE, on_state(lambda s: s["state"] == "running"), since=started)
            before = [m.json()["state"] for m in observer.on(STATE, started) if m.at < lay_down]
            assert "running" not in before and "preheat" in before
    finally:
        observer.close()


@needs_mosquitto
def test_without_a_sensor_mqtt_says_null_and_clears_a_stale_occupancy_entity(
        tmp_path: Path, broker: Broker) -> None:
    """A sensor taken out of the config takes its entity out of Home Assistant: an empty
    retained config replaces the one an earlier run left."""
    observer = Observer(broker).connect()
    try:
        observer.publish(OCCUPANCY_CONFIG, '{"name": "Occupancy"}', retain=True)
        with mat_on_mqtt(tmp_path, broker, sensor=False):
            state = observer.wait(STATE).json()
            assert "occupied" in state and state["occupied"] is None
            observer.wait(OCCUPANCY_CONFIG, lambda m: m.payload == b"")
            # One SUBSCRIBE: mosquitto sends the retained messages filter by filter, so a
            # retained occupancy config would come before the state.
            late = Observer(broker, topics=(OCCUPANCY_CONFIG, STATE)).connect()
            try:
                late.wait(STATE)
                assert late.on(OCCUPANCY_CONFIG) == []
            finally:
                late.close()
    finally:
        observer.close()


@pytest.mark.slow
def test_a_start_from_the_page_preheats_the_empty_mat_and_a_press_needs_someone(
        launch: Launch) -> None:
    """The page's start is as remote as MQTT's: a preheat, never a running session,
    until someone lies down and presses."""
    mat = launch(config_text(), "--sim-occupancy")
    state = mat.page.get("/api/state").json()
    assert state["occupied"] is False and state["state"] == "idle"
    started = time.monotonic()
    assert mat.page.command("start").status == 202
    preheat, _ = mat.state(lambda s: s["state"] == "preheat" and s["heater_on"], started)
    assert preheat["occupied"] is False and preheat["awaiting_press"]

    pressed = time.monotonic()
    mat.tell("press")
    refused = mat.notice("refused", pressed)
    assert refused["command"] == "press" and "nobody on the mat" in refused["reason"]
    assert mat.page.get("/api/state").json()["state"] == "preheat"

    lay_down = time.monotonic()
    running, _ = mat.lie_down_and_press()
    assert running["occupied"] is True
    mat.state(lambda s: s["state"] == "running" and s["heater_on"], lay_down)
    assert all(s["state"] != "running" for s in mat.states(started, lay_down))


@pytest.mark.slow
def test_a_crash_mid_session_with_the_person_gone_comes_back_without_heat(
        launch: Launch, tmp_path: Path) -> None:
    """SIGKILL mid-session, and the new process finds nobody on the mat (its simulated
    person starts off): it comes up cooling down, heats nothing, resumes nothing."""
    config = config_text(pin=True)  # the sensor by the config key, not --sim-occupancy
    first = launch(config)
    _, running_at = first.lie_down_and_press()
    first.state(lambda s: s["state"] == "running" and s["elapsed_s"] >= 6, running_at)
    first.stop(signal_kill=True)
    [(_, reason, _)] = session_rows(tmp_path / "state")
    assert reason == "interrupted"

    again = launch(config)
    line = again.wait_line("] ")
    assert "] cooldown" in line and "heater off" in line and "mat empty" in line, line
    up = time.monotonic()
    state = again.page.get("/api/state").json()
    assert (state["state"], state["heater_on"], state["vibration"], state["occupied"]) == (
        "cooldown", False, 0, False)
    # The cooldown rows come before any occupancy check (session.py: COOLDOWN Press is
    # refused "cooling down"), so the press is refused for the cooldown, empty mat or not.
    for person, occupied in (("person off", False), ("person on", True)):
        again.tell(person)
        again.state(occupied_is(occupied), up)
        mark = again.mark()
        again.tell("press")
        assert "refused press: cooling down" in again.wait_line("refused", after=mark)
    assert all(not s["heater_on"] and s["state"] == "cooldown" for s in again.states(up))
    assert not any("session started" in line for line in again.lines)


@pytest.mark.slow
def test_a_sensor_stuck_empty_pauses_and_ends_the_session_under_its_person(
        launch: Launch) -> None:
    """The sensor fails "empty" while someone lies there: the mat errs on the safe side."""
    mat = launch(config_text(), "--sim-occupancy")
    mat.lie_down_and_press()
    stuck = time.monotonic()
    mat.tell("fault occupancy_stuck_empty")
    paused, paused_at = mat.state(lambda s: s["occupied"] is False, stuck)
    assert paused["state"] == "running" and not paused["heater_on"]
    ended = mat.notice("session_ended", stuck)
    assert ended["reason"] == "vacated"
    assert GRACE_S <= ended["elapsed_s"] - paused["elapsed_s"] <= GRACE_S + LATE_S, ended
    assert_paused_until_the_end(mat, paused_at, time.monotonic())


@pytest.mark.slow
def test_a_sensor_stuck_occupied_still_ends_the_session_at_its_planned_time(
        launch: Launch) -> None:
    """The sensor fails "someone there" and the person leaves: the mat cannot know, but
    the session still ends when planned (1 min), never later."""
    mat = launch(config_text(default_program="quick"), "--sim-occupancy")
    running, running_at = mat.lie_down_and_press()
    assert running["planned_min"] == 1
    stuck = time.monotonic()
    mat.tell("fault occupancy_stuck_occupied")
    mat.tell("person off")
    ended = mat.notice("session_ended", stuck, timeout_s=SESSION_WAIT_S)
    ended_at = time.monotonic()
    assert ended["reason"] == "completed" and ended["elapsed_s"] == 60
    assert (ended_at - running_at) * SPEED <= 60 + LATE_S
    assert all(s["occupied"] is True for s in mat.states(stuck, ended_at))
    healed = time.monotonic()
    mat.tell("fault occupancy_stuck_occupied off")  # the sensor reads the empty mat again
    mat.state(lambda s: s["occupied"] is False and s["state"] == "cooldown", healed)
