"""paho without OpenSSL (matpi.remote.openssl). Each import runs in a fresh interpreter:
in the test process paho and ssl are loaded already, and nothing would be hidden."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import paho.mqtt as paho_package
import paho.mqtt.client as paho

from matpi.remote.openssl import SCANNED_PAHO, PlainSockets

IMPORTED = """
import json, sys
from matpi.config.settings import Config, MqttConfig, WebConfig
from matpi.remote.openssl import PlainSockets, import_paho
import_paho(Config(mqtt=MqttConfig(enabled=True, tls=%(tls)s), web=WebConfig(enabled=%(web)s)))
import hashlib
import paho.mqtt.client as paho
loaded = [name for name in ("ssl", "_ssl", "_hashlib") if sys.modules.get(name) is not None]
import ssl  # hidden only while paho was imported
print(json.dumps({"loaded": loaded, "plain_sockets": paho.ssl is PlainSockets,
                  "scrypt": hasattr(hashlib, "scrypt"), "ssl_after": bool(ssl.OPENSSL_VERSION)}))
"""

PLAIN_THEN_TLS = """
import json
from matpi.config.settings import Config, MqttConfig
from matpi.remote.openssl import PlainSockets, import_paho
import_paho(Config(mqtt=MqttConfig(enabled=True)))
import paho.mqtt.client as paho
plain = paho.ssl is PlainSockets
import_paho(Config(mqtt=MqttConfig(enabled=True, tls=True)))
import ssl
print(json.dumps({"plain_first": plain, "paho_has_ssl": paho.ssl is ssl}))
"""

UNSCANNED_PAHO = """
import json, sys
import paho.mqtt
paho.mqtt.__version__ = "2.2.1"  # a release tests/test_openssl.py has not read
from matpi.config.settings import Config, MqttConfig
from matpi.remote.openssl import import_paho
import_paho(Config(mqtt=MqttConfig(enabled=True)))
import paho.mqtt.client as paho
import ssl
print(json.dumps({"paho_has_ssl": paho.ssl is ssl}))
"""

PLAIN_SOCKET_ERRORS = """
import json, socket
from matpi.config.settings import Config, MqttConfig
from matpi.remote.openssl import import_paho
import_paho(Config(mqtt=MqttConfig(enabled=True)))
import paho.mqtt.client as paho

def raised(call):
    try:
        call()
    except Exception as exc:
        return type(exc).__name__
    return "nothing"

client = paho.Client(paho.CallbackAPIVersion.VERSION2)
server = socket.create_server(("127.0.0.1", 0))
client._sock = socket.create_connection(server.getsockname())
peer, _ = server.accept()
client._sock.setblocking(False)
found = {"recv, nothing sent": raised(lambda: client._sock_recv(16))}
peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\x01\\0\\0\\0\\0\\0\\0\\0")
peer.close()  # lingering 0 s: the peer resets the connection
found["recv, reset"] = raised(lambda: client._sock_recv(16))
found["send, reset"] = raised(lambda: client._sock_send(b"x"))
print(json.dumps(found))
"""

TLS_SET_UP = {"tls_set", "tls_set_context", "_ssl_wrap_socket"}
"""paho's functions that run only for a client with TLS, which never has PlainSockets."""


def run_child(code: str) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    found: dict[str, object] = json.loads(result.stdout)
    return found


def imported(*, tls: bool, web: bool) -> dict[str, object]:
    """What a fresh interpreter loaded importing paho for a mat with or without TLS, page."""
    return run_child(IMPORTED % {"tls": tls, "web": web})


def test_without_tls_or_page_paho_comes_without_openssl_and_ssl_is_importable_after() -> None:
    assert imported(tls=False, web=False) == {
        "loaded": [], "plain_sockets": True, "scrypt": False, "ssl_after": True}


def test_with_tls_paho_has_openssl() -> None:
    assert imported(tls=True, web=False) == {
        "loaded": ["ssl", "_ssl", "_hashlib"], "plain_sockets": False, "scrypt": True,
        "ssl_after": True}


def test_with_the_page_hashlib_has_scrypt() -> None:
    assert imported(tls=False, web=True) == {
        "loaded": ["ssl", "_ssl", "_hashlib"], "plain_sockets": False, "scrypt": True,
        "ssl_after": True}


def test_a_config_with_tls_after_one_without_gives_paho_the_real_ssl() -> None:
    """Not the daemon's way (one config a process), but a second client in one process."""
    assert run_child(PLAIN_THEN_TLS) == {"plain_first": True, "paho_has_ssl": True}


def test_a_paho_release_not_scanned_here_keeps_openssl() -> None:
    assert run_child(UNSCANNED_PAHO) == {"paho_has_ssl": True}


def test_paho_without_openssl_still_tells_a_wait_and_a_reset_on_its_socket() -> None:
    """paho's plain socket I/O names ssl's exceptions in its except clauses: with `ssl`
    None, these would all be AttributeErrors, and a lost connection would go unseen."""
    assert run_child(PLAIN_SOCKET_ERRORS) == {"recv, nothing sent": "BlockingIOError",
                                              "recv, reset": "ConnectionResetError",
                                              "send, reset": "BrokenPipeError"}


class _SslUses(ast.NodeVisitor):
    """Each function's uses of `ssl` outside TLS set-up and annotations (paho's are
    postponed: strings): `ssl.X` as X, the bare name (`ssl is None`, `getattr(ssl, ...)`)
    as "ssl", and an import from it as "import"."""

    def __init__(self) -> None:
        self.uses: dict[str, set[str]] = {}
        self._function = "<module>"

    def _use(self, what: str) -> None:
        self.uses.setdefault(self._function, set()).add(what)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.name in TLS_SET_UP:
            return
        outer, self._function = self._function, node.name
        for part in (node.args, *node.decorator_list, *node.body):  # not `returns`
            self.visit(part)
        self._function = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_arg(self, node: ast.arg) -> None:
        """An argument's only expression is its annotation."""

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id == "ssl":
            self._use(node.attr)
        else:
            self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "ssl" and isinstance(node.ctx, ast.Load):
            self._use("ssl")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "ssl" and (self._function != "<module>" or alias.asname):
                self._use("import")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "ssl":
            self._use("import")


def test_the_scan_finds_every_kind_of_use_and_skips_annotations_and_tls_set_up() -> None:
    source = """
import ssl
import ssl as renamed
def plain(sock: ssl.SSLSocket) -> ssl.SSLContext:
    x: ssl.SSLContext = make()
    try:
        sock.recv(1)
    except ssl.SSLWantReadError:
        pass
    def nested():
        return lambda: getattr(ssl, "SSLError")
    from ssl import CERT_NONE
    if ssl is None:
        pass
def tls_set(self):
    return ssl.create_default_context()
"""
    finder = _SslUses()
    finder.visit(ast.parse(source))
    assert finder.uses == {"<module>": {"import"}, "plain": {"SSLWantReadError", "import", "ssl"},
                           "nested": {"ssl"}}


def test_plain_sockets_has_every_name_of_ssl_that_paho_uses_without_tls() -> None:
    """A paho upgrade that names more of `ssl` outside its TLS set-up fails here, before
    a mat without TLS meets the AttributeError."""
    assert paho_package.__version__ == SCANNED_PAHO, (
        f"paho {paho_package.__version__}: read its client.py for ssl, then widen SCANNED_PAHO")
    tree = ast.parse(Path(paho.__file__).read_text(encoding="utf-8"))
    postponed = any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
                    and any(alias.name == "annotations" for alias in node.names)
                    for node in tree.body)
    assert postponed, "paho's annotations are evaluated now: ssl.SSLContext would be needed"
    finder = _SslUses()
    finder.visit(tree)
    wanted = {"SSLWantReadError", "SSLWantWriteError"}
    assert finder.uses == {"_sock_recv": wanted, "_sock_send": wanted}
    for name in wanted:  # matpi's own classes, which nothing raises: not an OSError of socket's
        raised = getattr(PlainSockets, name)
        assert raised.__module__ == "matpi.remote.openssl" and not raised.__subclasses__()
