"""Who may use the mat's page: password hash file, login sessions, wrong-password limit,
and the Host and Origin checks that keep other web sites out.

No HTTP here, only decisions, so each one is tested on its own. The password
is never stored: the file holds one line, `scrypt:N:r:p:salt:hash` (salt and
hash in base64), written by `matpi web-password`. scrypt with N=2^14, r=8
needs 16 MiB for about 50 ms here (about 1 s on a Pi Zero) per check, which
is why wrong passwords are also counted and refused beyond a few a minute.

    password = PasswordFile(Path("/var/lib/matpi/web-password"))
    password.write("correct horse")          # what `matpi web-password` does
    password.verify("correct horse")         # True
"""

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
"""A hash file asking for more than this is refused rather than obeyed."""
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256

SESSION_DAYS = 30
MAX_SESSIONS = 32
"""Logins kept at once; the oldest goes first. A household has a few phones."""

HOME_SUFFIXES = (".local", ".lan", ".home", ".home.arpa", ".internal", ".localdomain",
                 ".fritz.box")
"""Names a home network gives its machines (mDNS, routers). A public name pointed at
the mat by someone else's DNS (DNS rebinding) is not among them and is refused."""


class PasswordError(ValueError):
    """A password that cannot be set, or a hash file that cannot be used; says which.

    A plain ValueError: matpi's error base lives in the drivers package, which the
    web page must not import."""


@dataclass(frozen=True)
class _Hash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, line: str) -> "_Hash":
        parts = line.strip().split(":")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("not a scrypt:N:r:p:salt:hash line")
        n, r, p = (int(x) for x in parts[1:4])
        if n < 2 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16 \
                or 128 * r * n * p > SCRYPT_MAXMEM:
            raise ValueError(f"scrypt parameters N={n} r={r} p={p} out of bounds")
        return cls(n, r, p, base64.b64decode(parts[4], validate=True),
                   base64.b64decode(parts[5], validate=True))

    def line(self) -> str:
        salt = base64.b64encode(self.salt).decode()
        digest = base64.b64encode(self.digest).decode()
        return f"scrypt:{self.n}:{self.r}:{self.p}:{salt}:{digest}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=SCRYPT_MAXMEM, dklen=HASH_BYTES)


def check_new_password(password: str) -> None:
    """Raises PasswordError when `password` is too short, too long or has control characters."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise PasswordError(f"the password may have at most {MAX_PASSWORD_CHARS} characters")
    if any(ord(c) < 32 for c in password):
        raise PasswordError("the password may not contain control characters")


class PasswordFile:
    """The page's password, as a scrypt hash in a file; read at each check, never cached,
    so `matpi web-password` takes effect at the next login without a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, password: str) -> None:
        """Hash `password` with a fresh salt and replace the file atomically, mode 0600.

        Raises:
            PasswordError: the password is unfit, or the file cannot be written.
        """
        check_new_password(password)
        salt = secrets.token_bytes(SALT_BYTES)
        line = _Hash(SCRYPT_N, SCRYPT_R, SCRYPT_P, salt,
                     _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)).line()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=".web-password-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="ascii") as out:
                    out.write(line + "\n")
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise PasswordError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def check_readable(self) -> None:
        """Raises PasswordError (saying what to do) unless the file holds a usable hash."""
        self._read()

    def verify(self, password: str) -> bool:
        """True if `password` matches; False for a wrong one or an unusable file (fail closed)."""
        try:
            stored = self._read()
        except PasswordError:
            return False
        given = _scrypt(password[:MAX_PASSWORD_CHARS], stored.salt, stored.n, stored.r, stored.p)
        return hmac.compare_digest(given, stored.digest)

    def version(self) -> tuple[int, int, int] | None:
        """Changes whenever the file is replaced: logins made under an older password end."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _read(self) -> _Hash:
        try:
            text = self.path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not a hash file"
            raise PasswordError(f"cannot read the page's password file {self.path} ({why}): "
                                "set it with `matpi web-password`") from exc
        try:
            return _Hash.parse(text)
        except ValueError as exc:
            raise PasswordError(f"password file {self.path} is not one matpi wrote ({exc}): "
                                "set it again with `matpi web-password`") from exc


class Sessions:
    """Logged-in browsers: random tokens in memory (a restart logs everyone out).

    Only a hash of each token is kept, so the table itself holds nothing a
    cookie could be made from. Thread-safe.
    """

    def __init__(self, password: PasswordFile, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._password = password
        self._clock = clock
        self._lifetime_s = SESSION_DAYS * 86400.0
        self._by_hash: dict[bytes, tuple[float, tuple[int, int, int] | None]] = {}
        self._lock = threading.Lock()

    @property
    def lifetime_s(self) -> float:
        return self._lifetime_s

    def create(self) -> str:
        """A new session token, valid for SESSION_DAYS under the current password."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            if len(self._by_hash) >= MAX_SESSIONS:
                oldest = min(self._by_hash, key=lambda k: self._by_hash[k][0])
                del self._by_hash[oldest]
            self._by_hash[_digest(token)] = (self._clock() + self._lifetime_s,
                                             self._password.version())
        return token

    def valid(self, token: str | None) -> bool:
        if not token:
            return False
        key = _digest(token)
        with self._lock:
            entry = self._by_hash.get(key)
            if entry is None:
                return False
            expires, version = entry
            if self._clock() >= expires or version != self._password.version():
                del self._by_hash[key]
                return False
            return True

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._by_hash.pop(_digest(token), None)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def host_name(host_header: str) -> str:
    """The name or address in a Host header, without port or IPv6 brackets, lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def own_names() -> frozenset[str]:
    """This machine's host name, which the page always answers to. Not getfqdn(): it asks
    DNS, which on a Pi with no network can hold up the start for seconds."""
    name = socket.gethostname().lower().rstrip(".")
    return frozenset({name} if name else ())


def host_allowed(host_header: str | None, extra: frozenset[str]) -> bool:
    """True for an address, localhost, a one-word name, a home-network name or one in `extra`.

    A page on another site can point its own name at the mat's address (DNS
    rebinding) and then read it as "same origin"; the Host header it sends is
    still its own public name, which this refuses.
    """
    if not host_header:
        return False
    host = host_name(host_header).rstrip(".")
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    return ("." not in host and host != "") or host in extra \
        or host == "localhost" or host.endswith((".localhost", *HOME_SUFFIXES))


def same_origin(origin: str | None, fetch_site: str | None, host_header: str | None) -> bool:
    """May a request that changes something come from where it says it comes from?

    Browsers send Origin with every POST: it must name this very host and port.
    Without Origin (curl, scripts: no browser, so no other site behind it)
    only a Sec-Fetch-Site of same-origin or none is accepted, if present.
    """
    if origin is None:
        return fetch_site in (None, "same-origin", "none")
    if not host_header or "://" not in origin:
        return False
    return origin.split("://", 1)[1].rstrip("/").lower() == host_header.strip().lower()
