"""The `matpi` command: run the mat, check a config, simulate one in a terminal.

Over 400 lines on purpose: the whole command line in one place, its parser and one
short handler per subcommand; each handler reads its options and hands over to the
package that does the work, so nothing here is worth a module of its own.
"""

import argparse
import json
import logging
import os
import queue
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from matpi import __version__
from matpi.config.load import load_config
from matpi.config.settings import Config, WebConfig
from matpi.core.errors import ConfigError, DriverError, HistoryError
from matpi.core.events import (
    Event,
)
from matpi.drivers.clock import Clock
from matpi.drivers.sim import SimFault
from matpi.drivers.statedir import default_state_dir, pin_lock
from matpi.remote.homeassistant import discovery_messages, removal_messages
from matpi.service.app import assemble
from matpi.service.daemon import run_in_terminal, serve
from matpi.service.journal import line_writer, setup_logging
from matpi.service.outputsrecord import OutputsRecordError, remember_outputs
from matpi.store.history import HISTORY_FILENAME, History

log = logging.getLogger("matpi")

DEFAULT_CONFIG = Path("/etc/matpi/matpi.toml")
MAX_SPEED = 600.0
SIM_WEB = WebConfig(enabled=True, listen="127.0.0.1")
"""The page of a simulation without a config file: this machine only."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(args.command(args))
    except BrokenPipeError:
        # `matpi discovery --print | head`: the reader has what it wanted. Point stdout at
        # /dev/null so that the flush at exit does not raise again, and end quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="matpi", description=__doc__)
    parser.add_argument("--version", action="version", version=f"matpi {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the mat (real hardware, or --simulate)")
    run.add_argument("--config", type=Path, help="config file (TOML)")
    run.add_argument("--state-dir", type=Path,
                     help="history and lock folder (default: systemd's StateDirectory, "
                          "/var/lib/matpi; a fresh temporary one with --simulate)")
    _simulation_options(run)
    run.add_argument("--start", metavar="PROGRAM",
                     help="with --simulate: press start with this program at launch")
    run.add_argument("--once", action="store_true",
                     help="exit when the first session has ended: 0, or 1 if it ended in a fault")
    run.add_argument("--web-port", type=_port, metavar="PORT",
                     help="serve the mat's page on this port instead of [web] port (8080); "
                          "0 picks a free one; the URL is printed")
    run.add_argument("--sim-stdin", action="store_true",
                     help="with --simulate: act on the mat from standard input, one line at a "
                          "time: press, double, long (the button), person on|off (someone lies "
                          "down or gets up), or fault NAME [off] to start or end a hardware "
                          f"fault ({', '.join(SimFault)})")
    run.set_defaults(command=_cmd_run)

    check = sub.add_parser("check-config", help="check a config file; print OK or every error")
    check.add_argument("path", type=Path)
    check.set_defaults(command=_cmd_check_config)

    history = sub.add_parser("history", help="past sessions, streak and weekly totals")
    history.add_argument("--days", type=int, default=14, help="how far back (default 14)")
    history.add_argument("--state-dir", type=Path, help="where history.sqlite3 is")
    form = history.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_const", const="json", dest="format")
    form.add_argument("--csv", action="store_const", const="csv", dest="format")
    history.set_defaults(command=_cmd_history, format="table")

    selftest = sub.add_parser("selftest", help="installer check: click each output, press the "
                              "button, read each sensor")
    selftest.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    selftest.add_argument("--button-timeout", type=float, default=30.0, metavar="SECONDS")
    selftest.set_defaults(command=_cmd_selftest)

    discovery = sub.add_parser("discovery", help="Home Assistant MQTT discovery payloads")
    discovery.add_argument("--config", type=Path, help="config file (default: built-in defaults)")
    action = discovery.add_mutually_exclusive_group(required=True)
    action.add_argument("--print", action="store_true", dest="print_",
                        help="print every discovery topic and payload")
    action.add_argument("--remove", action="store_true",
                        help="clear them from the broker: the mat leaves Home Assistant")
    discovery.set_defaults(command=_cmd_discovery)

    password = sub.add_parser("web-password", help="set the password of the mat's page "
                              "(stored as a salted scrypt hash)")
    password.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                          help="its [web] password_file is the file written")
    password.add_argument("--file", type=Path, help="write this file instead")
    password.set_defaults(command=_cmd_web_password)

    off = sub.add_parser("safe-off", help="drive every output off and exit 0, even with a "
                         "broken config (the service's ExecStopPost)")
    off.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    off.add_argument("--state-dir", type=Path,
                     help="where the running service recorded its outputs (default: systemd's "
                          "StateDirectory, /var/lib/matpi)")
    off.set_defaults(command=_cmd_safe_off)

    boot = sub.add_parser("boot-config", help="the config.txt lines that hold the outputs off "
                          "from power-on, before Linux runs")
    boot.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    boot.set_defaults(command=_cmd_boot_config)

    simulate = sub.add_parser("simulate", help="an interactive simulated mat in this terminal")
    simulate.add_argument("--config", type=Path, help="config file (its limits and programs)")
    simulate.add_argument("--speed", type=_speed, default=1.0, help="time scale (default 1)")
    simulate.add_argument("--state-dir", type=Path, help="keep history here (default: none)")
    simulate.add_argument("--web-port", type=_port, metavar="PORT",
                          help="serve the mat's page on this port (default 8080; 0: any free)")
    _sim_occupancy_option(simulate)
    simulate.set_defaults(command=_cmd_simulate)
    return parser


def _simulation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--simulate", action="store_true",
                        help="simulated mat instead of hardware (default when no config is given)")
    parser.add_argument("--speed", type=_speed, default=1.0,
                        help=f"with --simulate: time runs faster (1 to {MAX_SPEED:g})")
    parser.add_argument("--board-sim", action="store_true",
                        help="with --simulate: heater and sensor on the mat board's firmware, "
                             "run in-process behind a pty (real time)")
    _sim_occupancy_option(parser)


def _sim_occupancy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sim-occupancy", action="store_true",
                        help="the simulated mat has an occupancy sensor, as with [occupancy] "
                             "pin in the config: heat only with someone lying on it")


def _with_sim_occupancy(args: argparse.Namespace, config: Config) -> Config:
    if not args.sim_occupancy:
        return config
    return replace(config, rules=replace(config.rules, occupancy_sensor=True))


def _with_web_options(args: argparse.Namespace, config: Config) -> Config:
    """The page of a run without a config file (127.0.0.1, no password), and --web-port."""
    if args.config is None:
        config = replace(config, web=SIM_WEB)
    if args.web_port is not None:
        config = replace(config, web=replace(config.web, port=args.web_port))
    return config


def _speed(text: str) -> float:
    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed {text!r}: must be a number") from None
    if not 0.1 <= speed <= MAX_SPEED:
        raise argparse.ArgumentTypeError(f"--speed {text}: must be 0.1 to {MAX_SPEED:g}")
    return speed


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"--web-port {text!r}: must be 0 to 65535")
    return int(text)


def _load(path: Path | None) -> Config | None:
    """The config at `path` (defaults without one), or None after printing its problems."""
    if path is None:
        return Config()
    try:
        return load_config(path)
    except ConfigError as exc:
        error = line_writer(sys.stderr)
        for problem in exc.problems:
            error(problem, logging.ERROR)
        return None


def _cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.path)
    if config is None:
        return 1
    print(f"{args.path}: OK")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 1
    if args.start is not None and args.start not in config.rules.programs:
        known = ", ".join(config.rules.programs)
        print(f"matpi run: --start {args.start!r}: unknown program; known: {known}",
              file=sys.stderr)
        return 2
    simulate = args.simulate or args.config is None
    if args.start is not None and not simulate:
        # On a real mat a start from the command line is as remote as MQTT: only a press
        # at the mat may begin heat.
        print("matpi run: --start goes with --simulate; on a real mat press the button",
              file=sys.stderr)
        return 2
    if args.board_sim and (not simulate or args.speed != 1.0):
        print("matpi run: --board-sim goes with --simulate and runs in real time (no --speed)",
              file=sys.stderr)
        return 2
    for flag, given in (("--sim-stdin", args.sim_stdin), ("--sim-occupancy", args.sim_occupancy)):
        if given and not simulate:
            print(f"matpi run: {flag} goes with --simulate", file=sys.stderr)
            return 2
    config = _with_sim_occupancy(args, config)
    if config.rules.occupancy_sensor and args.start is not None:
        print("matpi run: --start cannot go with an occupancy sensor (--sim-occupancy or "
              "[occupancy] pin): the simulated mat starts empty, and nothing starts on an "
              "empty mat; use --sim-stdin and send `person on`, then `press`", file=sys.stderr)
        return 2
    if simulate and _scaled_history(args, "matpi run"):
        return 2
    config = _with_web_options(args, config)
    with ExitStack() as stack:
        state_dir = _state_dir(args, simulate, stack)
        try:
            if not simulate:
                stack.enter_context(pin_lock(state_dir))
                _remember_outputs(config, state_dir)
            mat = assemble(config, state_dir, simulate=simulate,
                           speed=args.speed if simulate else 1.0, board_sim=args.board_sim)
        except DriverError as exc:
            line_writer(sys.stderr)(f"matpi run: {exc}", logging.ERROR)
            return 1
        exit_code = serve(mat, config, once=args.once, start=args.start,
                          sim_stdin=args.sim_stdin, board_sim=args.board_sim)
    return exit_code


def _remember_outputs(config: Config, state_dir: Path) -> None:
    """Leaves the pins in use for a `safe-off` that may find the config broken later."""
    try:
        remember_outputs(config.hardware, state_dir)
    except OutputsRecordError as exc:
        # The mat is as safe without it: safe-off still has the config and the default pins.
        log.error("%s; safe-off will fall back to the config and the default pins", exc)


SIMULATED_STATE = "simulated-mat"
"""Marks a state directory a faster-than-real simulation made: only those take one."""


def _scaled_history(args: argparse.Namespace, command: str) -> bool:
    """True (and says why) when a faster simulated clock would write into a state directory
    that is not a simulation's own: its rows would carry future dates, and a real mat
    reading them would count the wrong day. An empty or new directory becomes one."""
    if args.state_dir is None or args.speed == 1.0:
        return False
    folder = Path(args.state_dir)
    if (folder / SIMULATED_STATE).exists():
        return False
    if not folder.exists() or not any(folder.iterdir()):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SIMULATED_STATE).write_text("written by a matpi simulation; a real mat's "
                                              "state never lives here\n", encoding="utf-8")
        return False
    print(f"{command}: {args.state_dir} holds state that no fast simulation made (a real "
          "mat's?); a simulation there must run at --speed 1, or use an empty folder (a "
          "faster clock would date its history in the future)", file=sys.stderr)
    return True


def _state_dir(args: argparse.Namespace, simulate: bool, stack: ExitStack) -> Path:
    """Where history and the pin lock live; a simulation keeps a throwaway one by default."""
    if args.state_dir is not None:
        return Path(args.state_dir)
    if simulate:
        return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="matpi-sim-")))
    return default_state_dir()


def _cmd_simulate(args: argparse.Namespace) -> int:
    if not sys.stdin.isatty():
        print("matpi simulate: needs a terminal (try `matpi run --simulate` instead)",
              file=sys.stderr)
        return 2
    config = _load(args.config)
    if config is None:
        return 1
    if _scaled_history(args, "matpi simulate"):
        return 2
    config = _with_sim_occupancy(args, config)
    config = _with_web_options(args, config)
    with ExitStack() as stack:
        state_dir = _state_dir(args, True, stack)
        mat = assemble(config, state_dir, simulate=True, speed=args.speed)
        return run_in_terminal(mat, ", ".join(map(str, config.mqtt.brokers)))


def _cmd_selftest(args: argparse.Namespace) -> int:
    from matpi.drivers.selftest import run_selftest, table

    config = _load(args.config)
    if config is None:
        return 1
    gestures: queue.SimpleQueue[Event] = queue.SimpleQueue()
    try:
        with pin_lock(default_state_dir()):
            from matpi.drivers.hardware import build_gpio_mat  # gpiozero: only for real pins

            drivers = build_gpio_mat(config.hardware, gestures.put)
            try:
                checks = run_selftest(drivers, gestures,
                                      has_button=config.hardware.button.pin is not None,
                                      has_occupancy=config.hardware.occupancy.pin is not None,
                                      button_timeout_s=args.button_timeout)
            finally:
                drivers.close()
    except DriverError as exc:
        print(f"matpi selftest: {exc}", file=sys.stderr)
        return 1
    print(table(checks))
    return 0 if all(c.passed for c in checks) else 1


def _cmd_safe_off(args: argparse.Namespace) -> int:
    """Always 0: systemd runs it after every end of the service, and a failure helps nobody."""

    write = line_writer(sys.stdout)

    def say(line: str, level: int = logging.INFO) -> None:
        write(f"safe-off: {line}", level)

    try:
        state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
        from matpi.service.safeoff import latch_watchdog_fault, safe_off  # gpiozero, serial

        safe_off(args.config, state_dir, say=say)
        latch_watchdog_fault(state_dir, os.environ.get("SERVICE_RESULT", ""), say=say)
    except Exception as exc:  # every step has its own guard; this is the last one
        say(f"could not finish: {type(exc).__name__}: {exc}", logging.ERROR)
    return 0


def _cmd_boot_config(args: argparse.Namespace) -> int:
    """Always 0: with a broken config the default pins' lines are the best answer."""
    from matpi.drivers.bootpins import DEFAULT_OUTPUTS, config_txt_lines, pi_outputs

    try:
        outputs = pi_outputs(load_config(args.config).hardware)
    except Exception as exc:  # ConfigError, or a file that is not even text
        problems = exc.problems if isinstance(exc, ConfigError) else [f"{args.config}: {exc}"]
        for problem in problems:
            print(problem, file=sys.stderr)
        pins = ", ".join(f"{out.role} GPIO{out.pin}" for out in DEFAULT_OUTPUTS)
        print(f"matpi boot-config: {args.config} cannot be used; these are the lines for "
              f"matpi's default pins ({pins})", file=sys.stderr)
        outputs = list(DEFAULT_OUTPUTS)
    lines = config_txt_lines(outputs)
    if not outputs:
        lines.append("# no output on the Pi's own pins (the mat board drives heater and motor)")
    print("\n".join(lines))
    return 0


def _cmd_discovery(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 1
    if args.print_:
        for topic, payload in discovery_messages(config.device, config.rules, config.mqtt):
            print(topic)
            print(json.dumps(json.loads(payload), indent=2, ensure_ascii=False))
        return 0
    # Imported here: the other commands have no use for paho.
    from matpi.remote.mqttclient import MqttError, publish_once

    try:
        publish_once(config.mqtt, removal_messages(config.device, config.mqtt))
    except MqttError as exc:
        print(f"matpi discovery: {exc}", file=sys.stderr)
        return 1
    print(f"matpi discovery: removed {config.device.name!r} from Home Assistant")
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from matpi.store.historyview import render_history

    if args.days < 1:
        print(f"matpi history: --days {args.days}: must be 1 or more", file=sys.stderr)
        return 2
    path = Path(args.state_dir or default_state_dir()) / HISTORY_FILENAME
    if not path.exists():
        print(f"matpi history: no history yet at {path}", file=sys.stderr)
        return 1
    try:
        history = History.open(path)
    except HistoryError as exc:
        print(f"matpi history: {exc}", file=sys.stderr)
        return 1
    try:
        print(render_history(history, args.days, Clock().today(), args.format), end="")
    finally:
        history.close()
    return 0


def _cmd_web_password(args: argparse.Namespace) -> int:
    import getpass

    from matpi.remote.web.security import PasswordError, PasswordFile

    path = args.file
    if path is None:
        config = _load(args.config)
        if config is None:
            return 1
        if config.web.password_file is None:
            print(f"matpi web-password: {args.config} has no [web] password_file; add one "
                  '(e.g. password_file = "/var/lib/matpi/web-password") or give --file',
                  file=sys.stderr)
            return 2
        path = Path(config.web.password_file)
    if sys.stdin.isatty():
        password = getpass.getpass("New password for the mat's page: ")
        if getpass.getpass("Once more: ") != password:
            print("matpi web-password: the two did not match; nothing changed", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        PasswordFile(path).write(password)
    except PasswordError as exc:
        print(f"matpi web-password: {exc}; nothing changed", file=sys.stderr)
        return 1
    print(f"matpi web-password: set in {path}; it applies from the next login, and "
          "pages logged in before must log in again")
    return 0
