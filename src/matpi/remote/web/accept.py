"""How the page takes connections: a bounded number, and no spinning when it cannot.

Anyone on the Wi-Fi can open connections. Without a bound, ~1,100 idle ones
used up the process's file descriptors: `accept` then failed on every turn of
the event loop (hundreds of thousands of tracebacks a minute), and the DS18B20
driver could not open its file, which ended the session with a sensor fault.
So:

- at most MAX_CONNECTIONS are open at once; one more is closed as soon as it is
  accepted, and counted (`CappedHTTPServer.refused`);
- when `accept` itself fails for want of descriptors or memory, accepting
  pauses for ACCEPT_PAUSE_S instead of retrying at once, and the failure is
  logged once per LOG_INTERVAL_S with how often it happened.
"""

import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
"""Far below the unit's LimitNOFILE= (4096) and systemd's default (1024): a phone holds
one stream and a few requests; eight pages at once use about twenty."""
ACCEPT_PAUSE_S = 0.5
LOG_INTERVAL_S = 60.0
ACCEPT_BATCH = 32
"""Connections taken per wake-up, so that a flood cannot starve the rest of the loop."""
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class CappedHTTPServer(HTTPServer):
    """An HTTPServer that keeps at most `max_connections` open; see the module docstring."""

    max_connections = MAX_CONNECTIONS
    refused = 0
    """Connections closed because the cap was reached (since start)."""
    _refused_logged = (float("-inf"), 0)

    def handle_stream(self, stream: IOStream, address: Any) -> None:
        if len(self._connections) >= self.max_connections:
            self.refused += 1
            stream.close()
            self._report_refused()
            return
        super().handle_stream(stream, address)

    def _report_refused(self) -> None:
        logged_at, count = self._refused_logged
        now = IOLoop.current().time()
        if now - logged_at >= LOG_INTERVAL_S:
            log.warning("web page: %d connection(s) refused: %d open, the most it keeps "
                        "(logged once a minute at most)", self.refused - count,
                        self.max_connections)
            self._refused_logged = (now, self.refused)


class Acceptor:
    """Accepts on listening sockets for a server, pausing (never spinning) when accept fails.

        acceptor = Acceptor(server, IOLoop.current())
        acceptor.listen(sockets)
        acceptor.stop()
    """

    def __init__(self, server: CappedHTTPServer, loop: IOLoop,
                 monotonic: Callable[[], float] | None = None) -> None:
        self._server = server
        self._loop = loop
        self._monotonic = monotonic or loop.time
        self._sockets: list[socket.socket] = []
        self._failures = 0
        self._logged_at = float("-inf")
        self._stopped = False

    def listen(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            sock.setblocking(False)
            self._sockets.append(sock)
            self._watch(sock)

    def stop(self) -> None:
        """Stops accepting; the sockets stay open (their owner closes them)."""
        self._stopped = True
        for sock in self._sockets:
            self._loop.remove_handler(sock)

    def _watch(self, sock: socket.socket) -> None:
        if not self._stopped:
            self._loop.add_handler(sock, lambda _fd, _events: self._accept(sock), IOLoop.READ)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                connection, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                self._pause(sock, exc)
                return
            server: Any = self._server  # TCPServer's buffer settings, untyped in tornado
            self._server.handle_stream(IOStream(
                connection, max_buffer_size=server.max_buffer_size,
                read_chunk_size=server.read_chunk_size), address)

    def _pause(self, sock: socket.socket, exc: OSError) -> None:
        """Out of descriptors or memory: wait before trying again, and say so now and then."""
        self._failures += 1
        now = self._monotonic()
        if now - self._logged_at >= LOG_INTERVAL_S:
            log.error("web page: cannot accept connections (%s), %d time(s) since the last "
                      "report; pausing %.1f s each time (logged once a minute at most)",
                      exc.strerror or exc, self._failures, ACCEPT_PAUSE_S)
            self._logged_at, self._failures = now, 0
        self._loop.remove_handler(sock)
        self._loop.call_later(ACCEPT_PAUSE_S, self._watch, sock)
