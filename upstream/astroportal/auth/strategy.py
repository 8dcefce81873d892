"""social-core's strategy for the portal: Tornado requests, a signed-cookie session, settings from config.

social-core expects a framework's response objects; Tornado has none, so `redirect` and `html` return small
`Redirect` / `Html` values that the handler then sends. The strategy touches the handler only when it is built
(to read the request and the session cookie) and when `write_session` is called, so that the login itself
can run in a worker thread (it makes blocking HTTP calls to the provider).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import tornado.httputil
import tornado.template
from social_core.exceptions import AuthConfigurationError
from social_core.strategy import BaseStrategy, BaseTemplateStrategy
from social_core.utils import build_absolute_uri, setting_name
from sqlalchemy.orm import Session

from ..config import Config
from ..models import User
from .backends import backend_paths, backend_section, configured_backends
from .pipeline import build_pipeline
from .storage import bind_storage


# The cookie that carries social-core's session (the pending logins' states); signed, so it cannot be forged.
SESSION_COOKIE = "social_auth"
SESSION_MAX_AGE_DAYS = 1
# Keys of `server.auth.<backend>` that are for the login page, not for social-core.
PAGE_KEYS = {"display_name", "logo"}
# The portal's choices where social-core's defaults do not fit; `server.auth.<backend>.<setting>` overrides them.
PORTAL_DEFAULTS: dict[str, Any] = {
    "LOGIN_URL": "/login",
    "LOGIN_ERROR_URL": "/login",
    "LOGIN_REDIRECT_URL": "/",
    # The username is the provider's email (or, without one, its preferred username).
    "USERNAME_IS_FULL_EMAIL": True,
    "USER_FIELDS": ["username", "email", "first_name", "last_name"],
    "USER_FIELD_MAPPING": {"email": "contact_email"},
    "REQUESTS_TIMEOUT": 10,
}


def build_settings(cfg: Config) -> dict[str, Any]:
    """social-core's SOCIAL_AUTH_* settings from `server.auth`.

    `server.auth.<backend name>.<setting>` (lower case) becomes SOCIAL_AUTH_<BACKEND>_<SETTING>; for
    example `server.auth.google-oauth2.key` is SOCIAL_AUTH_GOOGLE_OAUTH2_KEY. Null values are left unset.
    """
    backends = configured_backends(cfg)
    settings = {setting_name(name): value for name, value in PORTAL_DEFAULTS.items()}
    settings[setting_name("AUTHENTICATION_BACKENDS")] = backend_paths(backends)
    settings[setting_name("PIPELINE")] = build_pipeline(cfg)
    for name in backends:
        for key, value in backend_section(cfg, name).items():
            if key in PAGE_KEYS or value is None:
                continue
            if key == "scope" and isinstance(value, str):
                value = value.split()
            settings[setting_name(name, str(key))] = value
    return settings


@dataclass
class Redirect:
    """A response social-core asked for: redirect the browser."""

    url: str


@dataclass
class Html:
    """A response social-core asked for: an HTML page (some backends post a form to the provider)."""

    content: str
    headers: dict[str, str] = field(default_factory=dict)


class PortalTemplateStrategy(BaseTemplateStrategy):
    def render_template(self, tpl: str, context: dict[str, Any] | None) -> str:
        return self.strategy.handler.render_string(tpl, **(context or {})).decode()

    def render_string(self, html: str, context: dict[str, Any] | None) -> str:
        return tornado.template.Template(html, autoescape="xhtml_escape").generate(**(context or {})).decode()


def _single_values(args: dict[str, list[bytes]]) -> dict[str, str]:
    return {name: values[-1].decode("utf-8", "replace") for name, values in args.items() if values}


class PortalStrategy(BaseStrategy):
    """One login step of one request: built by the handler, with the request's database session."""

    DEFAULT_TEMPLATE_STRATEGY = PortalTemplateStrategy

    def __init__(self, handler: Any, session: Session, cfg: Config) -> None:
        self.handler = handler
        self.session = session
        self.cfg = cfg
        self._settings = build_settings(cfg)
        request = handler.request
        self._get = _single_values(request.query_arguments)
        self._post: dict[str, str] = {}
        if request.method == "POST":
            args: dict[str, list[bytes]] = {}
            content_type = request.headers.get("Content-Type", "")
            tornado.httputil.parse_body_arguments(content_type, handler.body or b"", args, {}, request.headers)
            self._post = _single_values(args)
        self._session_data = self._read_session()
        self._session_dirty = False
        # Set by `remember_login`: the user the pipeline logged in (the handler starts the browser session).
        self.logged_in_user: User | None = None
        super().__init__(bind_storage(session, cfg))

    # -- settings ----------------------------------------------------------------------------------
    def get_setting(self, name: str) -> Any:
        return self._settings[name]

    def get_backend_class(self, name: str) -> type:
        """The configured backend called `name` (social-core's own lookup keeps a process-wide cache that is
        rebuilt unguarded from several threads)."""
        backends = configured_backends(self.cfg)
        if name not in backends:
            raise AuthConfigurationError(None, name, code="backend_missing", parameter="backend")
        return backends[name]

    # -- the request -------------------------------------------------------------------------------
    def get_request_data(self, merge: bool = True) -> dict[str, Any]:
        if self.handler.request.method == "POST":
            return {**self._get, **self._post} if merge else dict(self._post)
        return dict(self._get)

    def request_get(self) -> dict[str, str]:
        return dict(self._get)

    def request_post(self) -> dict[str, str]:
        return dict(self._post)

    def request_host(self) -> str:
        # The configured public URL, not the Host header, which a client chooses.
        return urlparse(self.cfg.server_url).netloc

    def request_is_secure(self) -> bool:
        return self.cfg.server_url.startswith("https://") or self.handler.request.protocol == "https"

    def request_path(self) -> str:
        return self.handler.request.path

    def request_port(self) -> int:
        parsed = urlparse(self.cfg.server_url)
        return parsed.port or (443 if parsed.scheme == "https" else 80)

    def build_absolute_uri(self, path: str | None = None) -> str:
        return build_absolute_uri(self.cfg.server_url, path)

    # -- responses ---------------------------------------------------------------------------------
    def redirect(self, url: str) -> Redirect:
        return Redirect(url)

    def html(self, content: str) -> Html:
        return Html(content)

    def html_with_headers(self, content: str, headers: Any) -> Html:
        return Html(content, dict(headers))

    # -- the session (a signed cookie) -------------------------------------------------------------
    def _read_session(self) -> dict[str, Any]:
        raw = self.handler.get_signed_cookie(SESSION_COOKIE, max_age_days=SESSION_MAX_AGE_DAYS)
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def session_get(self, name: str, default: Any = None) -> Any:
        return self._session_data.get(name, default)

    def session_set(self, name: str, value: Any) -> None:
        self._session_data[name] = value
        self._session_dirty = True

    def session_pop(self, name: str) -> Any:
        self._session_dirty = self._session_dirty or name in self._session_data
        return self._session_data.pop(name, None)

    def clear_session(self) -> None:
        self._session_data = {}
        self._session_dirty = True

    def write_session(self) -> None:
        """Send the session cookie if it changed (call on the IOLoop thread, before the response is sent)."""
        if not self._session_dirty:
            return
        if not self._session_data:
            self.handler.clear_cookie(SESSION_COOKIE)
            return
        self.handler.set_signed_cookie(
            SESSION_COOKIE,
            json.dumps(self._session_data, separators=(",", ":")),
            expires_days=SESSION_MAX_AGE_DAYS,
            httponly=True,
            secure=bool(self.cfg.get("server.production")),
            samesite="Lax",
        )

    # -- logging in --------------------------------------------------------------------------------
    def remember_login(self, backend: Any, user: User, social_user: Any = None) -> None:
        """social-core's `login` callback: note the user; the handler sets the session cookie afterwards."""
        self.logged_in_user = user
