"""The login methods a deployment offers: social-core backends named in config `server.auth.backends`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from social_core.backends.base import BaseAuth
from social_core.utils import module_member

from .. import extension_points as ep
from ..config import Config


class BackendConfigError(Exception):
    """`server.auth.backends` names something that is not a social-core backend."""


@dataclass(frozen=True)
class LoginOption:
    """One button on the login page."""

    name: str
    display_name: str
    logo: str | None

    def url(self, next_url: str | None = None) -> str:
        return f"/login/{self.name}" + (f"?{urlencode({'next': next_url})}" if next_url else "")


def configured_backends(cfg: Config) -> dict[str, type[BaseAuth]]:
    """{backend name: class} for every dotted path in `server.auth.backends`, in the configured order."""
    paths = ep.AUTH_BACKENDS.read(cfg) or []
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list):
        raise BackendConfigError("server.auth.backends must be a list of dotted class paths")
    found: dict[str, type[BaseAuth]] = {}
    for path in paths:
        if not isinstance(path, str) or "." not in path:
            raise BackendConfigError(f"server.auth.backends: {path!r} is not a dotted class path")
        try:
            cls = module_member(path)
        except (ImportError, AttributeError) as exc:
            raise BackendConfigError(f"server.auth.backends: cannot import {path}: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, BaseAuth)):
            raise BackendConfigError(f"server.auth.backends: {path} is not a social-core backend class")
        found[cls.name] = cls
    return found


def backend_section(cfg: Config, name: str) -> dict:
    """`server.auth.<name>` (read directly: a backend's name is not split on dots)."""
    return ep.AUTH_BACKEND_SETTINGS.section(cfg, name)


def backend_paths(backends: dict[str, type[BaseAuth]]) -> list[str]:
    return [f"{cls.__module__}.{cls.__qualname__}" for cls in backends.values()]


def login_options(cfg: Config) -> list[LoginOption]:
    """The login page's buttons: each backend's `display_name` and `logo` from `server.auth.<name>`."""
    options = []
    for name, cls in configured_backends(cfg).items():
        own = backend_section(cfg, name)
        options.append(
            LoginOption(name=name, display_name=own.get("display_name") or cls.title or name, logo=own.get("logo") or None)
        )
    return options
