"""State files of a service (cursors, status) as JSON, replaced atomically: a reader, or a restart after a
kill -9, sees the previous document or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any, *, durable: bool = True) -> None:
    """Replace `path` with `data` as JSON (temporary file, rename); `durable` syncs it to disk first, which a
    cursor needs (it must never run ahead of what the portal confirmed) and a status file does not."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True, default=str)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
