"""The portal's REST API as a service uses it: its token read from a file at every attempt (a token rotated by
the launcher is picked up without a restart), timeouts, retries with exponential backoff and full jitter, and a
server's Retry-After honoured.

Errors are sorted by what the caller can do about them:
  Rejected     the portal refused the content (400, 404, 405, 413, 415, 422): sending it again will not help;
  AuthFailed   the token is missing, wrong or lacks a permission (401, 403): an operator must act;
  Unavailable  no useful answer after every attempt (connection refused, timeout, 409, 429, 5xx): the same
               request may well succeed later.
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

try:  # orjson encodes a batch of thousands of points several times faster than the standard library
    import orjson

    def encode(body: Any) -> bytes:
        """`body` as JSON bytes."""
        return orjson.dumps(body)
except ImportError:  # pragma: no cover - a service also runs with the standard library alone
    import json

    def encode(body: Any) -> bytes:
        """`body` as JSON bytes."""
        return json.dumps(body).encode()

log = logging.getLogger("service")
REJECTED = {400, 404, 405, 413, 415, 422}
AUTH = {401, 403}


class Encoded(bytes):
    """A JSON request body encoded once (a retried request is not encoded again)."""


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
    """SIGTERM arrived while waiting to retry: the request is given up and nothing was confirmed."""


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


def read_token(path: Path, service: str = "the service") -> str:
    """The API token from its file; AuthFailed saying what to do when there is none."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        raise AuthFailed(f"no API token: {path} does not exist (./run.sh run --init creates {service}'s token)") \
            from None
    except PermissionError:
        raise AuthFailed(f"cannot read the API token file {path}: check its owner and mode (0600)") from None
    if not token:
        raise AuthFailed(f"the API token file {path} is empty: ./run.sh run --init writes a new one")
    return token


class PortalHTTP:
    """Requests against the portal with a service's token; every call retried on transient failures.

    `service` names the service in error messages; `auth_hint` is added to a 401/403's message (which token,
    which permission). One requests.Session per thread, so that a service may keep several calls in flight.
    """

    def __init__(self, url: str, token_file: Path, *, service: str = "the service", auth_hint: str = "",
                 timeout: float = 60.0, max_attempts: int = 6, backoff: float = 1.0, backoff_max: float = 60.0,
                 stop: threading.Event | None = None) -> None:
        self.url = url.rstrip("/")
        self.token_file = token_file
        self.service = service
        self.auth_hint = auth_hint
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.stop = stop or threading.Event()
        self._local = threading.local()
        self._lock = threading.Lock()
        self.requests_sent = 0
        # Seconds spent per "METHOD path" (what benches and summaries report).
        self.timings: dict[str, float] = {}
        # A server's Retry-After holds back every request of this client, from any thread, until it has passed.
        self._not_before = 0.0

    @property
    def http(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

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

    def request(self, method: str, path: str, body: Any = None, content_type: str | None = None, *,
                params: dict | None = None, attempts: int | None = None) -> Any:
        """The `data` of a successful answer; transient failures retried `attempts` times, then raised.

        `body`: raw bytes sent as they are (with `content_type`; JSON already encoded: Encoded, or bytes with
        content_type "application/json"), or anything else encoded once as JSON.
        """
        attempts = attempts or self.max_attempts
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = encode(body)  # not wrapped in Encoded: that would copy a body of megabytes (the thumbnails')
            content_type = content_type or "application/json"
        elif isinstance(body, Encoded):
            content_type = content_type or "application/json"
        last: PortalError | None = None
        for attempt in range(attempts):
            if attempt:
                wait = self.delay(attempt - 1, last.retry_after if last else None)
                log.info("retrying %s %s in %.1f s (attempt %d of %d): %s", method, path, wait, attempt + 1,
                         attempts, last)
                self.sleep(wait)
            hold = self._not_before - time.monotonic()
            if hold > 0:
                self.sleep(hold)
            headers = {"Authorization": f"token {read_token(self.token_file, self.service)}"}
            if content_type:
                headers["Content-Type"] = content_type
            t0 = time.monotonic()
            try:
                with self._lock:
                    self.requests_sent += 1
                resp = self.http.request(method, self.url + path, data=body, params=params, headers=headers,
                                         timeout=self.timeout)
            except requests.Timeout:
                last = Unavailable(f"{method} {path}: no answer within {self.timeout:g} s")
                continue
            except requests.ConnectionError as exc:
                last = Unavailable(f"{method} {path}: the portal at {self.url} is unreachable ({type(exc).__name__})")
                continue
            key = f"{method} {path}"
            with self._lock:
                self.timings[key] = self.timings.get(key, 0.0) + time.monotonic() - t0
            status = resp.status_code
            try:
                payload = resp.json()
            except ValueError:
                payload = None
            if 200 <= status < 300:
                return payload.get("data") if isinstance(payload, dict) else payload
            message = payload.get("message") if isinstance(payload, dict) else None
            text = f"{method} {path}: HTTP {status}: {message or resp.text[:300]}"
            if status in REJECTED:
                raise Rejected(text, status)
            if status in AUTH:
                raise AuthFailed(f"{text} ({self.auth_hint or 'check the service token and its permissions'})", status)
            last = Unavailable(text, status, retry_after_seconds(resp.headers.get("Retry-After")))
            if last.retry_after:
                with self._lock:
                    self._not_before = max(self._not_before, time.monotonic() + last.retry_after)
        assert last is not None
        raise last

    def healthy(self) -> bool:
        """Whether the portal answers at all (to tell a message that breaks it from a portal that is down)."""
        try:
            self.request("GET", "/api/sysinfo", attempts=1)
            return True
        except PortalError:
            return False
