"""Persistent cursors under var/broker/: where each source resumes, advanced only after the portal confirmed.

Written atomically (temporary file, fsync, rename), so that a kill -9 leaves the previous cursor or the new
one, never half of one. Resuming from the previous one re-sends a batch the portal may already hold, which
the idempotent writes absorb.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service_common.json_files import write_json


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except ValueError:
        # A cursor is only ever replaced whole; an unreadable one is someone's edit: start from the default
        # (the writes are idempotent) but keep the file for a person to look at.
        path.replace(path.with_name(path.name + ".unreadable"))
        return default


class Cursor:
    """A JSON document in var/broker/cursor-SOURCE.json."""

    def __init__(self, state_dir: Path, source: str) -> None:
        self.path = state_dir / f"cursor-{source}.json"
        self.data: dict = read_json(self.path, {})

    def save(self) -> None:
        write_json(self.path, self.data)
