"""The portal's API as the GCN service uses it: POST /api/gcn_event with the service's token, timeouts, and
retries with exponential backoff and jitter (a 429's or 503's Retry-After honoured).

Errors are sorted by what the caller can do about them:
  Rejected    the portal refused the notice (400, 404, 405, 413, 415, 422): sending it again will not help;
  AuthFailed  the token is missing, wrong or lacks "Manage GCNs" (401, 403): an operator must act;
  Unavailable no useful answer after every attempt (connection refused, timeout, 429, 5xx): it may work later.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from pathlib import Path
from typing import Any

import requests

log = logging.getLogger("gcn")
REJECTED = {400, 404, 405, 413, 415, 422}
AUTH = {401, 403}
NOTICE_PATH = "/api/gcn_event"


class PortalError(Exception):
    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Rejected(PortalError):
    pass


class AuthFailed(PortalError):
    pass


class Unavailable(PortalError):
    pass


class Stopping(Exception):
    """SIGTERM arrived while waiting to retry: nothing was confirmed, nothing is committed."""


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def read_token(path: Path) -> str:
    """The API token from its file; AuthFailed saying what to do when there is none."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        raise AuthFailed(f"no API token: {path} does not exist (./run.sh run creates the gcn service's token)") \
            from None
    except PermissionError:
        raise AuthFailed(f"cannot read the API token file {path}: check its owner and mode (0600)") from None
    if not token:
        raise AuthFailed(f"the API token file {path} is empty: ./run.sh restart writes a new one")
    return token


class Portal:
    """requests against the portal with a token read from a file; transient failures retried."""

    def __init__(self, url: str, token_file: Path, *, timeout: float = 120.0, max_attempts: int = 6,
                 backoff: float = 1.0, backoff_max: float = 60.0, stop: threading.Event | None = None) -> None:
        self.url = url.rstrip("/")
        self.token_file = token_file
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.stop = stop or threading.Event()
        self.http = requests.Session()

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with full jitter; a server's Retry-After is a floor."""
        base = min(self.backoff_max, self.backoff * (2 ** attempt))
        wait = random.uniform(base / 2, base)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait

    def sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopping()

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None, *,
                attempts: int | None = None) -> Any:
        """The `data` of a successful answer; retries transient failures `attempts` times, then raises."""
        attempts = attempts or self.max_attempts
        last: PortalError | None = None
        for attempt in range(attempts):
            if attempt:
                wait = self.delay(attempt - 1, last.retry_after if last else None)
                log.info("retrying %s %s in %.1f s (attempt %d of %d): %s", method, path, wait, attempt + 1,
                         attempts, last)
                self.sleep(wait)
            headers = {"Authorization": f"token {read_token(self.token_file)}"}
            if content_type:
                headers["Content-Type"] = content_type
            try:
                resp = self.http.request(method, self.url + path, data=body, headers=headers, timeout=self.timeout)
            except requests.Timeout:
                last = Unavailable(f"{method} {path}: no answer within {self.timeout:g} s")
                continue
            except requests.ConnectionError as exc:
                last = Unavailable(f"{method} {path}: the portal at {self.url} is unreachable ({type(exc).__name__})")
                continue
            try:
                payload = resp.json()
            except ValueError:
                payload = None
            if 200 <= resp.status_code < 300:
                return payload.get("data") if isinstance(payload, dict) else payload
            message = payload.get("message") if isinstance(payload, dict) else None
            text = f"{method} {path}: HTTP {resp.status_code}: {message or resp.text[:300]}"
            if resp.status_code in REJECTED:
                raise Rejected(text, resp.status_code)
            if resp.status_code in AUTH:
                raise AuthFailed(text + " (check the service's token and that its bot user holds Manage GCNs)",
                                 resp.status_code)
            last = Unavailable(text, resp.status_code, retry_after_seconds(resp.headers.get("Retry-After")))
        assert last is not None
        raise last

    def post_notice(self, body: bytes, content_type: str) -> dict:
        """POST the raw notice to /api/gcn_event; the portal's answer ({gcnevent_id, dateobs, ...})."""
        data = self.request("POST", NOTICE_PATH, body, content_type)
        return data if isinstance(data, dict) else {"answer": data}

    def healthy(self) -> bool:
        """Whether the portal answers at all (to tell a notice that breaks it from a portal that is down)."""
        try:
            self.request("GET", "/api/sysinfo", attempts=1)
            return True
        except PortalError:
            return False
