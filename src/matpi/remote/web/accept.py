"""How the page takes connections: a bounded number, and no spinning when it cannot.

Anyone on the Wi-Fi can open connections. Without a bound, ~1,100 idle ones
used up the process's file descriptors: `accept` then failed on every turn of
the event loop (hundreds of thousands of tracebacks a minute), and the DS18B20
driver could not open its file, which ended the session with a sensor fault.
So:

- at most MAX_CONNECTIONS are open at once, MAX_PER_ADDRESS from one address;
  one more is closed as soon as it is accepted, and counted
  (`CappedHTTPServer.refused`, reported once a minute with how many);
- when `accept` itself fails for want of descriptors or memory, accepting
  pauses for ACCEPT_PAUSE_S instead of retrying at once, and the failure is
  logged once per LOG_INTERVAL_S with how often it happened.
"""

import errno
import logging
import socket
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from matpi.remote.tally import Tally

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
"""Far below the unit's LimitNOFILE= (4096) and systemd's default (1024): a phone holds
one stream and a few requests; eight pages at once use about twenty."""
MAX_PER_ADDRESS = 16
"""From one address: a browser opens six at most, so four tabs of one phone still fit."""
ACCEPT_PAUSE_S = 0.5
LOG_INTERVAL_S = 60.0
ACCEPT_BATCH = 32
"""Connections taken per wake-up, so that a flood cannot starve the rest of the loop."""
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class CappedHTTPServer(HTTPServer):
    """An HTTPServer that keeps at most `max_connections` open, and at most
    `max_per_address` from one address (one device cannot take the page from the
    rest); see the module docstring. `refused` counts and reports the rest."""

    max_connections = MAX_CONNECTIONS
    max_per_address = MAX_PER_ADDRESS
    refused: Tally

    def start_counting(self) -> None:
        """In the server's loop, before the first connection."""
        self._address_of: dict[object, str] = {}
        self._per_address: dict[str, int] = {}
        self.refused = Tally(
            lambda n: log.warning("web page: %d connection(s) refused: %d open at most, %d "
                                  "from one address (said once a minute at most)", n,
                                  self.max_connections, self.max_per_address),
            LOG_INTERVAL_S, IOLoop.current().call_later)

    def handle_stream(self, stream: IOStream, address: Any) -> None:
        host = str(address[0]) if isinstance(address, tuple) else str(address)
        if (len(self._connections) >= self.max_connections
                or self._per_address.get(host, 0) >= self.max_per_address):
            stream.close()
            self.refused.count()
            return
        before = set(self._connections)
        super().handle_stream(stream, address)
        for connection in set(self._connections) - before:
            self._address_of[connection] = host
            self._per_address[host] = self._per_address.get(host, 0) + 1

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        host = self._address_of.pop(server_conn, None)
        if host is not None:
            left = self._per_address[host] - 1
            if left:
                self._per_address[host] = left
            else:
                del self._per_address[host]


class Acceptor:
    """Accepts on listening sockets for a server, pausing (never spinning) when accept fails.

        acceptor = Acceptor(server, IOLoop.current())
        acceptor.listen(sockets)
        acceptor.stop()
    """

    def __init__(self, server: CappedHTTPServer, loop: IOLoop) -> None:
        self._server = server
        self._loop = loop
        self._sockets: list[socket.socket] = []
        self._failures = Tally(
            lambda n: log.error("web page: cannot accept connections (out of file "
                                "descriptors or memory), %d time(s); each time accepting "
                                "pauses %.1f s (said once a minute at most)", n,
                                ACCEPT_PAUSE_S),
            LOG_INTERVAL_S, loop.call_later)
        self._stopped = False

    def listen(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            sock.setblocking(False)
            self._sockets.append(sock)
            self._watch(sock)

    def stop(self) -> None:
        """Stops accepting; the sockets stay open (their owner closes them)."""
        self._stopped = True
        self._failures.close()
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
                self._pause(sock)
                return
            server: Any = self._server  # TCPServer's buffer settings, untyped in tornado
            self._server.handle_stream(IOStream(
                connection, max_buffer_size=server.max_buffer_size,
                read_chunk_size=server.read_chunk_size), address)

    def _pause(self, sock: socket.socket) -> None:
        """Out of descriptors or memory: wait before trying again, and say so now and then."""
        self._failures.count()
        self._loop.remove_handler(sock)
        self._loop.call_later(ACCEPT_PAUSE_S, self._watch, sock)
