"""The portal's API as the GCN service uses it: POST /api/gcn_event through the services' shared client
(service_common.portal_http: the service's token, timeouts, retries with backoff and jitter, Retry-After)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service_common.portal_http import (  # noqa: F401 - the service's modules import these from here
    AuthFailed,
    PortalError,
    PortalHTTP,
    Rejected,
    Stopping,
    Unavailable,
)

NOTICE_PATH = "/api/gcn_event"


class Portal(PortalHTTP):
    def __init__(self, url: str, token_file: Path, **kw: Any) -> None:
        super().__init__(url, token_file, service="the gcn service",
                         auth_hint="check the service's token and that its bot user holds Manage GCNs", **kw)

    def post_notice(self, body: bytes, content_type: str) -> dict:
        """POST the raw notice to /api/gcn_event; the portal's answer ({gcnevent_id, dateobs, ...})."""
        data = self.request("POST", NOTICE_PATH, body, content_type)
        return data if isinstance(data, dict) else {"answer": data}
