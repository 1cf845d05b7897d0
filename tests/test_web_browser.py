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
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from matpi.remote.web.live import MAX_SUBSCRIBERS
from matpi.remote.web.security import PasswordFile
from matpi.store.history import HISTORY_FILENAME, History, SessionRow

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
SPEED = 5
"""Fast enough to see the mat warm up; slow enough that a loaded machine never starves the
sensor poller into a stale-reading fault (10 s of mat time: 2 s here)."""
WAIT_MS = 15_000
STREAM_RETRY_MS = 30_000
"""How often a polling page tries the live stream again (app.js)."""

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

    def __init__(self, state_dir: Path, config: Path | None = None) -> None:
        extra = ["--config", str(config)] if config is not None else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "matpi", "run", "--simulate", "--speed", str(SPEED),
             "--state-dir", str(state_dir), "--web-port", "0", "--sim-stdin", *extra],
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

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The whole daemon stopped (SIGSTOP): its connections stay open and say nothing,
        as over a Wi-Fi that went away."""
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.process.pid, signal.SIGCONT)

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
    expect(message).to_contain_text("A session of 45 min is too long: choose 1 to 30 min.")
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


# --- what the person sees when the page cannot keep up (issue #18) ------------------------


def open_page(browser: Any, url: str, *, fake_clock: bool = False,
              route: dict[str, Any] | None = None) -> Any:
    """A new phone-sized page on `url`. `fake_clock`: time flows as usual, and the test
    may jump ahead; `route`: URL pattern -> handler, for what the mat must not answer."""
    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="light")
    page = context.new_page()
    if fake_clock:
        page.clock.install()
    for pattern, handler in (route or {}).items():
        page.route(pattern, handler)
    page.goto(url)
    return page


def _last_update_s(line: Any) -> int:
    match = re.search(r"last update (\d+)\s+s ago", line.inner_text())
    assert match, line.inner_text()
    return int(match.group(1))


def test_data_that_is_not_live_is_greyed_and_says_since_when(
    daemon: Daemon, browser: Any
) -> None:
    page = open_page(browser, daemon.url)
    expect(page.locator("#state")).to_have_text("Ready")
    page.click("#start")
    daemon.tell("press")
    expect(page.locator("#state")).to_have_text("Running")
    app, line, ring = page.locator("#app"), page.locator("#connection"), page.locator(".ring-wrap")
    expect(line).to_be_hidden()
    expect(ring).to_have_css("opacity", "1")

    with daemon.frozen():
        # The stream stays open and says nothing, as over a Wi-Fi gone: the countdown
        # stops, and the page must not let it look like a running one.
        expect(app).to_have_attribute("data-live", "no")
        expect(page.locator("#link")).to_have_text("not live")
        expect(line).to_have_text(re.compile(r"^Not live: last update \d+\s+s ago\."))
        first = _last_update_s(line)
        wait_for(lambda: _last_update_s(line) > first, what="the last update counts up")
        expect(ring).to_have_css("opacity", "0.6")
        expect(page.locator("#start")).to_be_disabled()  # its effect could not be seen
        expect(page.locator("#stop")).to_be_enabled()  # stopping is always safe
        expect(page.locator("#heat button").first).to_be_disabled()

    # Live again: everything as it was (the mat itself may have faulted meanwhile: its
    # sensor poller was frozen too).
    expect(app).to_have_attribute("data-live", "yes")
    expect(page.locator("#link")).to_have_text("live")
    expect(line).to_be_hidden()
    expect(ring).to_have_css("opacity", "1")
    expect(page.locator("#heat button").first).to_be_enabled()

    daemon.stop()  # the stream ends: the page says so at once
    expect(app).to_have_attribute("data-live", "no")
    expect(line).to_have_text(re.compile(r"^Not live: last update \d+\s+s ago\."))
    expect(page.locator("#start")).to_be_disabled()


def test_a_sensor_fault_shows_no_reading_never_an_old_number(daemon: Daemon, browser: Any) -> None:
    page = open_page(browser, daemon.url)
    temp = page.locator("#temp")
    expect(temp).to_have_text(re.compile(r"^\d+\.\d$"))
    daemon.tell("fault sensor_disconnected")
    expect(page.locator("#fault")).to_be_visible()
    expect(temp).to_have_text("no reading")
    expect(page.locator("#temp-unit")).to_be_hidden()
    assert daemon.state()["temperature_c"] is None


def test_a_message_covers_no_control_and_can_be_closed(daemon: Daemon, browser: Any) -> None:
    page = open_page(browser, daemon.url)
    expect(page.locator("#state")).to_have_text("Ready")
    message = page.locator("#message")
    for close in ("Escape", "the close button"):
        page.fill("#duration", "45")
        page.locator("#duration").press("Enter")
        expect(message).to_be_visible()
        expect(page.locator("#message-text")).to_have_attribute("role", "alert")
        expect(page.locator("#settings-card #message")).to_have_count(1)  # by what was used
        box = message.bounding_box()
        controls = page.locator("button:visible, input:visible, select:visible")
        for control in controls.all():
            if control.get_attribute("id") == "message-close":
                continue
            other = control.bounding_box()
            assert box is not None and other is not None
            assert not _overlap(box, other), control.evaluate("e => e.outerHTML")
        if close == "Escape":
            page.keyboard.press("Escape")
        else:
            page.click("#message-close")
        expect(message).to_be_hidden()
        page.locator("#program").focus()  # leave the field: it shows the mat's value again
        expect(page.locator("#duration")).not_to_have_value("45")


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


@pytest.fixture
def locked_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A simulated mat whose page has a password."""
    password_file = tmp_path / "web-password"
    PasswordFile(password_file).write("correct horse")
    config = tmp_path / "matpi.toml"
    config.write_text(f'[web]\nenabled = true\nlisten = "127.0.0.1"\n'
                      f"password_file = {json.dumps(str(password_file))}\n")
    state_dir = tmp_path / "state"
    seed_history(state_dir)
    d = Daemon(state_dir, config)
    yield d
    d.stop()


def test_a_locked_out_login_says_so_plainly(locked_daemon: Daemon, browser: Any) -> None:
    page = open_page(browser, locked_daemon.url)
    expect(page.locator("#login")).to_be_visible()
    text = page.locator("#message-text")
    for _ in range(5):
        page.fill("#password", "wrong horse")
        with page.expect_response("**/api/login") as wrong:
            page.press("#password", "Enter")
        assert wrong.value.status == 401
        expect(text).to_have_text("Wrong password.")
    page.fill("#password", "correct horse")
    with page.expect_response("**/api/login") as limited:
        page.press("#password", "Enter")
    assert limited.value.status == 429
    wait_s = limited.value.headers["retry-after"]
    expect(text).to_have_text(f"Too many wrong passwords. Try again in {wait_s} s.")
    expect(page.locator("#login #message")).to_be_visible()


def test_a_remote_start_counts_down_the_wait_for_a_press(daemon: Daemon, browser: Any) -> None:
    page = open_page(browser, daemon.url)
    expect(page.locator("#state")).to_have_text("Ready")
    page.click("#start")
    expect(page.locator("#state")).to_have_text("Warming up: waiting for you at the mat")
    expect(page.locator("#remaining-label")).to_have_text("left to press")
    ring, words = page.evaluate(  # both at once: the state changes every second
        "['remaining', 'state-detail'].map((id) => document.getElementById(id).textContent)")
    assert 0 < _seconds(ring) <= _options(daemon)["limits"]["preheat_max_min"] * 60
    assert f"the mat stops warming by itself in {ring}." in words
    expect(page.locator("#remaining")).not_to_have_text(ring)  # it counts down


def _options(daemon: Daemon) -> dict[str, Any]:
    with urllib.request.urlopen(daemon.url + "api/options", timeout=10) as reply:
        options: dict[str, Any] = json.load(reply)
        return options


def test_every_countdown_is_whole_seconds_rounded_down(daemon: Daemon, browser: Any) -> None:
    """The ring and every text show the floor of the seconds the mat sends, as the mat's
    own words do ("cooling down: 9:58 left"). The mat sends whole seconds; the .9 here
    tells rounding down from rounding to the nearest. The state is fed to the page, so
    that it holds still."""
    base = {k: v for k, v in daemon.state().items() if k != "preheat_remaining_s"}
    limits = _options(daemon)["limits"]
    fed: dict[str, Any] = {}

    def stream(route: Any) -> None:
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"},
                      body=f"retry: 600000\n\nevent: state\ndata: {json.dumps(fed)}\n\n")

    def state(route: Any) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(fed))

    session = f"{base['planned_min']:g}:00"
    cases = [
        ({"state": "running", "remaining_s": 89.9}, "1:29", "left", ""),
        ({"state": "cooldown", "cooldown_remaining_s": 598.9}, "9:58", "rest",
         "ready again in 9:58."),
        ({"state": "preheat", "awaiting_press": True, "preheat_remaining_s": 754.9}, "12:34",
         "left to press", "stops warming by itself in 12:34."),
        # Without the field (a mat before it): nothing more than before.
        ({"state": "preheat", "awaiting_press": True}, session, "when you press",
         f"stops warming by itself after {limits['preheat_max_min']:g} min."),
    ]
    page = open_page(browser, "about:blank", route={"**/api/events": stream, "**/api/state": state})
    for change, ring, label, words in cases:
        fed.clear()
        fed.update(base, **change)
        page.goto(daemon.url)
        expect(page.locator("#remaining")).to_have_text(ring)
        expect(page.locator("#remaining-label")).to_have_text(label)
        expect(page.locator("#state-detail")).to_contain_text(words)


def test_the_ring_and_the_mats_own_words_give_the_same_time(daemon: Daemon, browser: Any) -> None:
    """A press while the mat rests: its refusal ("cooling down: 9:58 left") and the ring,
    from the same instant, read the same m:ss."""
    page = open_page(browser, daemon.url)
    state = page.locator("#state")
    expect(state).to_have_text("Ready")
    page.click("#start")
    daemon.tell("press")
    expect(state).to_have_text("Running")
    page.click("#stop")
    expect(state).to_have_text("Resting")
    # The ring and the message after each event: the refusal comes first, then the state
    # of the same instant; the mat counts down 5 s a second, too fast to read them apart.
    page.evaluate("""() => {
        const text = (id) => document.getElementById(id).textContent;
        window.seen = [];
        new MutationObserver(() => window.seen.push([text("remaining"), text("message-text")]))
            .observe(document.getElementById("status-card"),
                     { subtree: true, childList: true, characterData: true });
    }""")
    daemon.tell("press")
    words = page.locator("#status-card #message-text")
    expect(words).to_have_text(
        re.compile(r"^The press did nothing\. Cooling down: \d+:\d\d left\.$"))
    said = re.findall(r"\d+:\d\d", words.inner_text())[0]
    seen = page.evaluate("window.seen")
    assert [said, words.inner_text()] in seen, (said, seen[-5:])


def test_a_ninth_page_polls_and_says_so_then_goes_live(daemon: Daemon, browser: Any) -> None:
    line = None
    with ExitStack() as streams:
        for _ in range(MAX_SUBSCRIBERS):  # plain HTTP clients take every stream
            streams.enter_context(urllib.request.urlopen(daemon.url + "api/events", timeout=10))
        page = open_page(browser, daemon.url, fake_clock=True)
        line = page.locator("#connection")
        expect(line).to_have_text("Live updates are busy: refreshing every 5 s.")
        expect(page.locator("#link")).to_have_text("refreshing")
        expect(page.locator("#state")).to_have_text("Ready")
        expect(page.locator("#app")).to_have_attribute("data-live", "yes")  # polls get through
        page.click("#start")  # the result shows at once: the page reads the state after a command
        expect(page.locator("#state")).to_have_text("Warming up: waiting for you at the mat")
        expect(page.locator("#stop")).to_be_enabled()
    wait_for(lambda: _stream_free(daemon.url), what="the streams closed on the server too")
    page.clock.fast_forward(STREAM_RETRY_MS)  # the page tries the stream again
    expect(page.locator("#link")).to_have_text("live")
    expect(line).to_be_hidden()
    page.click("#stop")
    expect(page.locator("#state")).to_have_text("Resting")


def _stream_free(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "api/events", timeout=10) as reply:
            return bool(reply.status == 200)
    except urllib.error.HTTPError as refused:
        refused.close()
        return False


def test_a_stream_that_keeps_dropping_gives_way_to_polling(daemon: Daemon, browser: Any) -> None:
    page = open_page(browser, daemon.url, route={"**/api/events": lambda route: route.abort()})
    expect(page.locator("#connection")).to_have_text(
        "Live updates keep dropping: refreshing every 5 s.")
    expect(page.locator("#state")).to_have_text("Ready")
    expect(page.locator("#app")).to_have_attribute("data-live", "yes")
    expect(page.locator("#start")).to_be_enabled()
