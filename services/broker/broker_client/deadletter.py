"""Dead letters: alerts that could not be written, one JSON line each in var/broker/dead-letters.jsonl, with the
reason, where the alert came from, and what is needed to send it again (the raw message or its location)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    """JSON-ready: bytes (a raw Kafka key or value) as base64 text."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class DeadLetters:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "dead-letters.jsonl"

    def add(self, *, source: str, where: str, reason: str, obj_id: str | None = None, candid: int | None = None,
            payload: Any = None) -> None:
        """Append one dead letter (flushed and synced before the cursor moves past the alert)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "source": source, "where": where,
                 "objectId": obj_id, "candid": candid, "reason": reason}
        if payload is not None:
            entry["payload"] = _plain(payload)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def count(self) -> int:
        try:
            with open(self.path, "rb") as fh:
                return sum(1 for _ in fh)
        except FileNotFoundError:
            return 0
