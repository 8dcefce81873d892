"""Users and their roles, as the API shows and changes them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..models import Group, Role, User
from . import checks
from .accounts import create_user, roles_by_name
from .groups import groups_of_user
from ..validate import shown

MAX_PER_PAGE = 500


def serialize_user(session: Session, u: User) -> dict[str, Any]:
    """A user with roles, ACLs (from roles and granted directly) and group memberships."""
    return {
        "id": u.id,
        "username": u.username,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "contact_email": u.contact_email,
        "is_bot": u.is_bot,
        "roles": u.role_names,
        "acls": sorted(u.acl_names),
        "groups": groups_of_user(session, u.id),
        "created_at": u.created_at,
        "expiration_date": u.expiration_date,
    }


def list_users(session: Session, page: int = 1, per_page: int = 100, username: str | None = None) -> dict:
    """A page of users ordered by id, optionally those whose username contains `username`."""
    if page < 1:
        raise ApiError(400, "`pageNumber` must be 1 or more")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ApiError(400, f"`numPerPage` must be between 1 and {MAX_PER_PAGE}")
    query = select(User)
    if username:
        query = query.where(User.username.ilike(f"%{_escape_like(username)}%", escape="\\"))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(User.id).offset((page - 1) * per_page).limit(per_page))
    return {
        "users": [serialize_user(session, u) for u in rows],
        "totalMatches": total,
        "pageNumber": page,
        "numPerPage": per_page,
    }


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise ApiError(404, f"user {user_id} not found")
    return user


def user_for_viewer(session: Session, viewer: User, user_id: int) -> dict:
    """A user as seen by `viewer`: themselves, or anyone when they hold "Manage users"."""
    if user_id != viewer.id and not ({"Manage users", "System admin"} & viewer.acl_names):
        raise ApiError(403, "only your own account, unless you hold the permission Manage users")
    return serialize_user(session, get_user(session, user_id))


def create_user_from_api(session: Session, data: dict) -> int:
    """Create a user (typically a service's bot account) with roles; return its id."""
    username = checks.text(data, "username", required=True, nullable=False)
    if any(c.isspace() for c in username):
        raise ApiError(400, f"`username` must not contain spaces, got {shown(username)}")
    roles = checks.str_list(data, "roles")
    roles = [] if roles is checks.MISSING else roles
    optional = {f: checks.text(data, f) for f in ("first_name", "last_name", "contact_email")}
    optional = {k: v for k, v in optional.items() if v is not checks.MISSING}
    if optional.get("contact_email") and "@" not in optional["contact_email"]:
        raise ApiError(400, f"`contact_email` is not an email address: {shown(optional['contact_email'])}")
    is_bot = checks.boolean(data, "is_bot")
    taken = session.scalar(select(User.username).where(func.lower(User.username) == username.lower()))
    if taken is not None:
        raise ApiError(400, f"`username`: a user named {shown(taken)} already exists (usernames are unique ignoring case)")
    # The new user's own group takes their name.
    if session.scalar(select(Group.id).where(Group.name == username)) is not None:
        raise ApiError(400, f"`username`: {shown(username)} is already the name of a group")
    try:
        roles_by_name(session, roles)
    except ApiError as exc:
        raise ApiError(400, f"`roles`: {exc.message}") from None
    with checks.unique_conflict(session, f"`username`: a user or group named {shown(username)} already exists"):
        user = create_user(session, username, roles, is_bot=False if is_bot is checks.MISSING else is_bot, **optional)
        session.commit()
    return user.id


def add_roles(session: Session, user_id: int, data: dict) -> None:
    """Give a user more roles (those already held are kept)."""
    names = checks.str_list(data, "roleIds", required=True)
    if not names:
        raise ApiError(400, "`roleIds` must name at least one role")
    user = get_user(session, user_id)
    try:
        roles = roles_by_name(session, names)
    except ApiError as exc:
        raise ApiError(400, f"`roleIds`: {exc.message}") from None
    have = {r.id for r in user.roles}
    user.roles = user.roles + [r for r in roles if r.id not in have]
    user.forget_acls()
    session.commit()


def remove_role(session: Session, actor: User, user_id: int, role_name: str) -> None:
    """Take a role away from a user; an admin cannot take System admin away from themselves."""
    user = get_user(session, user_id)
    role = session.get(Role, role_name)
    if role is None:
        known = ", ".join(sorted(session.scalars(select(Role.id))))
        raise ApiError(404, f"no role named {shown(role_name)}; roles: {known}")
    if role not in user.roles:
        raise ApiError(404, f"user {user_id} does not have the role {shown(role_name)}")
    remaining = [r for r in user.roles if r.id != role_name]
    if user.id == actor.id and actor.is_system_admin:
        still = {a.id for a in user.extra_acls} | {a.id for r in remaining for a in r.acls}
        if "System admin" not in still:
            raise ApiError(400, "you cannot remove your own System admin permission; ask another admin")
    user.roles = remaining
    user.forget_acls()
    session.commit()


def list_roles(session: Session) -> list[dict]:
    return [
        {"id": r.id, "acls": sorted(a.id for a in r.acls)} for r in session.scalars(select(Role).order_by(Role.id))
    ]


def profile(session: Session, user: User) -> dict:
    """The current user: their account, roles, ACLs (also as SkyPortal's `permissions`), groups, preferences."""
    out = serialize_user(session, user)
    out["permissions"] = out["acls"]
    out["preferences"] = user.preferences or {}
    return out
