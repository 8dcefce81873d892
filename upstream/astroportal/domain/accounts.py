"""Users, their roles and their API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..models import Group, GroupUser, Role, Token, User, role_acls, user_acls, user_roles
from ..permissions import SITEWIDE_GROUP
from ..validate import shown


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _acls_of(user_id_column):
    """A scalar subquery: the array of ACL names a user holds through roles and directly."""
    via_roles = (
        select(role_acls.c.acl_id)
        .join(user_roles, user_roles.c.role_id == role_acls.c.role_id)
        .where(user_roles.c.user_id == user_id_column)
        .correlate(User)
    )
    direct = select(user_acls.c.acl_id).where(user_acls.c.user_id == user_id_column).correlate(User)
    # Correlation must be explicit: inside array(... UNION ...) SQLAlchemy would otherwise add `users` to
    # each inner FROM and hand every user the ACLs of all users.
    return select(func.array(via_roles.union(direct).scalar_subquery())).correlate(User).scalar_subquery()


def _groups_of(user_id_column):
    """A scalar subquery: the array of the ids of the groups a user is a member of."""
    member_of = select(GroupUser.group_id).where(GroupUser.user_id == user_id_column).correlate(User)
    return select(func.array(member_of.scalar_subquery())).correlate(User).scalar_subquery()


# Built once: every API request runs it, and building the correlated statement costs more than running it.
# The user's ACLs and groups come in the same round trip: nearly every request checks one or the other.
_USER_BY_TOKEN = (
    select(User, Token.id, Token.last_used, _acls_of(User.id), _groups_of(User.id))
    .join(Token, Token.created_by_id == User.id)
    .where(Token.token_hash == bindparam("token_hash"))
)
_USER_BY_ID = select(User, _acls_of(User.id), _groups_of(User.id)).where(User.id == bindparam("user_id"))


def _preload(user: User, acls, group_ids) -> None:
    """Keep what the authentication query brought on the user object, for this session (see User.acl_names and
    access.user_group_ids); a change of memberships in the session drops it (_forget_groups_on_change)."""
    user.__dict__["_acl_cache"] = set(acls or ())
    user.__dict__["_group_ids_cache"] = frozenset(group_ids or ())


def _forget_groups(session: Session) -> None:
    for obj in list(session.identity_map.values()):
        if isinstance(obj, User):
            obj.__dict__.pop("_group_ids_cache", None)


@event.listens_for(Session, "after_flush")
def _forget_groups_on_flush(session: Session, _context) -> None:
    # A membership or a group added, changed or deleted in this session: the preloaded group ids may be stale.
    # (In after_flush, new/dirty/deleted still list what the flush wrote.)
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, (GroupUser, Group)):
            _forget_groups(session)
            return


@event.listens_for(Session, "do_orm_execute")
def _forget_groups_on_dml(state) -> None:
    # The same for bulk statements (delete(GroupUser)..., update(Group)...), which bypass the unit of work.
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in (GroupUser.__tablename__, Group.__tablename__):
            _forget_groups(state.session)


def user_for_token(session: Session, token: str) -> User | None:
    """The user owning `token`, with their ACLs and group ids preloaded (one query), or None when no such token exists."""
    found = session.execute(_USER_BY_TOKEN, {"token_hash": hash_token(token)}).first()
    if found is None:
        return None
    user, token_id, last_used, acls, group_ids = found
    _preload(user, acls, group_ids)
    now = datetime.utcnow()
    # Coarse on purpose: one write per token per ten minutes keeps the hot path read-only.
    if last_used is None or now - last_used > timedelta(minutes=10):
        session.execute(update(Token).where(Token.id == token_id).values(last_used=now))
        session.commit()
    return user


def user_with_acls(session: Session, user_id: int) -> User | None:
    """The user with id `user_id` and their ACLs and group ids preloaded (one query), or None."""
    found = session.execute(_USER_BY_ID, {"user_id": user_id}).first()
    if found is None:
        return None
    user, acls, group_ids = found
    _preload(user, acls, group_ids)
    return user


def create_token(session: Session, user: User, name: str) -> tuple[Token, str]:
    """Create an API token for `user`; return the row and the token text (which is stored only hashed)."""
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "a token needs a non-empty `name`")
    text = secrets.token_hex(20)
    row = Token(token_hash=hash_token(text), prefix=text[:8], name=name.strip(), created_by_id=user.id)
    session.add(row)
    session.flush()
    return row, text


def create_user(
    session: Session,
    username: str,
    roles: list[str] | None = None,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    contact_email: str | None = None,
    oauth_uid: str | None = None,
    is_bot: bool = False,
) -> User:
    """Create a user with the given roles, their single-user group, and membership of the sitewide group."""
    if not isinstance(username, str) or not username.strip():
        raise ApiError(400, "a user needs a non-empty `username`")
    taken = session.scalar(select(User.username).where(func.lower(User.username) == username.lower()))
    if taken is not None:
        raise ApiError(400, f"a user named {shown(taken)} already exists (usernames are unique ignoring case)")
    if session.scalar(select(Group.id).where(Group.name == username)):
        # The user's own group takes the username as its name.
        raise ApiError(400, f"the name {shown(username)} is taken by a group; choose another username")
    user = User(
        username=username,
        first_name=first_name,
        last_name=last_name,
        contact_email=contact_email,
        oauth_uid=oauth_uid,
        is_bot=is_bot,
    )
    user.roles = roles_by_name(session, roles or [])
    session.add(user)
    session.flush()
    own = Group(name=username, single_user_group=True, private=True)
    session.add(own)
    session.flush()
    session.add(GroupUser(group_id=own.id, user_id=user.id, admin=True, can_save=True))
    sitewide = session.scalar(select(Group).where(Group.name == SITEWIDE_GROUP))
    if sitewide is not None:
        session.add(GroupUser(group_id=sitewide.id, user_id=user.id, admin=False, can_save=True))
    session.flush()
    return user


def roles_by_name(session: Session, names: list[str]) -> list[Role]:
    """The Role rows for `names`; an unknown name gives a 400 listing the known ones."""
    roles = list(session.scalars(select(Role).where(Role.id.in_(names))))
    unknown = set(names) - {r.id for r in roles}
    if unknown:
        known = ", ".join(sorted(session.scalars(select(Role.id))))
        raise ApiError(400, f"unknown role(s) {sorted(unknown)}; known roles: {known}")
    return roles


def is_expired(user: User) -> bool:
    return user.expiration_date is not None and user.expiration_date < datetime.utcnow()
