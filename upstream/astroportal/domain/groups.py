"""Groups, their members and the streams they may read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, selectinload

from ..errors import ApiError
from ..models import Filter, Group, GroupUser, Stream, User, group_streams
from ..permissions import SITEWIDE_GROUP
from . import checks
from .access import sitewide_group, user_group_ids
from ..validate import TEXT_MAX, shown

GROUP_FIELDS = {"name", "nickname", "description", "private"}


def serialize_group(g: Group) -> dict[str, Any]:
    return {
        "id": g.id,
        "name": g.name,
        "nickname": g.nickname,
        "description": g.description,
        "private": g.private,
        "single_user_group": g.single_user_group,
        "created_at": g.created_at,
        "modified": g.modified,
    }


def _by_name(groups) -> list[dict]:
    return [serialize_group(g) for g in sorted(groups, key=lambda g: g.name.lower())]


def list_groups(session: Session, user: User, include_single_user_groups: bool = False) -> dict[str, list[dict]]:
    """SkyPortal's three lists: the user's groups, the groups whose data they can read, and every group they
    may see (public ones and their own; all for system admins). Single-user groups appear only when asked
    for, and other people's only to system admins."""
    mine = user_group_ids(session, user)
    groups = list(session.scalars(select(Group)))

    def shown(g: Group) -> bool:
        if not g.single_user_group:
            return True
        return include_single_user_groups and (g.id in mine or user.is_system_admin)

    user_groups = [g for g in groups if g.id in mine and shown(g)]
    accessible = [g for g in groups if shown(g)] if user.is_system_admin else user_groups
    if user.is_system_admin:
        all_groups = accessible
    else:
        all_groups = [g for g in groups if shown(g) and (g.id in mine or not g.private)]
    return {
        "user_groups": _by_name(user_groups),
        "user_accessible_groups": _by_name(accessible),
        "all_groups": _by_name(all_groups),
    }


def public_group(session: Session) -> dict:
    return serialize_group(sitewide_group(session))


def get_group(session: Session, group_id: int) -> Group:
    group = session.get(Group, group_id)
    if group is None:
        raise ApiError(404, f"group {group_id} not found")
    return group


def membership(session: Session, group_id: int, user_id: int) -> GroupUser | None:
    return session.scalar(select(GroupUser).where(GroupUser.group_id == group_id, GroupUser.user_id == user_id))


def is_group_admin(session: Session, user: User, group_id: int) -> bool:
    """System admins administer every group; others the groups where their membership says admin."""
    if user.is_system_admin:
        return True
    member = membership(session, group_id, user.id)
    return member is not None and member.admin


def require_group_admin(session: Session, user: User, group: Group) -> None:
    if not is_group_admin(session, user, group.id):
        raise ApiError(403, f"only a system admin or an admin of group {group.id} ({shown(group.name)}) may do this")


def visible_group(session: Session, user: User, group_id: int) -> Group:
    """A group the user may look at: public ones, their own, or any for system admins (404 otherwise, so that
    a private group is not admitted to exist)."""
    group = get_group(session, group_id)
    if group.private and not user.is_system_admin and membership(session, group_id, user.id) is None:
        raise ApiError(404, f"group {group_id} not found")
    return group


def group_stream_ids(session: Session, group_id: int) -> set[int]:
    return set(session.scalars(select(group_streams.c.stream_id).where(group_streams.c.group_id == group_id)))


def group_detail(session: Session, user: User, group_id: int) -> dict:
    """A group with its members (username, admin, can_save), its streams and its filters."""
    group = visible_group(session, user, group_id)
    out = serialize_group(group)
    members = session.scalars(
        select(GroupUser).where(GroupUser.group_id == group_id).options(selectinload(GroupUser.user))
    )
    out["users"] = sorted(
        (
            {
                "id": m.user.id,
                "username": m.user.username,
                "first_name": m.user.first_name,
                "last_name": m.user.last_name,
                "is_bot": m.user.is_bot,
                "admin": m.admin,
                "can_save": m.can_save,
            }
            for m in members
        ),
        key=lambda u: u["username"].lower(),
    )
    stream_ids = group_stream_ids(session, group_id)
    streams = session.scalars(select(Stream).where(Stream.id.in_(stream_ids)).order_by(Stream.id)) if stream_ids else []
    out["streams"] = [{"id": s.id, "name": s.name} for s in streams]
    out["filters"] = [
        {"id": f.id, "name": f.name, "stream_id": f.stream_id}
        for f in session.scalars(select(Filter).where(Filter.group_id == group_id).order_by(Filter.id))
    ]
    return out


def _check_unique_group_name(session: Session, name: str, exclude_id: int | None = None) -> None:
    query = select(Group.id).where(Group.name == name)
    if exclude_id is not None:
        query = query.where(Group.id != exclude_id)
    if session.scalar(query) is not None:
        raise ApiError(400, f"`name`: a group named {shown(name)} already exists")
    # Single-user groups are named after their users: a group taking a user's name would block theirs.
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise ApiError(400, f"`name`: {shown(name)} is a user's name and is reserved for that user's own group")


def _existing_user_ids(session: Session, ids: list[int], field: str) -> list[int]:
    found = set(session.scalars(select(User.id).where(User.id.in_(ids))))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ApiError(400, f"`{field}`: no user(s) with id {missing}")
    return ids


def create_group(session: Session, user: User, data: dict) -> int:
    """Create a group; its creator and the users in `group_admins` become its admins. Return its id."""
    name = checks.text(data, "name", required=True, nullable=False)
    nickname = checks.text(data, "nickname")
    description = checks.text(data, "description", max_len=TEXT_MAX)
    private = checks.boolean(data, "private")
    admins = checks.id_list(data, "group_admins")
    admins = [] if admins is checks.MISSING else _existing_user_ids(session, admins, "group_admins")
    _check_unique_group_name(session, name)
    with checks.unique_conflict(session, f"`name`: a group named {shown(name)} already exists"):
        group = Group(
            name=name,
            nickname=None if nickname is checks.MISSING else nickname,
            description=None if description is checks.MISSING else description,
            private=False if private is checks.MISSING else private,
        )
        session.add(group)
        session.flush()
        for uid in dict.fromkeys([user.id, *admins]):
            session.add(GroupUser(group_id=group.id, user_id=uid, admin=True, can_save=True))
        session.commit()
    return group.id


def _check_not_special(group: Group, doing: str) -> None:
    if group.name == SITEWIDE_GROUP and not group.single_user_group:
        raise ApiError(400, f"cannot {doing} the sitewide group: it holds public data and every user")
    if group.single_user_group:
        raise ApiError(400, f"cannot {doing} group {group.id}: it is the single-user group of {shown(group.name)}")


def update_group(session: Session, user: User, group_id: int, data: dict) -> None:
    """Change a group's name, nickname, description or privacy (system admin or group admin)."""
    checks.unknown_fields(data, GROUP_FIELDS)
    group = get_group(session, group_id)
    require_group_admin(session, user, group)
    name = checks.text(data, "name", nullable=False)
    nickname = checks.text(data, "nickname")
    description = checks.text(data, "description", max_len=TEXT_MAX)
    private = checks.boolean(data, "private")
    if name is not checks.MISSING and name != group.name:
        # The portal finds these groups by name.
        _check_not_special(group, "rename")
        _check_unique_group_name(session, name, exclude_id=group_id)
        group.name = name
    if private is not checks.MISSING and private != group.private:
        _check_not_special(group, "change the privacy of")
        group.private = private
    if nickname is not checks.MISSING:
        group.nickname = nickname
    if description is not checks.MISSING:
        group.description = description
    with checks.unique_conflict(session, f"`name`: a group named {shown(name)} already exists"):
        session.commit()


def delete_group(session: Session, user: User, group_id: int) -> None:
    """Delete a group (system admin or group admin); the sitewide and single-user groups cannot go."""
    group = get_group(session, group_id)
    require_group_admin(session, user, group)
    _check_not_special(group, "delete")
    session.delete(group)
    session.commit()


# -- members --------------------------------------------------------------------------------------


def _member_answer(m: GroupUser) -> dict:
    return {"group_id": m.group_id, "user_id": m.user_id, "admin": m.admin, "can_save": m.can_save}


def add_member(session: Session, user: User, group_id: int, data: dict) -> dict:
    """Add a user to a group (system admin or group admin): `{userID, admin?, canSave?}`."""
    group = get_group(session, group_id)
    require_group_admin(session, user, group)
    uid = checks.ident(data, "userID", required=True)
    admin = checks.boolean(data, "admin")
    can_save = checks.boolean(data, "canSave")
    if group.single_user_group:
        raise ApiError(400, f"group {group_id} is the single-user group of {shown(group.name)}: it has no other members")
    if session.get(User, uid) is None:
        raise ApiError(400, f"`userID`: no user with id {uid}")
    if membership(session, group_id, uid) is not None:
        raise ApiError(400, f"`userID`: user {uid} is already a member of group {group_id}")
    member = GroupUser(
        group_id=group_id,
        user_id=uid,
        admin=False if admin is checks.MISSING else admin,
        can_save=True if can_save is checks.MISSING else can_save,
    )
    with checks.unique_conflict(session, f"`userID`: user {uid} is already a member of group {group_id}"):
        session.add(member)
        session.commit()
    return _member_answer(member)


def _existing_membership(session: Session, group: Group, user_id: int) -> GroupUser:
    member = membership(session, group.id, user_id)
    if member is None:
        raise ApiError(404, f"user {user_id} is not a member of group {group.id}")
    return member


def update_member(session: Session, user: User, group_id: int, user_id: int, data: dict) -> dict:
    """Change a member's admin or canSave flags (system admin or group admin)."""
    checks.unknown_fields(data, {"admin", "canSave"})
    group = get_group(session, group_id)
    require_group_admin(session, user, group)
    member = _existing_membership(session, group, user_id)
    admin = checks.boolean(data, "admin")
    can_save = checks.boolean(data, "canSave")
    if group.single_user_group:
        raise ApiError(400, f"group {group_id} is the single-user group of {shown(group.name)}: its membership is fixed")
    if admin is not checks.MISSING:
        member.admin = admin
    if can_save is not checks.MISSING:
        member.can_save = can_save
    session.commit()
    return _member_answer(member)


def remove_member(session: Session, user: User, group_id: int, user_id: int) -> None:
    """Remove a member (system admin or group admin; anyone may also leave a group themselves)."""
    group = get_group(session, group_id)
    if user_id != user.id:
        require_group_admin(session, user, group)
    member = _existing_membership(session, group, user_id)
    if group.single_user_group:
        raise ApiError(400, f"group {group_id} is the single-user group of {shown(group.name)}: its owner cannot leave it")
    session.delete(member)
    session.commit()


# -- streams a group reads --------------------------------------------------------------------------


def add_group_stream(session: Session, user: User, group_id: int, data: dict) -> dict:
    """Give a group access to a stream (system admins: a stream's data rights are not the group's to take)."""
    group = get_group(session, group_id)
    stream_id = checks.ident(data, "stream_id", required=True)
    if session.get(Stream, stream_id) is None:
        raise ApiError(400, f"`stream_id`: no stream with id {stream_id}")
    if stream_id in group_stream_ids(session, group.id):
        raise ApiError(400, f"`stream_id`: group {group_id} already has access to stream {stream_id}")
    with checks.unique_conflict(session, f"`stream_id`: group {group_id} already has access to stream {stream_id}"):
        session.execute(insert(group_streams).values(group_id=group_id, stream_id=stream_id))
        session.commit()
    return {"group_id": group_id, "stream_id": stream_id}


def remove_group_stream(session: Session, user: User, group_id: int, stream_id: int) -> None:
    """Take a stream away from a group, unless the group still filters it (deleting those filters would
    silently delete their candidates)."""
    get_group(session, group_id)
    if stream_id not in group_stream_ids(session, group_id):
        raise ApiError(404, f"group {group_id} has no access to stream {stream_id}")
    n = session.scalar(
        select(func.count()).select_from(Filter).where(Filter.group_id == group_id, Filter.stream_id == stream_id)
    )
    if n:
        raise ApiError(400, f"group {group_id} has {n} filter(s) on stream {stream_id}; delete them first")
    session.execute(
        delete(group_streams).where(group_streams.c.group_id == group_id, group_streams.c.stream_id == stream_id)
    )
    session.commit()


def groups_of_user(session: Session, user_id: int) -> list[dict]:
    """The groups a user belongs to, with their membership flags."""
    rows = session.execute(
        select(Group, GroupUser).join(GroupUser, GroupUser.group_id == Group.id).where(GroupUser.user_id == user_id)
    ).all()
    out = []
    for g, m in sorted(rows, key=lambda r: r[0].name.lower()):
        item = serialize_group(g)
        item.update(admin=m.admin, can_save=m.can_save)
        out.append(item)
    return out

