"""The error every layer raises when a request cannot be done; handlers turn it into the JSON envelope."""

from __future__ import annotations

import tornado.web


class ApiError(tornado.web.HTTPError):
    """A request that cannot be done, with the HTTP status and a message meant for a person."""

    def __init__(self, status: int, message: str, data: dict | None = None) -> None:
        super().__init__(status, log_message=message.replace("%", "%%"))
        self.message = message
        self.data = data or {}

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)
