"""The service's state for `./run.sh broker status`: var/broker/status.json, rewritten after every batch and
every change of state (waiting, error), read by the launcher without talking to the service."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .cursor import read_json, write_json


class Status:
    def __init__(self, state_dir: Path, source: str) -> None:
        self.path = state_dir / "status.json"
        self.data: dict[str, Any] = {"source": source, "pid": os.getpid(), "state": "starting",
                                     "started_at": now(), "alerts_total": 0, "points_total": 0}

    def update(self, **fields: Any) -> None:
        self.data.update(fields, updated_at=now(), pid=os.getpid())
        write_json(self.path, self.data)

    def error(self, message: str, state: str | None = None) -> None:
        fields: dict[str, Any] = {"last_error": {"at": now(), "message": message}}
        if state:
            fields["state"] = state
        self.update(**fields)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read(state_dir: Path) -> dict | None:
    return read_json(state_dir / "status.json", None)
