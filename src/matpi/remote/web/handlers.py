"""The page's HTTP endpoints that read (tornado handlers): static files, state, options,
history, the event stream; and the base every handler shares. `posts` has the ones that
act (command, login, logout).

Every request passes the Host check (403); every API request but login needs
a session when a password is set (401); every POST must come from this very
origin (403), carry a JSON body (415) of at most 4 KiB (413). Errors are JSON:
`{"error": {"field": ..., "value": ..., "allowed": ..., "message": ...}}`.
Commands go through `RemoteCommands`, the one place that decides what a
remote request may do, and reach the mat only as events posted to the
controller.
"""

import asyncio
import hashlib
import json
import logging
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import tornado.web
from tornado.iostream import StreamClosedError

from matpi.core.errors import HistoryError
from matpi.core.events import Event
from matpi.remote.commands import RemoteCommands
from matpi.remote.web.live import LiveState
from matpi.remote.web.logins import Hasher, LoginLimiter
from matpi.remote.web.security import (
    PasswordFile,
    Sessions,
    host_allowed,
)
from matpi.store.history import History
from matpi.store.historyview import render_history

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096
CHUNKED_BODY_LIMIT = 64 * 1024
"""A chunked body is read up to this before tornado cuts the connection; ours refuses
it with 413 past MAX_BODY_BYTES."""
SESSION_COOKIE = "matpi_session"
KEEPALIVE_S = 25.0
"""A comment line on a quiet stream this often, so that a dead connection is noticed."""
HISTORY_DAYS_MAX = 366
DAYS_TEXT = re.compile(f"[0-9]{{1,{len(str(HISTORY_DAYS_MAX))}}}")
"""`days` as ASCII digits, no more than HISTORY_DAYS_MAX has: `int()` refuses 4,300."""
STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass
class Site:
    """What every handler shares: the mat's side (live state, commands, history) and who
    may use it. Built once by `WebServer`."""

    live: LiveState
    commands: RemoteCommands
    post: Callable[[Event], None]
    options_json: str
    history_path: Path | None
    history_problem: str
    today: Callable[[], date]
    password: PasswordFile | None
    sessions: Sessions | None
    logins: LoginLimiter
    hasher: Hasher
    allowed_hosts: frozenset[str]
    static: dict[str, tuple[bytes, str, str]]
    """The page's own files: name -> (content, content type, ETag)."""


def load_static() -> dict[str, tuple[bytes, str, str]]:
    """The page's files, read once at start: a few tens of KiB."""
    files = {}
    for path in STATIC.iterdir():
        if path.suffix in CONTENT_TYPES:
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            files[path.name] = (body, CONTENT_TYPES[path.suffix], etag)
    return files


class Failure(Exception):
    """Ends a request with a JSON error naming the field, the value and what is allowed."""

    def __init__(self, status: int, field: str, value: str, allowed: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{field} = {value}: {allowed}")
        self.status = status
        self.body = {"field": field, "value": value, "allowed": allowed,
                     "message": f"{field} = {value}: {allowed}"}
        self.headers = headers or {}


class BaseHandler(tornado.web.RequestHandler):
    """Security headers and the Host check for everything; JSON errors."""

    site: Site
    needs_login = False

    def initialize(self, site: Site) -> None:
        self.site = site

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)

    def prepare(self) -> None:
        try:
            self.check()
        except Failure as failure:
            self.fail(failure)

    def check(self) -> None:
        """Raises Failure when the request may not go on."""
        host = self.request.headers.get("Host")
        if not host_allowed(host, self.site.allowed_hosts):
            raise Failure(403, "Host", str(host), "a name or address of this mat on the home "
                          "network; add other names to [web] allowed_hosts")
        if self.needs_login and not self.logged_in():
            raise Failure(401, "session", "none", "log in first: POST /api/login with "
                          '{"password": "..."}')

    def logged_in(self) -> bool:
        """True without a password, or with a session cookie still valid."""
        sessions = self.site.sessions
        return sessions is None or sessions.valid(self.get_cookie(SESSION_COOKIE))

    def fail(self, failure: Failure) -> None:
        self.set_status(failure.status)
        for name, value in failure.headers.items():
            self.set_header(name, value)
        self.send_json({"error": failure.body})

    def send_json(self, value: object) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason if status_code != 500 else "internal error (see the journal)"
        self.send_json({"error": {"field": "request", "value": self.request.path,
                                  "allowed": reason, "message": reason}})


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        super().prepare()
        if not self._finished:
            self.fail(Failure(404, "path", self.request.path, "not a page or API endpoint of "
                              "this mat: see /api/state, /api/history, /api/events, "
                              "/api/command"))


class StaticHandler(BaseHandler):
    """The page's own files; they hold no data, so they need no login."""

    def get(self, name: str = "index.html") -> None:
        found = self.site.static.get(name)
        if found is None:
            self.fail(Failure(404, "path", self.request.path, "not a file of this page"))
            return
        body, content_type, etag = found
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-cache")
        self.set_header("ETag", etag)
        if self.request.headers.get("If-None-Match") == etag:
            self.set_status(304)
            self.finish()
            return
        self.finish(body)


class StateHandler(BaseHandler):
    needs_login = True

    def get(self) -> None:
        state = self.site.live.state_json
        if state is None:
            self.fail(Failure(503, "state", "none yet", "the mat is starting; try again"))
            return
        self.send_json(state)


class OptionsHandler(BaseHandler):
    """What the page offers: programs, levels, patterns, ranges and limits."""

    needs_login = True

    def get(self) -> None:
        self.send_json(self.site.options_json)


class HistoryHandler(BaseHandler):
    """`matpi history --json` for the last `days` (default 30)."""

    needs_login = True

    def get(self) -> None:
        text = self.get_query_argument("days", "30")
        if DAYS_TEXT.fullmatch(text) is None or not 1 <= int(text) <= HISTORY_DAYS_MAX:
            self.fail(Failure(400, "days", text[:20], f"a whole number from 1 to "
                              f"{HISTORY_DAYS_MAX}"))
            return
        site = self.site
        if site.history_path is None:
            self.fail(Failure(503, "history", "unusable", site.history_problem))
            return
        try:
            # Read-only: the page can show the history, never change it.
            db = sqlite3.connect(f"{site.history_path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            self.fail(Failure(503, "history", "unreadable", str(exc)))
            return
        try:
            self.send_json(render_history(History(db, site.history_path), int(text),
                                          site.today(), "json"))
        except (HistoryError, sqlite3.Error) as exc:
            self.fail(Failure(503, "history", "unreadable", str(exc)))
        finally:
            db.close()


class EventsHandler(BaseHandler):
    """The live stream (Server-Sent Events): curve and state at once, then every change."""

    needs_login = True

    async def get(self) -> None:
        subscriber = self.site.live.subscribe()
        if subscriber is None:
            # The page falls back to polling /api/state and says so; expected under load,
            # so summed up in the journal once a minute, not an error each time.
            self._refused = True
            self.site.live.refused.count()
            self.fail(Failure(503, "events", "too many open pages",
                              "the page polls /api/state instead", {"Retry-After": "30"}))
            return
        self._subscriber = subscriber
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Accel-Buffering", "no")
        try:
            while not subscriber.closed:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        await subscriber.wake.wait()
                except TimeoutError:
                    subscriber.pending.append(": keep-alive\n\n")
                subscriber.wake.clear()
                if not self.logged_in():
                    break  # the password changed: the browser reconnects and is asked for it
                while subscriber.pending and not subscriber.closed:
                    self.write(subscriber.pending.popleft())
                await self.flush()
        except StreamClosedError:
            pass
        finally:
            self.site.live.unsubscribe(subscriber)
        if not self._finished:
            self.finish()

    def on_connection_close(self) -> None:
        subscriber = getattr(self, "_subscriber", None)
        if subscriber is not None:
            subscriber.close()


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Refusals at info, failures at error, the rest (every page load) at debug only."""
    status = handler.get_status()
    level = logging.DEBUG if status < 400 else logging.INFO if status < 500 else logging.ERROR
    if getattr(handler, "_refused", False):
        level = logging.DEBUG  # a stream refused for load: LiveState sums these up
    request = handler.request
    log.log(level, "web page: %d %s %s (%s)", status, request.method, request.path,
            request.remote_ip)


def cut_text(text: str | bytes, limit: int = 64) -> str:
    """`text` shortened for an error message: a value echoed back is never long."""
    shown = text if isinstance(text, str) else repr(text)
    return shown if len(shown) <= limit else shown[:limit] + "…"
