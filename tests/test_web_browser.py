"""The mat's page in a real browser: Debian's headless Chromium, driven by Playwright,
against `matpi run --simulate` as a subprocess (its button and faults played on stdin).

It also takes the README's screenshots (390x844 phone, light theme, the whole
page; 1280x800 desktop, dark theme). They go to a temporary folder, or to the
folder named by $MATPI_SCREENSHOTS:

    MATPI_SCREENSHOTS=docs .venv/bin/python -m pytest tests/test_web_browser.py

Every wait is for something on the page, with a deadline.
"""

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from matpi.store.history import HISTORY_FILENAME, History, SessionRow

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
SPEED = 5
"""Fast enough to see the mat warm up; slow enough that a loaded machine never starves the
sensor poller into a stale-reading fault (10 s of mat time: 2 s here)."""
WAIT_MS = 15_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="needs Debian's chromium: apt-get install -y chromium"),
]


def seed_history(state_dir: Path) -> None:
    """Four weeks of use before today, so that the 30-day chart has something to show."""
    history = History.open(state_dir / HISTORY_FILENAME)
    (state_dir / "simulated-mat").touch()  # a simulation's own state: --speed may be fast
    try:
        today = date.today()
        for days_ago in range(1, 29):
            if days_ago in (13, 14, 20, 25):
                continue  # days off
            day = today - timedelta(days=days_ago)
            minutes = 5 + min(28 - days_ago, 15)
            stopped = days_ago in (11, 18)
            ended = datetime.combine(day, datetime.min.time()).replace(hour=21).timestamp()
            actual_s = minutes * 60.0 * (0.5 if stopped else 1.0)
            history.record_session(SessionRow(
                started_wall=ended - actual_s, ended_wall=ended, program="beginner",
                planned_min=minutes, actual_s=actual_s,
                end_reason="stopped" if stopped else "completed", peak_c=37.2,
                dose_cem43=0.05, heat_level="low", pattern="steady"))
    finally:
        history.close()


class Daemon:
    """`matpi run --simulate` with its page on a free port and its mat on stdin."""

    def __init__(self, state_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "matpi", "run", "--simulate", "--speed", str(SPEED),
             "--state-dir", str(state_dir), "--web-port", "0", "--sim-stdin"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        banner = self.process.stdout.readline()
        match = re.search(r"the mat's page: (http://127\.0\.0\.1:\d+/)", banner)
        assert match, f"no URL in the banner: {banner!r}"
        self.url = match.group(1)

    def tell(self, line: str) -> None:
        """A line on the daemon's stdin: "press", "long", "fault NAME"."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "api/state", timeout=10) as reply:
            state: dict[str, Any] = json.load(reply)
            return state

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    state_dir = tmp_path / "state"
    seed_history(state_dir)
    d = Daemon(state_dir)
    yield d
    d.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def screenshots_folder(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MATPI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_session_from_the_phone(daemon: Daemon, browser: Any, tmp_path: Path) -> None:
    expect = playwright.expect
    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="light")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(daemon.url)

    state = page.locator("#state")
    expect(state).to_have_text("Ready")
    expect(page.locator("#link")).to_have_text("live")

    page.select_option("#program", "deep")
    expect(page.locator("#state-detail")).to_contain_text("deep · 30 min")

    page.click("#start")
    expect(state).to_have_text("Warming up: waiting for you at the mat")
    expect(page.locator("#heater")).to_have_text("heating")
    # The mat warms a while before someone lies down: the curve gets its first points.
    # (The page's policy forbids eval, so no wait_for_function: the points attribute.)
    curve = page.locator("#curve polyline")
    expect(curve).to_have_attribute("points", re.compile(r"^(\S+ ){5,}\S+$"))

    daemon.tell("press")
    expect(state).to_have_text("Running")
    remaining = page.locator("#remaining")
    first = remaining.inner_text()
    expect(remaining).not_to_have_text(first)  # it counts down
    assert _seconds(remaining.inner_text()) < _seconds(first)

    page.click("#heat button[value=medium]")
    expect(page.locator("#heat button[value=medium]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#setpoint")).to_have_text("target 39 °C")
    assert daemon.state()["heat_level"] == "medium"

    expect(curve).to_have_attribute("points", re.compile(r"^(\S+ ){8,}\S+$"))
    expect(page.locator("#days rect.day-done")).to_have_count(22)  # seeded

    folder = screenshots_folder(tmp_path)
    page.screenshot(path=str(folder / "web-phone.png"), full_page=True)
    desktop = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    wide = desktop.new_page()
    wide.goto(daemon.url)
    expect(wide.locator("#state")).to_have_text("Running")
    expect(wide.locator("#days rect.day-done")).to_have_count(22)
    expect(wide.locator("#curve polyline")).to_have_count(1)
    wide.screenshot(path=str(folder / "web-desktop.png"))
    desktop.close()

    page.click("#stop")
    expect(state).to_have_text("Resting")
    expect(page.locator("#start")).to_be_disabled()

    # A bad value: a visible message, and nothing changes.
    planned = daemon.state()["planned_min"]
    page.fill("#duration", "45")
    page.locator("#duration").press("Enter")
    message = page.locator("#message")
    expect(message).to_be_visible()
    expect(message).to_contain_text("Session length 45 is not possible: a number from 1 to 30")
    page.locator("#program").focus()  # leave the field: it shows the mat's value again
    expect(page.locator("#duration")).to_have_value(f"{planned:g}")
    assert daemon.state()["planned_min"] == planned

    # A fault: its reason, how to reset it at the mat, and no way to reset it here.
    daemon.tell("fault sensor_disconnected")
    expect(page.locator("#fault")).to_be_visible()
    expect(page.locator("#fault-reason")).to_contain_text("sensor")
    expect(page.locator("#fault")).to_contain_text("Hold the button on the mat to reset")
    expect(state).to_have_text("Fault")
    expect(page.get_by_role("button", name=re.compile("reset|clear", re.I))).to_have_count(0)
    expect(page.locator("#start")).to_be_disabled()
    assert daemon.state()["state"] == "fault"

    refused = "the server responded with a status of 400"  # the bad value, as meant
    assert [p for p in problems if refused not in p] == [], problems  # no script error, no CSP
    context.close()


def test_the_page_works_without_javascript_errors_at_360_px(daemon: Daemon, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    page.goto(daemon.url)
    playwright.expect(page.locator("#state")).to_have_text("Ready", timeout=WAIT_MS)
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 360, "the page is wider than a small phone"
    for selector in ("#start", "#stop", "#heat button", "#pattern button", "#duration-up"):
        box = page.locator(selector).first.bounding_box()
        assert box is not None and box["height"] >= 44, selector  # a thumb's size
    context.close()


def _seconds(text: str) -> int:
    minutes, seconds = text.split(":")
    return int(minutes) * 60 + int(seconds)

