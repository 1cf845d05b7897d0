"""A real mosquitto for tests: its own config on a free loopback port, stopped by its PID.

    broker = Broker(tmp_path)
    broker.start()
    ...
    broker.restart()       # same port, nothing retained (persistence is off)
    broker.stop()

TLS and password variants use files a test makes (`make_certificate`,
`make_password_file`). The tests that need one are skipped where mosquitto
is not installed.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
READY_TIMEOUT_S = 10.0

needs_mosquitto = pytest.mark.skipif(
    not os.path.exists(MOSQUITTO), reason="mosquitto is not installed (apt-get install mosquitto)"
)


@dataclass(frozen=True)
class Tls:
    """Server certificate and key; the certificate is self-signed, so it is its own CA."""

    cert_file: Path
    key_file: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_certificate(directory: Path) -> Tls:
    """A self-signed certificate for 127.0.0.1, valid for a day."""
    tls = Tls(directory / "server.crt", directory / "server.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(tls.key_file), "-out", str(tls.cert_file)],
        check=True, capture_output=True,
    )
    return tls


def make_password_file(directory: Path, users: dict[str, str]) -> Path:
    path = directory / "passwd"
    path.touch(mode=0o600)
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(path), user, password],
                       check=True, capture_output=True)
    return path


class Broker:
    """One mosquitto process on 127.0.0.1, restartable on the same port."""

    def __init__(self, directory: Path, *, tls: Tls | None = None,
                 password_file: Path | None = None) -> None:
        self.directory = directory
        self.host = "127.0.0.1"
        self.port = free_port()
        self.config_file = directory / "mosquitto.conf"
        self.log_file = directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'false' if password_file else 'true'}",
            "persistence false",
            "set_tcp_nodelay true",
            # As root, mosquitto would switch to its own user and lose access to the test's files.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if password_file is not None:
            lines.append(f"password_file {password_file}")
        if tls is not None:
            lines += [f"cafile {tls.cert_file}", f"certfile {tls.cert_file}",
                      f"keyfile {tls.key_file}"]
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def start(self) -> None:
        assert self._process is None, "already running"
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen([MOSQUITTO, "-c", str(self.config_file)],
                                             stdout=log, stderr=log)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._accepts():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not start: {self.log_file.read_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # a frozen broker takes SIGTERM only then
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5.0)

    def freeze(self) -> None:
        """The broker hangs (SIGSTOP): its connections stay open and it answers nothing."""
        assert self._process is not None, "not running"
        os.kill(self._process.pid, signal.SIGSTOP)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False
