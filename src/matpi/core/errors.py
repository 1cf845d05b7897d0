"""The errors matpi raises on purpose, in one place below every layer.

Each layer raises its own kind; the command line catches them all as
`MatpiError` and prints the message, which names the file, key or part and
what to do. Nothing here is raised by the core itself: the core refuses with
a `Refused` notice and never raises on bad input.
"""


class MatpiError(Exception):
    """Base of every error matpi raises on purpose."""


class DriverError(MatpiError, RuntimeError):
    """A driver could not be built or could not do what it was asked."""


class ConfigError(MatpiError, ValueError):
    """The config file has one or more problems; `problems` lists each as a sentence."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class HistoryError(MatpiError, RuntimeError):
    """The history file cannot be read or written; the message says what to do."""
