"""The breathing guide and the occupancy lines on the mat's page (issue #15).

The guide must breathe with the motor, so the browser tests run the simulated mat at
--speed 1: its clock and the browser's then run together, and the page's phase can be
compared with the mat's at the same instant. The occupancy lines are checked on states
fed to the page: each state exactly as the test needs it, without driving a person.
"""

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import test_web_browser
from conftest import Mat, wait_for
from matpi.core.patterns import INHALE_SHARE, breath_level, breath_phase
from matpi.remote.web.live import LiveState
from test_web_browser import CHROMIUM, Daemon, expect, open_page

browser = test_web_browser.browser
"""The fixture: one headless Chromium per test."""

SAMPLES = 10
SAMPLE_EVERY_MS = 1300
"""10 samples 1.3 s apart: 13 s, more than one breath of the `evening` program (10 s)."""
AGREE_S = 0.1
"""The page's phase and the mat's differ by less than this."""
MAX_ROUND_TRIP_MS = 80.0
"""A sample whose /api/state took longer is taken again: its instant is too uncertain."""
LEVEL_TOLERANCE = 0.06
"""The drawn level may be a frame or two old: the level moves at most 0.4 a second."""

NEEDS_CHROMIUM = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="needs Debian's chromium: apt-get install -y chromium")


def in_chromium(test: Callable[..., None]) -> Callable[..., None]:
    """A browser test: slow, and skipped without Debian's chromium. (Not the whole module:
    the last test needs neither.)"""
    marked: Callable[..., None] = pytest.mark.slow(NEEDS_CHROMIUM(test))
    return marked


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    """`matpi run --simulate` at --speed 1, with an empty state folder."""
    monkeypatch.setattr(test_web_browser, "SPEED", 1)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    d = Daemon(state_dir)
    try:
        wait_for(lambda: first_state(d), what="the mat's first state")
        yield d
    finally:
        d.stop()


def first_state(daemon: Daemon) -> bool:
    """Whether the page has a state yet: until the controller's first, /api/state is 503."""
    try:
        return bool(daemon.state())
    except urllib.error.HTTPError as starting:
        starting.close()
        return False


def command(daemon: Daemon, name: str, value: object) -> None:
    """A command as a script sends it (POST /api/command, JSON, no Origin)."""
    body = json.dumps({"command": name, "value": value}).encode()
    request = urllib.request.Request(daemon.url + "api/command", body,
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 202


def start_running(page: Any, daemon: Daemon, program: str) -> None:
    """A session of `program`, started on the page and confirmed by the mat's button."""
    expect(page.locator("#state")).to_have_text("Ready")
    page.select_option("#program", program)
    expect(page.locator("#state-detail")).to_contain_text(f"{program} ·")
    page.click("#start")
    expect(page.locator("#state")).to_have_text("Warming up: waiting for you at the mat")
    daemon.tell("press")
    expect(page.locator("#state")).to_have_text("Running")


SAMPLE_JS = """async () => {
    const asked = performance.now();
    const reply = await fetch("/api/state", { cache: "no-store" });
    const answered = performance.now();
    const shown = window.matpiBreath();
    const level = document.getElementById("breath-disc").style.getPropertyValue("--level");
    const words = document.getElementById("breath-words").textContent;
    const state = await reply.json();
    return { shown, level: Number(level), words, round_trip_ms: answered - asked,
             breath_s: state.breath_s, breaths_per_min: state.breaths_per_min };
}"""
"""The page's phase and, at the same instant, the mat's: its breath_s was taken about
half the round trip before the answer arrived."""


def sample(page: Any) -> dict[str, Any]:
    """One sample with a short round trip; slow ones (a loaded machine) are taken again."""
    for _ in range(20):
        taken: dict[str, Any] = page.evaluate(SAMPLE_JS)
        if taken["round_trip_ms"] <= MAX_ROUND_TRIP_MS:
            return taken
    raise AssertionError(f"/api/state kept taking over {MAX_ROUND_TRIP_MS} ms: {taken}")


def off_by_s(page_s: float, mat_s: float, period_s: float) -> float:
    """page_s - mat_s, across the wrap-around from one breath to the next."""
    return (page_s - mat_s + period_s / 2) % period_s - period_s / 2


def near_edge(into_s: float, period_s: float, margin_s: float) -> bool:
    """Within `margin_s` of an inhale/exhale switch, where a frame's delay flips the words."""
    return any(abs(off_by_s(into_s, edge_s, period_s)) < margin_s
               for edge_s in (0.0, INHALE_SHARE * period_s))


@in_chromium
def test_the_breathing_guide_keeps_step_with_the_motor(daemon: Daemon, browser: Any) -> None:
    page = open_page(browser, daemon.url)
    problems: list[str] = []  # a script error, or the policy refusing how the disc is drawn
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    guide = page.locator("#breath")
    expect(page.locator("#state")).to_have_text("Ready")
    expect(guide).to_be_hidden()
    assert page.evaluate("window.matpiBreath()") is None
    start_running(page, daemon, "evening")
    expect(guide).to_be_visible()
    expect(page.locator("#breath-words")).to_have_text(re.compile(r"^Breathe (in|out)$"))

    phases = set()
    for _ in range(SAMPLES):
        taken = sample(page)
        period_s = 60.0 / taken["breaths_per_min"]
        mat_s = (taken["breath_s"] + taken["round_trip_ms"] / 2000.0) % period_s
        shown = taken["shown"]
        assert abs(off_by_s(shown["into_s"], mat_s, period_s)) < AGREE_S, (shown, mat_s)
        inhaling, _share = breath_phase(mat_s, taken["breaths_per_min"])
        if not near_edge(mat_s, period_s, AGREE_S):
            assert shown["inhaling"] is inhaling, (shown, mat_s)
        if not near_edge(mat_s, period_s, 4 * AGREE_S):  # words change at a frame
            assert taken["words"] == ("Breathe in" if inhaling else "Breathe out"), taken
        expected_level = breath_level(mat_s, taken["breaths_per_min"])
        assert abs(taken["level"] - expected_level) < LEVEL_TOLERANCE, (taken, expected_level)
        phases.add(inhaling)
        page.wait_for_timeout(SAMPLE_EVERY_MS)  # pacing only: each sample checks itself
    assert phases == {True, False}, "the samples saw both an inhale and an exhale"

    page.click("#stop")
    expect(page.locator("#state")).to_have_text("Resting")
    expect(guide).to_be_hidden()
    expect(page.locator("#breath-words")).to_be_hidden()
    assert problems == []


@in_chromium
def test_the_guide_comes_and_goes_with_the_breathe_pattern(daemon: Daemon, browser: Any) -> None:
    page = open_page(browser, daemon.url)
    guide = page.locator("#breath")
    start_running(page, daemon, "beginner")  # steady vibration
    expect(page.locator("#pattern button[value=steady]")).to_have_attribute("aria-pressed", "true")
    expect(guide).to_be_hidden()
    assert daemon.state()["breath_s"] is None

    command(daemon, "pattern", "breathe")
    expect(guide).to_be_visible()
    expect(page.locator("#breath-words")).to_be_visible()
    assert daemon.state()["breath_s"] is not None

    command(daemon, "pattern", "wave")
    expect(guide).to_be_hidden()
    expect(page.locator("#breath-words")).to_be_hidden()
    assert page.evaluate("window.matpiBreath()") is None


# --- states fed to the page: occupancy, and the guide on a polling page ------------------

PAUSED = "Heat and vibration paused — lie back down to go on."


@pytest.mark.parametrize(
    ("change", "chip", "paused", "guide"),
    [
        ({"state": "running", "occupied": None}, None, False, False),
        ({"state": "idle", "occupied": False}, "mat empty", False, False),
        ({"state": "running", "occupied": True, "breath_s": 2.0}, "on the mat", False, True),
        ({"state": "running", "occupied": False, "breath_s": 2.0}, "mat empty", True, False),
        ({"state": "preheat", "occupied": False}, "mat empty", False, False),
    ],
    ids=["no sensor", "idle and empty", "lying down", "got up", "preheat before lying down"],
)
@in_chromium
def test_occupancy_shows_when_the_mat_knows_it(
    daemon: Daemon, browser: Any, change: dict[str, Any], chip: str | None, paused: bool,
    guide: bool
) -> None:
    """The stream is refused, so the page polls /api/state, which says what the test feeds."""
    fed = {**daemon.state(), "breaths_per_min": 6.0, "breath_s": None, **change}

    def state(route: Any) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(fed))

    page = open_page(browser, daemon.url, route={"**/api/events": lambda route: route.abort(),
                                                 "**/api/state": state})
    expect(page.locator("#connection")).to_contain_text("refreshing every")
    expect(page.locator("#state")).to_have_attribute("data-state", fed["state"])
    presence = page.locator("#occupied")
    if chip is None:
        expect(presence).to_be_hidden()
    else:
        expect(presence).to_have_text(chip)
    visible(page.locator("#paused"), paused)
    if paused:
        expect(page.locator("#paused")).to_have_text(PAUSED)
    visible(page.locator("#breath"), guide)
    visible(page.locator("#breath-words"), guide)


def visible(locator: Any, shown: bool) -> None:
    if shown:
        expect(locator).to_be_visible()
    else:
        expect(locator).to_be_hidden()


@in_chromium
def test_a_start_on_an_empty_mat_says_why_it_was_refused(daemon: Daemon, browser: Any) -> None:
    """No special case: the mat's refusal is shown as every refusal is."""
    idle = json.dumps({**daemon.state(), "occupied": False})
    refused = json.dumps({"event": "refused", "command": "start",
                          "reason": "nobody is on the mat"})

    def stream(route: Any) -> None:
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"},
                      body=f"retry: 600000\n\nevent: state\ndata: {idle}\n\n"
                           f"event: notice\ndata: {refused}\n\n")

    page = open_page(browser, daemon.url, route={"**/api/events": stream})
    expect(page.locator("#status-card #message-text")).to_have_text(
        "The mat did not start. Nobody is on the mat.")
    expect(page.locator("#occupied")).to_have_text("mat empty")


# --- /api/state between snapshots -----------------------------------------------------


def test_a_polled_state_moves_the_breath_on_to_the_moment_it_is_served(mat: Mat) -> None:
    """Without the move, a polling page would draw the breath as it was at the last
    snapshot, up to a second or more behind the motor."""
    clock = {"now": 100.0}
    live = LiveState(now=lambda: clock["now"], wall=lambda: 1_700_000_000.0)
    snapshot = replace(mat.machine.snapshot(mat.now), breaths_per_min=6.0, breath_s=2.5)
    live.update(snapshot, [])
    assert json.loads(live.state_json or "")["breath_s"] == 2.5
    clock["now"] += 3.25
    assert json.loads(live.state_json or "")["breath_s"] == 5.75
    clock["now"] += 6.0  # past the end of the breath (10 s): into the next one
    assert json.loads(live.state_json or "")["breath_s"] == 1.75

    still = replace(snapshot, breath_s=None)
    live.update(still, [])
    clock["now"] += 4.0
    assert json.loads(live.state_json or "")["breath_s"] is None
