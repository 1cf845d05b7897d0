"""Log lines that keep their weight in systemd's journal.

journald gives every line a service writes on stdout or stderr priority 6
(info) unless the line starts with a `<N>` syslog prefix (sd-daemon(3); the
unit's `SyslogLevelPrefix=` is on by default). Without it a fault, a refused
command and a crash all look like chatter, and `journalctl -p warning` shows
nothing. So, when a stream is the journal's, every line gets its prefix:
each line of a traceback too, since journald reads line by line.

Whether a stream is the journal's is what $JOURNAL_STREAM says (`device:inode`
of the stream systemd connected): a child that inherited the variable but
writes into a pipe must not print prefixes at a person.
"""

import logging
import os
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

PRIORITIES = {
    logging.CRITICAL: 2,  # crit: the daemon is going down
    logging.ERROR: 3,  # err: a fault, a failed part
    logging.WARNING: 4,  # warning: a refused command, a degraded link
    logging.INFO: 6,  # info
    logging.DEBUG: 7,  # debug
}

WriteLine = Callable[[str, int], None]
"""Writes one line of text at a logging level (logging.INFO, ...)."""


def priority(level: int) -> int:
    """The syslog priority of a logging level; levels between two take the more severe one."""
    for threshold, value in sorted(PRIORITIES.items(), reverse=True):
        if level >= threshold:
            return value
    return PRIORITIES[logging.DEBUG]


def prefixed(text: str, level: int) -> str:
    """`text` with the `<N>` of `level` in front of each of its lines."""
    mark = f"<{priority(level)}>"
    return "\n".join(mark + line for line in text.split("\n"))


def is_journal(stream: TextIO) -> bool:
    """True if `stream` is the one systemd connected to the journal ($JOURNAL_STREAM)."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        stat = os.fstat(stream.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (ValueError, OSError):
        return False


class _PriorityFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return prefixed(super().format(record), record.levelno)


def setup_logging(verbose: bool, stream: TextIO | None = None) -> None:
    """Log to `stream` (stderr), with journald priorities when it is the journal's, and send
    uncaught exceptions, in any thread, through the log at CRITICAL.

    Like `logging.basicConfig`, it leaves a logging set up already (matpi called from
    another program, or the tests) as it is."""
    root = logging.getLogger()
    if root.handlers:
        return
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    line_format = "%(levelname)s %(name)s: %(message)s"
    handler.setFormatter(_PriorityFormatter(line_format) if is_journal(stream)
                         else logging.Formatter(line_format))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def line_writer(stream: TextIO) -> WriteLine:
    """Writes state lines to `stream` (stdout), prefixed with their priority when it is
    the journal's, so that `journalctl -p err` finds a fault among them."""
    journal = is_journal(stream)

    def write(line: str, level: int) -> None:
        stream.write((prefixed(line, level) if journal else line) + "\n")
        stream.flush()

    return write


def _log_uncaught(kind: type[BaseException], error: BaseException,
                  trace: TracebackType | None) -> None:
    logging.getLogger("matpi").critical("uncaught %s", kind.__name__,
                                        exc_info=(kind, error, trace))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return  # SystemExit is silent, as Python's own hook keeps it
    thread = args.thread.name if args.thread is not None else "?"
    logging.getLogger("matpi").critical(
        "uncaught %s in thread %s", args.exc_type.__name__, thread,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
