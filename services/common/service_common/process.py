"""Process helpers shared by the services' command lines: logging to stderr (supervisord files it under
var/log/), stop signals that let the work in hand finish, and whether a recorded pid still runs."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from .settings import ConfigError


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def install_stop_signals(stop: threading.Event, log: logging.Logger, in_hand: str) -> None:
    """SIGTERM and SIGINT set `stop` (the service finishes `in_hand`, commits, and exits) instead of killing it."""
    def handler(signum, frame):  # noqa: ARG001
        log.info("signal %d: finishing %s, then exiting", signum, in_hand)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def alive(pid: int) -> bool:
    """Whether process `pid` exists (a process of another user counts)."""
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def command_line(argv: list[str], parse_args: Callable[[list[str]], Any], load: Callable[[Path], Any],
                 commands: dict[str, Callable[[Any, Any], int]]) -> int:
    """A service's main: parse `argv`, set up logging, load its settings from --config (exit 2 with the
    ConfigError's message when they cannot work), and run the chosen command (`args.command`)."""
    args = parse_args(argv)
    setup_logging()
    try:
        settings = load(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return commands[args.command](settings, args)
