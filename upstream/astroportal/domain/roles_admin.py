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


SUPER_ADMIN = "Super admin"


class LastSuperAdmin(Exception):
    """Demoting this user would leave the portal without a Super admin (nobody could give the role back)."""


def set_user_role(cfg: Config, username: str, role: str, force: bool = False) -> str:
    """Replace the user's roles with `role`; LookupError naming what exists when user or role is unknown;
    LastSuperAdmin when it would demote the last Super admin, unless `force`."""
    with session_scope(cfg) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise LookupError(f"no user named {username!r} (see --list)")
        row = session.get(Role, role)
        if row is None:
            known = ", ".join(sorted(session.scalars(select(Role.id))))
            raise LookupError(f"no role named {role!r}; roles: {known}")
        if SUPER_ADMIN in user.role_names and role != SUPER_ADMIN and not force:
            # Locked so that two demotions at once cannot both see the other admin still there.
            supers = session.scalars(select(User).where(User.roles.any(Role.id == SUPER_ADMIN))
                                     .with_for_update()).all()
            if len(supers) <= 1:
                raise LastSuperAdmin(
                    f"{username} is the last Super admin: demoting them would leave nobody able to manage roles; "
                    f"make another user Super admin first, or add --force"
                )
        user.roles = [row]
        return f"{username}: {role}"
