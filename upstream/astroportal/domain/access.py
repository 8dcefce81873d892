"""Who may see what: data is visible through the groups it is shared with; system admins see everything."""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from ..errors import ApiError, forbidden, not_found
from ..models import Candidate, Filter, Group, GroupUser, Obj, Source, User
from ..permissions import SITEWIDE_GROUP


def user_group_ids(session: Session, user: User) -> set[int]:
    """The groups `user` is a member of."""
    return set(session.scalars(select(GroupUser.group_id).where(GroupUser.user_id == user.id)))


def accessible_group_ids(session: Session, user: User) -> set[int] | None:
    """The groups whose data `user` may read, or None for every group (system admins)."""
    if user.is_system_admin:
        return None
    return user_group_ids(session, user)


def single_user_group(session: Session, user: User) -> Group:
    """The user's own group, created on demand."""
    group = session.scalar(select(Group).where(Group.name == user.username, Group.single_user_group.is_(True)))
    if group is None:
        group = Group(name=user.username, single_user_group=True, private=True)
        session.add(group)
        session.flush()
        session.add(GroupUser(group_id=group.id, user_id=user.id, admin=True, can_save=True))
        session.flush()
    return group


def sitewide_group(session: Session) -> Group:
    group = session.scalar(select(Group).where(Group.name == SITEWIDE_GROUP))
    if group is None:
        raise ApiError(500, "the sitewide group is missing: run `python -m astroportal bootstrap`")
    return group


def target_group_ids(
    session: Session, user: User, group_ids: Iterable | str | None, *, default: str = "single", need_save: bool = False
) -> list[int]:
    """Check and resolve the groups a user writes data to.

    `group_ids` may be a list of ids, "all" (every group of the user), or None (the default: the user's
    own single-user group, or "all" when default="all"). A group the user is not in gives 403; a group that
    does not exist gives 400.
    """
    if group_ids is None or group_ids == []:
        group_ids = "all" if default == "all" else None
    if group_ids is None:
        return [single_user_group(session, user).id]
    if group_ids == "all":
        mine = user_group_ids(session, user)
        return sorted(mine) or [single_user_group(session, user).id]
    if not isinstance(group_ids, (list, tuple)) or not all(isinstance(g, int) and not isinstance(g, bool) for g in group_ids):
        raise ApiError(400, "group_ids must be a list of integer group ids or \"all\"")
    wanted = set(group_ids)
    # One query: which groups exist, and the user's membership (and right to save) in each.
    rows = session.execute(
        select(Group.id, GroupUser.id, GroupUser.can_save, Group.name)
        .outerjoin(GroupUser, (GroupUser.group_id == Group.id) & (GroupUser.user_id == user.id))
        .where(Group.id.in_(wanted))
    ).all()
    existing = {r[0] for r in rows}
    if wanted - existing:
        raise ApiError(400, f"unknown group id(s): {sorted(wanted - existing)}")
    if not user.is_system_admin:
        outside = sorted((name, gid) for gid, membership, _, name in rows if membership is None)
        if outside:
            raise forbidden(f"you are not a member of {_group_names(outside)}; ask one of its admins to add you")
        if need_save:
            cannot = sorted((name, gid) for gid, _, can_save, name in rows if not can_save)
            if cannot:
                raise forbidden(
                    f"you may not save sources to {_group_names(cannot)}; ask one of its admins for the right to save"
                )
    return sorted(wanted)


def _group_names(groups: list[tuple[str, int]]) -> str:
    """How a refusal names groups: by their (unique) names, as people know them, not by ids."""
    named = ", ".join(f"“{name}”" for name, _ in groups)
    return ("the group " if len(groups) == 1 else "the groups ") + named


def obj_visible_clause(user: User, group_ids: set[int] | None):
    """A SQL condition on Obj: saved as a source, or passed a filter, in one of `group_ids`."""
    if group_ids is None:
        return None
    saved = exists().where(Source.obj_id == Obj.id, Source.active.is_(True), Source.group_id.in_(group_ids))
    passed = exists().where(
        Candidate.obj_id == Obj.id, Candidate.filter_id == Filter.id, Filter.group_id.in_(group_ids)
    )
    return saved | passed


def get_visible_obj(session: Session, user: User, obj_id: str) -> Obj:
    """The object, if the user may see it; 404 otherwise (an invisible object is not admitted to exist)."""
    # PostgreSQL cannot hold a NUL character, so no object can have one in its id.
    obj = None if "\x00" in obj_id else session.get(Obj, obj_id)
    if obj is None:
        raise not_found(f"object {obj_id!r}")
    groups = accessible_group_ids(session, user)
    clause = obj_visible_clause(user, groups)
    if clause is not None and not session.scalar(select(select(Obj.id).where(Obj.id == obj_id, clause).exists())):
        raise not_found(f"object {obj_id!r}")
    return obj
