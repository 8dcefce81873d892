"""Hiding secrets for display: one rule for `./run.sh config`, database URLs in messages, and build warnings."""

from __future__ import annotations

import re
from typing import Any

SECRET_KEY = re.compile(r"(secret|password|passwd|token)$", re.I)
HIDDEN = "********"
_URL_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]+@")


def is_secret(key: str) -> bool:
    """True for a dotted key whose last part names a secret (…secret, …password, …token)."""
    return bool(SECRET_KEY.search(key.split(".")[-1]))


def hide_password(url: str) -> str:
    """A URL with the password of its user part hidden."""
    return _URL_PASSWORD.sub(rf"\g<1>{HIDDEN}@", url)


def mask(key: str, value: Any) -> Any:
    """A value as it may be shown: secrets hidden, and the password of any URL."""
    if value is None or value == "":
        return value
    if is_secret(key):
        return HIDDEN
    if isinstance(value, str) and "://" in value:
        return hide_password(value)
    return value
