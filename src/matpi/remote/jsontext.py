"""JSON from a remote client, read within bounds: the one parser MQTT and the page use.

Python's `json.loads` recurses once per level of nesting, so a payload under
1 KiB of `[` raises RecursionError deep inside a handler; it accepts a lone
UTF-16 surrogate (`"\\ud800"`) that no UTF-8 encoder can write back. Both are a
`JsonError` here, raised before anything acts on the value, with a message that
says what was wrong. (`NaN` and `Infinity` are read: the command rules refuse
them by name, as any number out of range.)
"""

import json
from typing import Any

MAX_DEPTH = 8
"""Deeper than any command (they are flat objects): a client that nests more is wrong."""


class JsonError(ValueError):
    """Remote text that is not JSON matpi reads; the message says why, for the reply.

    `path` says where, so that a reply can name the key at fault: `program`,
    `value.program[1]`, or "" when the whole text is (not JSON, nested too deep, a
    string alone)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


def load_json(text: str | bytes) -> Any:
    """The value of `text`, or JsonError: not JSON, nested deeper than MAX_DEPTH, or a
    lone surrogate in a string or a key."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonError("not UTF-8 text") from None
    _check_depth(text)
    try:
        value = json.loads(text)
    except ValueError:
        raise JsonError("not valid JSON") from None
    _check_strings(value)
    return value


def _check_depth(text: str) -> None:
    """Counts brackets outside strings, without recursion, before the parser sees them."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise JsonError(f"nested deeper than {MAX_DEPTH} levels")
        elif char in "]}":
            depth -= 1


def _check_strings(value: Any, path: str = "") -> None:
    """Every string and key is text UTF-8 can carry (the depth is bounded, so recursing
    here is safe); `path` is where `value` is, for the error."""
    if isinstance(value, str):
        if _has_surrogate(value):
            raise JsonError("a string holds a lone surrogate (\\ud800-\\udfff)", path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_strings(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            # The key written so that UTF-8 can carry it: the error names it in a reply.
            shown = key.encode("utf-8", "backslashreplace").decode("utf-8")
            inner = f"{path}.{shown}" if path else shown
            if _has_surrogate(key):
                raise JsonError("a key holds a lone surrogate (\\ud800-\\udfff)", inner)
            _check_strings(item, inner)


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)
