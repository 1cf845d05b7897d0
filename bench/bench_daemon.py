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
    .venv/bin/python bench/bench_daemon.py --mqtt       # issue 17's memory and idle rows

With `--mqtt` it starts its own mosquitto and measures instead the rows of issue 17:
simulated with MQTT connected and the page off; the same with the page; the GPIO path
(the example config on gpiozero's mock pins and two fake DS18B20 files, run as the
real `matpi run --config`) with MQTT; and prints the daemon's imports by package, and the
idle CPU's floor: the page daemon's libraries in a process that only wakes as an idle
simulated mat does, its main thread out of select every MAX_POLL_S (2 s).
"""

import argparse
import contextlib
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

from soak import free_port, start_broker  # a script beside this one
from soak import stop as stop_process

from matpi.core.limits import MAX_POLL_S

READY_TARGET_S = 1.0
RSS_TARGET_MB = 40.0
IDLE_CPU_TARGET_PCT = 0.5
MQTT_IDLE_CPU_TARGET_PCT = 0.05
"""Issue 17: idle CPU with MQTT and the page."""
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
    wakeups_per_s: float
    """Context switches of every thread per second of the CPU window: how often it woke."""
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
    """Time on a CPU of every live thread of the process, in seconds, to the nanosecond
    (the scheduler's own count: utime and stime move in whole 10 ms clock ticks, too
    coarse for an idle daemon). A thread that ended is not counted: none does while idle."""
    total_ns = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total_ns += int((task / "schedstat").read_text().split()[0])
    return total_ns / 1e9


def context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches of every live thread of the process."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    total += int(line.split()[1])
    return total


GPIO_CHILD = """
import functools, sys
from pathlib import Path
import matpi.drivers.hardware as hardware
hardware.build_gpio_mat = functools.partial(hardware.build_gpio_mat, w1_dir=Path(sys.argv[1]))
sys.argv = ["matpi", *sys.argv[2:]]
from matpi.cli import main
sys.exit(main())
"""
"""`matpi run` with the DS18B20s read from a folder of fake files (mock pins have no bus)."""

IMPORTS_CHILD = """
import sys
from collections import Counter
from matpi.cli import main
sys.argv = ["matpi", *sys.argv[1:]]
try:
    main()
finally:
    top = Counter(name.split(".")[0] for name in sys.modules)
    stdlib = sum(n for name, n in top.items() if name.lstrip("_") in sys.stdlib_module_names
                 or name in sys.builtin_module_names)
    others = [f"{k} {v}" for k, v in top.most_common()
              if k.lstrip("_") not in sys.stdlib_module_names and k not in sys.builtin_module_names]
    print("IMPORTS", ", ".join([*others, f"the standard library {stdlib}"]), file=sys.stderr)
"""

MODULES_CHILD = """
import os, sys, threading, time
def dump():
    time.sleep(float(os.environ["MATPI_BENCH_DUMP_AFTER_S"]))
    names = sorted(n for n in sys.modules if n.split(".")[0] != "__main__")
    print("MODULES", " ".join(names), file=sys.stderr, flush=True)
    os._exit(0)
threading.Thread(target=dump, daemon=True).start()
exec(compile(os.environ["MATPI_BENCH_CHILD"], "<child>", "exec"))
"""
"""Runs a daemon (the source in MATPI_BENCH_CHILD) until it has settled, then prints every
module it loaded."""

IMPORT_ARGS = """
import importlib, sys
for name in ("ssl", "_ssl", "_hashlib"):  # as matpi.remote.openssl: out if the daemon left them
    if name not in sys.argv[1:]:
        sys.modules[name] = None
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        pass
"""
"""The start of a child that loads the modules named on its command line."""

FLOOR_CHILD = IMPORT_ARGS + """
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmRSS")))
"""
"""The RSS (KiB) of a process that loads the same libraries as a daemon, and no matpi code."""

IDLE_FLOOR_CHILD = IMPORT_ARGS + f"""
import selectors, socket
loop_end, _ = socket.socketpair()
selector = selectors.DefaultSelector()
selector.register(loop_end, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    selector.select({MAX_POLL_S})
"""
"""The idle shape of a simulated mat and nothing else, with a daemon's libraries loaded: the
main thread (the controller in its NetLoop) waits in select and wakes every MAX_POLL_S, when
the loop's timer is due to read the sensors of a mat at rest."""

CLI_CHILD = """
import sys
from matpi.cli import main
sys.argv = ["matpi", *sys.argv[1:]]
sys.exit(main())
"""

SIMULATE = ["run", "--simulate"]
"""The daemon's arguments before a run's own: `measure` adds them, `floor_mb` is given them."""

SENSOR_IDS = ("28-0316a2795aff", "28-0316a27b3c11")
"""The example config's two DS18B20s."""
EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "matpi.toml"


def measure(name: str, extra_args: list[str], duration_s: float, *,
            command: list[str] | None = None) -> Run:
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
            command or [sys.executable, "-m", "matpi", *SIMULATE, *extra_args],
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
            cpu_before, window_start = cpu_seconds(process.pid), time.monotonic()
            switches_before = context_switches(process.pid)
            time.sleep(duration_s)
            window_s = time.monotonic() - window_start
            cpu_pct = (cpu_seconds(process.pid) - cpu_before) / window_s * 100
            wakeups_per_s = (context_switches(process.pid) - switches_before) / window_s
            rss_mb = status_kb(process.pid, "VmRSS") / 1024  # after the window: settled
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
        rss_mb=rss_mb, peak_rss_mb=peak_mb, cpu_pct=cpu_pct, wakeups_per_s=wakeups_per_s,
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


def ok_or_missed(met: bool) -> str:
    """The --mqtt rows' word for a target."""
    return "ok" if met else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, metavar="SECONDS",
                        help="CPU measuring window of each run (default 60)")
    parser.add_argument("--program", default="back",
                        help="program of the session run (default back)")
    parser.add_argument("--mqtt", action="store_true",
                        help="issue 17's rows: MQTT connected, with and without the page, "
                             "and the GPIO path")
    args = parser.parse_args()
    if args.mqtt:
        return mqtt_rows(args.duration)

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


def mqtt_config(folder: Path, port: int, *, web: bool, gpio: bool = False) -> Path:
    """The example config (mock pins) for the GPIO row, else a simulation's; MQTT on."""
    base = EXAMPLE.read_text().replace('pin_factory = "auto"', 'pin_factory = "mock"') \
        if gpio else ""
    path = folder / ("gpio.toml" if gpio else f"sim-{web}.toml")
    path.write_text(strip_sections(base, ("mqtt", "web")) + f"""
[mqtt]
enabled = true
host = "127.0.0.1"
port = {port}

[web]
enabled = {"true" if web else "false"}
listen = "127.0.0.1"
port = {free_port()}
""", encoding="utf-8")
    return path


def strip_sections(text: str, names: tuple[str, ...]) -> str:
    """The TOML without the tables named (each up to the next table header)."""
    kept, skipping = [], False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.strip("[] ") in names
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def fake_w1(folder: Path) -> Path:
    for sensor_id in SENSOR_IDS:
        device = folder / sensor_id
        device.mkdir(parents=True)
        (device / "w1_slave").write_text(
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n")
    return folder


def imports_by_package(config: Path) -> str:
    """The simulated daemon's modules by top-level package, from a run cut short."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS_CHILD, "run", "--simulate", "--config", str(config),
         "--once", "--speed", "600", "--start", "neck"],
        capture_output=True, text=True, timeout=120)
    line = next((x for x in result.stderr.splitlines() if x.startswith("IMPORTS ")), "")
    return line.removeprefix("IMPORTS ")


@dataclass
class Floor:
    """What a daemon's modules cost before it runs: RSS in MiB of a process that imports them."""

    libraries_mb: float
    """Every module the daemon loaded but matpi's own: the floor."""
    with_matpi_mb: float
    """The same and matpi's modules, imported and not run: the floor and matpi's code."""
    libraries: list[str]
    """The names of the floor's modules."""


def floor_mb(child: str, args: list[str], folder: Path) -> Floor:
    """The RSS of the modules the daemon `child args` loads, without and with matpi's."""
    env = dict(os.environ, MATPI_BENCH_CHILD=child, MATPI_BENCH_DUMP_AFTER_S=str(SETTLE_S * 3),
               STATE_DIRECTORY=str(folder / "floor-state"))
    env.pop("NOTIFY_SOCKET", None)
    dumped = subprocess.run([sys.executable, "-c", MODULES_CHILD, *args], capture_output=True,
                            text=True, timeout=60, env=env)
    line = next((x for x in dumped.stderr.splitlines() if x.startswith("MODULES ")), None)
    if line is None:
        raise SystemExit(f"no module list from {args}: {dumped.stderr[-500:]}")
    names = line.split()[1:]
    libraries = [name for name in names if name.split(".")[0] != "matpi"]
    return Floor(_imported_rss_mb(libraries), _imported_rss_mb(names), libraries)


def _imported_rss_mb(modules: list[str]) -> float:
    imported = subprocess.run([sys.executable, "-c", FLOOR_CHILD, *modules],
                              capture_output=True, text=True, timeout=60)
    return int(imported.stdout.strip()) / 1024


def idle_floor(modules: list[str], duration_s: float) -> tuple[float, float]:
    """Idle CPU (% of a core) and wakeups per second of `IDLE_FLOOR_CHILD` with `modules`
    loaded: what a mat's idle shape costs before any of matpi's work."""
    process = subprocess.Popen([sys.executable, "-c", IDLE_FLOOR_CHILD, *modules],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        ready: list[float] = []
        reader = threading.Thread(target=drain, args=(process.stdout, ready), daemon=True)
        reader.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready and time.monotonic() < deadline:
            time.sleep(0.005)
        if not ready:
            raise SystemExit("the idle floor's process never said ready")
        time.sleep(SETTLE_S)
        cpu_before, switches_before = cpu_seconds(process.pid), context_switches(process.pid)
        window_start = time.monotonic()
        time.sleep(duration_s)
        window_s = time.monotonic() - window_start
        return ((cpu_seconds(process.pid) - cpu_before) / window_s * 100,
                (context_switches(process.pid) - switches_before) / window_s)
    finally:
        process.kill()
        process.wait(timeout=10)


def compile_as_installed() -> None:
    """pip compiles a package's modules when it installs it; a checkout with
    PYTHONDONTWRITEBYTECODE set would compile matpi in every daemon and count the compiler's
    memory as the daemon's."""
    source = Path(__file__).resolve().parent.parent / "src" / "matpi"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(source)], check=True,
                   timeout=120, env={k: v for k, v in os.environ.items()
                                     if k != "PYTHONDONTWRITEBYTECODE"})


def mqtt_rows(duration_s: float) -> int:
    """Issue 17's memory and idle-CPU rows, against a mosquitto of our own."""
    compile_as_installed()
    print(f"$ {sys.executable} {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory(prefix="matpi-bench-mqtt-") as folder_name:
        folder = Path(folder_name)
        port = free_port()
        broker = start_broker(folder, port)
        try:
            w1 = fake_w1(folder / "w1")
            gpio = mqtt_config(folder, port, web=False, gpio=True)
            sim_config = mqtt_config(folder, port, web=False)
            sim = ["--config", str(sim_config)]
            gpio_args = [str(w1), "run", "--config", str(gpio), "--state-dir",
                         str(folder / "gpio-state")]
            page = ["--config", str(mqtt_config(folder, port, web=True))]
            rows = [
                (measure("sim, MQTT", sim, duration_s), 24.0,
                 floor_mb(CLI_CHILD, [*SIMULATE, *sim], folder)),
                (measure("GPIO, MQTT", [], duration_s, command=[
                    sys.executable, "-c", GPIO_CHILD, *gpio_args]), 30.0,
                 floor_mb(GPIO_CHILD, gpio_args, folder)),
                (measure("sim, MQTT, page", page, duration_s), 34.0,
                 floor_mb(CLI_CHILD, [*SIMULATE, *page], folder)),
            ]
            imports = imports_by_package(sim_config)
            page_floor = rows[-1][2]
            floor_cpu_pct, floor_wakeups = idle_floor(page_floor.libraries, duration_s)
        finally:
            stop_process(broker)
    print(f"\n{'run':<18} {'RSS':>8} {'target':>8} {'':<6} {'floor':>9} {'matpi':>9} "
          f"{'code':>9} {'running':>9} {'idle CPU':>9} {'wakeups':>9} {'start-up':<40}")
    for run, target, floor in rows:
        code_mb = floor.with_matpi_mb - floor.libraries_mb
        print(f"{run.name:<18} {run.rss_mb:>5.1f} MiB {target:>5.0f} MiB "
              f"{ok_or_missed(run.rss_mb < target):<6} {floor.libraries_mb:>5.1f} MiB "
              f"{run.rss_mb - floor.libraries_mb:>5.1f} MiB {code_mb:>5.1f} MiB "
              f"{run.rss_mb - floor.with_matpi_mb:>5.1f} MiB {run.cpu_pct:>7.3f} % "
              f"{run.wakeups_per_s:>7.1f}/s {startup_text(run)}")
    print("RSS: VmRSS at the end of the idle CPU window; floor: a process that loads the same "
          "libraries as that daemon (every module it has loaded once settled) and no matpi "
          "code; matpi: the rest, of which code: what importing matpi's modules (not running "
          "them) adds to the floor, and running: threads, buffers, the history's database")
    page_cpu = next(run.cpu_pct for run, _, _ in rows if run.name == "sim, MQTT, page")
    print(f"\nidle CPU target with MQTT and the page: {MQTT_IDLE_CPU_TARGET_PCT:g} % of a core: "
          f"{page_cpu:.3f} % {ok_or_missed(page_cpu < MQTT_IDLE_CPU_TARGET_PCT)} "
          f"(time on a CPU as the scheduler counts it, over {duration_s:g} s)")
    print(f"  its floor: {floor_cpu_pct:.3f} % and {floor_wakeups:.1f} wakeups/s for the same "
          "libraries in a simulated mat's idle shape and nothing else (the main thread wakes "
          f"from select every {MAX_POLL_S:g} s); matpi's own work at rest: "
          f"{page_cpu - floor_cpu_pct:.3f} %")
    print(f"imports of the simulated daemon with MQTT, modules by package:\n  {imports}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
