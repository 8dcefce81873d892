"""JSON in and out of the API."""

from __future__ import annotations

import datetime
import json
import math
import uuid
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    return json.dumps(value, default=_default, separators=(",", ":"))


def clean_float(x: float | None) -> float | None:
    """NaN and infinities are not JSON: answer them as null."""
    if x is None or not math.isfinite(x):
        return None
    return x
