"""The page's HTTP endpoints (tornado handlers): static files, the JSON API, the event stream.

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
from matpi.remote.commands import Rejection, RemoteCommands
from matpi.remote.web.live import LiveState
from matpi.remote.web.security import (
    LoginLimiter,
    PasswordFile,
    Sessions,
    host_allowed,
    same_origin,
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
        if not text.isdigit() or not 1 <= int(text) <= HISTORY_DAYS_MAX:
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
            self.fail(Failure(503, "events", "too many open pages", "close a page and retry"))
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


@tornado.web.stream_request_body
class JsonPostHandler(BaseHandler):
    """A POST with a small JSON object, from this origin only. The body is read in
    chunks and refused as soon as it passes MAX_BODY_BYTES: never held in full."""

    allowed_keys: tuple[str, ...] = ()

    def check(self) -> None:
        super().check()
        if self.request.method != "POST":
            return  # tornado answers 405
        headers = self.request.headers
        if not same_origin(headers.get("Origin"), headers.get("Sec-Fetch-Site"),
                           headers.get("Host")):
            raise Failure(403, "Origin", str(headers.get("Origin")),
                          "requests from this page only (same origin)")
        content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise Failure(415, "Content-Type", content_type or "none", "application/json")
        length = headers.get("Content-Length")
        connection: Any = self.request.connection
        if length is None:
            # Chunked: tornado's own limit (a bare 400) must not come before ours (413).
            connection.set_max_body_size(CHUNKED_BODY_LIMIT)
        elif not length.isdigit() or int(length) > MAX_BODY_BYTES:
            # Let tornado discard the body it would otherwise refuse with a bare 400 after ours.
            if length.isdigit():
                connection.set_max_body_size(int(length))
            raise Failure(413, "body", f"{length} bytes", f"at most {MAX_BODY_BYTES} bytes")
        self._body = bytearray()

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._body += chunk
        if len(self._body) > MAX_BODY_BYTES:
            self.fail(Failure(413, "body", f"over {MAX_BODY_BYTES} bytes",
                              f"at most {MAX_BODY_BYTES} bytes"))

    def body_object(self) -> dict[str, Any]:
        """The body as a JSON object with only `allowed_keys`; raises Failure otherwise."""
        try:
            value = json.loads(bytes(self._body).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Failure(400, "body", _cut(bytes(self._body)), "a JSON object") from None
        if not isinstance(value, dict):
            raise Failure(400, "body", _cut(json.dumps(value)), "a JSON object")
        unknown = sorted(set(value) - set(self.allowed_keys))
        if unknown:
            raise Failure(400, _cut(unknown[0]), _cut(json.dumps(value[unknown[0]])),
                          f"unknown key; allowed keys: {', '.join(self.allowed_keys)}")
        return value


class CommandHandler(JsonPostHandler):
    """`{"command": "heat", "value": "high"}` -> RemoteCommands -> the controller.

    202 means the request was valid and handed to the mat; the mat may still
    refuse it (cooldown, fault), which arrives on the stream as a `refused` notice.
    """

    needs_login = True
    allowed_keys = ("command", "value")

    def post(self) -> None:
        try:
            body = self.body_object()
            command = body.get("command")
            if not isinstance(command, str):
                raise Failure(400, "command", _cut(json.dumps(command)), "a command name as text")
        except Failure as failure:
            self.fail(failure)
            return
        outcome = self.site.commands.handle(command, body.get("value"))
        if isinstance(outcome, Rejection):
            self.set_status(429 if outcome.field == "rate" else 400)
            self.send_json({"error": outcome.as_dict()})
            return
        for event in outcome:
            self.site.post(event)
        self.set_status(202)
        self.send_json({"accepted": command})


class LoginHandler(JsonPostHandler):
    """`{"password": "..."}` -> a session cookie. Wrong passwords are limited for everyone."""

    allowed_keys = ("password",)

    async def post(self) -> None:
        site = self.site
        try:
            password = self.body_object().get("password")
            if not isinstance(password, str):
                raise Failure(400, "password", "missing", "the page's password as text")
            if site.password is None or site.sessions is None:
                self.send_json({"ok": True, "password": False})
                return
            wait_s = site.logins.wait_s()
            if wait_s > 0:
                raise Failure(429, "password", "too many wrong ones",
                              f"try again in {int(wait_s) + 1} s",
                              {"Retry-After": str(int(wait_s) + 1)})
            if not await asyncio.to_thread(site.password.verify, password):
                site.logins.failed()
                log.warning("web page: wrong password from %s", self.request.remote_ip)
                raise Failure(401, "password", "wrong", "the password set with "
                              "`matpi web-password`")
        except Failure as failure:
            self.fail(failure)
            return
        self.set_cookie(SESSION_COOKIE, site.sessions.create(), httponly=True,
                        samesite="Strict", path="/", max_age=int(site.sessions.lifetime_s))
        self.send_json({"ok": True, "password": True})


class LogoutHandler(JsonPostHandler):
    def post(self) -> None:
        if self.site.sessions is not None:
            self.site.sessions.end(self.get_cookie(SESSION_COOKIE))
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.send_json({"ok": True})


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Refusals at info, failures at error, the rest (every page load) at debug only."""
    status = handler.get_status()
    level = logging.DEBUG if status < 400 else logging.INFO if status < 500 else logging.ERROR
    request = handler.request
    log.log(level, "web page: %d %s %s (%s)", status, request.method, request.path,
            request.remote_ip)


def routes(site: Site) -> list[tuple[str, type[BaseHandler], dict[str, Site]]]:
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


def _cut(text: str | bytes, limit: int = 64) -> str:
    shown = text if isinstance(text, str) else repr(text)
    return shown if len(shown) <= limit else shown[:limit] + "…"
