"""Soak: the daemon for hours under sessions, faults and an MQTT command stream.

    PYTHONPATH=src .venv/bin/python bench/soak.py          # 2 h, the figures for issue 19
    PYTHONPATH=src .venv/bin/python bench/soak.py --minutes 12 --warmup-min 4 --sample-s 30
    PYTHONPATH=src .venv/bin/python bench/soak.py --minutes 30 --probe   # what grows?

Starts its own mosquitto on a free loopback port and `python -m matpi run
--simulate --sim-stdin --speed 60` with a config that turns MQTT on at that
broker, raises the daily cap to its ceiling (120 min) and turns the mat's page
on at 127.0.0.1 on a free port (`--no-web`: off), all in a temporary folder.
The daemon imports matpi from this checkout's `src`. For `--minutes` of wall
time it then plays:

- a person at the mat, on the daemon's stdin: `press` a few seconds into each
  idle spell (a session of the default program), `press` to confirm a remote
  preheat, and now and then a `double` (next program) first;
- a fault every `--fault-every-min` (the first after half of it), during a
  session when there is one: `fault sensor_disconnected`, `... off` once the
  mat latched it, then `long` presses once it reads below 35 °C until the fault
  is cleared; a fault the soak did not play is cleared the same way, and counted;
- a command stream at `--rate` commands/s from a paho client: mostly valid
  settings (program, heat, pattern, intensity, duration), a tenth invalid (out
  of range, unknown, not UTF-8, over 1 KiB, deeply nested JSON, retained, an
  unknown command), and a few starts and stops.

Every `--sample-s` it prints the daemon's resident memory (VmRSS, and RssAnon:
heap and stacks, no file pages), open fds and threads, with the commands,
sessions and faults so far. The summary compares the end with the sample at
`--warmup-min`. Exit status: 1 when RSS grew by more than `--max-growth-mib`
after warm-up, or fds or threads grew (the least of 3 samples at warm-up
against the least of the last 3: a timer thread alive at one sample is not
growth); 0 otherwise; 2 when the soak itself could not run. The command line
that reproduces a run is printed first.

To find what grows: `--probe` runs the daemon's own `main` under a small
bootstrap that, at each sample, also reports Python's allocated blocks, its
objects by type and glibc's malloc in use (extra columns, and the types that
grew at the end); `--tracemalloc` adds a tracemalloc snapshot at warm-up and at
the end and prints the allocation sites that grew. Both cost memory and time
(tracemalloc a lot: at speed 60 its pauses latch stale-reading faults), so the
verdict comes from a run without them.

Nothing is left behind: the daemon and the broker run in their own sessions
(Ctrl-C reaches this script only) and are stopped, by PID, on every way out.
"""

import argparse
import json
import os
import pwd
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
MOSQUITTO = "/usr/sbin/mosquitto"
DEVICE_ID = "soak"
BASE = f"matpi/{DEVICE_ID}"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 30.0
SNAPSHOT_TIMEOUT_S = 120.0
TICK_S = 0.1
MIB = 1024 * 1024

RESET_BELOW_C = 35.0
"""[limits] reset_below_c: a long press clears a fault only below this."""
FAULT_WAIT_S = 30.0
"""How long a played fault may take to latch before it is ended anyway; ten times this
without being cleared, it counts as stuck."""
RUNNING_WAIT_S = 120.0
"""A due fault waits this long for a session to hit; then it is played in any state."""
PRESS_EVERY_S = 3.0
IDLE_S = (2.0, 20.0)
"""Each idle spell lasts a random time in this range (wall seconds) before the press."""

PROGRAMS = ("beginner", "neck", "back", "evening", "deep")
"""The built-in programs (matpi.core.programs); the config adds none."""
SETTINGS: list[tuple[str, list[str]]] = [
    ("program", list(PROGRAMS)),
    ("heat", ["off", "low", "medium", "high"]),
    ("pattern", ["off", "steady", "pulse", "wave", "slow"]),
    ("intensity", [str(n) for n in range(0, 101, 5)] + ["42.5", " 030"]),
    ("duration", [str(n) for n in range(1, 31)]),
]
INVALID: list[tuple[str, bytes]] = [
    ("intensity", b"170"), ("intensity", b"-1"), ("intensity", b"nan"), ("intensity", b"1e9"),
    ("heat", b"lava"), ("pattern", b""), ("duration", b"0"), ("duration", b"999"),
    ("program", b"nosuch"), ("start", b'{"program": "nosuch"}'),
    ("start", b'{"duration_min": 99}'), ("start", b"not json {"), ("start", b"[" * 1000),
    ("intensity", b"\xff\xfe"), ("heat", b"x" * 2000), ("bogus", b"1"), ("session", b"MAYBE"),
]
STARTS: list[tuple[str, bytes]] = [
    ("session", b"ON"), ("start", b""), ("start", b"PRESS"),
    ("start", b'{"program": "back", "duration_min": 15}'),
]
STOPS: list[tuple[str, bytes]] = [("stop", b"PRESS"), ("stop", b""), ("session", b"OFF")]
MIX = {"setting": 0.88, "invalid": 0.10, "start": 0.01, "stop": 0.01}
"""Share of each kind in the stream: at 10/s, one start and one stop every 10 s on
average, so that most sessions still run to their end."""
RETAINED_SHARE = 0.05
"""Of the invalid ones: a valid setting sent with retain, which matpi must refuse."""


# --- processes -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(ready: Any, timeout_s: float, what: str, alive: Any = None) -> None:
    """Polls `ready()` until true; RuntimeError after `timeout_s` or once `alive()` is false."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if alive is not None and not alive():
            raise RuntimeError(f"{what}: the process ended")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.05)


def broker_config(folder: Path, port: int) -> Path:
    """mosquitto on 127.0.0.1:`port`, nothing persisted, as tests/broker.py runs it."""
    config = folder / "mosquitto.conf"
    config.write_text("\n".join([
        f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false",
        "set_tcp_nodelay true", f"user {pwd.getpwuid(os.getuid()).pw_name}",
        "log_dest stderr", "log_type error", "log_type warning", "",
    ]), encoding="utf-8")
    return config


def start_broker(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """mosquitto on 127.0.0.1:`port` (`broker_config`), accepting when this returns."""
    config = broker_config(folder, port)
    with (folder / "mosquitto.log").open("ab") as log:
        process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log, stderr=log,
                                   start_new_session=True)

    def accepts() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    try:
        wait_until(accepts, 10.0, "mosquitto", alive=lambda: process.poll() is None)
    except RuntimeError:
        stop(process)
        raise
    return process


def write_config(folder: Path, port: int, web: bool) -> Path:
    path = folder / "matpi.toml"
    path.write_text(f"""\
[device]
id = "{DEVICE_ID}"
name = "Soak mat"

[mqtt]
enabled = true
host = "127.0.0.1"
port = {port}
base_topic = "matpi"
discovery = true

[limits]
daily_max_min = 120

[web]
enabled = {"true" if web else "false"}
listen = "127.0.0.1"
""", encoding="utf-8")
    return path


def daemon_command(config: Path, state_dir: Path, speed: float, probe: Path | None = None,
                   trace: bool = False) -> list[str]:
    """`python -m matpi run ...`; with `probe` (a folder) the same under PROBE."""
    python = [sys.executable, "-m", "matpi"]
    if probe is not None:
        python = [sys.executable, *(["-X", f"tracemalloc={TRACE_FRAMES}"] if trace else []),
                  "-c", PROBE, str(probe)]
    return [*python, "run", "--simulate", "--speed", f"{speed:g}", "--state-dir",
            str(state_dir), "--web-port", "0", "--sim-stdin", "--config", str(config)]


def start_daemon(command: list[str], log_path: Path) -> subprocess.Popen[str]:
    """The daemon with this checkout's `src` first on its path; no systemd variables."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"),
                                                      env.get("PYTHONPATH")]))
    with log_path.open("a", encoding="utf-8") as log:
        return subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=log,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)


def stop(process: subprocess.Popen[Any] | None) -> int | None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; the exit status, None if it never ran."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
    return process.returncode


# --- the MQTT side -------------------------------------------------------------------


class Observer:
    """One paho client: the latest retained state, events and error replies, counted;
    also the client the command stream publishes with."""

    def __init__(self, port: int) -> None:
        self.state: dict[str, Any] = {}
        self.events: Counter[str] = Counter()
        self.ended: Counter[str] = Counter()
        self.errors = 0
        self._lock = threading.Lock()
        # Not matpi-<device id>: that is the daemon's, and the broker would drop one of us.
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="soak-driver")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe([(f"{BASE}/state", 0), (f"{BASE}/event", 1), (f"{BASE}/error", 1)])

    def _on_message(self, _client: paho.Client, _userdata: Any,
                    message: paho.MQTTMessage) -> None:
        kind = message.topic.rsplit("/", 1)[-1]
        with self._lock:
            if kind == "error":
                self.errors += 1
                return
            data = json.loads(message.payload)
            if kind == "state":
                self.state = data
            elif kind == "event":
                self.events[data.get("event", "?")] += 1
                if data.get("event") == "session_ended":
                    self.ended[data.get("reason", "?")] += 1

    def current(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.state)

    def sessions(self) -> int:
        with self._lock:
            return sum(self.ended.values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class CommandStream:
    """Publishes `rate` commands a second from its own thread, a seeded mix of kinds."""

    def __init__(self, client: paho.Client, rate: float, rng: random.Random) -> None:
        self._client = client
        self._interval_s = 1.0 / rate
        self._rng = rng
        self._stop = threading.Event()
        self.sent: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._run, name="soak-commands", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def total(self) -> int:
        return sum(self.sent.values())

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            kind, topic, payload, retain = self._next()
            self._client.publish(topic, payload, qos=1, retain=retain)
            self.sent[kind] += 1
            due += self._interval_s
            self._stop.wait(max(0.0, due - time.monotonic()))

    def _next(self) -> tuple[str, str, bytes, bool]:
        kind = self._rng.choices(list(MIX), weights=list(MIX.values()))[0]
        retain = False
        if kind == "setting":
            command, values = self._rng.choice(SETTINGS)
            payload = self._rng.choice(values).encode()
        elif kind == "invalid" and self._rng.random() < RETAINED_SHARE:
            command, payload, retain = "intensity", b"50", True
        else:
            command, payload = self._rng.choice({"invalid": INVALID, "start": STARTS,
                                                 "stop": STOPS}[kind])
        return kind, f"{BASE}/{command}/set", payload, retain

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


# --- the person at the mat -----------------------------------------------------------


@dataclass
class Hand:
    """Acts on the daemon's stdin from the retained state: presses, faults, resets."""

    stdin: IO[str]
    fault_every_s: float
    rng: random.Random
    presses: int = 0
    faults_played: int = 0
    faults_cleared: int = 0
    faults_stuck: int = 0
    faults_unplayed: int = 0
    """Faults the mat latched that the soak did not play: worth a look in the log."""
    _phase: str = "none"
    _phase_since: float = 0.0
    _last_press: float = 0.0
    _next_fault: float = 0.0
    _press_at: float | None = None

    def __post_init__(self) -> None:
        self._next_fault = time.monotonic() + self.fault_every_s / 2

    def tick(self, state: dict[str, Any]) -> None:
        now = time.monotonic()
        name = state.get("state")
        if self._phase == "none" and name == "fault":
            self.faults_unplayed += 1
            self._enter("clearing", now)
        elif self._phase == "none" and now >= self._next_fault and (
                name == "running" or now - self._next_fault > RUNNING_WAIT_S):
            self._say("fault sensor_disconnected")
            self.faults_played += 1
            self._enter("injected", now)
        elif self._phase == "injected" and (name == "fault"
                                            or now - self._phase_since > FAULT_WAIT_S):
            self._say("fault sensor_disconnected off")
            self._enter("clearing", now)
        elif self._phase == "clearing":
            self._clear(state, now)
        elif self._phase == "none":
            self._press(state, now)

    def _clear(self, state: dict[str, Any], now: float) -> None:
        """Long presses once the mat is cool, until the fault is gone (or stuck)."""
        if state.get("state") != "fault":
            self.faults_cleared += 1
        elif now - self._phase_since > 10 * FAULT_WAIT_S:
            self.faults_stuck += 1
        else:
            temperature = state.get("temperature_c")
            if (temperature is not None and temperature < RESET_BELOW_C - 0.5
                    and now - self._last_press >= PRESS_EVERY_S):
                self._say("long")
                self._last_press = now
            return
        self._enter("none", now)
        self._next_fault = now + self.fault_every_s

    def _press(self, state: dict[str, Any], now: float) -> None:
        """A press a while into each idle spell (a remote start may come first), and one to
        confirm a remote preheat."""
        idle = state.get("state") == "idle"
        if not idle:
            self._press_at = None
        elif self._press_at is None:
            self._press_at = now + self.rng.uniform(*IDLE_S)
        if now - self._last_press < PRESS_EVERY_S:
            return
        if idle and self._press_at is not None and now >= self._press_at:
            if self.rng.random() < 0.2:
                self._say("double")
            self._say("press")
        elif state.get("state") == "preheat" and state.get("awaiting_press"):
            self._say("press")
        else:
            return
        self.presses += 1
        self._last_press = now

    def _enter(self, phase: str, now: float) -> None:
        self._phase, self._phase_since = phase, now

    def _say(self, line: str) -> None:
        self.stdin.write(line + "\n")
        self.stdin.flush()


# --- sampling ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    minutes: float
    rss_mib: float
    anon_mib: float
    fds: int
    threads: int
    commands: int
    sessions: int
    faults: int
    probe: dict[str, Any] | None = None


def proc_figures(pid: int) -> tuple[float, float, int, int]:
    """VmRSS and RssAnon in MiB, open fds and threads of `pid`, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return (int(fields["VmRSS"][0]) / 1024, int(fields["RssAnon"][0]) / 1024, fds,
            int(fields["Threads"][0]))


def header(probing: bool) -> str:
    probed = f" {'py blocks':>10} {'objects':>8} {'malloc MiB':>10}" if probing else ""
    return (f"{'min':>7} {'RSS MiB':>8} {'anon':>7} {'fds':>4} {'thr':>4} {'commands':>9} "
            f"{'sessions':>8} {'faults':>6}{probed}")


def show(sample: Sample) -> None:
    probed = ""
    if sample.probe is not None:
        probed = (f" {sample.probe['blocks']:10d} {sample.probe['objects']:8d} "
                  f"{sample.probe['malloc'] / MIB:10.2f}")
    print(f"{sample.minutes:7.1f} {sample.rss_mib:8.2f} {sample.anon_mib:7.2f} "
          f"{sample.fds:4d} {sample.threads:4d} {sample.commands:9d} {sample.sessions:8d} "
          f"{sample.faults:6d}{probed}", flush=True)


# --- probing: what grows -------------------------------------------------------------


PROBE = """\
import ctypes, gc, json, os, signal, sys, threading, tracemalloc
from collections import Counter
folder, wake, snap = sys.argv.pop(1), threading.Event(), threading.Event()
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks".split()]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Mallinfo2
def name(o):
    return f"{getattr(o, '__module__', '?')}.{getattr(o, '__qualname__', '?')}"
def probe(n):
    m = mallinfo2()
    types, functions = Counter(), Counter()
    for o in gc.get_objects():
        types[name(type(o)).removeprefix("builtins.")] += 1
        if type(o).__name__ == "function":
            functions[name(o)] += 1
    line = {"blocks": sys.getallocatedblocks(), "objects": sum(types.values()),
            "malloc": m.uordblks + m.hblkhd, "malloc_free": m.fordblks,
            "types": types, "functions": functions}
    with open(f"{folder}/probe.jsonl", "a") as out:
        out.write(json.dumps(line) + "\\n")
    if snap.is_set() and tracemalloc.is_tracing():
        snap.clear()
        tracemalloc.take_snapshot().dump(f"{folder}/{n:05d}.part")
        os.rename(f"{folder}/{n:05d}.part", f"{folder}/{n:05d}.snapshot")
def run():
    for n in range(1_000_000):
        wake.wait()
        wake.clear()
        probe(n)
threading.Thread(target=run, name="soak-probe", daemon=True).start()
signal.signal(signal.SIGUSR1, lambda *_: wake.set())
signal.signal(signal.SIGUSR2, lambda *_: (snap.set(), wake.set()))
from matpi.cli import main
sys.exit(main(sys.argv[1:]))
"""
"""The daemon's own `main` behind a probe: each SIGUSR1 appends a line to probe.jsonl
(Python's allocated blocks, objects by type, glibc malloc in use); each SIGUSR2 also
dumps a tracemalloc snapshot when run with `-X tracemalloc`."""
TRACE_FRAMES = 8


def ask_probe(daemon: subprocess.Popen[str], folder: Path, snapshot: bool) -> dict[str, Any]:
    """Signals the probe and returns the line it writes."""
    path = folder / "probe.jsonl"

    def lines() -> list[str]:
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    before = len(lines())
    daemon.send_signal(signal.SIGUSR2 if snapshot else signal.SIGUSR1)
    wait_until(lambda: len(lines()) > before, PROBE_TIMEOUT_S, "the probe",
               alive=lambda: daemon.poll() is None)
    line: dict[str, Any] = json.loads(lines()[before])
    return line


def largest_changes(old: dict[str, int], new: dict[str, int], top: int = 12) -> str:
    changes = sorted(((new.get(n, 0) - old.get(n, 0), n) for n in set(old) | set(new)),
                     key=lambda change: -abs(change[0]))
    return ", ".join(f"{name} {change:+d}" for change, name in changes[:top] if change)


def show_types(old: dict[str, Any], new: dict[str, Any]) -> None:
    """What changed between two probes: blocks, malloc, objects by type, functions by name."""
    print(f"\nprobe, warm-up -> end: Python blocks {new['blocks'] - old['blocks']:+d}, "
          f"objects {new['objects'] - old['objects']:+d}, malloc in use "
          f"{(new['malloc'] - old['malloc']) / MIB:+.2f} MiB (free in its heap "
          f"{old['malloc_free'] / MIB:.2f} -> {new['malloc_free'] / MIB:.2f} MiB)")
    print("objects by type, largest changes: " + largest_changes(old["types"], new["types"]))
    print("functions by name, largest changes: "
          + largest_changes(old["functions"], new["functions"]))


def snapshots(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.snapshot"))


def show_growth(folder: Path, top: int = 12) -> None:
    """What Python allocated between the first snapshot (warm-up) and the last, largest first."""
    old_path, new_path = snapshots(folder)[0], snapshots(folder)[-1]
    skip = [tracemalloc.Filter(False, tracemalloc.__file__)]
    old = tracemalloc.Snapshot.load(str(old_path)).filter_traces(skip)
    new = tracemalloc.Snapshot.load(str(new_path)).filter_traces(skip)
    diff = new.compare_to(old, "traceback")
    print(f"\ntracemalloc, warm-up -> end: {sum(d.size_diff for d in diff) / MIB:+.3f} MiB "
          f"traced (now {sum(d.size for d in diff) / MIB:.2f} MiB); the largest changes:")
    for d in diff[:top]:
        print(f"{d.size_diff / 1024:+9.1f} KiB {d.count_diff:+7d} blocks, now "
              f"{d.size / 1024:.1f} KiB")
        for line in d.traceback.format(limit=-4):
            print(f"      {line.strip()}" if line.startswith("    ") else f"    {line.strip()}")


# --- the report ----------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile, interpolated between the two nearest values (statistics'
    inclusive method: p 50 is the median); p 0 and 100 are the least and the largest, and
    a single value is every percentile. The benches beside this one share it."""
    if not values:
        raise ValueError("no values")
    if p <= 0:
        return min(values)
    if p >= 100 or len(values) == 1:
        return max(values)
    return statistics.quantiles(values, n=100, method="inclusive")[round(p) - 1]


FLOOR_OF = 3
"""fds and threads are compared by their least in this many samples: a timer thread or a
page request alive at one sample is not growth, one that never goes away is."""


def floor(samples: list[Sample], name: str) -> int:
    return min(int(getattr(s, name)) for s in samples)


def verdict(samples: list[Sample], warmup_min: float, max_growth_mib: float) -> int:
    """Prints the summary; 1 when RSS grew by more than allowed after warm-up or fds or
    threads grew, else 0."""
    warm = next((s for s in samples if s.minutes >= warmup_min), samples[-1])
    end = samples[-1]
    growth = end.rss_mib - warm.rss_mib
    print(f"\nRSS at {warm.minutes:.1f} min (warm-up): {warm.rss_mib:.2f} MiB "
          f"(anon {warm.anon_mib:.2f}); at the end, {end.minutes:.1f} min: {end.rss_mib:.2f} MiB "
          f"(anon {end.anon_mib:.2f})")
    print(f"growth after warm-up: {growth:+.2f} MiB (anon {end.anon_mib - warm.anon_mib:+.2f}); "
          f"allowed {max_growth_mib:g}; peak {max(s.rss_mib for s in samples):.2f} MiB")
    print(f"fds: {warm.fds} at warm-up, {end.fds} at the end, max {max(s.fds for s in samples)}; "
          f"threads: {warm.threads} at warm-up, {end.threads} at the end, "
          f"max {max(s.threads for s in samples)}")
    failed = []
    if end is warm:
        failed.append("no sample after warm-up")
    if growth > max_growth_mib:
        failed.append(f"RSS grew {growth:.2f} MiB")
    after = samples[samples.index(warm):]
    for name in ("fds", "threads"):
        at_warm, at_end = floor(after[:FLOOR_OF], name), floor(after[-FLOOR_OF:], name)
        if at_end > at_warm:
            failed.append(f"{name} grew: {at_warm} at warm-up, {at_end} at the end "
                          f"(the least of {FLOOR_OF} samples)")
    print("FAIL: " + "; ".join(failed) if failed else "OK: flat after warm-up")
    if warm.probe is not None and end.probe is not None and end is not warm:
        show_types(warm.probe, end.probe)
    return 1 if failed else 0


def totals(stream: CommandStream, observer: Observer, hand: Hand) -> None:
    sent = ", ".join(f"{kind} {n}" for kind, n in sorted(stream.sent.items()))
    ended = ", ".join(f"{why} {n}" for why, n in sorted(observer.ended.items())) or "none"
    events = ", ".join(f"{name} {n}" for name, n in sorted(observer.events.items()))
    print(f"commands: {stream.total()} ({sent}); error replies received: {observer.errors}")
    print(f"sessions ended: {observer.sessions()} ({ended}); presses: {hand.presses}")
    print(f"faults played: {hand.faults_played}, cleared: {hand.faults_cleared}, "
          f"stuck: {hand.faults_stuck}; not played here: {hand.faults_unplayed}")
    print(f"events received: {events}")


# --- the run -------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=120.0, help="wall time (default 120)")
    parser.add_argument("--warmup-min", type=float, default=10.0,
                        help="RSS growth counts from this sample on (default 10)")
    parser.add_argument("--sample-s", type=float, default=60.0, help="default 60")
    parser.add_argument("--rate", type=float, default=10.0, help="commands a second (10)")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated speed (60)")
    parser.add_argument("--fault-every-min", type=float, default=10.0,
                        help="wall minutes between faults (10)")
    parser.add_argument("--max-growth-mib", type=float, default=1.0, help="default 1")
    parser.add_argument("--seed", type=int, default=19, help="of the command mix (19)")
    parser.add_argument("--no-web", dest="web", action="store_false",
                        help="the mat's page off (default: on, 127.0.0.1, free port)")
    parser.add_argument("--probe", action="store_true",
                        help="also Python blocks, objects by type and malloc in use per sample")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="--probe under tracemalloc; show the allocation sites that grew")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (daemon log, history, config)")
    args = parser.parse_args(argv)
    args.probe = args.probe or args.tracemalloc
    return args


@dataclass
class Run:
    """The running soak's parts."""

    args: argparse.Namespace
    daemon: subprocess.Popen[str]
    observer: Observer
    stream: CommandStream
    hand: Hand
    probe: Path | None
    samples: list[Sample]


def take_sample(run: Run, minutes: float, last: bool) -> Sample:
    """/proc first, then (with --probe) the probe, which allocates in the daemon itself;
    a tracemalloc snapshot at the first sample after warm-up and at the last one."""
    rss, anon, fds, threads = proc_figures(run.daemon.pid)
    probe = None
    if run.probe is not None:
        first_warm = minutes >= run.args.warmup_min and not any(
            s.minutes >= run.args.warmup_min for s in run.samples)
        probe = ask_probe(run.daemon, run.probe, run.args.tracemalloc and (first_warm or last))
    return Sample(minutes, rss, anon, fds, threads, run.stream.total(),
                  run.observer.sessions(), run.hand.faults_played, probe)


def drive(run: Run) -> None:
    """Ticks the hand and samples until `--minutes` have passed."""
    started = time.monotonic()
    end = started + run.args.minutes * 60
    next_sample = started
    while True:
        now = time.monotonic()
        if run.daemon.poll() is not None:
            raise RuntimeError(f"the daemon ended with {run.daemon.returncode}")
        if now >= next_sample:
            run.samples.append(take_sample(run, (now - started) / 60, last=now >= end))
            show(run.samples[-1])
            if now >= end:
                return
            next_sample = min(next_sample + run.args.sample_s, end)
        run.hand.tick(run.observer.current())
        time.sleep(TICK_S)


def soak(args: argparse.Namespace, folder: Path) -> int:
    port = free_port()
    broker = daemon = observer = stream = None
    probe = folder / "probe" if args.probe else None
    try:
        broker = start_broker(folder, port)
        if probe is not None:
            probe.mkdir()
        command = daemon_command(write_config(folder, port, args.web), folder / "state",
                                 args.speed, probe, args.tracemalloc)
        daemon = start_daemon(command, folder / "matpi.log")
        observer = Observer(port)
        wait_until(lambda: observer.current().get("state") is not None, READY_TIMEOUT_S,
                   "the daemon's first state on MQTT", alive=lambda: daemon.poll() is None)
        shown = command if probe is None else [*command[:command.index("-c") + 1], "<PROBE>",
                                               *command[command.index("-c") + 2:]]
        print(f"daemon PID {daemon.pid}: {shlex.join(shown)}")
        print(f"page: {'on' if args.web else 'off'}; folder: {folder}\n\n{header(args.probe)}",
              flush=True)
        stream = CommandStream(observer.client, args.rate, random.Random(args.seed))
        assert daemon.stdin is not None
        hand = Hand(daemon.stdin, args.fault_every_min * 60, random.Random(args.seed + 1))
        run = Run(args, daemon, observer, stream, hand, probe, [])
        stream.start()
        try:
            drive(run)
        except KeyboardInterrupt:
            print("interrupted")
        stream.close()
        totals(stream, observer, hand)
        if not run.samples:
            return 2
        status = verdict(run.samples, args.warmup_min, args.max_growth_mib)
        if probe is not None and args.tracemalloc and run.samples[-1].minutes >= args.minutes:
            wait_until(lambda: len(snapshots(probe)) >= 2, SNAPSHOT_TIMEOUT_S,
                       "the tracemalloc snapshots", alive=lambda: daemon.poll() is None)
            show_growth(probe)
        return status
    except (RuntimeError, OSError) as exc:
        print(f"soak: {exc}", file=sys.stderr)
        tail(folder / "matpi.log")
        return 2
    finally:
        if stream is not None:
            stream.close()
        exit_code = stop(daemon)
        if observer is not None:
            observer.close()
        stop(broker)
        if exit_code not in (None, 0):
            print(f"the daemon exited with {exit_code}", file=sys.stderr)


def tail(path: Path, lines: int = 20) -> None:
    if path.exists():
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        print("\n".join(f"  | {line}" for line in text), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    script = Path(sys.argv[0]).resolve().relative_to(REPO)
    print(f"$ cd {REPO} && {shlex.join([sys.executable, str(script), *sys.argv[1:]])}",
          flush=True)
    # SIGTERM unwinds like Ctrl-C does, so the finally blocks stop the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = Path(tempfile.mkdtemp(prefix="matpi-soak-"))
    try:
        return soak(args, folder)
    except KeyboardInterrupt:
        print("interrupted before the soak began", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
