"""Command-line role administration (used by `python -m astroportal set_user_role`)."""

from __future__ import annotations

from sqlalchemy import select

from ..config import Config
from ..db import session_scope
from ..models import Role, User


def list_users_roles(cfg: Config) -> list[str]:
    with session_scope(cfg) as session:
        users = session.scalars(select(User).order_by(User.username)).all()
        return [f"{u.username}\t{', '.join(u.role_names) or '(no role)'}" for u in users]


def set_user_role(cfg: Config, username: str, role: str) -> str:
    """Replace the user's roles with `role`; LookupError naming what exists when user or role is unknown."""
    with session_scope(cfg) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise LookupError(f"no user named {username!r} (see --list)")
        row = session.get(Role, role)
        if row is None:
            known = ", ".join(sorted(session.scalars(select(Role.id))))
            raise LookupError(f"no role named {role!r}; roles: {known}")
        user.roles = [row]
        return f"{username}: {role}"
