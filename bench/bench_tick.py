"""The controller's worst tick over a whole session, with the history on a slow disk (#17).

Runs the controller thread on the simulated mat with its thermometer poller and the
history recorder, as `matpi run --simulate` does, through one session (default: the
30-min "deep" program), sped up by the simulated clock: at `--speed 30` the session
takes 60 real seconds. Every event, reading and refresh is still one controller step,
as many as in real time; only the gaps between them shrink, so the history's writer
sees 30 times the writes a mat makes, and any backlog would show.

A tick is one `Controller._step` (one event or deadline: the core, the outputs, the
listeners), timed from outside by wrapping it with perf_counter_ns. Four runs:

- disk "fast": this machine's disk, every commit synced (WAL, synchronous=FULL);
- disk "slow": the same plus `--fsync-ms` (50) on every COMMIT, through a connection
  wrapper around the history's own (the sleep releases the GIL, as a real fsync does);
- writes "inline": the controller thread waits for each step's writes, as before the
  writer thread (a lower bound of the old cost: each step's writes were then one commit
  each, here one commit together);
- writes "thread": the product, the writes done by the history's writer thread.

Target (issue #17): worst tick on the slow disk with the writer thread under 5 ms.

Each run also counts the MQTT messages the bridge would publish in that session: the
state through the bridge's own pacer (`remote.statepace`) on the simulated clock, and
one message a notice or button gesture. Target: at most one state per 10 s, besides
those that carry a change a person would see (state, heater, program...), counted apart.

    .venv/bin/python bench/bench_tick.py                       # 4 runs of 60 s
    .venv/bin/python bench/bench_tick.py --speed 60 --minutes 10
"""

import argparse
import heapq
import itertools
import os
import platform
import queue
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soak import percentile  # a script beside this one

from matpi.core.events import (
    DriverFault,
    Event,
    Notice,
    SessionEnded,
    SessionStarted,
    Snapshot,
    Source,
    Start,
)
from matpi.core.rules import Rules
from matpi.core.session import SessionMachine
from matpi.drivers.clock import Clock
from matpi.drivers.polling import ThermometerPoller
from matpi.drivers.sim import SimulatedMat
from matpi.remote.netloop import TimerHandle
from matpi.remote.payloads import SessionEnd, button_gestures
from matpi.remote.statepace import STATE_EVERY_S, StatePacer
from matpi.service.app import SIM_POLL_S
from matpi.service.controller import Controller
from matpi.store.history import HISTORY_FILENAME, History
from matpi.store.recorder import HistoryRecorder
from matpi.store.schema import open_database

TARGET_MS = 5.0


class SlowCommits:
    """The history's connection, with `delay_s` added to every COMMIT: a slow SD card."""

    def __init__(self, db: sqlite3.Connection, delay_s: float) -> None:
        self._db = db
        self._delay_s = delay_s
        self.commits = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        cursor = self._db.execute(sql, *args)
        if sql == "COMMIT":
            self.commits += 1
            time.sleep(self._delay_s)
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


class Traffic:
    """What the MQTT bridge would publish in a session, counted on the simulated clock: a
    controller listener, as the bridge is, with the bridge's pacer and timers that fire at
    the next step after they are due (steps come at least once a simulated second)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._timers: list[TimerHandle] = []
        self._order = itertools.count()
        self._pacer = StatePacer(self._call_later, self._publish, monotonic=clock.now)
        self._ends_at = SessionEnd(clock.wall)
        self._in_session = False
        self._visible: tuple[object, ...] = ()
        self._visible_sent: tuple[object, ...] = ()
        self.states = self.visible_states = self.events = 0

    def __call__(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        while self._timers and self._timers[0].when <= self._clock.now():
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.action()
        if any(isinstance(n, SessionStarted) for n in notices):
            self._in_session = True
        ends_at = self._ends_at(snapshot)
        self._visible = (snapshot.state, snapshot.program, snapshot.heater_on,
                         snapshot.fault, ends_at)
        self._pacer.update(snapshot, ends_at)
        self._pacer.offer()
        if self._in_session:
            self.events += len(notices) + len(button_gestures(notices))
        if any(isinstance(n, SessionEnded) for n in notices):
            self._in_session = False

    def _call_later(self, delay_s: float, action: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(self._clock.now() + delay_s, next(self._order), action)
        heapq.heappush(self._timers, handle)
        return handle

    def _publish(self, state_json: str) -> bool:
        if self._in_session:
            self.states += 1
            if self._visible != self._visible_sent:
                self.visible_states += 1
        self._visible_sent = self._visible
        return True


@dataclass
class Run:
    disk: str
    writes: str
    ticks_ns: list[int]
    commits: int
    row: str
    fault: str | None
    traffic: Traffic


def waiting_for_writes(recorder: HistoryRecorder) -> Callable[[Snapshot, list[Notice]], None]:
    """The recorder as it was before the writer thread: the step waits for its writes."""

    def listener(snapshot: Snapshot, notices: list[Notice]) -> None:
        recorder(snapshot, notices)
        recorder.flush()

    return listener


def run_session(folder: Path, *, slow: bool, inline: bool, args: argparse.Namespace) -> Run:
    """One session on a fresh history; the tick durations of the controller thread."""
    path = folder / ("slow" if slow else "fast") / ("inline" if inline else "thread")
    path.mkdir(parents=True)
    connection = SlowCommits(open_database(path / HISTORY_FILENAME),
                             args.fsync_ms / 1000.0 if slow else 0.0)
    history = History(connection, path / HISTORY_FILENAME)  # type: ignore[arg-type]
    clock = Clock(args.speed)
    sim = SimulatedMat(clock)
    rules = Rules()
    drivers = sim.drivers(rules.sensors, SIM_POLL_S)
    machine = SessionMachine(rules, clock.now(), clock.today())
    inbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
    controller = Controller(machine, drivers, clock, inbox=inbox)
    recorder = HistoryRecorder(history, clock.wall, monotonic=clock.now,
                               cooldown_min=rules.cooldown_min,
                               on_error=lambda why: inbox.put(DriverFault(why)))
    controller.add_listener(waiting_for_writes(recorder) if inline else recorder)
    traffic = Traffic(clock)
    controller.add_listener(traffic)
    read, ended = threading.Event(), threading.Event()

    def watch(snapshot: Snapshot, notices: list[Notice]) -> None:
        if snapshot.temperature_c is not None:
            read.set()
        if any(isinstance(n, SessionEnded) for n in notices):
            ended.set()

    controller.add_listener(watch)
    ticks_ns: list[int] = []
    step = controller._step

    def timed_step(event: Event) -> None:
        started = time.perf_counter_ns()
        step(event)
        ticks_ns.append(time.perf_counter_ns() - started)

    controller._step = timed_step  # type: ignore[method-assign]
    poller = ThermometerPoller(drivers.thermometers, controller.post, clock,
                               drivers.poll_interval_s)
    thread = threading.Thread(target=controller.run, name="matpi-controller")
    thread.start()
    poller.start()
    try:
        if not read.wait(10.0):
            raise SystemExit("no reading reached the controller")
        controller.post(Start(Source.LOCAL, args.program, duration_min=args.minutes))
        if not ended.wait(args.minutes * 60.0 / args.speed * 2 + 30.0):
            raise SystemExit("the session never ended")
    finally:
        controller.request_stop("bench done")
        thread.join(10.0)
        poller.close()
        flushed = recorder.close()
        drivers.close()
    rows = history.sessions(1, clock.today()) if flushed else []
    history.close()
    row = ", ".join(f"{r.end_reason} {r.actual_s:.0f} s" for r in rows) or "none"
    return Run("slow" if slow else "fast", "inline" if inline else "thread", ticks_ns,
               connection.commits, row, machine.fault, traffic)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", type=float, default=30.0,
                        help="simulated seconds per real second (default 30)")
    parser.add_argument("--minutes", type=float, default=30.0,
                        help="session length in simulated minutes (default 30)")
    parser.add_argument("--program", default="deep", help="program (default deep)")
    parser.add_argument("--fsync-ms", type=float, default=50.0,
                        help="delay added to every commit on the slow disk (default 50)")
    args = parser.parse_args()

    real_s = args.minutes * 60.0 / args.speed
    print(f"matpi controller ticks: a {args.minutes:g}-min {args.program!r} session at speed "
          f"x{args.speed:g} ({real_s:.0f} s real per run); slow disk: +{args.fsync_ms:g} ms "
          "on every commit")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms\n")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="matpi-bench-tick-") as folder:
        for slow in (False, True):
            for inline in (True, False):
                runs.append(run_session(Path(folder), slow=slow, inline=inline, args=args))
    print(f"{'disk':<5} {'writes':<7} {'ticks':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'commits':>8}  session row / fault")
    for run in runs:
        print(f"{run.disk:<5} {run.writes:<7} {len(run.ticks_ns):>6} "
              f"{percentile(run.ticks_ns, 50) / 1e6:>8.3f} "
              f"{percentile(run.ticks_ns, 99) / 1e6:>8.3f} "
              f"{max(run.ticks_ns) / 1e6:>8.3f} {run.commits:>8}  {run.row}"
              f"{'' if run.fault is None else ' / ' + run.fault}")
    slow_thread = next(r for r in runs if r.disk == "slow" and r.writes == "thread")
    worst_ms = max(slow_thread.ticks_ns) / 1e6
    print(f"\ntarget: worst tick, slow disk, writer thread <= {TARGET_MS:g} ms: "
          f"{worst_ms:.3f} ms {'PASS' if worst_ms <= TARGET_MS else 'FAIL'}")
    traffic = slow_thread.traffic
    allowed = args.minutes * 60.0 / STATE_EVERY_S + 1
    counting = traffic.states - traffic.visible_states
    print(f"MQTT in the session: {traffic.states} states ({traffic.visible_states} with a "
          f"change a person would see, {counting} with counting numbers only), "
          f"{traffic.events} events; target: counting-only states <= one per "
          f"{STATE_EVERY_S:g} s ({allowed:.0f}): {'PASS' if counting <= allowed else 'FAIL'}")
    print(f"reproduce: .venv/bin/python bench/bench_tick.py --speed {args.speed:g} "
          f"--minutes {args.minutes:g} --program {args.program} --fsync-ms {args.fsync_ms:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
