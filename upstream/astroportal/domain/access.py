"""Who may see what: data is visible through the groups it is shared with; system admins see everything."""

from __future__ import annotations

import math
from typing import Iterable

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from ..access_rules import MANAGE_SOURCES, holds
from ..errors import ApiError, forbidden, not_found
from ..models import Candidate, Filter, Group, GroupUser, Obj, Source, User
from ..permissions import SITEWIDE_GROUP
from ..validate import shown


def user_group_ids(session: Session, user: User) -> set[int]:
    """The groups `user` is a member of (preloaded by authentication when it can be: no query then)."""
    cached = user.__dict__.get("_group_ids_cache")
    if cached is not None:
        return set(cached)
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


def obj_visible_clause(user: User | None, group_ids):
    """A SQL condition on Obj: saved as a source, or passed a filter, in one of `group_ids` (a set of ids, or an
    expanding bind parameter)."""
    if group_ids is None:
        return None
    saved = exists().where(Source.obj_id == Obj.id, Source.active.is_(True), Source.group_id.in_(group_ids))
    passed = exists().where(
        Candidate.obj_id == Obj.id, Candidate.filter_id == Filter.id, Filter.group_id.in_(group_ids)
    )
    return saved | passed


# Built once: nearly every request about an object runs one of them, and building and hashing the statement
# cost more CPU than running it. For a reader limited to some groups, the object and whether it is visible to
# them come in one round trip.
_OBJ = select(Obj).where(Obj.id == bindparam("obj_id"))
_OBJ_WITH_VISIBILITY = select(Obj, obj_visible_clause(None, bindparam("group_ids", expanding=True))).where(
    Obj.id == bindparam("obj_id")
)


def get_visible_obj(session: Session, user: User, obj_id: str) -> Obj:
    """The object, if the user may see it; 404 otherwise (an invisible object is not admitted to exist)."""
    # PostgreSQL cannot hold a NUL character, so no object can have one in its id.
    if "\x00" in obj_id:
        raise not_found(f"object {shown(obj_id)}")
    groups = accessible_group_ids(session, user)
    if groups is None:
        obj = session.scalars(_OBJ, {"obj_id": obj_id}).first()
    else:
        found = session.execute(_OBJ_WITH_VISIBILITY, {"obj_id": obj_id, "group_ids": sorted(groups)}).first()
        obj = found[0] if found is not None and found[1] else None
    if obj is None:
        raise not_found(f"object {shown(obj_id)}")
    return obj


def obj_is_visible(session: Session, user: User, obj_id: str) -> bool:
    """Whether `user` may read the (existing) object `obj_id`."""
    clause = obj_visible_clause(user, accessible_group_ids(session, user))
    if clause is None:
        return True
    return bool(session.scalar(select(select(Obj.id).where(Obj.id == obj_id, clause).exists())))


# Two positions this close name the same sky object: a writer who gives one has detected it independently.
# Alert positions of one object scatter by tenths of an arcsecond; a guess would have to hit a disk of this
# radius somewhere on the sky (about 10^11 such disks), so the test reveals no position.
SAME_OBJECT_ARCSEC = 2.0


def missing_position(field: str, obj_id: str) -> ApiError:
    """The refusal of a write that would create `obj_id` without a position. A write naming an object the
    writer cannot read gets the very same answer, so that it tells nothing about that object."""
    from ..validate import shown

    return ApiError(400, f"missing required field `{field}` (needed to create object {shown(obj_id)})")


def separation_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance between two positions in degrees, in arcseconds (haversine: exact at small angles)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h)))) * 3600


def check_write_to_hidden_obj(obj: Obj, fields: dict) -> None:
    """A write (a save, a candidate) naming an existing object that the writer cannot read.

    It is answered as if the object did not exist: without a position, the same 400 as for creating a new
    object without one. With a position that matches the stored one, the writer has detected the same object and
    the write goes on; the caller must then leave the object's fields as they are (they are not the writer's to
    change). With another position the id is taken by another object: 409, naming none of its fields.
    """
    for field in ("ra", "dec"):
        if fields.get(field) is None:
            raise missing_position(field, obj.id)
    if separation_arcsec(fields["ra"], fields["dec"], obj.ra, obj.dec) > SAME_OBJECT_ARCSEC:
        raise ApiError(
            409,
            f"the object id {obj.id!r} is taken by another object, more than {SAME_OBJECT_ARCSEC:g} arcsec from the "
            "given position; check the position, or choose another id",
        )


# -- the scopes of access_rules.py ------------------------------------------------------------------------------
def admin_group_ids(session: Session, user: User) -> set[int]:
    """The groups `user` administers (membership with admin set)."""
    return set(
        session.scalars(select(GroupUser.group_id).where(GroupUser.user_id == user.id, GroupUser.admin.is_(True)))
    )


def obj_group_ids(session: Session, obj_id: str) -> set[int]:
    """Every group an object is in: active saves, and the groups of the filters it passed."""
    saved = select(Source.group_id).where(Source.obj_id == obj_id, Source.active.is_(True))
    passed = select(Filter.group_id).join(Candidate, Candidate.filter_id == Filter.id).where(Candidate.obj_id == obj_id)
    return set(session.scalars(saved.union(passed)))


def administers_all(session: Session, user: User, group_ids: Iterable[int]) -> bool:
    """Whether `user` is a system admin or an admin of every group in `group_ids` (and of at least one)."""
    if user.is_system_admin:
        return True
    wanted = set(group_ids)
    return bool(wanted) and wanted <= admin_group_ids(session, user)


def may_edit_obj(session: Session, user: User, obj_id: str) -> bool:
    """Scope OBJECT of access_rules.py: may `user` change the object's own fields (position, redshift, ...)?

    A system admin may; so may a holder of "Manage sources" who administers every group the object is in, and a
    user who saved it and is a member of every group it is in. Nobody else: another group's object is not theirs.
    """
    if user.is_system_admin:
        return True
    groups = obj_group_ids(session, obj_id)
    if not groups:
        return False
    if MANAGE_SOURCES in user.acl_names and groups <= admin_group_ids(session, user):
        return True
    saver = session.scalar(
        select(exists().where(Source.obj_id == obj_id, Source.saved_by_id == user.id, Source.active.is_(True)))
    )
    return bool(saver) and groups <= user_group_ids(session, user)


def editable_obj_ids(session: Session, user: User, obj_ids: Iterable[str]) -> set[str]:
    """`may_edit_obj` for many objects at once (four queries whatever their number): those `user` may change."""
    ids = sorted(set(obj_ids))
    if user.is_system_admin or not ids:
        return set(ids)
    saved = select(Source.obj_id, Source.group_id).where(Source.obj_id.in_(ids), Source.active.is_(True))
    passed = (select(Candidate.obj_id, Filter.group_id).join(Filter, Candidate.filter_id == Filter.id)
              .where(Candidate.obj_id.in_(ids)))
    groups: dict[str, set[int]] = {}
    for obj_id, group_id in session.execute(saved.union(passed)):
        groups.setdefault(obj_id, set()).add(group_id)
    if not groups:
        return set()
    administered = admin_group_ids(session, user) if MANAGE_SOURCES in user.acl_names else set()
    savers = set(session.scalars(select(Source.obj_id).where(
        Source.obj_id.in_(list(groups)), Source.saved_by_id == user.id, Source.active.is_(True))))
    mine = user_group_ids(session, user) if savers else set()
    return {o for o, g in groups.items() if (administered and g <= administered) or (o in savers and g <= mine)}


def may_manage_record(session: Session, user: User, author_id: int | None, group_ids: Iterable[int]) -> bool:
    """Scope OWNER of access_rules.py: its author, a system admin, or a holder of "Manage sources" who
    administers every group the record (comment, classification, photometry point) is shared with."""
    if author_id is not None and author_id == user.id:
        return True
    if user.is_system_admin:
        return True
    return holds(user.acl_names, MANAGE_SOURCES) and administers_all(session, user, group_ids)


def require_group_admin_of(session: Session, user: User, group_id: int, doing: str) -> None:
    """Scope GROUP of access_rules.py: 403 unless `user` administers the group (or is a system admin)."""
    if not administers_all(session, user, [group_id]):
        raise forbidden(f"only an admin of group {group_id} (or a system admin) may {doing}")
