"""Tells systemd how the daemon is doing: sd_notify by hand over a datagram socket.

systemd passes the socket's address in $NOTIFY_SOCKET (a path, or `@name` for
an abstract socket). Without it (a terminal, the tests, the simulator) every
call is a no-op that returns False, so callers never need to check first.

The watchdog is what makes a wedged controller loop visible: only the loop
itself calls `watchdog()`, at half the interval (up to a tenth of it later, to ride
on a wake the loop has anyway), so a stuck loop stops the pings and systemd kills
and restarts the service (and runs `matpi safe-off`).

    timeout_s = systemd.watchdog_interval_s()   # None unless WatchdogSec= is set
    Controller(..., alive=systemd.watchdog, alive_every_s=timeout_s / 2,
               alive_slack_s=timeout_s / 10)
    systemd.ready()
"""

import logging
import os
import socket

log = logging.getLogger(__name__)


def available() -> bool:
    """True when running under systemd's notify protocol ($NOTIFY_SOCKET is set)."""
    return bool(os.environ.get("NOTIFY_SOCKET"))


def notify(message: str) -> bool:
    """Send `message` (e.g. "READY=1") to systemd; True if it was sent.

    Never raises and never blocks: it runs on the controller thread, and a
    socket nobody drains (a full queue) must not stop the loop. A failure is
    logged once, until a message gets through again.
    """
    global _failing
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        return False  # unset, or a vsock address this daemon never runs under
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.send(message.encode(), socket.MSG_DONTWAIT)
    except OSError as exc:
        if not _failing:
            log.warning("sd_notify %r failed: %s (said once until it works again)",
                        message, exc)
        _failing = True
        return False
    if _failing:
        log.info("sd_notify works again")
    _failing = False
    return True


_failing = False


# ready, stopping and watchdog return nothing: nobody acts on a lost notification (notify
# logs it). status says whether it got through, so that a lost line is sent again.


def ready() -> None:
    """Start-up is done: drivers are up and the stored state is loaded."""
    notify("READY=1")


def stopping() -> None:
    """Shutting down on purpose, not failing."""
    notify("STOPPING=1")


def watchdog() -> None:
    """The controller loop is alive; fits `Controller(alive=...)`."""
    notify("WATCHDOG=1")


def status(text: str) -> bool:
    """One line for `systemctl status`; newlines would end the assignment. False when it
    did not get through (the caller sends it again)."""
    return notify("STATUS=" + " ".join(text.splitlines()))


def watchdog_interval_s() -> float | None:
    """systemd's watchdog timeout for this process, or None when there is none.

    From $WATCHDOG_USEC; $WATCHDOG_PID, when set, must be this process (a child
    that inherited the environment must not ping for its parent). Ping at half
    of it, as sd_watchdog_enabled(3) advises.
    """
    pid = os.environ.get("WATCHDOG_PID")
    if pid is not None and pid != str(os.getpid()):
        return None
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None
