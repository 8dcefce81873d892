"""The one exception every launcher module raises for a condition the user can act on."""

from __future__ import annotations

import sys


class LauncherError(Exception):
    """A clear message for the user and the exit status to leave with."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def warn(message: str) -> None:
    """Print a warning on stderr (warnings never stop a command)."""
    print(f"warning: {message}", file=sys.stderr)


def info(message: str) -> None:
    """Progress messages go to stderr so that stdout carries only a command's answer (e.g. `token`)."""
    print(message, file=sys.stderr, flush=True)
