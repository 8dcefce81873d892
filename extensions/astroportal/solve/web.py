"""Request plumbing shared by the solve service's handlers: form and multipart bodies, upload-sized limits."""

from __future__ import annotations

import json

import tornado.httputil
from astroportal.errors import ApiError
from astroportal.handlers.base import APIHandler

from .inputs import check_size, limits

# Multipart framing and the request-json field around the file itself.
UPLOAD_OVERHEAD = 256 * 1024


class UploadBodyMixin:
    """Accept bodies up to services.solve.max_upload_mb (plus framing) whatever server.max_body_mb says.

    A body over the limit is read to its end but not kept, so that the sender gets the 413 answer with its
    message rather than a connection reset; a body more than twice the limit is cut off.
    """

    # Multipart bodies (an image and its options), not JSON: a cookie-authenticated upload from the portal's page
    # is checked for forgery by its Origin and anti-forgery token, not by a JSON content type.
    json_body = False
    # How many times max_upload_mb a body may be (a worker's results hold the new FITS, the WCS and more).
    upload_factor = 1

    def prepare(self) -> None:  # type: ignore[override]
        self._chunks = []
        self._size = 0
        self._kept_limit = self.upload_factor * limits(self.cfg)[0] + UPLOAD_OVERHEAD
        self._limit = 2 * self._kept_limit + 1024 * 1024
        self._over = False
        length = self.request.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self._limit:
            raise ApiError(413, f"request body of {int(length)} bytes is far over the upload limit")

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._limit:
            raise ApiError(413, "request body is far over the upload limit")
        if self._size > self._kept_limit:
            self._over = True
            self._chunks = []
        else:
            self._chunks.append(chunk)

    def check_not_over(self) -> None:
        if self._over:
            check_size(self.cfg, self._size // self.upload_factor)  # raises 413 with the limit


def form(handler: APIHandler) -> tuple[dict[str, list[bytes]], dict[str, list]]:
    """(fields, files) of a urlencoded or multipart body, plus the query string's fields."""
    args: dict[str, list[bytes]] = {k: list(v) for k, v in handler.request.query_arguments.items()}
    files: dict[str, list] = {}
    body = handler.body
    if body:
        content_type = handler.request.headers.get("Content-Type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            tornado.httputil.parse_body_arguments(content_type, body, args, files, handler.request.headers)
        elif content_type.startswith("application/json"):
            args.setdefault("request-json", []).append(body)
    return args, files


def request_json(args: dict[str, list[bytes]], required: bool = True) -> dict:
    """nova's `request-json` field, parsed; ApiError(400) when it is missing or not a JSON object."""
    raw = args.get("request-json")
    if not raw:
        if required:
            raise ApiError(400, 'no json: send the form field "request-json" holding a JSON object')
        return {}
    try:
        value = json.loads(raw[-1])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f'failed to parse the "request-json" field as JSON: {exc}') from None
    if not isinstance(value, dict):
        raise ApiError(400, '"request-json" must hold a JSON object')
    return value


def field(args: dict[str, list[bytes]], name: str) -> str | None:
    values = args.get(name)
    return values[-1].decode("utf-8", "replace") if values else None
