"""The page's HTTP endpoints that act: a command, a login, a logout.

Each takes a small JSON object by POST, from this origin only, read in chunks and
refused once it passes MAX_BODY_BYTES. A command goes through `RemoteCommands`,
the one place that decides what a remote request may do, and reaches the mat only
as events posted to the controller.
"""

import asyncio
import json
import logging
import re
from typing import Any

import tornado.web

from matpi.remote.commands import Rejection
from matpi.remote.jsontext import JsonError, load_json
from matpi.remote.web.handlers import (
    CHUNKED_BODY_LIMIT,
    MAX_BODY_BYTES,
    SESSION_COOKIE,
    BaseHandler,
    Failure,
    cut_text,
)
from matpi.remote.web.security import same_origin

log = logging.getLogger(__name__)

CONTENT_LENGTH = re.compile(r"[0-9]+")
"""A Content-Length is ASCII digits only (tornado's rule); anything else is a 400."""
LONGEST_LENGTH = 9
"""Digits read as a number; more is too large without `int` (which refuses 4,300)."""


@tornado.web.stream_request_body
class JsonPostHandler(BaseHandler):
    """A POST with a small JSON object, from this origin only. The body is read in
    chunks and refused as soon as it passes MAX_BODY_BYTES: never held in full."""

    allowed_keys: tuple[str, ...] = ()

    def prepare(self) -> None:
        self._body = bytearray()  # before any chunk can arrive, whatever the method
        super().prepare()

    def check(self) -> None:
        super().check()
        if self.request.method != "POST":
            # Said here, not by tornado: with a body (PUT, PATCH) tornado would first feed
            # it to data_received and then drop the connection without an answer.
            raise Failure(405, "method", str(self.request.method), "POST", {"Allow": "POST"})
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
        elif CONTENT_LENGTH.fullmatch(length) is None:
            # Read here before tornado checks it: `"²".isdigit()` is true and `int("²")`
            # raises. tornado refuses such a length after our answer, and closes.
            raise Failure(400, "Content-Length", cut_text(length), "a whole number of bytes")
        elif len(length) > LONGEST_LENGTH or int(length) > MAX_BODY_BYTES:
            if len(length) <= LONGEST_LENGTH:
                # Let tornado discard the body it would otherwise refuse with a bare 400
                # after ours.
                connection.set_max_body_size(int(length))
            raise Failure(413, "body", f"{cut_text(length)} bytes",
                          f"at most {MAX_BODY_BYTES} bytes")

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
            value = load_json(bytes(self._body))
        except JsonError as exc:
            # The key at fault when there is one (a lone surrogate), else the whole body.
            field = "body" + exc.path if exc.path.startswith("[") else exc.path or "body"
            raise Failure(400, cut_text(field), cut_text(bytes(self._body)),
                          f"a JSON object ({exc})") from None
        if not isinstance(value, dict):
            raise Failure(400, "body", cut_text(json.dumps(value)), "a JSON object")
        unknown = sorted(set(value) - set(self.allowed_keys))
        if unknown:
            raise Failure(400, cut_text(unknown[0]), cut_text(json.dumps(value[unknown[0]])),
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
                raise Failure(400, "command", cut_text(json.dumps(command)),
                              "a command name as text")
        except Failure as failure:
            self.fail(failure)
            return
        outcome = self.site.commands.handle(command, body.get("value"))
        if isinstance(outcome, Rejection):
            self.set_status(429 if outcome.field == "rate" else 400)
            if outcome.retry_after_s is not None:
                self.set_header("Retry-After", str(outcome.retry_after_s))
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
            client = str(self.request.remote_ip)
            wait_s = site.logins.try_login(client)  # counted before the hash
            if wait_s > 0:
                raise Failure(429, "password", "too many wrong ones",
                              f"try again in {int(wait_s) + 1} s",
                              {"Retry-After": str(int(wait_s) + 1)})
            try:
                checked = site.hasher.submit(
                    lambda: site.password is not None and site.password.verify(password))
            except RuntimeError:  # the page is stopping: its hashing thread is gone
                raise Failure(503, "password", "not checked", "the mat is stopping its "
                              "page; try again in a moment") from None
            right = await asyncio.wrap_future(checked)
            if not right:
                log.warning("web page: wrong password from %s", client)
                raise Failure(401, "password", "wrong", "the password set with "
                              "`matpi web-password`")
        except Failure as failure:
            self.fail(failure)
            return
        site.logins.succeeded(client)
        self.set_cookie(SESSION_COOKIE, site.sessions.create(), httponly=True,
                        samesite="Strict", path="/", max_age=int(site.sessions.lifetime_s))
        self.send_json({"ok": True, "password": True})


class LogoutHandler(JsonPostHandler):
    def post(self) -> None:
        if self.site.sessions is not None:
            self.site.sessions.end(self.get_cookie(SESSION_COOKIE))
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.send_json({"ok": True})
