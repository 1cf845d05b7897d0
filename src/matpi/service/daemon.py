"""Runs one assembled mat until it is told to stop: what it prints, what it tells
systemd, and what it acts on (signals, `--sim-stdin`, the terminal's keys).

`app.assemble` builds the mat; `cli` parses the command line and calls `serve`.
"""

import logging
import signal
import sys
import threading

from matpi import __version__
from matpi.config.settings import Config
from matpi.core.events import (
    DoublePress,
    EndReason,
    Event,
    LongPress,
    Notice,
    Press,
    SessionEnded,
    SessionStarted,
    Snapshot,
    Source,
    Start,
)
from matpi.drivers.sim import SimFault
from matpi.service import systemd
from matpi.service.app import Mat
from matpi.service.console import StateLinePrinter
from matpi.service.controller import Controller
from matpi.service.journal import line_writer
from matpi.service.status import ServiceStatus

SIM_GESTURES: dict[str, Event] = {"press": Press(), "double": DoublePress(), "long": LongPress()}


def serve(mat: Mat, config: Config, *, once: bool = False, start: str | None = None,
          sim_stdin: bool = False, board_sim: bool = False) -> int:
    """Runs `mat` in this thread until SIGTERM or SIGINT (or, with `once`, the end of the
    first session); every output is off and systemd told when it returns.

    Returns the exit status: 0, or with `once` 1 when that session ended in a fault.
    """
    started_at = mat.clock.now()
    write = line_writer(sys.stdout)
    mat.controller.add_listener(StateLinePrinter(lambda: mat.clock.now() - started_at, write))
    if systemd.available():
        mat.controller.add_listener(ServiceStatus(
            systemd.status, dose_max_cem43=config.rules.dose_max_cem43,
            fault_clearable=mat.history is not None,
            call_later=mat.loop.call_later))
    outcome = _OnceWatcher(mat.controller) if once else None
    if outcome is not None:
        mat.controller.add_listener(outcome)
    if mat.sim is None:
        what = "mat on GPIO" if config.hardware.driver == "gpio" else "mat on the mat board"
    else:
        board = " through the simulated mat board" if board_sim else ""
        what = f"simulated mat{board}, speed x{mat.clock.speed:g}"
    _stop_on_signals(mat.controller)
    if start:
        mat.controller.post(Start(Source.LOCAL, start))
    mat.start_edges()
    page = f"; the mat's page: {mat.web.url}" if mat.web is not None and mat.web.url else ""
    write(f"matpi {__version__}: {what}, config {config.source}{page}", logging.INFO)
    if sim_stdin:
        threading.Thread(target=_act_from_stdin, args=(mat,), name="matpi-sim-stdin",
                         daemon=True).start()
    systemd.ready()
    try:
        mat.controller.run()
    finally:
        systemd.stopping()
        mat.close()
    return outcome.exit_code if outcome is not None else 0


def _act_from_stdin(mat: Mat) -> None:
    """`--sim-stdin`: each line presses the simulated button or plays a hardware fault."""
    assert mat.sim is not None
    for line in sys.stdin:
        words = line.split()
        if len(words) == 1 and words[0] in SIM_GESTURES:
            mat.controller.post(SIM_GESTURES[words[0]])
        elif words[:1] == ["person"] and words[1:] in (["on"], ["off"]):
            mat.sim.set_person(words[1] == "on")
        elif words[:1] == ["fault"] and len(words) in (2, 3) and words[1] in set(SimFault) \
                and words[2:] in ([], ["off"]):
            mat.sim.inject(SimFault(words[1]), active=words[2:] != ["off"])
        elif words:
            print(f"matpi run --sim-stdin: {line.strip()!r}: not understood; one of "
                  f"{', '.join(SIM_GESTURES)}, person on|off, or fault NAME [off] with NAME one of "
                  f"{', '.join(SimFault)}", file=sys.stderr, flush=True)


class _OnceWatcher:
    """Stops the controller when the first session has ended, and remembers how."""

    def __init__(self, controller: Controller) -> None:
        self._controller = controller
        self._started = False
        self.exit_code = 1

    def __call__(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        for notice in notices:
            if isinstance(notice, SessionStarted):
                self._started = True
            elif isinstance(notice, SessionEnded) and self._started:
                self.exit_code = 1 if notice.reason is EndReason.FAULT else 0
                self._controller.request_stop(f"session ended: {notice.reason}")


def _stop_on_signals(controller: Controller) -> None:
    def handler(signum: int, _frame: object) -> None:
        controller.request_stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_in_terminal(mat: Mat, broker: str) -> int:
    """The simulated `mat` in this terminal: keys act on it, a status block redraws live."""
    # Imported here: a mat under systemd has no terminal, and no use for termios (60 KiB).
    from matpi.service.terminal import InteractiveMat

    assert mat.sim is not None
    bridge = mat.bridge
    web = mat.web

    def links() -> str:
        mqtt = ("MQTT: off" if bridge is None
                else f"MQTT: {'connected to' if bridge.connected else 'not connected to'} {broker}")
        return mqtt + (f"  ·  the mat's page: {web.url}" if web is not None and web.url else "")

    terminal = InteractiveMat(mat.controller.post, mat.sim, links=links)
    mat.controller.add_listener(terminal.listener)
    thread = threading.Thread(target=mat.controller.run, name="matpi-controller")
    thread.start()
    mat.start_edges()
    try:
        terminal.run()
    finally:
        mat.controller.request_stop("quit")
        thread.join()
        mat.close()
    return 0
