"""Request handlers' common ground: sessions, authentication, permissions, the JSON envelope, body limits."""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import tornado.web
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm import Session

from .. import __version__
from ..config import Config
from ..domain import browser_sessions
from ..domain.accounts import is_expired, user_for_token
from ..errors import ApiError
from ..jsonutil import dumps
from ..models import User
from . import forgery
from ..validate import (
    INT32_MAX,
    MAX_MESSAGE_CHARS,
    bounded_int,
    cut,
    finite_float,
    log_uri,
    parse_json_body,
    shown,
    string_problem,
)

log = logging.getLogger("astroportal")

AUTH_HINT = "send the header `Authorization: token <token>` or log in"
SESSION_COOKIE = "session"


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Every handler's base. Bodies are streamed so that an oversized one is refused before it is read."""

    _session: Session | None = None
    # The key of the browser session that authenticated this request (None for token requests).
    session_key: str | None = None
    # Whether the state-changing methods of this handler read a JSON body (see handlers/forgery.py).
    json_body = False
    # Set by a handler whose answer is a routine one (an empty answer to a frequent poll): its access log line
    # is written at DEBUG, not INFO (app.log_request). Errors are always logged.
    routine_answer = False

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
            user = self._session_user()
            if user is None:
                return None
        if is_expired(user):
            raise ApiError(403, "this account has expired; ask an administrator to renew it")
        return user

    def _session_user(self) -> User | None:
        """The user of the browser session in the cookie, after the anti-forgery checks for a state change."""
        limits = browser_sessions.Lifetimes.from_config(self.cfg)
        raw = self.get_signed_cookie(SESSION_COOKIE, max_age_days=limits.absolute.total_seconds() / 86400)
        if not raw:
            return None
        key = raw.decode("ascii", "replace")
        user = browser_sessions.user_for_session(self.session, key, limits)
        if user is None:
            return None
        self.session_key = key
        if self.request.method not in forgery.SAFE_METHODS:
            self.check_forgery(key)
        return user

    def check_forgery(self, key: str) -> None:
        """403 (415 for a JSON route sent another body type) unless this cookie-authenticated state change
        comes from the portal's own pages; see handlers/forgery.py."""
        expected = forgery.expected_origin(self.cfg.get("server.url"), self.request.protocol, self.request.host)
        forgery.check_same_origin(self.request.headers, expected)
        secret = self.application.settings["cookie_secret"]
        if not browser_sessions.csrf_token_matches(secret, key, self.sent_csrf_token()):
            raise ApiError(
                403,
                f"missing or wrong anti-forgery token: the portal's pages send it as the {forgery.CSRF_HEADER} "
                "header; reload the page and try again",
            )
        if self.json_body and (self.request.method in ("POST", "PUT", "PATCH") or self.body):
            forgery.check_json_content_type(self.request.headers.get("Content-Type"))

    def sent_csrf_token(self) -> str | None:
        """The anti-forgery token the request carries (a header; pages' forms also send a field)."""
        return self.request.headers.get(forgery.CSRF_HEADER)

    @property
    def csrf_token(self) -> str:
        """The token the pages embed for the portal's own scripts and forms ("" without a browser session)."""
        if self.current_user is None or self.session_key is None:
            return ""
        return browser_sessions.csrf_token(self.application.settings["cookie_secret"], self.session_key)

    def log_in(self, user: User) -> None:
        """Start a browser session for `user`: a row in user_sessions and a signed, HTTP-only cookie with its key
        (Secure in production mode)."""
        limits = browser_sessions.Lifetimes.from_config(self.cfg)
        previous = self.get_signed_cookie(SESSION_COOKIE)
        if previous:  # a new login is a new session: the one this browser had ends
            browser_sessions.end_session(self.session, previous.decode("ascii", "replace"))
        key = browser_sessions.start_session(self.session, user, limits)
        self.session.commit()
        self.set_signed_cookie(
            SESSION_COOKIE,
            key,
            expires_days=limits.absolute.total_seconds() / 86400,
            httponly=True,
            secure=bool(self.cfg.get("server.production")),
            samesite="Lax",
        )

    def log_out(self) -> None:
        """End the browser session in the database (every copy of the cookie stops working) and drop the cookie."""
        raw = self.get_signed_cookie(SESSION_COOKIE)
        if raw:
            browser_sessions.end_session(self.session, raw.decode("ascii", "replace"))
        self.clear_cookie(SESSION_COOKIE)

    # -- hostile input: refused centrally, and never echoed whole into answers or logs --------------------
    _path_problem: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every HTTP method first refuses a bad path argument (see decode_argument): wrapped here once, so
        # that no handler can forget it.
        super().__init_subclass__(**kwargs)
        for name in ("get", "post", "put", "patch", "delete", "head", "options"):
            func = cls.__dict__.get(name)
            if func is not None and not getattr(func, "__path_checked__", False):
                setattr(cls, name, _refusing_bad_path(func))

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        """Path and query arguments as text; 400 for invalid UTF-8, a NUL or a lone surrogate.

        A query argument is refused at once (it is read inside the method). A path argument is decoded before
        the body is read, and an error then makes Tornado drop the connection under a keep-alive client, so
        its problem is kept and raised when the method starts (_refusing_bad_path).
        """
        try:
            text = super().decode_argument(value, name)
        except tornado.web.HTTPError:
            text, problem = value.decode("utf-8", "replace"), "is not valid UTF-8 (a lone surrogate?)"
        else:
            problem = string_problem(text)
        if problem:
            message = f"{f'query argument `{name}`' if name else 'the URL path'} {problem}: {shown(text)}"
            if name is not None:
                raise ApiError(400, message)
            self._path_problem = self._path_problem or message
        return text

    def _request_summary(self) -> str:
        return f"{self.request.method} {log_uri(self.request.uri or '')} ({self.request.remote_ip})"

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[override]
        if isinstance(value, ApiError):
            log.info("%s %s -> %s", self.request.method, log_uri(self.request.uri or ""), cut(str(value), 500))
        elif database_input_error(value):
            log.warning("%s %s -> 400 (the database refused a value): %s", self.request.method,
                        log_uri(self.request.uri or ""), cut(str(getattr(value, "orig", value)), 500))
        elif isinstance(value, tornado.web.HTTPError):
            super().log_exception(typ, value, tb)
        else:
            # Tornado's own line would carry the whole request (its URI) and the exception's text.
            log.error("Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb))


def _refusing_bad_path(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(self: BaseHandler, *args: Any, **kwargs: Any) -> Any:
        if self._path_problem:
            raise ApiError(400, self._path_problem)
        return method(self, *args, **kwargs)

    wrapper.__path_checked__ = True  # type: ignore[attr-defined]
    return wrapper


def database_input_error(exc: BaseException | None) -> bool:
    """Whether `exc` is PostgreSQL refusing a value (a data exception, or a program limit such as an index
    row too large): the request's fault, answered 400, though the checks before it should have caught it."""
    code = getattr(getattr(exc, "orig", None), "pgcode", None)
    return isinstance(exc, (DataError, OperationalError)) and isinstance(code, str) and code[:2] in ("22", "54")


class APIHandler(BaseHandler):
    """A handler that answers SkyPortal's envelope: {"status": "success", "data": ...} or an error."""

    json_body = True

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
        if database_input_error(exc):
            self.set_status(400)
            message = "the database refused a value of this request (out of range or too long); check the values sent"
            data = {}
        elif isinstance(exc, ApiError):
            message, data = exc.message, exc.data
        elif isinstance(exc, tornado.web.HTTPError):
            message, data = exc.log_message or self._reason, {}
            if exc.args and "%" in message:
                message = message % exc.args
        elif status_code == 404:
            message, data = "no such API route", {}
        else:
            message, data = "internal server error; the portal's log has the details", {}
        if len(message) > MAX_MESSAGE_CHARS or len(dumps(data)) > MAX_MESSAGE_CHARS:
            message, data = cut(message), {}
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(dumps({"status": "error", "message": message, "data": data, "version": __version__}))

    def get_json(self) -> dict:
        """The request body as a JSON object; 400 with a clear message otherwise."""
        data = parse_json_body(self.body)  # also refuses NUL, lone surrogates and deep nesting
        if not isinstance(data, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return data

    def get_json_or_list(self) -> dict | list:
        """The request body as a JSON object or a list (the batch forms); 400 with a clear message otherwise."""
        data = parse_json_body(self.body)  # the same checks as get_json: NUL, lone surrogates, deep nesting
        if not isinstance(data, (dict, list)):
            raise ApiError(400, "the request body must be a JSON object or a list of objects")
        return data

    def query(self, name: str, default: Any = None, kind: Callable[[str], Any] = str) -> Any:
        """A query argument converted by `kind`; 400 naming the argument when it does not convert."""
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = (finite_float if kind is float else kind)(raw)
        except (TypeError, ValueError):
            raise ApiError(400, f"invalid value {shown(raw)} for query argument `{name}`") from None
        if kind is int:
            bounded_int(value, name, -INT32_MAX, INT32_MAX)
        return value


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


def rule(method: str, path: str) -> Callable:
    """Check the ACL that access_rules.RULES gives the route `method path` (401 without credentials, 403 without
    the ACL). The scope the table names is checked by the domain function the handler calls."""
    from ..access_rules import rule_for

    entry = rule_for(method, path)
    decorator = permissions(entry.acls) if entry.acls else auth_required

    def wrap(func: Callable) -> Callable:
        wrapped = decorator(func)
        wrapped.__rule__ = entry  # type: ignore[attr-defined]
        return wrapped

    return wrap
