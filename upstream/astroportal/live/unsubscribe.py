"""Signed unsubscribe links: they work without logging in and can do nothing but end one subscription.

The signature is an HMAC of "unsubscribe:<id>" under a key derived from the portal's cookie secret for this
purpose only, so that a link can neither be forged nor used as anything else (a login, another subscription).
"""

from __future__ import annotations

import hashlib
import hmac

PURPOSE = b"astroportal unsubscribe link v1"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), PURPOSE, hashlib.sha256).digest()


def signature(secret: str, subscription_id: int) -> str:
    """The link's signature for one subscription."""
    return hmac.new(_key(secret), f"unsubscribe:{int(subscription_id)}".encode(), hashlib.sha256).hexdigest()[:40]


def link(base_url: str, secret: str, subscription_id: int) -> str:
    """The full unsubscribe URL."""
    return f"{base_url.rstrip('/')}/unsubscribe/{int(subscription_id)}/{signature(secret, subscription_id)}"


def verify(secret: str, subscription_id: int, given: str) -> bool:
    return hmac.compare_digest(signature(secret, subscription_id), given or "")
