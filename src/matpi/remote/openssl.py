"""paho without OpenSSL, for a mat that never calls into it.

paho imports `ssl` (for TLS) and `hashlib` (for websockets) at its top, and with them
OpenSSL's libcrypto: 4.4 MiB of the 32 that a mat on its pins with MQTT takes
(bench/bench_daemon.py --mqtt). A mat that talks to its broker without TLS and serves no
page (the page hashes its password with OpenSSL's scrypt) has no use for it. Both modules
are written to do without OpenSSL: paho then has no TLS (its `tls_set` refuses), and
`hashlib` falls back to Python's own hashes. So such a mat imports paho with `ssl` and
`_hashlib` hidden, as the page's package hides `curses` from tornado.

The modules imported while they are hidden stay as they were imported, for the life of
the process: `hashlib` without scrypt, `http.client` without HTTPS. Nothing else in a mat
without TLS and without its page uses them; a mat with either imports paho as it is.
"""

import importlib
import sys

from matpi.config.settings import Config

HIDDEN = ("ssl", "_ssl", "_hashlib")
"""The modules that load OpenSSL."""


def import_paho(config: Config) -> None:
    """Import paho's client, with OpenSSL hidden from it unless TLS or the page needs it.
    Once paho or OpenSSL is loaded, nothing is hidden: there is nothing left to save."""
    needed = config.mqtt.tls or config.web.enabled
    loaded = any(sys.modules.get(name) is not None for name in HIDDEN)
    if needed or loaded or "paho.mqtt.client" in sys.modules:
        importlib.import_module("paho.mqtt.client")
        return
    hidden = [name for name in HIDDEN if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        importlib.import_module("paho.mqtt.client")
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
