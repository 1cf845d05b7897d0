"""What the daemon costs on its machine: start-up, memory, and CPU idle and in a session.

Runs `python -m matpi run --simulate` as a subprocess, twice (idle, then a
running session), with $NOTIFY_SOCKET pointing at a datagram socket bound here,
and prints one row per run and the targets:

    start to READY=1 under 1 s, under 40 MB resident, idle CPU under 0.5 % of a core

Until the daemon sends READY=1, start-up is measured to its first line on
stdout, and the output says so. $WATCHDOG_USEC is set as systemd would, so
once the controller pings the watchdog the pings are counted too.

    .venv/bin/python bench/bench_daemon.py              # 60 s per run
    .venv/bin/python bench/bench_daemon.py --duration 10
"""

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

READY_TARGET_S = 1.0
RSS_TARGET_MB = 40.0
IDLE_CPU_TARGET_PCT = 0.5
WATCHDOG_USEC = 10_000_000
READY_TIMEOUT_S = 10.0
SETTLE_S = 1.0
"""Time after start-up before measuring, so import-time work is not counted as idle."""


@dataclass
class Notifications:
    """What arrived on the notify socket, with arrival times on time.monotonic()."""

    ready_at: float | None = None
    watchdog_pings: int = 0
    other: list[str] = field(default_factory=list)


@dataclass
class Run:
    name: str
    ready_s: float | None
    first_line_s: float | None
    rss_mb: float
    peak_rss_mb: float
    cpu_pct: float
    watchdog_pings: int
    exit_code: int | None


def listen(sock: socket.socket, seen: Notifications, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            continue
        for line in message.splitlines():
            if line == "READY=1" and seen.ready_at is None:
                seen.ready_at = time.monotonic()
            elif line == "WATCHDOG=1":
                seen.watchdog_pings += 1
            else:
                seen.other.append(line)


def drain(stream: IO[str], first_line_at: list[float]) -> None:
    """Read the daemon's output so that it never blocks on a full pipe."""
    for _ in stream:
        if not first_line_at:
            first_line_at.append(time.monotonic())


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, extra_args: list[str], duration_s: float) -> Run:
    with tempfile.TemporaryDirectory(prefix="matpi-bench-") as folder, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(os.path.join(folder, "notify"))
        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(folder, "notify"),
                   WATCHDOG_USEC=str(WATCHDOG_USEC), STATE_DIRECTORY=os.path.join(folder, "state"))
        env.pop("WATCHDOG_PID", None)
        seen, stop = Notifications(), threading.Event()
        first_line_at: list[float] = []
        listener = threading.Thread(target=listen, args=(sock, seen, stop), daemon=True)
        listener.start()
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "matpi", "run", "--simulate", *extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert process.stdout is not None
        threading.Thread(target=drain, args=(process.stdout, first_line_at), daemon=True).start()
        try:
            deadline = started + READY_TIMEOUT_S
            while seen.ready_at is None and time.monotonic() < deadline:
                if process.poll() is not None:
                    raise SystemExit(f"{name}: the daemon exited with {process.returncode}")
                time.sleep(0.005)
            time.sleep(SETTLE_S)
            rss_mb = status_kb(process.pid, "VmRSS") / 1024
            cpu_before, window_start = cpu_seconds(process.pid), time.monotonic()
            time.sleep(duration_s)
            cpu_pct = (cpu_seconds(process.pid) - cpu_before) / (
                time.monotonic() - window_start) * 100
            peak_mb = status_kb(process.pid, "VmHWM") / 1024
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                exit_code: int | None = process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                exit_code = None
            stop.set()
            listener.join()
    return Run(
        name=name,
        ready_s=None if seen.ready_at is None else seen.ready_at - started,
        first_line_s=first_line_at[0] - started if first_line_at else None,
        rss_mb=rss_mb, peak_rss_mb=peak_mb, cpu_pct=cpu_pct,
        watchdog_pings=seen.watchdog_pings, exit_code=exit_code,
    )


def startup_text(run: Run) -> str:
    if run.ready_s is not None:
        return f"{run.ready_s:.3f} s to READY=1"
    if run.first_line_s is not None:
        return f"{run.first_line_s:.3f} s to first stdout line (no READY=1 sent)"
    return "no READY=1 and no output"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, metavar="SECONDS",
                        help="CPU measuring window of each run (default 60)")
    parser.add_argument("--program", default="back",
                        help="program of the session run (default back)")
    args = parser.parse_args()

    print(f"matpi daemon benchmark: {sys.executable} -m matpi run --simulate")
    print(f"Python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs, {args.duration:g} s per CPU window\n")
    runs = [
        measure("idle", [], args.duration),
        measure(f"session ({args.program})", ["--start", args.program, "--speed", "1"],
                args.duration),
    ]
    print(f"{'run':<16} {'start-up':<56} {'RSS':>8} {'peak':>8} {'CPU':>8} "
          f"{'watchdog':>9} {'exit':>5}")
    for run in runs:
        print(f"{run.name:<16} {startup_text(run):<56} {run.rss_mb:>5.1f} MB "
              f"{run.peak_rss_mb:>5.1f} MB {run.cpu_pct:>6.2f} % {run.watchdog_pings:>9} "
              f"{run.exit_code!s:>5}")

    idle = runs[0]
    startup_s = idle.ready_s if idle.ready_s is not None else idle.first_line_s
    print("\ntargets")
    if startup_s is not None:
        basis = "READY=1" if idle.ready_s is not None else "first stdout line, READY=1 not sent"
        print(f"  start-up < {READY_TARGET_S:g} s: {startup_s:.3f} s ({basis}) "
              f"{verdict(startup_s < READY_TARGET_S)}")
    worst_rss = max(r.peak_rss_mb for r in runs)
    print(f"  resident < {RSS_TARGET_MB:g} MB: peak {worst_rss:.1f} MB "
          f"{verdict(worst_rss < RSS_TARGET_MB)}")
    print(f"  idle CPU < {IDLE_CPU_TARGET_PCT:g} % of a core: {idle.cpu_pct:.2f} % "
          f"{verdict(idle.cpu_pct < IDLE_CPU_TARGET_PCT)}")
    expected_pings = args.duration / (WATCHDOG_USEC / 1e6 / 2)
    print(f"  watchdog: {idle.watchdog_pings} pings idle (about {expected_pings:.0f} expected "
          "in the window once the controller pings at half of WATCHDOG_USEC)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
