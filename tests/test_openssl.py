"""paho without OpenSSL (matpi.remote.openssl), each case in a fresh interpreter: in the
test process paho and ssl are loaded already, and nothing would be hidden."""

import json
import subprocess
import sys

import pytest

CHILD = """
import json, sys
from matpi.config.settings import Config, MqttConfig, WebConfig
from matpi.remote.openssl import import_paho
import_paho(Config(mqtt=MqttConfig(enabled=True, tls=%(tls)s), web=WebConfig(enabled=%(web)s)))
import hashlib
import paho.mqtt.client as paho
loaded = [name for name in ("ssl", "_ssl", "_hashlib") if sys.modules.get(name) is not None]
import ssl  # hidden only while paho was imported
print(json.dumps({"loaded": loaded, "paho_has_tls": paho.ssl is not None,
                  "scrypt": hasattr(hashlib, "scrypt"), "ssl_after": bool(ssl.OPENSSL_VERSION)}))
"""


def imported(*, tls: bool, web: bool) -> dict[str, object]:
    """What a fresh interpreter loaded importing paho for a mat with or without TLS, page."""
    result = subprocess.run([sys.executable, "-c", CHILD % {"tls": tls, "web": web}],
                            capture_output=True, text=True, timeout=60, check=True)
    found: dict[str, object] = json.loads(result.stdout)
    return found


def test_without_tls_or_page_paho_comes_without_openssl_and_ssl_is_importable_after() -> None:
    assert imported(tls=False, web=False) == {
        "loaded": [], "paho_has_tls": False, "scrypt": False, "ssl_after": True}


@pytest.mark.parametrize(("tls", "web"), [(True, False), (False, True)])
def test_tls_or_the_page_gets_paho_with_openssl(tls: bool, web: bool) -> None:
    """TLS needs paho's ssl; the page hashes its password with hashlib's scrypt (OpenSSL)."""
    found = imported(tls=tls, web=web)
    assert found["paho_has_tls"] and found["scrypt"]
    assert found["loaded"] == ["ssl", "_ssl", "_hashlib"]
