"""The service's files under var/gcn/: status.json (what `./run.sh gcn status` shows, rewritten on every change,
read without talking to the service) and dead-letters.jsonl (notices that could not be written, each with its
reason and the raw message, to be sent again by hand with `./run.sh gcn ingest`)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from service_common.dead_letters import DeadLetters as _DeadLetters
from service_common.dead_letters import utc_now as now
from service_common.json_files import write_json as _write_json


def write_json(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON, atomically; not synced (a status, not a cursor: Kafka keeps those)."""
    _write_json(path, data, durable=False)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


class Status:
    """var/gcn/status.json."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "status.json"
        self.data: dict[str, Any] = {"pid": os.getpid(), "state": "starting", "started_at": now(),
                                     "counts": {"received": 0, "posted": 0, "skipped": 0, "dead": 0}}

    def update(self, **fields: Any) -> None:
        self.data.update(fields, updated_at=now(), pid=os.getpid())
        write_json(self.path, self.data)

    def count(self, what: str) -> None:
        self.data["counts"][what] = self.data["counts"].get(what, 0) + 1

    def error(self, message: str, state: str | None = None) -> None:
        fields: dict[str, Any] = {"last_error": {"at": now(), "message": message}}
        if state:
            fields["state"] = state
        self.update(**fields)


def read_status(state_dir: Path) -> dict | None:
    return read_json(state_dir / "status.json")


class DeadLetters(_DeadLetters):
    """var/gcn/dead-letters.jsonl: one JSON line per notice the portal refused (or that keeps failing while the
    portal is up, or that is no notice at all), with the raw message in base64."""

    def add(self, *, where: str, reason: str, value: bytes | None, key: bytes | None = None,
            event_id: str | None = None) -> None:
        """Append one dead letter, synced to disk before the offset moves past the message."""
        self.append({"where": where, "event_id": event_id, "reason": reason,
                     "key": key.decode("utf-8", "replace") if key else None,
                     "value_base64": base64.b64encode(value).decode("ascii") if value else None})
