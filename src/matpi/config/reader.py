"""Typed reading of one TOML table, collecting every problem instead of stopping at the first.

Each problem names the file, the table, the key, the value and what is
allowed, so that a maker fixing a config sees all of it at once:

    matpi.toml: [limits] session_max_min = 90: must be at most 30 (matpi ceiling)
"""

import math
from collections.abc import Iterable
from typing import Any


def suggest(word: str, choices: Iterable[str]) -> str:
    """A '; did you mean X?' tail for a misspelt key, or nothing."""
    import difflib  # only a config with a mistake needs it: not loaded in a running mat

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


class Table:
    """One TOML table being read; records which keys were used and what was wrong."""

    def __init__(self, file: str, name: str, data: Any, problems: list[str]) -> None:
        self.file = file
        self.name = name
        self.problems = problems
        self._seen: set[str] = set()
        if isinstance(data, dict):
            self._data: dict[str, Any] = data
        else:
            self._data = {}
            self.problems.append(f"{file}: [{name}] must be a table, not {data!r}")

    def has(self, key: str) -> bool:
        return key in self._data

    def problem(self, key: str, value: object, allowed: str) -> None:
        self.problems.append(f"{self.file}: [{self.name}] {key} = {_show(value)}: {allowed}")

    def raw(self, key: str) -> Any:
        self._seen.add(key)
        return self._data.get(key)

    def number(
        self,
        key: str,
        default: float,
        *,
        low: float | None = None,
        high: float | None = None,
        high_why: str = "",
        integer: bool = False,
    ) -> float:
        """A number within [low, high]; `high_why` says whose ceiling `high` is."""
        self._seen.add(key)
        if key not in self._data:
            return default
        value = self._data[key]
        kind = "a whole number" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, int | float) or (
            integer and not isinstance(value, int)
        ):
            self.problem(key, value, f"must be {kind}")
            return default
        if not math.isfinite(value):
            self.problem(key, value, f"must be {kind}, not infinite or nan")
            return default
        if low is not None and value < low:
            self.problem(key, value, f"must be at least {low:g}")
            return default
        if high is not None and value > high:
            why = f" ({high_why})" if high_why else ""
            self.problem(key, value, f"must be at most {high:g}{why}")
            return default
        return float(value)

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        return int(self.number(key, default, low=low, high=high, integer=True))

    def boolean(self, key: str, default: bool) -> bool:
        self._seen.add(key)
        value = self._data.get(key, default)
        if not isinstance(value, bool):
            self.problem(key, value, "must be true or false")
            return default
        return value

    def string(self, key: str, default: str, *, choices: Iterable[str] | None = None) -> str:
        self._seen.add(key)
        value = self._data.get(key, default)
        if not isinstance(value, str):
            self.problem(key, value, "must be a string in quotes")
            return default
        if choices is not None:
            allowed = list(choices)
            if value not in allowed:
                self.problem(key, value, f"must be one of {', '.join(allowed)}"
                             f"{suggest(value, allowed)}")
                return default
        return value

    def optional_string(self, key: str) -> str | None:
        """A string, or None when the key is absent or empty."""
        return self.string(key, "") or None

    def pin(self, key: str, default: int | None) -> int | None:
        """A BCM GPIO number (0-27), or `default` when the key is absent."""
        if not self.has(key):
            self._seen.add(key)
            return default
        return self.integer(key, -1, low=0, high=27)

    def finish(self) -> None:
        """Report every key that was never asked for: a typo must not drop a guard."""
        for key in self._data:
            if key not in self._seen:
                self.problems.append(
                    f"{self.file}: [{self.name}] {key}: unknown key{suggest(key, self._seen)}"
                    f" (allowed: {', '.join(sorted(self._seen))})"
                )


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)
