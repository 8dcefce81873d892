"""The portal's REST API as the broker uses it: token auth, timeouts, retries with backoff and jitter.

Errors are sorted by what the caller can do about them:
  Rejected   the portal refused the content (400, 404, 413, 422): resending the same thing will not help;
  AuthFailed the token is missing, wrong or lacks a permission (401, 403): an operator must act;
  Unavailable the portal did not answer usefully (connection refused, timeout, 429, 5xx, 409) after every
             attempt: the same request may well succeed later.
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

try:  # the portal's environment has orjson: a batch of 10,000 points encodes several times faster
    import orjson

    def encode(body: Any) -> bytes:
        return orjson.dumps(body)
except ImportError:  # pragma: no cover - the service also runs with the standard library alone
    import json

    def encode(body: Any) -> bytes:
        return json.dumps(body).encode()

log = logging.getLogger("broker")
REJECTED = {400, 404, 405, 413, 422}
AUTH = {401, 403}


class Encoded(bytes):
    """A request body already encoded as JSON (bodies are encoded once, even when a request is retried)."""


class PortalError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Rejected(PortalError):
    pass


class AuthFailed(PortalError):
    pass


class Unavailable(PortalError):
    pass


class Stopping(Exception):
    """SIGTERM arrived while waiting to retry: give up the request, nothing was confirmed."""


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
    """The service's API token from its file; AuthFailed saying what to do when there is none."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        raise AuthFailed(
            f"no API token: {path} does not exist (./run.sh run --init creates the broker's token)") from None
    except PermissionError:
        raise AuthFailed(f"cannot read the API token file {path}: check its owner and mode (0600)") from None
    if not token:
        raise AuthFailed(f"the API token file {path} is empty: ./run.sh run --init writes a new one")
    return token


class PortalClient:
    """requests against the portal with the service's token; every call retried on transient failures."""

    def __init__(self, url: str, token_file: Path, *, timeout: float = 60.0, max_attempts: int = 6,
                 backoff: float = 1.0, backoff_max: float = 60.0, stop: threading.Event | None = None) -> None:
        self.url = url.rstrip("/")
        self.token_file = token_file
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.stop = stop or threading.Event()
        self._local = threading.local()  # a requests.Session per thread: a batch's writes go two at a time
        self.requests_sent = 0
        self._lock = threading.Lock()
        # Seconds spent per "METHOD path" (what the bench and the replay summary report).
        self.timings: dict[str, float] = {}

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
            wait = max(wait, min(retry_after, max(self.backoff_max, retry_after)))
        return wait

    def sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopping()

    def request(self, method: str, path: str, body: Any = None, *, params: dict | None = None,
                attempts: int | None = None) -> Any:
        """The `data` of a successful answer; retries transient failures `attempts` times, then raises."""
        attempts = attempts or self.max_attempts
        last: PortalError | None = None
        for attempt in range(attempts):
            if attempt:
                wait = self.delay(attempt - 1, getattr(last, "retry_after", None))
                log.info("retrying %s %s in %.1f s (attempt %d of %d): %s", method, path, wait, attempt + 1,
                         attempts, last)
                self.sleep(wait)
            token = read_token(self.token_file)
            t0 = time.monotonic()
            try:
                self.requests_sent += 1
                headers = {"Authorization": f"token {token}"}
                if body is not None and not isinstance(body, Encoded):
                    body = Encoded(encode(body))
                if body is not None:
                    headers["Content-Type"] = "application/json"
                resp = self.http.request(method, self.url + path, data=body, params=params, timeout=self.timeout,
                                         headers=headers)
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
            message = payload.get("message") if isinstance(payload, dict) else None
            if 200 <= status < 300:
                return payload.get("data") if isinstance(payload, dict) else payload
            text = f"{method} {path}: HTTP {status}: {message or resp.text[:200]}"
            if status in REJECTED:
                raise Rejected(text, status)
            if status in AUTH:
                raise AuthFailed(text + " (check the broker's token and its permissions)", status)
            last = Unavailable(text, status)
            last.retry_after = retry_after_seconds(resp.headers.get("Retry-After"))  # type: ignore[attr-defined]
        assert last is not None
        raise last
