"""List bodies: the shape every batch form accepts (the writes themselves are in domain/bulk.py).

A batch is all or nothing: the first refused item rolls everything back and the error names its index, so a
client may send the batch again (the writes are idempotent) or send its items one by one.
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError

MAX_BATCH = 1000


def check_items(data: Any, what: str) -> list[dict]:
    """A list body: each item a JSON object, at most MAX_BATCH of them; 400 otherwise."""
    if not isinstance(data, list):
        raise ApiError(400, f"the request body must be a JSON object (one {what}) or a list of them")
    if not data:
        raise ApiError(400, f"the list of {what}s is empty")
    if len(data) > MAX_BATCH:
        raise ApiError(400, f"a batch holds at most {MAX_BATCH} {what}s, got {len(data)}: split it")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ApiError(400, f"item {i}: each {what} must be a JSON object, got {type(item).__name__}")
    return data
