"""Candidates: objects that passed a group's filter at some time, from some alert.

A broker client posts each alert that passes its filters; posting the same (object, filter, time) again
costs a few reads and no write. The candidate list is per object (the latest pass first), limited to the
filters of groups the user reads.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, exists, false, func, or_, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..errors import ApiError, forbidden, not_found
from ..events import Event, record
from ..models import Candidate, Filter, Group, Listing, Obj, Source, User
from . import access
from ..gw import region as gwr
from .sources import (
    DEFAULT_PER_PAGE,
    active_in,
    add_extras,
    body_group_ids,
    check_obj_fields,
    check_obj_id,
    check_paging,
    ensure_obj,
    obj_dict,
    localization_region,
    resolve_read_groups,
)
from ..validate import shown

SAVED_STATUSES = (
    "all",
    "savedToAnySelected",
    "notSavedToAnySelected",
    "savedToAnyAccessible",
    "notSavedToAnyAccessible",
)
BIGINT_MAX = 2**63 - 1


def parse_time(value: Any, field: str) -> datetime:
    """An ISO 8601 time as naive UTC (a time without an offset is taken as UTC)."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"`{field}` must be an ISO 8601 time string, got {shown(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ApiError(400, f"`{field}` must be an ISO 8601 time such as 2024-05-01T12:00:00Z, got {shown(value)}") from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError:  # an offset that pushes the time past year 1 or 9999
            raise ApiError(400, f"`{field}` is out of range once taken to UTC: {shown(value)}") from None
    return parsed


def _alert_id(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())):
        raise ApiError(400, f"`passing_alert_id` must be an integer, got {shown(value)}")
    value = int(value)
    if not 0 <= value <= BIGINT_MAX:
        raise ApiError(400, f"`passing_alert_id` must be between 0 and {BIGINT_MAX}, got {value}")
    return value


def post_candidate(session: Session, user: User, data: dict) -> dict:
    """POST /api/candidates: record that the object passed each of `filter_ids` at `passed_at`.

    The object is created when new. Each filter must exist (400) and belong to one of the user's groups
    (403; system admins excepted). Returns the candidate ids, one per filter, in the order given.
    """
    allowed = {"id", "filter_ids", "passed_at", "passing_alert_id", "ra", "dec", "redshift", "origin", "alias"}
    extra = sorted(set(data) - allowed)
    if extra:
        raise ApiError(400, f"unknown field(s) {extra}; accepted fields: {sorted(allowed)}")
    obj_id = check_obj_id(data.get("id"))
    fields = check_obj_fields(data)
    if data.get("filter_ids") is None:
        raise ApiError(400, "missing required field `filter_ids` (a list of filter ids)")
    filter_ids = body_group_ids(data["filter_ids"], "filter_ids")
    if not isinstance(filter_ids, list) or not filter_ids:
        raise ApiError(400, "`filter_ids` must be a non-empty list of integer filter ids")
    if data.get("passed_at") is None:
        raise ApiError(400, "missing required field `passed_at` (an ISO 8601 time)")
    passed_at = parse_time(data["passed_at"], "passed_at")
    alert_id = _alert_id(data.get("passing_alert_id"))

    filters = dict(session.execute(select(Filter.id, Filter.group_id).where(Filter.id.in_(filter_ids))).all())
    unknown = [f for f in filter_ids if f not in filters]
    if unknown:
        raise ApiError(400, f"unknown filter id(s): {unknown}")
    if not user.is_system_admin:
        mine = access.user_group_ids(session, user)
        outside = [f for f in filter_ids if filters[f] not in mine]
        if outside:
            raise forbidden(f"you are not a member of the group(s) of filter(s) {outside}")

    key = (Candidate.obj_id == obj_id, Candidate.passed_at == passed_at)
    existing = dict(
        session.execute(
            select(Candidate.filter_id, Candidate.id).where(*key, Candidate.filter_id.in_(filter_ids))
        ).all()
    )
    missing = [f for f in filter_ids if f not in existing]
    if missing:
        # An alert's position is one detection's: it creates the object but does not move an existing one.
        ensure_obj(session, user, obj_id, fields, update_existing=False)
        rows = [
            {"obj_id": obj_id, "filter_id": f, "passed_at": passed_at, "passing_alert_id": alert_id, "uploader_id": user.id}
            for f in missing
        ]
        # A concurrent post of the same alert may win the race: its rows are then read back below.
        new = session.execute(
            pg_insert(Candidate)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["obj_id", "filter_id", "passed_at"])
            .returning(Candidate.id, Candidate.filter_id)
        ).all()
        if new:
            record(session, Event(
                "candidate.passed", obj_ids=(obj_id,), ids=tuple(sorted(i for i, _ in new)),
                group_ids=tuple(sorted({filters[f] for _, f in new})), user_id=user.id,
            ))
        existing.update(
            session.execute(
                select(Candidate.filter_id, Candidate.id).where(*key, Candidate.filter_id.in_(missing))
            ).all()
        )
    session.commit()
    return {"ids": [existing[f] for f in filter_ids]}


def _rejected_clause(user: User, obj_col):
    return exists().where(
        Listing.user_id == user.id, Listing.obj_id == obj_col, Listing.list_name == "rejected_candidates"
    )


def _check_filter_ids(session: Session, filter_ids: list[int] | None) -> None:
    if not filter_ids:
        return
    known = set(session.scalars(select(Filter.id).where(Filter.id.in_(filter_ids))))
    unknown = [f for f in filter_ids if f not in known]
    if unknown:
        raise ApiError(400, f"unknown filter id(s): {unknown}")


def _describe(
    session: Session, user: User, obj_ids: list[str], pass_conds: list, readable: set[int] | None
) -> dict[str, dict]:
    """The candidate view of each object: its fields, latest pass, filters passed, saves."""
    if not obj_ids:
        return {}
    objs = {o.id: o for o in session.scalars(select(Obj).where(Obj.id.in_(obj_ids)))}
    out = {oid: obj_dict(objs[oid]) for oid in obj_ids}
    for oid in obj_ids:
        out[oid].update(passed_at=None, filter_ids=[], passing_alert_id=None, saved_groups=[], is_source=False)
    passes = session.execute(
        select(Candidate.obj_id, Candidate.filter_id, Candidate.passed_at, Candidate.passing_alert_id)
        .join(Filter, Filter.id == Candidate.filter_id)
        .where(Candidate.obj_id.in_(obj_ids), *pass_conds)
        .order_by(Candidate.obj_id, Candidate.passed_at.desc(), Candidate.id.desc())
    ).all()
    for obj_id, filter_id, passed_at, alert_id in passes:
        entry = out[obj_id]
        if entry["passed_at"] is None:
            entry["passed_at"], entry["passing_alert_id"] = passed_at, alert_id
        if filter_id not in entry["filter_ids"]:
            entry["filter_ids"].append(filter_id)
    for entry in out.values():
        entry["filter_ids"].sort()
    saves = select(Source.obj_id, Group.id, Group.name, Group.nickname).join(Group, Group.id == Source.group_id)
    saves = saves.where(Source.obj_id.in_(obj_ids), Source.active.is_(True))
    if readable is not None:
        saves = saves.where(Source.group_id.in_(sorted(readable)) if readable else false())
    for obj_id, gid, name, nickname in session.execute(saves.order_by(Group.id)):
        out[obj_id]["saved_groups"].append({"id": gid, "name": name, "nickname": nickname})
        out[obj_id]["is_source"] = True
    rejected = set(
        session.scalars(
            select(Listing.obj_id).where(
                Listing.user_id == user.id, Listing.obj_id.in_(obj_ids), Listing.list_name == "rejected_candidates"
            )
        )
    )
    for oid in obj_ids:
        out[oid]["rejected"] = oid in rejected
    return out


def list_candidates(
    session: Session,
    user: User,
    *,
    page_number: int = 1,
    num_per_page: int = DEFAULT_PER_PAGE,
    group_ids: list[int] | None = None,
    filter_ids: list[int] | None = None,
    saved_status: str = "all",
    include_rejected: bool = False,
    localization_dateobs: str | None = None,
    localization_name: str | None = None,
    localization_cumprob: float | None = None,
    sort_by: str | None = None,
) -> dict:
    """A page of candidate objects, the most recent pass first.

    Only passes through filters of `group_ids` (default: every group the user reads) and, when given,
    through `filter_ids` count. `saved_status` narrows to objects saved, or not, to any selected group or
    to any readable group. The user's rejected candidates are left out unless `include_rejected`.
    With `localization_dateobs` (and optionally `localization_name`, `localization_cumprob`, default 0.95),
    only objects in that credible region count, each with `localization_probdensity`; `sort_by=
    "localization_probdensity"` then lists the densest first.
    """
    check_paging(page_number, num_per_page)
    if saved_status not in SAVED_STATUSES:
        raise ApiError(400, f"`savedStatus` must be one of {list(SAVED_STATUSES)}, got {shown(saved_status)}")
    region = localization_region(session, localization_dateobs, localization_name, localization_cumprob)
    if sort_by not in (None, "passed_at", "localization_probdensity"):
        raise ApiError(400, f"`sortBy` must be passed_at or localization_probdensity, got {shown(sort_by)}")
    if sort_by == "localization_probdensity" and region is None:
        raise ApiError(400, "`sortBy=localization_probdensity` needs a localization: give `localizationDateobs`")
    readable = access.accessible_group_ids(session, user)
    selected = resolve_read_groups(session, user, group_ids)
    _check_filter_ids(session, filter_ids)

    def passing(cand, filt) -> list:
        """Conditions on a candidate row (`cand`, joined to its filter `filt`) that make it count."""
        conds = [filt.c.id == cand.c.filter_id]
        if selected is not None:
            conds.append(filt.c.group_id.in_(sorted(selected)) if selected else false())
        if filter_ids:
            conds.append(cand.c.filter_id.in_(filter_ids))
        return conds

    cand, filt = Candidate.__table__.alias("c"), Filter.__table__.alias("f")
    conds = passing(cand, filt)
    obj_col = cand.c.obj_id
    if saved_status == "savedToAnySelected":
        conds.append(active_in(selected, obj_col))
    elif saved_status == "notSavedToAnySelected":
        conds.append(~active_in(selected, obj_col))
    elif saved_status == "savedToAnyAccessible":
        conds.append(active_in(readable, obj_col))
    elif saved_status == "notSavedToAnyAccessible":
        conds.append(~active_in(readable, obj_col))
    if not include_rejected:
        conds.append(~_rejected_clause(user, obj_col))
    in_region = None
    params: dict = {}
    if region is not None:
        # The region's objects, found from its tiles (each tile one index range scan of objs.healpix) with the
        # tile's density and place in density order; the candidates are then joined to them.
        o = Obj.__table__
        tiles = gwr.region_tiles()
        inside = gwr.objs_within(tiles, o.c.healpix, o.c.id)
        in_region = (
            select(inside.c.id, tiles.c.probdensity, tiles.c.cumprob, tiles.c.lo)
            .select_from(tiles.join(inside, true()))
            .cte("in_region")
            .prefix_with("MATERIALIZED")
        )
        conds.append(obj_col == in_region.c.id)
        params = region.params()
        gwr.without_jit(session)
    froms = (cand, filt) if in_region is None else (cand, filt, in_region)

    total = session.scalar(select(func.count(obj_col.distinct())).select_from(*froms).where(*conds), params)
    # An object's latest counting pass is the one no later counting pass outdoes: walking passes in time
    # order (the passed_at index) fills the first pages without aggregating every pass.
    later, later_filt = Candidate.__table__.alias("later"), Filter.__table__.alias("lf")
    outdone = exists().where(
        later.c.obj_id == cand.c.obj_id,
        *passing(later, later_filt),
        or_(later.c.passed_at > cand.c.passed_at, and_(later.c.passed_at == cand.c.passed_at, later.c.id > cand.c.id)),
    )
    if sort_by == "localization_probdensity":
        order = [in_region.c.cumprob, in_region.c.lo, cand.c.obj_id]  # densest first (see gw.region)
    else:
        order = [cand.c.passed_at.desc(), cand.c.obj_id]
    extra = [] if in_region is None else [in_region.c.probdensity]
    page = session.execute(
        select(cand.c.obj_id, *extra)
        .select_from(*froms)
        .where(*conds, ~outdone)
        .order_by(*order)
        .limit(num_per_page)
        .offset((page_number - 1) * num_per_page),
        params,
    ).all()
    pass_conds = []
    if selected is not None:
        pass_conds.append(Filter.group_id.in_(sorted(selected)) if selected else false())
    if filter_ids:
        pass_conds.append(Candidate.filter_id.in_(filter_ids))
    obj_ids = [row.obj_id for row in page]
    described = _describe(session, user, obj_ids, pass_conds, readable)
    if region is not None:
        for row in page:
            described[row.obj_id]["localization_probdensity"] = row.probdensity
    return {
        "candidates": [described[oid] for oid in obj_ids],
        "totalMatches": total,
        "pageNumber": page_number,
        "numPerPage": num_per_page,
    }


def get_candidate(
    session: Session,
    user: User,
    obj_id: str,
    *,
    include_photometry: bool = False,
    include_comments: bool = False,
    include_classifications: bool = False,
) -> dict:
    """One candidate object; 404 unless it passed a filter of a group the user reads."""
    readable = access.accessible_group_ids(session, user)
    pass_conds = []
    if readable is not None:
        pass_conds.append(Filter.group_id.in_(sorted(readable)) if readable else false())
    seen = session.scalar(
        select(
            exists()
            .where(Candidate.obj_id == obj_id, Candidate.filter_id == Filter.id, *pass_conds)
        )
    )
    if not seen:
        raise not_found(f"candidate {shown(obj_id)}")
    out = _describe(session, user, [obj_id], pass_conds, readable)[obj_id]
    return add_extras(
        session,
        user,
        out,
        include_photometry=include_photometry,
        include_comments=include_comments,
        include_classifications=include_classifications,
    )

