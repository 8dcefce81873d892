"""The portal's REST API as the broker uses it: the services' shared client (service_common.portal_http: token,
timeouts, retries with backoff and jitter, Retry-After), named for the broker in its messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service_common.portal_http import (  # noqa: F401 - the broker's modules import these from here
    AuthFailed,
    Encoded,
    PortalError,
    PortalHTTP,
    Rejected,
    Stopping,
    Unavailable,
    encode,
)


class PortalClient(PortalHTTP):
    def __init__(self, url: str, token_file: Path, **kw: Any) -> None:
        super().__init__(url, token_file, service="the broker",
                         auth_hint="check the broker's token and its permissions", **kw)
