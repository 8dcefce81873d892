"""The login pipeline: social-core's default steps, the portal's own, and a distribution's extra steps.

A step is a function called with keyword arguments (social-core's conventions): `strategy`, `backend`,
`response` (the provider's user data, e.g. its claims), `details`, `uid`, `user` (a models.User once known),
`is_new`, `social`. The portal's strategy also offers `strategy.session` (the request's SQLAlchemy session:
the whole login is one transaction, committed when it succeeds) and `strategy.cfg` (the configuration).
A step returns None or a dict of values for the later steps.

Extra steps come from config `server.auth.pipeline_extra` (dotted function paths) and run after every
default step, when the user exists; a distribution uses them, for example, to map a provider's groups claim
to portal groups.
"""

from __future__ import annotations

from typing import Any

from social_core.exceptions import AuthPolicyError
from social_core.pipeline import DEFAULT_AUTH_PIPELINE
from social_core.utils import module_member

from .. import extension_points as ep
from ..config import Config
from ..domain.accounts import is_expired


class LoginRefused(AuthPolicyError):
    """The portal refuses this login; `public_message` says why, for the person logging in."""

    def __init__(self, backend: Any, public_message: str) -> None:
        super().__init__(backend, public_message, code="authentication_disallowed", stage="pipeline")
        self.public_message = public_message


class PipelineConfigError(Exception):
    """`server.auth.pipeline_extra` names something that cannot be imported or called."""


def refuse_expired(backend: Any, user: Any = None, *args: Any, **kwargs: Any) -> None:
    """An expired account cannot log in, even with a valid identity at the provider."""
    if user is not None and is_expired(user):
        raise LoginRefused(backend, "This account has expired; ask an administrator to renew it.")


def build_pipeline(cfg: Config) -> list[str]:
    """social-core's default steps, `refuse_expired` once the user is known, then `server.auth.pipeline_extra`."""
    steps: list[str] = []
    for step in DEFAULT_AUTH_PIPELINE:
        steps.append(step)
        if step == "social_core.pipeline.social_auth.social_user":
            steps.append(f"{__name__}.refuse_expired")
    extra = ep.AUTH_PIPELINE_EXTRA.read(cfg) or []
    if isinstance(extra, str):
        extra = [extra]
    if not isinstance(extra, list):
        raise PipelineConfigError("server.auth.pipeline_extra must be a list of dotted function paths")
    for name in extra:
        if not isinstance(name, str) or "." not in name:
            raise PipelineConfigError(f"server.auth.pipeline_extra: {name!r} is not a dotted function path")
        try:
            func = module_member(name)
        except (ImportError, AttributeError) as exc:
            raise PipelineConfigError(f"server.auth.pipeline_extra: cannot import {name}: {exc}") from None
        if not callable(func):
            raise PipelineConfigError(f"server.auth.pipeline_extra: {name} is not callable")
        steps.append(name)
    return steps
