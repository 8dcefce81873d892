"""Dead letters: alerts that could not be written, one JSON line each in var/broker/dead-letters.jsonl, with the
reason, where the alert came from, and what is needed to send it again (the raw message or its location)."""

from __future__ import annotations

import base64
from typing import Any

from service_common.dead_letters import DeadLetters as _DeadLetters


def _plain(value: Any) -> Any:
    """JSON-ready: bytes (a raw Kafka key or value) as base64 text."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class DeadLetters(_DeadLetters):
    def add(self, *, source: str, where: str, reason: str, obj_id: str | None = None, candid: int | None = None,
            payload: Any = None) -> None:
        """Append one dead letter (flushed and synced before the cursor moves past the alert)."""
        entry = {"source": source, "where": where, "objectId": obj_id, "candid": candid, "reason": reason}
        if payload is not None:
            entry["payload"] = _plain(payload)
        self.append(entry)
