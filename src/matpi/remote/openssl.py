"""paho without OpenSSL, for a mat that never calls into it.

paho imports `ssl` (for TLS) and `hashlib` (for websockets) at its top, and with them
OpenSSL's libcrypto: 4.4 MiB of the 32 that a mat on its pins with MQTT takes
(bench/bench_daemon.py --mqtt). A mat that talks to its broker without TLS and serves no
page (the page hashes its password with OpenSSL's scrypt) has no use for it, so it
imports paho with `ssl`, `_ssl` and `_hashlib` hidden. `hashlib` is written for that: it
falls back to Python's own hashes. paho nearly is: it sets `ssl = None` and has no TLS,
but the except clauses of its plain socket reads and writes still name
`ssl.SSLWantReadError` and `ssl.SSLWantWriteError`. With `ssl` None, an EAGAIN or a
reset raised there would turn into an AttributeError, and a lost connection would go
unseen. So paho's module gets `PlainSockets` as its `ssl`: those two names, as
exception types that nothing raises, which is what they are to a plain socket.
`tests/test_openssl.py` reads paho's source and fails if a paho upgrade names anything
else of `ssl` outside its TLS set-up; a paho it has not read keeps OpenSSL.

The modules imported while OpenSSL is hidden stay as they were imported, for the life of
the process: `hashlib` without scrypt, `http.client` without HTTPS. Nothing in a mat
without TLS and without its page uses them; a mat with either imports paho as it is.
"""

import importlib
import sys

from matpi.config.settings import Config

HIDDEN = ("ssl", "_ssl", "_hashlib")
"""The modules that load OpenSSL."""

SCANNED_PAHO = "2.2.0"
"""The paho release whose source tests/test_openssl.py has read. A mat with any other
(pip on a Pi takes the newest) keeps OpenSSL: 4 MiB, rather than a guess at its code."""


class PlainSockets:
    """paho's `ssl` when it has none: the names its plain socket I/O mentions in its except
    clauses, as exception types that nothing raises (a plain socket never raises ssl's)."""

    class SSLWantReadError(OSError):
        pass

    class SSLWantWriteError(OSError):
        pass


def import_paho(config: Config) -> None:
    """Import paho's client, with OpenSSL hidden from it unless TLS or the page needs it.
    Once paho or OpenSSL is loaded, nothing is hidden: there is nothing left to save."""
    needed = config.mqtt.tls or config.web.enabled
    loaded = any(sys.modules.get(name) is not None for name in HIDDEN)
    if needed or loaded or not _scanned() or "paho.mqtt.client" in sys.modules:
        paho = importlib.import_module("paho.mqtt.client")
        if config.mqtt.tls and vars(paho).get("ssl") is PlainSockets:
            # Imported for a config without TLS, and now one with it: paho gets the real ssl.
            vars(paho)["ssl"] = importlib.import_module("ssl")
        return
    hidden = [name for name in HIDDEN if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        paho = importlib.import_module("paho.mqtt.client")
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
    if vars(paho).get("ssl", False) is None:
        vars(paho)["ssl"] = PlainSockets


def _scanned() -> bool:
    """Whether the installed paho is the release the tests have read (its package
    loads no OpenSSL: only its exception)."""
    return getattr(importlib.import_module("paho.mqtt"), "__version__", "") == SCANNED_PAHO
