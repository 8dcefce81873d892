"""Logging in: social-core wired into the portal (strategy, storage, pipeline), and the debug login.

The handlers in handlers/pages/auth.py call `begin`, `complete` and `debug_login_user`; failures of a login
come out as `LoginFailure` (status, message, hint), which the handler shows as a page.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from social_core.actions import do_auth, do_complete
from social_core.backends.base import BaseAuth
from social_core.backends.oauth import OAuthAuth
from social_core.exceptions import (
    AuthCanceled,
    AuthConfigurationError,
    AuthCredentialError,
    AuthProviderError,
    AuthResponseError,
    SocialAuthBaseException,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import extension_points as ep
from ..config import Config
from ..domain.accounts import create_user, is_expired
from ..errors import ApiError
from ..models import User
from .backends import BackendConfigError, LoginOption, configured_backends, login_options
from .pipeline import LoginRefused, PipelineConfigError
from .strategy import Html, PortalStrategy, Redirect

__all__ = [
    "Html",
    "LoginFailure",
    "LoginOption",
    "PortalStrategy",
    "Redirect",
    "begin",
    "complete",
    "debug_login_refusal",
    "debug_login_user",
    "describe_error",
    "login_options",
    "make_strategy",
    "safe_next",
]

log = logging.getLogger("astroportal.auth")

USERNAME_RE = re.compile(r"^[A-Za-z0-9._@+-]{1,255}$")

HINTS = {
    "restart_login": "Start the login again from the login page.",
    "retry_later": "Try again in a few minutes.",
    "reauthenticate": "Start the login again from the login page.",
    "check_provider_profile": "Check your profile at the provider, then try again.",
    "use_existing_account": "Log in with the account you used before.",
    "contact_administrator": "If this keeps happening, tell the portal's administrators.",
}


@dataclass(eq=False)
class LoginFailure(Exception):
    """A login that cannot go on, with what to tell the person and the HTTP status to answer with."""

    status: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


def safe_next(value: str | None, default: str = "/") -> str:
    """A same-site path to go to after logging in; anything else (another host, a scheme) gives `default`."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return default
    return value


def _backend(strategy: PortalStrategy, name: str) -> BaseAuth:
    try:
        known = configured_backends(strategy.cfg)
    except BackendConfigError as exc:
        log.error("%s", exc)
        raise LoginFailure(500, "The portal's login configuration is invalid.", HINTS["contact_administrator"])
    if name not in known:
        raise LoginFailure(404, f"There is no login method named {name!r}.", "Choose one on the login page.")
    return strategy.get_backend(name, redirect_uri=f"/complete/{name}")


def make_strategy(handler: Any, session: Session, cfg: Config) -> PortalStrategy:
    """The strategy for this request; a broken configuration gives a LoginFailure (500) naming no secrets."""
    try:
        return PortalStrategy(handler, session, cfg)
    except (BackendConfigError, PipelineConfigError) as exc:
        log.error("%s", exc)
        raise LoginFailure(500, "The portal's login configuration is invalid.", HINTS["contact_administrator"])


def begin(strategy: PortalStrategy, name: str) -> Redirect | Html:
    """Start logging in with backend `name`: the redirect to the provider (the `next` argument is kept)."""
    backend = _backend(strategy, name)
    if isinstance(backend, OAuthAuth) and not backend.get_key_and_secret()[0]:
        log.error("login with %s: no client key configured (server.auth.%s.key)", name, name)
        raise LoginFailure(500, f"Login with {backend.get_title(strategy)} is not configured on this portal.",
                           HINTS["contact_administrator"])
    try:
        return do_auth(backend, redirect_name="next")
    except SocialAuthBaseException as exc:
        raise describe_error(exc, name) from exc


def complete(strategy: PortalStrategy, name: str) -> Redirect | Html:
    """The provider sent the browser back: check state, exchange the code, run the pipeline, log in.

    On success `strategy.logged_in_user` is the user (the caller commits and starts the browser session).
    """
    backend = _backend(strategy, name)
    try:
        response = do_complete(backend, strategy.remember_login, user=None, redirect_name="next")
    except SocialAuthBaseException as exc:
        raise describe_error(exc, name) from exc
    except ApiError as exc:
        # From the portal's own code in the pipeline (creating the user, a distribution's step).
        log.warning("login with %s refused: %s", name, exc.message)
        raise LoginFailure(exc.status_code if exc.status_code < 500 else 500, exc.message,
                           HINTS["contact_administrator"]) from exc
    if strategy.logged_in_user is None and isinstance(response, Redirect):
        raise LoginFailure(400, "The login did not complete.", HINTS["restart_login"])
    return response


def describe_error(exc: SocialAuthBaseException, backend_name: str = "") -> LoginFailure:
    """What to tell the person about a failed login (never the provider's raw answer), and the status.

    400: the browser's side (wrong or replayed state, a refused code, access denied at the provider, policy);
    502: the provider failed (down, timing out, answering nonsense); 500: the portal's configuration.
    """
    if isinstance(exc, AuthCanceled):
        status = 400
        message = "The login was cancelled at the provider (access was denied)."
    elif isinstance(exc, AuthConfigurationError):
        status, message = 500, "The portal's login configuration is invalid."
    elif isinstance(exc, AuthCredentialError):
        status, message = 400, str(exc)
    elif isinstance(exc, (AuthProviderError, AuthResponseError)):
        status, message = 502, str(exc)
    else:
        status, message = 400, str(exc)
    if isinstance(exc, LoginRefused):
        message = exc.public_message
    log.warning(
        "login with %s failed: %s (code=%s stage=%s provider_code=%s status=%s)%s",
        backend_name or "?",
        message,
        exc.code,
        exc.stage,
        exc.provider_code,
        exc.status_code,
        f" detail: {exc.detail}" if exc.detail else "",
    )
    return LoginFailure(status, message, HINTS.get(exc.recovery, ""))


def debug_login_refusal(cfg: Config) -> str | None:
    """Why the debug login is refused here, or None when it is allowed (debug_login on, not production)."""
    if cfg.get("server.production"):
        return "The debug login is disabled in production mode. Log in with one of the login methods instead."
    if not cfg.get("server.auth.debug_login"):
        return "The debug login is disabled on this portal (server.auth.debug_login is off)."
    return None


def debug_login_user(session: Session, cfg: Config, username: str) -> User:
    """The user called `username`, created on first use with `server.auth.default_role` (not committed)."""
    if not USERNAME_RE.match(username or ""):
        raise LoginFailure(400, "A username is 1 to 255 letters, digits or . _ @ + - characters.")
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        role = ep.DEFAULT_ROLE.read(cfg)
        try:
            user = create_user(session, username, [role] if role else [])
        except ApiError as exc:
            raise LoginFailure(500 if "role" in exc.message else exc.status_code, exc.message) from exc
    if is_expired(user):
        raise LoginFailure(403, "This account has expired; ask an administrator to renew it.")
    return user
