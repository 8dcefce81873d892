"""Request handlers' common ground: sessions, authentication, permissions, the JSON envelope, body limits."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Callable

import tornado.web
from sqlalchemy.orm import Session

from .. import __version__
from ..config import Config
from ..domain.accounts import is_expired, user_for_token, user_with_acls
from ..errors import ApiError
from ..jsonutil import dumps
from ..models import User

log = logging.getLogger("astroportal")

AUTH_HINT = "send the header `Authorization: token <token>` or log in"


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Every handler's base. Bodies are streamed so that an oversized one is refused before it is read."""

    _session: Session | None = None

    # -- configuration and database -------------------------------------------------------
    @property
    def cfg(self) -> Config:
        return self.application.settings["portal_config"]

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self.application.settings["sessionmaker"]()
        return self._session

    def on_finish(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- body streaming with a size limit ----------------------------------------------------
    def prepare(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._limit = int(float(self.cfg.get("server.max_body_mb") or 50) * 1024 * 1024)
        length = self.request.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self._limit:
            raise ApiError(413, f"request body of {int(length)} bytes is larger than the limit of {self._limit} bytes")
        # Nothing else may be refused here: an error raised in prepare() of a streaming handler makes Tornado
        # close the connection (the body is left unread), which keep-alive clients see as a reset. Credentials
        # are checked when a route asks for the user.

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._limit:
            raise ApiError(413, f"request body is larger than the limit of {self._limit} bytes")
        self._chunks.append(chunk)

    @property
    def body(self) -> bytes:
        if self._chunks:
            self.request.body = b"".join(self._chunks)
            self._chunks = []
        return self.request.body

    # -- authentication ------------------------------------------------------------------------
    def get_current_user(self) -> User | None:
        header = self.request.headers.get("Authorization")
        if header is not None:
            parts = header.split()
            if len(parts) != 2 or parts[0].lower() != "token":
                raise ApiError(401, f"malformed Authorization header: {AUTH_HINT}")
            user = user_for_token(self.session, parts[1])
            if user is None:
                raise ApiError(401, f"invalid API token: {AUTH_HINT}")
        else:
            raw = self.get_signed_cookie("user_id", max_age_days=30)
            if raw is None:
                return None
            try:
                user = user_with_acls(self.session, int(raw))
            except ValueError:
                return None
            if user is None:
                return None
        if is_expired(user):
            raise ApiError(403, "this account has expired; ask an administrator to renew it")
        return user

    def log_in(self, user: User) -> None:
        """Start a browser session for `user` (a signed, HTTP-only cookie)."""
        self.set_signed_cookie(
            "user_id",
            str(user.id),
            expires_days=30,
            httponly=True,
            secure=bool(self.cfg.get("server.production")),
            samesite="Lax",
        )

    def log_out(self) -> None:
        self.clear_cookie("user_id")

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[override]
        if isinstance(value, ApiError):
            log.info("%s %s -> %s", self.request.method, self.request.uri, value)
        else:
            super().log_exception(typ, value, tb)


class APIHandler(BaseHandler):
    """A handler that answers SkyPortal's envelope: {"status": "success", "data": ...} or an error."""

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")

    def success(self, data: Any = None, status: int = 200) -> None:
        self.set_status(status)
        self.finish(dumps({"status": "success", "data": {} if data is None else data, "version": __version__}))

    def error(self, message: str, status: int = 400, data: Any = None) -> None:
        self.set_status(status)
        self.finish(dumps({"status": "error", "message": message, "data": data or {}, "version": __version__}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            message, data = exc.message, exc.data
        elif isinstance(exc, tornado.web.HTTPError):
            message, data = exc.log_message or self._reason, {}
            if exc.args and "%" in message:
                message = message % exc.args
        elif status_code == 404:
            message, data = "no such API route", {}
        else:
            message, data = "internal server error; the portal's log has the details", {}
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(dumps({"status": "error", "message": message, "data": data, "version": __version__}))

    def get_json(self) -> dict:
        """The request body as a JSON object; 400 with a clear message otherwise."""
        body = self.body
        if not body:
            raise ApiError(400, "the request needs a JSON body")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return data

    def get_json_or_list(self) -> dict | list:
        """The request body as a JSON object or a list (the batch forms); 400 with a clear message otherwise."""
        body = self.body
        if not body:
            raise ApiError(400, "the request needs a JSON body")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(data, (dict, list)):
            raise ApiError(400, "the request body must be a JSON object or a list of objects")
        return data

    def query(self, name: str, default: Any = None, kind: Callable[[str], Any] = str) -> Any:
        """A query argument converted by `kind`; 400 naming the argument when it does not convert."""
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            return kind(raw)
        except (TypeError, ValueError):
            raise ApiError(400, f"invalid value {raw!r} for query argument `{name}`") from None


def auth_required(method: Callable) -> Callable:
    """Answer 401 unless the request carries a valid token or session."""

    @functools.wraps(method)
    def wrapper(self: BaseHandler, *args: Any, **kwargs: Any) -> Any:
        if self.current_user is None:
            raise ApiError(401, f"authentication required: {AUTH_HINT}")
        return method(self, *args, **kwargs)

    wrapper.__auth__ = True  # type: ignore[attr-defined]
    return wrapper


def permissions(acls: list[str]) -> Callable:
    """Answer 401 without credentials and 403 unless the user holds every ACL in `acls` (System admin holds all)."""

    def decorator(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self: BaseHandler, *args: Any, **kwargs: Any) -> Any:
            user = self.current_user
            if user is None:
                raise ApiError(401, f"authentication required: {AUTH_HINT}")
            held = user.acl_names
            missing = [a for a in acls if a not in held]
            if missing and "System admin" not in held:
                raise ApiError(403, f"this requires the permission(s) {', '.join(missing)}")
            return method(self, *args, **kwargs)

        wrapper.__acls__ = list(acls)  # type: ignore[attr-defined]
        wrapper.__auth__ = True  # type: ignore[attr-defined]
        return wrapper

    return decorator
