"""Writing files only their owner may read (credentials, generated configuration with secrets)."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, content: str | bytes) -> None:
    """Write `content` to `path` with mode 0600, atomically (a reader sees the old file or the new one)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o600)  # the file may have existed with another mode
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
