"""Where a mat keeps its state, and the lock that gives one process its pins.

Apart from the drivers, so that a simulation, `matpi history` and `safe-off` reach
them without importing gpiozero.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from matpi.core.errors import DriverError

LOCK_NAME = "matpi.lock"


def default_state_dir() -> Path:
    """systemd's StateDirectory when run as the service, else the user's state folder."""
    if "STATE_DIRECTORY" in os.environ:
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    system = Path("/var/lib/matpi")
    if system.is_dir() and os.access(system, os.W_OK):
        return system
    base = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return base / "matpi"


@contextmanager
def pin_lock(state_dir: Path) -> Iterator[IO[str]]:
    """Hold the mat's pins for this process; a second holder (service, self-test) is refused.

    Raises:
        DriverError: another matpi process holds the pins, naming its pid.
    """
    path = state_dir / LOCK_NAME
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="ascii")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise DriverError(f"cannot open the pin lock {path}: {exc.strerror}; if a run as root "
                          f"left it behind: sudo chown matpi:matpi {path}") from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise DriverError(
                f"another matpi (pid {holder}) holds the mat's pins ({path}); stop it first, "
                "e.g. `sudo systemctl stop matpi`"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield handle
