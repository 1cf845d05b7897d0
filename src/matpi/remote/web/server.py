"""The web server thread: tornado on its own asyncio loop, beside the controller.

The controller never waits for the page: its listener hands each snapshot to
the loop with `call_soon_threadsafe` (a queue append and one byte down the
loop's wake-up pipe) and returns. Requests reach the mat only as events posted
to the controller, after `RemoteCommands` has checked them.

Why tornado: a production HTTP/1.1 server that parses every request itself
(no hand-parsed HTTP here), with streamed responses for Server-Sent Events
and request bodies that can be refused chunk by chunk. It costs about 4 MiB
of resident memory in this process; aiohttp, measured the same way, about
13 MiB, which a Pi Zero's budget (45 MiB for the daemon with the page on)
could not spare.

    web = WebServer(config.web, device=config.device, rules=rules, commands=commands,
                    post=controller.post, clock=clock, history_path=history.path)
    controller.add_listener(web.listener)
    web.start()          # binds now; logs and stays off if the port is taken
    print(web.url)
    web.close()
"""

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets
from tornado.web import Application

from matpi.config.settings import DeviceConfig, WebConfig
from matpi.core.clockmark import TimeSource
from matpi.core.events import Event, Notice, Snapshot
from matpi.core.patterns import INHALE_SHARE, Pattern
from matpi.core.programs import HeatLevel
from matpi.core.rules import Rules
from matpi.core.session import MIN_SESSION_MIN
from matpi.remote.commands import RemoteCommands
from matpi.remote.web.accept import Acceptor, CappedHTTPServer
from matpi.remote.web.handlers import (
    MAX_BODY_BYTES,
    BaseHandler,
    EventsHandler,
    HistoryHandler,
    NotFoundHandler,
    OptionsHandler,
    Site,
    StateHandler,
    StaticHandler,
    load_static,
    log_request,
)
from matpi.remote.web.live import LiveState
from matpi.remote.web.logins import Hasher, LoginLimiter
from matpi.remote.web.posts import CommandHandler, LoginHandler, LogoutHandler
from matpi.remote.web.security import PasswordError, PasswordFile, Sessions, own_names

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024
IDLE_CONNECTION_S = 10.0
"""A connection that sends no request for this long is closed (the first one too): an idle
socket holds one of the few places the page keeps. A live stream is a response, not idle."""
BODY_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 3.0


class WebError(RuntimeError):
    """The page could not be served (port taken, password file unusable); says why."""


class WebServer:
    """Serves the mat's page and API from its own thread. See the module docstring."""

    def __init__(
        self,
        config: WebConfig,
        *,
        device: DeviceConfig,
        rules: Rules,
        commands: RemoteCommands,
        post: Callable[[Event], None],
        clock: TimeSource,
        history_path: Path | None,
        history_problem: str = "",
    ) -> None:
        self._config = config
        self._loop = asyncio.new_event_loop()
        self._live = LiveState(now=clock.now, wall=clock.wall)
        password = PasswordFile(Path(config.password_file)) if config.password_file else None
        self._site = Site(
            live=self._live, commands=commands, post=post,
            options_json=json.dumps(options(device, rules, password is not None),
                                    ensure_ascii=False),
            history_path=history_path,
            history_problem=history_problem or "the history file is unusable (see the journal)",
            today=clock.today, password=password,
            sessions=Sessions(password) if password is not None else None,
            logins=LoginLimiter(), hasher=Hasher(),
            allowed_hosts=own_names() | frozenset(config.allowed_hosts),
            static=load_static(),
        )
        self._thread = threading.Thread(target=self._serve, name="matpi-web", daemon=True)
        self._sockets: list[socket.socket] = []
        self._stopped = asyncio.Event()
        self.url: str | None = None
        """http://address:port/ once serving; None before, or when the page is off."""

    @property
    def port(self) -> int | None:
        return self._sockets[0].getsockname()[1] if self._sockets else None

    def start(self) -> None:
        """Bind the port and serve from a new thread; raises WebError, serving nothing,
        if the port is taken or the password file cannot be used."""
        try:
            self._bind()
        except WebError:
            self._loop.close()  # the listener stops queueing snapshots for a loop never run
            raise
        self.url = f"http://{_shown_host(self._config.listen)}:{self.port}/"
        self._thread.start()

    def _bind(self) -> None:
        if self._site.password is not None:
            try:
                self._site.password.check_readable()
            except PasswordError as exc:
                raise WebError(str(exc)) from exc
        address = None if self._config.listen in ("0.0.0.0", "::") else self._config.listen
        family = socket.AF_INET if self._config.listen == "0.0.0.0" else socket.AF_UNSPEC
        try:
            self._sockets = bind_sockets(self._config.port, address, family=family)
        except OSError as exc:
            raise WebError(f"cannot listen on {self._config.listen}:{self._config.port}: "
                           f"{exc.strerror or exc}") from exc

    def listener(self, snapshot: Snapshot, notices: list[Notice]) -> None:
        """Controller listener: hands the snapshot to the web thread; never waits."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: the page is off
            self._loop.call_soon_threadsafe(self._live.update, snapshot, list(notices))

    def close(self) -> None:
        """End every stream, stop serving and join the thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=CLOSE_TIMEOUT_S + 1.0)
        elif not self._loop.is_closed():
            self._loop.close()
        for sock in self._sockets:
            sock.close()
        self._site.hasher.close()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._run())
        except Exception:
            log.exception("web page: server stopped")
        finally:
            self._loop.close()

    async def _run(self) -> None:
        app = Application(routes(self._site), default_handler_class=NotFoundHandler,
                          default_handler_args={"site": self._site}, log_function=log_request)
        server = CappedHTTPServer(app, max_body_size=MAX_BODY_BYTES,
                                  max_header_size=MAX_HEADER_BYTES,
                                  idle_connection_timeout=IDLE_CONNECTION_S,
                                  body_timeout=BODY_TIMEOUT_S, decompress_request=False)
        server.start_counting()
        self._live.start_counting()
        acceptor = Acceptor(server, IOLoop.current())
        acceptor.listen(self._sockets)
        log.info("web page: serving %s", self.url)
        await self._stopped.wait()
        acceptor.stop()
        server.refused.close()
        self._live.refused.close()
        self._live.close_all()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await server.close_all_connections()
        except TimeoutError:
            log.warning("web page: connections still open at shutdown")


def routes(site: Site) -> list[tuple[str, type[BaseHandler], dict[str, Site]]]:
    """Every URL the page answers; anything else is NotFoundHandler's 404."""
    args = {"site": site}
    return [
        (r"/", StaticHandler, args),
        (r"/static/([a-z]+\.[a-z]+)", StaticHandler, args),
        (r"/api/state", StateHandler, args),
        (r"/api/options", OptionsHandler, args),
        (r"/api/history", HistoryHandler, args),
        (r"/api/events", EventsHandler, args),
        (r"/api/command", CommandHandler, args),
        (r"/api/login", LoginHandler, args),
        (r"/api/logout", LogoutHandler, args),
    ]


def options(device: DeviceConfig, rules: Rules, password: bool) -> dict[str, object]:
    """What the page may offer, from the mat's rules: the API's /api/options."""
    return {
        "device": {"id": device.id, "name": device.name},
        "programs": [{"name": p.name, "duration_min": p.duration_min, "heat": p.heat.value,
                      "pattern": p.pattern.value, "intensity_pct": p.intensity_pct}
                     for p in rules.programs.values()],
        "heat_levels": [h.value for h in HeatLevel],
        "setpoints_c": {h.value: c for h, c in rules.setpoints_c.items()},
        "patterns": [p.value for p in Pattern],
        "inhale_share": INHALE_SHARE,  # the breathing guide follows the motor's own pace
        "intensity_pct": {"min": 0, "max": 100},
        "duration_min": {"min": MIN_SESSION_MIN, "max": rules.session_max_min},
        "limits": {"daily_max_min": rules.daily_max_min, "dose_max_cem43": rules.dose_max_cem43,
                   "daily_dose_max_cem43": rules.daily_dose_max_cem43,
                   "preheat_max_min": rules.preheat_max_min, "cooldown_min": rules.cooldown_min,
                   "reset_below_c": rules.reset_below_c},
        "password": password,
    }


def _shown_host(listen: str) -> str:
    """Where a person should point a browser for a given listen address."""
    if listen in ("0.0.0.0", "::"):
        return f"{socket.gethostname()}.local"
    return f"[{listen}]" if ":" in listen else listen
