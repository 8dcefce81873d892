"""Refusing forged requests: a state-changing request that only the session cookie authenticates must come from
the portal's own pages.

Browsers attach the cookie to requests that other sites start (a form posted with enctype="text/plain", a
`fetch(..., {mode: "no-cors", credentials: "include"})`), and SameSite=Lax does not stop a site on another
port of the same host. Such a request is let through only when
- its Origin (or, without one, its Referer) is the portal's own origin: `server.url`, or the request's host
  when server.url is unset;
- it carries the session's anti-forgery token (header X-CSRF-Token, or form field csrf_token), which only the
  portal's pages know;
- a JSON route receives Content-Type: application/json (a cross-site page cannot send that without a CORS
  preflight, which the portal never grants).
Requests with an Authorization header are not concerned: a browser never adds that header by itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import ApiError

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str | None) -> str | None:
    """scheme://host[:port] of a URL, lower case, the default port left out; None when it has no host."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS.get(scheme) else "")


def expected_origin(server_url: str | None, protocol: str, host: str) -> str | None:
    """The origin the portal's pages have: server.url's, or the one the request was sent to."""
    return origin_of(server_url) if server_url else origin_of(f"{protocol}://{host}")


def check_same_origin(headers, expected: str | None) -> None:
    """403 unless the request's Origin, or its Referer when it sends no Origin, is `expected`."""
    origin = headers.get("Origin")
    if origin is not None and origin.strip() != "null":
        sent, what = origin_of(origin), "Origin"
    else:
        sent, what = origin_of(headers.get("Referer")), "Referer"
    if sent is None or expected is None or sent != expected:
        raise ApiError(
            403,
            f"refused a request from another site ({what} {sent or 'missing'}, the portal is {expected}): "
            "state-changing requests with the session cookie must come from the portal's own pages "
            "(scripts should send `Authorization: token <token>` instead)",
        )


def check_json_content_type(content_type: str | None) -> None:
    """415 unless the body is declared as JSON."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(
            415, f"this route takes a JSON body: send Content-Type: application/json (got {content_type or 'none'})"
        )
