"""What the mat's page costs and how fast it is live, against `matpi run --simulate`.

For each run a daemon is started with its page on a free loopback port. One
Server-Sent Events client stays connected while this script changes the state
`--count` times (the vibration intensity, through `POST /api/command`), and
times, for each change:

- POST -> 202: the HTTP hop alone (request parsed, checked, handed to the mat);
- POST -> the new state received on the event stream: through the controller
  thread and back out to every open page.

It prints p50 and p99 of both, and the daemon's resident memory with the page
off (a config with `[web] enabled = false`) and on (idle, then after the run
with a page connected), beside the target of shared/PERFORMANCE.md (45 MiB
with the page on).

    .venv/bin/python bench/bench_web.py
    .venv/bin/python bench/bench_web.py --count 500 --runs 5
"""

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

RSS_TARGET_MIB = 45.0
SETTLE_S = 1.0
TIMEOUT_S = 10.0


@dataclass
class Run:
    post_ms: list[float]
    event_ms: list[float]
    rss_idle_mib: float
    rss_after_mib: float


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise KeyError("VmRSS")


def start_daemon(folder: Path, extra: list[str]) -> tuple[subprocess.Popen[str], int | None]:
    process = subprocess.Popen(
        [sys.executable, "-m", "matpi", "run", "--simulate", "--state-dir", str(folder), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    banner = process.stdout.readline()
    threading.Thread(target=lambda: [None for _ in process.stdout or []], daemon=True).start()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", banner)
    return process, int(match.group(1)) if match else None


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Stream:
    """An SSE client: records when each state's intensity first arrives."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        self.connection.request("GET", "/api/events")
        self.response = self.connection.getresponse()
        assert self.response.status == 200, self.response.status
        self.arrived: dict[float, int] = {}
        self.ready = threading.Event()
        self._condition = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            self._read_events()
        except (OSError, http.client.HTTPException):
            return  # the daemon stopped

    def _read_events(self) -> None:
        event = ""
        for raw in iter(self.response.readline, b""):  # undoes the chunking
            line = raw.decode()
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: ") and event == "state":
                now = time.perf_counter_ns()
                intensity = json.loads(line[6:])["intensity_pct"]
                with self._condition:
                    self.arrived.setdefault(intensity, now)
                    self._condition.notify_all()
                self.ready.set()

    def wait(self, intensity: float) -> int:
        with self._condition:
            if not self._condition.wait_for(lambda: intensity in self.arrived, TIMEOUT_S):
                raise TimeoutError(f"no state with intensity {intensity}")
            return self.arrived.pop(intensity)


def measure(count: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="matpi-bench-web-") as folder:
        process, port = start_daemon(Path(folder), ["--web-port", "0"])
        try:
            assert port is not None, "the daemon printed no page URL"
            time.sleep(SETTLE_S)
            rss_idle = rss_mib(process.pid)
            stream = Stream(port)
            stream.ready.wait(TIMEOUT_S)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
            post_ms, event_ms = [], []
            for i in range(count):
                intensity = float(10 + i % 2 * 10 + (i % 7))  # always a change
                body = json.dumps({"command": "intensity", "value": intensity})
                stream.arrived.pop(intensity, None)
                sent = time.perf_counter_ns()
                connection.request("POST", "/api/command", body,
                                   {"Content-Type": "application/json"})
                reply = connection.getresponse()
                reply.read()
                answered = time.perf_counter_ns()
                assert reply.status == 202, reply.status
                arrived = stream.wait(intensity)
                post_ms.append((answered - sent) / 1e6)
                event_ms.append((arrived - sent) / 1e6)
            rss_after = rss_mib(process.pid)
            connection.close()
            return Run(post_ms, event_ms, rss_idle, rss_after)
        finally:
            stop(process)


def rss_without_page() -> float:
    with tempfile.TemporaryDirectory(prefix="matpi-bench-web-") as folder:
        config = Path(folder) / "matpi.toml"
        config.write_text("[web]\nenabled = false\n")
        process, port = start_daemon(Path(folder) / "state", ["--config", str(config)])
        try:
            assert port is None, "the page was on"
            time.sleep(SETTLE_S)
            return rss_mib(process.pid)
        finally:
            stop(process)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="state changes per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    off = [rss_without_page() for _ in range(args.runs)]
    runs = [measure(args.count) for _ in range(args.runs)]
    print(f"{args.count} state changes x {args.runs} runs, one SSE client, loopback")
    print(f"{'run':>4} {'POST->202 p50':>14} {'p99':>7} {'POST->event p50':>16} {'p99':>7}"
          f" {'ratio p99':>10}")
    for n, run in enumerate(runs, 1):
        hop99, event99 = percentile(run.post_ms, 0.99), percentile(run.event_ms, 0.99)
        print(f"{n:>4} {statistics.median(run.post_ms):>11.2f} ms {hop99:>7.2f}"
              f" {statistics.median(run.event_ms):>13.2f} ms {event99:>7.2f}"
              f" {event99 / hop99:>9.1f}x")
    every_event = [ms for run in runs for ms in run.event_ms]
    print(f"all runs: state change -> event on the stream p50 "
          f"{statistics.median(every_event):.2f} ms, p99 {percentile(every_event, 0.99):.2f} ms")
    idle = statistics.median(r.rss_idle_mib for r in runs)
    after = max(r.rss_after_mib for r in runs)
    print(f"resident memory: page off {statistics.median(off):.1f} MiB, page on "
          f"{idle:.1f} MiB idle, {after:.1f} MiB after the run with a page open "
          f"(target: at most {RSS_TARGET_MIB:g} MiB with the page on)")


if __name__ == "__main__":
    main()
