"""Dead letters: what a service could not deliver, one JSON line each in var/SERVICE/dead-letters.jsonl, with
the reason and what is needed to send it again; synced to disk before the service's cursor moves past it."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class DeadLetters:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "dead-letters.jsonl"
        self._lock = threading.Lock()  # batches in flight together may both dead-letter an alert

    def append(self, entry: dict[str, Any]) -> None:
        """Append `entry` (JSON-ready; an "at" time is added first) and sync it to disk."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": utc_now(), **entry}, default=str) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def count(self) -> int:
        try:
            with open(self.path, "rb") as fh:
                return sum(1 for _ in fh)
        except FileNotFoundError:
            return 0
