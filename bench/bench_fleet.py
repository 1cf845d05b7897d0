"""A fleet of simulated mats on one broker: discovery, command latency, memory, broker restart.

    .venv/bin/python bench/bench_fleet.py                    # 50 mats
    .venv/bin/python bench/bench_fleet.py --mats 10 --commands-per-mat 20

A home with many mats, or a care home, puts them all on one mosquitto. This
starts its own mosquitto on a free loopback port (nothing persisted) and N
`python -m matpi run --simulate` daemons at once, each with its own config in a
temporary folder: its own device id, state folder, MQTT on at that broker,
discovery on, the page off. The mats stay idle. One observer client (MQTT 5)
watches `matpi/+/availability`, `matpi/+/state` and `homeassistant/#`, and
stamps each message as it arrives. It measures:

- launch -> all online and all discovered: from the first launch until every
  mat's `online` and every one of its discovery configs (as `matpi` itself
  computes them for that config) have arrived, non-empty and published retained;
- command -> state: an `intensity/set` (QoS 0) to each mat in turn, each a new
  value, timed from its publish to the state from that mat that holds it; before
  each, one publish -> receive on a topic of its own through the same clients
  (the broker hop), so both see the same load. Two commands to one mat are at
  least the bridge's coalescing window (`remote.coalesce.WINDOW_S`) apart, as a
  later one would be held back on purpose. The first round warms up, uncounted;
- memory and CPU: each daemon's VmRSS after the commands, and the broker's CPU
  time (utime + stime) per phase and its VmRSS;
- a broker restart: mosquitto is killed (SIGKILL, a crash) and started again on
  the same port. Nothing was persisted, so every mat must send its availability,
  state and discovery again. A fresh observer subscribes as soon as the broker
  accepts. Figures: time from the kill until all are back, and the spread of
  each mat's first `online` after the kill, in 100 ms buckets: a herd shows as
  most mats in one bucket. A mat quicker than the observer's subscription is
  timed at it, counted in the table and left out of the buckets.

The command line that reproduces the run is printed first, then one aligned
table. Exit status: 0 when every mat came back after the restart, 1 otherwise,
2 when the bench could not run (no broker, a mat did not start or died before
the restart), 130 or 143 after Ctrl-C or SIGTERM. The daemons and the broker
run in their own sessions (Ctrl-C reaches this script only) and are stopped by
PID on every way out: SIGTERM to all at once, SIGKILL to any still running
after 10 s.
"""

import argparse
import json
import os
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
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from bench_daemon import cpu_seconds, status_kb  # a script beside this one
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions
from soak import broker_config, free_port, percentile, stop, tail  # a script beside this one

from matpi.config.load import load_config
from matpi.remote.coalesce import WINDOW_S
from matpi.remote.homeassistant import discovery_messages

REPO = Path(__file__).resolve().parent.parent
MOSQUITTO = "/usr/sbin/mosquitto"
BASE_TOPIC = "matpi"
PREFIX = "homeassistant"
HOP_TOPIC = "bench/fleet/hop"
INTENSITIES_PCT = (41, 42)
"""A command sets whichever of these the mat does not have, so each one changes the state."""
SPACING_S = WINDOW_S + 0.02
"""Between two commands to one mat: past the coalescing window, so each is applied at once."""
WAIT_S = 5.0
"""One hop or one command's state; past it, the message counts as lost."""
CONNECT_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.2
"""How often a long wait also checks that the daemons still run."""
BUCKET_S = 0.1
DAEMON_ENV_DROPPED = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")
"""Under systemd these would make each daemon talk to this script's service manager."""


# --- the mats --------------------------------------------------------------------------


@dataclass
class Mat:
    """One daemon: its device id, its folder, the discovery topics it must publish."""

    device_id: str
    folder: Path
    expected: frozenset[str] = frozenset()
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / "matpi.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def prepare(folder: Path, index: int, port: int) -> Mat:
    """The mat's folder and config; its discovery topics as matpi computes them."""
    device_id = f"fleet{index:03d}"
    mat = Mat(device_id, folder / device_id)
    mat.folder.mkdir()
    config = mat.folder / "matpi.toml"
    config.write_text(f"""\
[device]
id = "{device_id}"
name = "Fleet mat {index}"

[mqtt]
enabled = true
host = "127.0.0.1"
port = {port}
base_topic = "{BASE_TOPIC}"
discovery = true
discovery_prefix = "{PREFIX}"

[web]
enabled = false
""", encoding="utf-8")
    loaded = load_config(config)
    mat.expected = frozenset(topic for topic, payload in
                             discovery_messages(loaded.device, loaded.rules, loaded.mqtt)
                             if payload)
    return mat


def launch(mat: Mat) -> None:
    """`python -m matpi run --simulate` with this checkout's `src` first on its path."""
    env = {k: v for k, v in os.environ.items() if k not in DAEMON_ENV_DROPPED}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"),
                                                      env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "matpi", "run", "--simulate", "--state-dir",
               str(mat.folder / "state"), "--config", str(mat.folder / "matpi.toml")]
    with mat.log.open("ab") as log:
        mat.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)


def stop_all(mats: list[Mat]) -> tuple[int, int]:
    """SIGTERM to every daemon at once, then SIGKILL to those still running after
    STOP_TIMEOUT_S; returns how many needed SIGKILL and how many exited with an error
    (one still importing when SIGTERM came dies of it: that is no error)."""
    running = [m.process for m in mats if m.process is not None and m.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    killed = failed = 0
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            killed += 1
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                continue
        failed += process.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL)
    return killed, failed


# --- the broker ----------------------------------------------------------------------


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_accepting(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not accepts(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mosquitto did not start on port {port}")
        time.sleep(0.01)


# --- MQTT clients ----------------------------------------------------------------------


def no_delay(client: paho.Client, userdata: object, sock: Any) -> None:
    """Small packets at once, as the broker is configured (`set_tcp_nodelay`)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def new_client(name: str) -> paho.Client:
    """MQTT 5, for retain-as-published; the PID in the id lets two benches share a broker."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{os.getpid()}",
                         protocol=paho.MQTTv5)
    client.on_socket_open = no_delay
    return client


@dataclass
class Seen:
    """What the observer has seen, each first arrival stamped with perf_counter_ns."""

    online_at: dict[str, int] = field(default_factory=dict)
    online_retained: set[str] = field(default_factory=set)
    """Mats whose `online` was already stored when the observer subscribed."""
    discovered_at: dict[str, int] = field(default_factory=dict)
    state_at: dict[str, int] = field(default_factory=dict)
    configs: dict[str, dict[str, bool]] = field(default_factory=lambda: defaultdict(dict))
    """Per mat, per config topic: is its latest message non-empty and published retained?"""
    log: dict[str, list[tuple[int, bytes]]] = field(default_factory=lambda: defaultdict(list))
    """Every state and hop message, by topic, in order."""

    def back_at(self, device_id: str) -> int | None:
        """When the mat had shown all three: online, its discovery, its state."""
        stamps = [first.get(device_id) for first in
                  (self.online_at, self.discovered_at, self.state_at)]
        return None if None in stamps else max(s for s in stamps if s is not None)


class Observer:
    """One MQTT 5 client that stamps everything the mats publish. Discovery is subscribed
    with retain-as-published, so it shows that each config went out retained;
    availability without, so an `online` stored before the subscription shows as such."""

    def __init__(self, port: int, expected: dict[str, frozenset[str]]) -> None:
        self.seen = Seen()
        self._expected = expected
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client = new_client("fleet-observer")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port, clean_start=True)
        self._client.loop_start()
        if not self._subscribed.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise RuntimeError("the observer could not subscribe")

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        plain = SubscribeOptions(qos=0)
        client.subscribe([(f"{BASE_TOPIC}/+/availability", plain),
                          (f"{BASE_TOPIC}/+/state", plain), (HOP_TOPIC, plain),
                          (f"{PREFIX}/#", SubscribeOptions(qos=0, retainAsPublished=True))])

    def _on_message(self, client: paho.Client, userdata: object, msg: Any) -> None:
        at_ns = time.perf_counter_ns()
        topic, payload = msg.topic, msg.payload
        parts = topic.split("/")
        seen = self.seen
        with self._cond:
            if topic == HOP_TOPIC:
                seen.log[topic].append((at_ns, payload))
            elif parts[0] == BASE_TOPIC and parts[-1] == "state":
                seen.log[topic].append((at_ns, payload))
                seen.state_at.setdefault(parts[1], at_ns)
            elif parts[0] == BASE_TOPIC and parts[-1] == "availability":
                if payload == b"online" and parts[1] not in seen.online_at:
                    seen.online_at[parts[1]] = at_ns
                    if msg.retain:
                        seen.online_retained.add(parts[1])
            elif parts[0] == PREFIX and len(parts) == 5 and parts[2] in self._expected:
                device_id = parts[2]
                configs = seen.configs[device_id]
                configs[topic] = bool(payload) and bool(msg.retain)
                if device_id not in seen.discovered_at and all(
                        configs.get(t) for t in self._expected[device_id]):
                    seen.discovered_at[device_id] = at_ns
            self._cond.notify_all()

    def wait(self, ready: Callable[[Seen], bool], timeout_s: float,
             alive: Callable[[], bool] = lambda: True) -> bool:
        """Until `ready(seen)`, for at most `timeout_s`; gives up early once `alive()` is false."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not ready(self.seen):
                left = deadline - time.monotonic()
                if left <= 0 or not alive():
                    return False
                self._cond.wait(min(left, POLL_S))
            return True

    def mark(self, topic: str) -> int:
        """How many messages on `topic` so far: `arrival` looks only past them."""
        with self._cond:
            return len(self.seen.log[topic])

    def arrival(self, topic: str, since: int, match: Callable[[bytes], bool]) -> int | None:
        """When the first message on `topic` after `since` that matches arrived (ns)."""
        found: list[int] = []

        def ready(seen: Seen) -> bool:
            nonlocal since
            entries = seen.log[topic]
            for at_ns, payload in entries[since:]:
                if match(payload):
                    found.append(at_ns)
                    return True
            since = len(entries)
            return False

        return found[0] if self.wait(ready, WAIT_S) else None

    def latest(self, topic: str) -> bytes | None:
        with self._cond:
            entries = self.seen.log[topic]
            return entries[-1][1] if entries else None

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def sender(port: int) -> paho.Client:
    """Publishes from the calling thread, with no loop thread: no hand-off in the timing."""
    client = new_client("fleet-sender")
    client.connect("127.0.0.1", port, clean_start=True)
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not client.is_connected():
        if time.monotonic() > deadline:
            raise RuntimeError("the command sender could not connect")
        client.loop(timeout=0.05)
    return client


# --- figures ---------------------------------------------------------------------------


def spread_s(stamps_ns: list[int], origin_ns: int) -> str:
    seconds = [(s - origin_ns) / 1e9 for s in stamps_ns]
    return " / ".join(f"{percentile(seconds, p):.3f}" for p in (0, 50, 100)) + " s"


def last_s(stamps: dict[str, int], origin_ns: int) -> float:
    return (max(stamps.values()) - origin_ns) / 1e9


@dataclass
class Table:
    """Rows of figure, value and a note, printed aligned."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, figure: str, value: str, note: str = "") -> None:
        self.rows.append((figure, value, note))

    def print(self) -> None:
        if not self.rows:
            return
        rows = [("figure", "value", "note"), *self.rows]
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        for figure, value, note in rows:
            print(f"{figure:<{widths[0]}}  {value:>{widths[1]}}  {note}".rstrip())


# --- the phases ------------------------------------------------------------------------


@dataclass
class Fleet:
    """The running bench's parts, so that every way out can stop them."""

    args: argparse.Namespace
    folder: Path
    port: int
    mats: list[Mat] = field(default_factory=list)
    broker: subprocess.Popen[bytes] | None = None
    earlier_brokers_cpu_s: float = 0.0
    """CPU time of the brokers killed so far."""
    observer: Observer | None = None
    table: Table = field(default_factory=Table)

    @property
    def expected(self) -> dict[str, frozenset[str]]:
        return {m.device_id: m.expected for m in self.mats}

    def all_running(self) -> bool:
        return all(m.running() for m in self.mats)

    def broker_pid(self) -> int:
        assert self.broker is not None
        return self.broker.pid

    def start_broker(self) -> None:
        """A broker on the fleet's port; kept here before it is waited for, so that an
        interrupt cannot leave it behind."""
        config = broker_config(self.folder, self.port)
        with (self.folder / "mosquitto.log").open("ab") as log:
            self.broker = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log,
                                           stderr=log, start_new_session=True)
        wait_accepting(self.broker, self.port)


def start_fleet(fleet: Fleet) -> None:
    """Launches every mat at once and waits until each is online, discovered and has sent
    its state."""
    fleet.mats = [prepare(fleet.folder, i, fleet.port)
                  for i in range(fleet.args.mats)]
    observer = fleet.observer = Observer(fleet.port, fleet.expected)
    broker_cpu = cpu_seconds(fleet.broker_pid())
    started = time.perf_counter_ns()
    for mat in fleet.mats:
        launch(mat)
    ids = [m.device_id for m in fleet.mats]
    if not observer.wait(lambda seen: all(seen.back_at(i) is not None for i in ids),
                         fleet.args.timeout_s, fleet.all_running):
        missing = [m for m in fleet.mats if observer.seen.back_at(m.device_id) is None]
        dead = [m.device_id for m in fleet.mats if not m.running()]
        for mat in missing[:1]:
            tail(mat.log, lines=15)
        raise RuntimeError(f"{len(missing)} mat(s) not online and discovered within "
                           f"{fleet.args.timeout_s:g} s; ended: {', '.join(dead) or 'none'}")
    seen = observer.seen
    per_mat = len(fleet.mats[0].expected)
    fleet.table.add("mats", str(len(fleet.mats)),
                    "simulated, idle, MQTT on, page off, one mosquitto")
    fleet.table.add("launch -> all online", f"{last_s(seen.online_at, started):.3f} s",
                    "each mat p0/p50/p100 " + spread_s(list(seen.online_at.values()), started))
    fleet.table.add("launch -> all discovered", f"{last_s(seen.discovered_at, started):.3f} s",
                    f"{per_mat} retained configs per mat")
    fleet.table.add("broker CPU, launch",
                    f"{cpu_seconds(fleet.broker_pid()) - broker_cpu:.2f} s")


def run_commands(fleet: Fleet) -> None:
    """One command to each mat in turn, a hop before each; then memory per daemon."""
    observer = fleet.observer
    assert observer is not None
    broker_cpu = cpu_seconds(fleet.broker_pid())
    send = sender(fleet.port)
    hop_ms: list[float] = []
    state_ms: list[float] = []
    lost = sent = 0
    last_sent: dict[str, float] = {}
    deadline = time.monotonic() + fleet.args.timeout_s
    try:
        for round_ in range(fleet.args.commands_per_mat + 1):  # the first round warms up
            if time.monotonic() > deadline:
                break
            for mat in fleet.mats:
                if time.monotonic() > deadline:
                    break
                if not mat.running():
                    tail(mat.log, lines=15)
                    raise RuntimeError(f"{mat.device_id} ended during the commands")
                time.sleep(max(0.0, last_sent.get(mat.device_id, 0.0) + SPACING_S
                               - time.monotonic()))
                hop, state = command(send, observer, mat, round_)
                last_sent[mat.device_id] = time.monotonic()
                send.loop(timeout=0.0)  # keepalive
                if round_ == 0:
                    continue
                sent += 1
                if hop is None or state is None:
                    lost += 1
                    continue
                hop_ms.append(hop / 1e6)
                state_ms.append(state / 1e6)
    finally:
        send.disconnect()
    broker_cpu = cpu_seconds(fleet.broker_pid()) - broker_cpu
    planned = fleet.args.commands_per_mat * len(fleet.mats)
    if not state_ms:
        raise RuntimeError(f"no command reached its state ({sent} sent, {lost} lost)")
    note = f"{len(state_ms)} commands, QoS 0, {lost} lost"
    if sent < planned:
        note += f"; stopped at --timeout-s after {sent} of {planned}"
    table = fleet.table
    table.add("command -> state p50 / p99",
              f"{statistics.median(state_ms):.3f} / {percentile(state_ms, 99):.3f} ms", note)
    table.add("broker hop p50 / p99",
              f"{statistics.median(hop_ms):.3f} / {percentile(hop_ms, 99):.3f} ms",
              "same clients, just before each command")
    table.add("command -> state / hop",
              f"{statistics.median(state_ms) / statistics.median(hop_ms):.2f}x / "
              f"{percentile(state_ms, 99) / percentile(hop_ms, 99):.2f}x", "p50 / p99")
    table.add("broker CPU, commands", f"{broker_cpu:.2f} s")
    rss = [status_kb(m.pid, "VmRSS") / 1024 for m in fleet.mats]
    table.add("daemon RSS min / median / max",
              f"{min(rss):.1f} / {statistics.median(rss):.1f} / {max(rss):.1f} MiB",
              f"VmRSS after the commands; {sum(rss):.0f} MiB in all")


def command(send: paho.Client, observer: Observer, mat: Mat,
            n: int) -> tuple[int | None, int | None]:
    """One hop, then one intensity command to `mat`: both latencies in ns (None: lost)."""
    marker = f"hop-{mat.device_id}-{n}".encode()
    since = observer.mark(HOP_TOPIC)
    started = time.perf_counter_ns()
    send.publish(HOP_TOPIC, marker)
    arrived = observer.arrival(HOP_TOPIC, since, lambda payload: payload == marker)
    hop = None if arrived is None else arrived - started
    topic = f"{BASE_TOPIC}/{mat.device_id}/state"
    current = intensity(observer.latest(topic))
    value = float(next(v for v in INTENSITIES_PCT if v != current))
    since = observer.mark(topic)
    started = time.perf_counter_ns()
    send.publish(f"{BASE_TOPIC}/{mat.device_id}/intensity/set", f"{value:g}")
    arrived = observer.arrival(topic, since, lambda payload: intensity(payload) == value)
    return hop, None if arrived is None else arrived - started


def intensity(payload: bytes | None) -> float | None:
    if not payload:
        return None
    value = json.loads(payload).get("intensity_pct")
    return None if value is None else float(value)


def restart_broker(fleet: Fleet) -> bool:
    """Kills the broker, starts it again on the same port, and waits for every mat to be
    back; True when all are."""
    assert fleet.observer is not None and fleet.broker is not None
    table = fleet.table
    pid = fleet.broker_pid()
    table.add("broker RSS before the restart",
              f"{status_kb(pid, 'VmRSS') / 1024:.1f} MiB",
              f"peak {status_kb(pid, 'VmHWM') / 1024:.1f} MiB")
    fleet.observer.close()
    fleet.observer = None
    fleet.earlier_brokers_cpu_s += cpu_seconds(pid)
    killed = time.perf_counter_ns()
    fleet.broker.kill()
    fleet.broker.wait(timeout=STOP_TIMEOUT_S)
    fleet.start_broker()
    up = time.perf_counter_ns()
    observer = fleet.observer = Observer(fleet.port, fleet.expected)
    watching = time.perf_counter_ns()
    ids = [m.device_id for m in fleet.mats]
    all_back = observer.wait(lambda seen: all(seen.back_at(i) is not None for i in ids),
                             fleet.args.timeout_s, fleet.all_running)
    broker_cpu = cpu_seconds(fleet.broker_pid())
    seen = observer.seen
    back = {i: at for i in ids if (at := seen.back_at(i)) is not None}
    table.add("broker down", f"{(up - killed) / 1e6:.0f} ms",
              f"SIGKILL -> accepting again; observer subscribed "
              f"{(watching - killed) / 1e6:.0f} ms after the kill")
    table.add("restart -> mats back", f"{len(back)} of {len(ids)}",
              "online, state and every discovery config sent again"
              + ("" if all_back else f" (waited {fleet.args.timeout_s:g} s)"))
    if seen.online_at:
        table.add("restart -> all online" if len(seen.online_at) == len(ids)
                  else "restart -> last online", f"{last_s(seen.online_at, killed):.3f} s",
                  "from the kill")
    if seen.discovered_at:
        table.add("restart -> all re-discovered" if len(seen.discovered_at) == len(ids)
                  else "restart -> last re-discovered",
                  f"{last_s(seen.discovered_at, killed):.3f} s")
    if back:
        table.add("restart -> all back" if all_back else "restart -> last back",
                  f"{last_s(back, killed):.3f} s")
    if seen.online_at:
        live = [at for i, at in seen.online_at.items() if i not in seen.online_retained]
        herd(table, list(seen.online_at.values()), live, killed, len(ids))
    table.add("broker CPU, restart", f"{broker_cpu:.2f} s", "the new broker, until all back")
    table.add("broker RSS after the restart",
              f"{status_kb(fleet.broker_pid(), 'VmRSS') / 1024:.1f} MiB")
    return all_back


def herd(table: Table, online_ns: list[int], live_ns: list[int], killed_ns: int,
         mats: int) -> None:
    """The spread of first reconnects after the kill, and how many fell in one bucket.
    The buckets hold only the `online`s that arrived live (`live_ns`): one already stored
    when the observer subscribed is stamped at the subscription, as are all the others
    stored by then, and would make a herd of its own."""
    early = len(online_ns) - len(live_ns)
    buckets = Counter(int((s - killed_ns) / 1e9 / BUCKET_S) for s in live_ns)
    largest = max(buckets.values(), default=0)
    table.add("first reconnect p0 / p50 / p100", spread_s(online_ns, killed_ns),
              "the mat's first `online` after the kill"
              + (f"; {early} already stored when the observer subscribed" if early else ""))
    table.add(f"most reconnects in one {BUCKET_S * 1000:.0f} ms", f"{largest} of {mats}",
              f"{len(buckets)} bucket(s) used"
              + (f"; the {early} stored before the subscription left out" if early else ""))
    shown = ", ".join(f"{b * BUCKET_S:.1f} s: {n}" for b, n in sorted(buckets.items()))
    table.add("reconnects by bucket", "", shown)


# --- the run ---------------------------------------------------------------------------


def bench(fleet: Fleet) -> int:
    started = time.monotonic()
    try:
        fleet.start_broker()
        start_fleet(fleet)
        run_commands(fleet)
        all_back = restart_broker(fleet)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"bench_fleet: {exc}", file=sys.stderr)
        fleet.table.print()
        return 2
    broker_cpu = fleet.earlier_brokers_cpu_s + cpu_seconds(fleet.broker_pid())
    wall_s = time.monotonic() - started
    fleet.table.add("broker CPU, whole run", f"{broker_cpu:.2f} s",
                    f"{broker_cpu / wall_s * 100:.1f} % of a core over {wall_s:.0f} s")
    fleet.table.print()
    return 0 if all_back else 1


class Terminated(Exception):
    """SIGTERM: unwinds like Ctrl-C, so that `finally` stops the children."""


def terminated(signum: int, frame: object) -> None:
    raise Terminated


def shut_down(fleet: Fleet) -> None:
    """Stops everything by PID; Ctrl-C and SIGTERM wait until it is done."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    began = time.monotonic()
    killed, failed = stop_all(fleet.mats)
    if fleet.mats:
        print(f"\nstopped {len(fleet.mats)} daemons in {time.monotonic() - began:.1f} s; "
              f"{killed} needed SIGKILL, {failed} exited with an error")
    if fleet.observer is not None:
        fleet.observer.close()
    stop(fleet.broker)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mats", type=int, default=50, help="daemons (default 50)")
    parser.add_argument("--commands-per-mat", type=int, default=20,
                        help="counted commands to each mat, after one to warm up (default 20)")
    parser.add_argument("--timeout-s", type=float, default=120.0,
                        help="for the launch, for the commands, and for the restart (120)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (configs, logs, state)")
    args = parser.parse_args()
    if args.mats < 1 or args.commands_per_mat < 1 or args.timeout_s <= 0:
        parser.error("--mats and --commands-per-mat at least 1, --timeout-s above 0")
    return args


def main() -> int:
    args = parse_args()
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    print(f"$ cd {REPO} && {shlex.join([sys.executable, str(shown), *sys.argv[1:]])}",
          flush=True)
    print(f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}\n", flush=True)
    signal.signal(signal.SIGTERM, terminated)
    folder = Path(tempfile.mkdtemp(prefix="matpi-fleet-"))
    fleet = Fleet(args, folder, free_port())
    try:
        return bench(fleet)
    except (KeyboardInterrupt, Terminated) as exc:
        print("\ninterrupted; the figures so far:", file=sys.stderr, flush=True)
        fleet.table.print()
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        shut_down(fleet)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
