"""Sources: objects saved to groups. Listing with cone search, saving, editing and unsaving.

A source is an Obj with at least one active Source row in a group the user can read. The list query is
built so that a cone search over millions of saved sources stays in the tens of milliseconds: the (dec, ra)
btree bounds the search box, an exact great-circle test trims it, and one SQL statement answers the page
(with its groups aggregated by PostgreSQL) and one the count.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Iterable

from sqlalchemy import (
    BigInteger, Float, Integer, String, and_, bindparam, cast, exists, false, func, literal, null, or_, select, text, true, update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from ..errors import ApiError, forbidden
from ..events import Event, record
from ..models import Group, Obj, Source, User
from . import access
from ..validate import check_string, shown

MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 100
SORT_COLUMNS = ("id", "ra", "dec", "saved_at", "created_at", "localization_probdensity")
# Newest first is what people want for times; positions and names read naturally ascending; the densest part
# of a localization first.
DEFAULT_ORDER = {
    "id": "asc", "ra": "asc", "dec": "asc", "saved_at": "desc", "created_at": "desc", "localization_probdensity": "desc"
}
MAX_ID_LENGTH = 256
OBJ_FIELDS = ("ra", "dec", "redshift", "origin", "alias")
# A redshift below -0.1 is no object's (the bluest, in the Local Group, are about -0.001); above 20 none is known.
REDSHIFT_MIN, REDSHIFT_MAX = -0.1, 20.0


# --------------------------------------------------------------------------------------------------
# Small parsers shared by the sources, candidates and listings modules


def parse_bool(raw: str) -> bool:
    """A query-string boolean ("true"/"false", "1"/"0", "yes"/"no"); ValueError otherwise."""
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "t", "y"):
        return True
    if value in ("false", "0", "no", "f", "n"):
        return False
    raise ValueError(raw)


def parse_id_csv(raw: str | None, field: str) -> list[int] | None:
    """A comma-separated list of integer ids from a query string (None when absent); 400 naming `field`."""
    if raw is None or raw.strip() == "":
        return None
    out: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if not part.isdigit():
            raise ApiError(400, f"`{field}` must be comma-separated integer ids, got {shown(raw)}")
        out.append(int(part))
    return list(dict.fromkeys(out))


def check_paging(page_number: int, num_per_page: int) -> tuple[int, int]:
    """Validate `pageNumber` (from 1) and `numPerPage` (1..500)."""
    if page_number < 1:
        raise ApiError(400, f"`pageNumber` must be 1 or more, got {page_number}")
    if not 1 <= num_per_page <= MAX_PER_PAGE:
        raise ApiError(400, f"`numPerPage` must be between 1 and {MAX_PER_PAGE}, got {num_per_page}")
    return page_number, num_per_page


def check_obj_id(value: Any, field: str = "id") -> str:
    """An object id: a non-empty string without '/' (it appears in URLs) or surrounding blanks."""
    if value is None:
        raise ApiError(400, f"missing required field `{field}`")
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"`{field}` must be a non-empty string, got {shown(value)}")
    if value != value.strip() or "/" in value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise ApiError(
            400, f"`{field}` {shown(value)} is not a valid object id (printable, no '/', no surrounding blanks, "
            f"at most {MAX_ID_LENGTH} characters)"
        )
    return value


def _number(data: dict, field: str) -> float | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError(400, f"`{field}` must be a number, got {shown(value)}")
    return float(value)


def check_ra(value: float, field: str = "ra") -> float:
    if not 0 <= value < 360:
        raise ApiError(400, f"`{field}` must be in [0, 360) degrees, got {value}")
    return value


def check_dec(value: float, field: str = "dec") -> float:
    if not -90 <= value <= 90:
        raise ApiError(400, f"`{field}` must be in [-90, 90] degrees, got {value}")
    return value


def check_obj_fields(data: dict, *, allowed: Iterable[str] = OBJ_FIELDS) -> dict:
    """The object fields present in `data`, checked: ra, dec, redshift (numbers), origin (string), alias
    (a string or a list of strings, stored as a list)."""
    out: dict[str, Any] = {}
    for field in allowed:
        if field not in data:
            continue
        value = data[field]
        if field in ("ra", "dec"):
            if value is None:
                raise ApiError(400, f"`{field}` must be a number, not null")
            number = _number(data, field)
            out[field] = check_ra(number) if field == "ra" else check_dec(number)
        elif field == "redshift":
            z = _number(data, field)
            if z is not None and not REDSHIFT_MIN <= z <= REDSHIFT_MAX:
                raise ApiError(
                    400, f"`redshift` must be between {REDSHIFT_MIN} and {REDSHIFT_MAX} (blueshifts of nearby "
                    f"objects are small), got {z}"
                )
            out[field] = z
        elif field == "origin":
            if value is not None and not isinstance(value, str):
                raise ApiError(400, f"`origin` must be a string, got {shown(value)}")
            out[field] = None if value is None else check_string(value, "origin")
        elif field == "alias":
            if isinstance(value, str):
                value = [value]
            if value is not None and (
                not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value)
            ):
                raise ApiError(400, f"`alias` must be a string or a list of non-empty strings, got {shown(value)}")
            out[field] = (
                list(dict.fromkeys(check_string(v.strip(), f"alias[{i}]") for i, v in enumerate(value)))
                if value is not None else None
            )
    return out


def body_group_ids(value: Any, field: str) -> list[int] | str | None:
    """Ids from a JSON body: a list of integers (or digit strings), "all", or absent/null."""
    if value is None or value == "all":
        return value
    if not isinstance(value, list):
        raise ApiError(400, f"`{field}` must be a list of integer ids, got {shown(value)}")
    out = []
    for v in value:
        if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, str) and v.strip().isdigit())):
            raise ApiError(400, f"`{field}` must be a list of integer ids, got {shown(value)}")
        out.append(int(v))
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------------------------------
# Cone search


def cone_params(ra: float, dec: float, radius: float) -> tuple[str, dict]:
    """The bounding box and exact-test constants of a cone: (ra_mode, bind parameters).

    The box bounds dec to the cap's band and ra to asin(sin r / cos dec) either side of the centre
    ("between"), in two pieces when that range crosses ra = 0/360 ("wrap"), or not at all when the cap
    holds a pole ("none").
    """
    pad = 1e-9  # the box must never cut a point the exact test keeps
    dec_lo, dec_hi = dec - radius - pad, dec + radius + pad
    params = {
        "dec_lo": max(dec_lo, -90.0),
        "dec_hi": min(dec_hi, 90.0),
        "cone_ra": float(ra),
        "cone_dec": float(dec),
        "cone_cos_dec": math.cos(math.radians(dec)),
        "cone_limit": math.sin(math.radians(radius) / 2) ** 2,
    }
    mode = "none"
    if dec_lo > -90 and dec_hi < 90:
        ratio = math.sin(math.radians(radius)) / math.cos(math.radians(dec))
        if ratio < 1:
            half = math.degrees(math.asin(ratio)) + pad
            lo, hi = ra - half, ra + half
            if lo < 0:
                mode, params["ra_lo"], params["ra_hi"] = "wrap", lo + 360, hi
            elif hi >= 360:
                mode, params["ra_lo"], params["ra_hi"] = "wrap", lo, hi - 360
            else:
                mode, params["ra_lo"], params["ra_hi"] = "between", lo, hi
    return mode, params


def cone_condition(ra_mode: str):
    """The SQL condition of a cone on objs, with bind parameters named as in `cone_params`.

    The (dec, ra) box lets PostgreSQL scan the btree only over the cap's declination band and check ra
    inside the index. The exact test is the haversine inequality
    sin²(Δdec/2) + cos dec cos dec0 sin²(Δra/2) <= sin²(r/2), which needs no arcsin (so no rounding
    just above 1) and is right across ra = 0/360 and at the poles.
    """
    o = Obj.__table__.c

    def p(name: str):
        return bindparam(name, type_=Float)

    conds = [o.dec >= p("dec_lo"), o.dec <= p("dec_hi")]
    if ra_mode == "between":
        conds.append(o.ra.between(p("ra_lo"), p("ra_hi")))
    elif ra_mode == "wrap":
        conds.append(or_(o.ra >= p("ra_lo"), o.ra <= p("ra_hi")))
    to_half_rad = math.pi / 360  # degrees to radians, halved
    hav = func.power(func.sin((o.dec - p("cone_dec")) * to_half_rad), 2) + func.cos(func.radians(o.dec)) * p(
        "cone_cos_dec"
    ) * func.power(func.sin((o.ra - p("cone_ra")) * to_half_rad), 2)
    conds.append(hav <= p("cone_limit"))
    return and_(*conds)


def check_cone(ra: float | None, dec: float | None, radius: float | None) -> tuple[float, float, float] | None:
    """Validate the cone arguments: all three or none."""
    given = [n for n, v in (("ra", ra), ("dec", dec), ("radius", radius)) if v is not None]
    if not given:
        return None
    if len(given) != 3:
        missing = [n for n in ("ra", "dec", "radius") if n not in given]
        raise ApiError(400, f"a cone search needs `ra`, `dec` and `radius` together; missing {missing}")
    for name, value in (("ra", ra), ("dec", dec), ("radius", radius)):
        if not math.isfinite(value):
            raise ApiError(400, f"`{name}` must be a finite number, got {value}")
    check_ra(ra)
    check_dec(dec)
    if not 0 < radius <= 180:
        raise ApiError(400, f"`radius` must be greater than 0 and at most 180 degrees, got {radius}")
    return ra, dec, radius


# --------------------------------------------------------------------------------------------------
# Visibility helpers


def _in_groups(col, groups: set[int] | BindParameter | None) -> list:
    """[] for every group (None), else the condition `col IN groups` (false for no group at all)."""
    if groups is None:
        return []
    if isinstance(groups, BindParameter):  # the ids come with the statement's parameters (an expanding parameter)
        return [col.in_(groups)]
    return [col.in_(sorted(groups)) if groups else false()]


def active_in(groups: set[int] | None, obj_col=None):
    """EXISTS an active Source row of the object in `groups` (any group when None)."""
    src = Source.__table__
    obj_col = Obj.__table__.c.id if obj_col is None else obj_col
    return exists().where(src.c.obj_id == obj_col, src.c.active.is_(True), *_in_groups(src.c.group_id, groups))


def resolve_read_groups(session: Session, user: User, group_ids: list[int] | None) -> set[int] | None:
    """Groups whose data a read may use: the requested ones (each must exist and be readable by the user),
    or every readable group (None for system admins, meaning all)."""
    readable = access.accessible_group_ids(session, user)
    if group_ids is None:
        return readable
    wanted = set(group_ids)
    existing = set(session.scalars(select(Group.id).where(Group.id.in_(sorted(wanted)))))
    if wanted - existing:
        raise ApiError(400, f"unknown group id(s): {sorted(wanted - existing)}")
    if readable is not None and wanted - readable:
        raise forbidden(f"you are not a member of group(s) {sorted(wanted - readable)}")
    return wanted


def _groups_json_subquery(obj_col, groups: set[int] | None):
    """A correlated scalar subquery: the object's active saves in `groups` as a JSON array."""
    s, g, u = Source.__table__, Group.__table__, User.__table__
    cond = [s.c.obj_id == obj_col, s.c.active.is_(True), *_in_groups(s.c.group_id, groups)]
    entry = func.json_build_object(
        "id", g.c.id, "name", g.c.name, "nickname", g.c.nickname, "saved_at", s.c.saved_at, "saved_by", u.c.username
    )
    agg = func.json_agg(aggregate_order_by(entry, s.c.saved_at, g.c.id))
    return (
        select(agg)
        .select_from(s.join(g, g.c.id == s.c.group_id).outerjoin(u, u.c.id == s.c.saved_by_id))
        .where(*cond)
        .scalar_subquery()
    )


def _summarize_groups(groups: list[dict] | None) -> tuple[list[dict], str | None, str | None]:
    """(groups, saved_at, saved_by): the latest save among the object's visible saves."""
    groups = groups or []
    latest = max(groups, key=lambda g: (g["saved_at"] or "", g["id"]), default=None)
    if latest is None:
        return [], None, None
    return groups, latest["saved_at"], latest["saved_by"]


def obj_dict(obj: Any) -> dict:
    """The object's own fields (an Obj row or a Core row with the same names)."""
    return {
        "id": obj.id,
        "ra": obj.ra,
        "dec": obj.dec,
        "redshift": obj.redshift,
        "origin": obj.origin,
        "alias": list(obj.alias) if obj.alias else [],
        "created_at": obj.created_at,
    }


def add_extras(
    session: Session,
    user: User,
    out: dict,
    *,
    include_photometry: bool = False,
    include_comments: bool = False,
    include_classifications: bool = False,
) -> dict:
    """Photometry, classifications and comments from their own modules (imported late: they are optional
    parts of the portal as far as this module is concerned)."""
    if include_photometry:
        from .photometry import photometry_for_obj

        out["photometry"] = photometry_for_obj(session, user, out["id"])
    if include_classifications:
        from .annotations import classifications_for_obj

        out["classifications"] = classifications_for_obj(session, user, out["id"])
    if include_comments:
        from .annotations import comments_for_obj

        out["comments"] = comments_for_obj(session, user, out["id"])
    return out


# --------------------------------------------------------------------------------------------------
# Reading


# Built once (every GET of a source runs one): building and hashing this statement cost more than running it.
_SAVED_GROUPS_ALL = select(_groups_json_subquery(bindparam("obj_id", type_=String), None))
_SAVED_GROUPS_IN = select(_groups_json_subquery(bindparam("obj_id", type_=String),
                                                bindparam("group_ids", expanding=True)))


def saved_groups(session: Session, user: User, obj_id: str) -> list[dict]:
    """The readable groups the object is saved to, each with saved_at and saved_by, oldest save first."""
    readable = access.accessible_group_ids(session, user)
    if readable is None:
        return session.scalar(_SAVED_GROUPS_ALL, {"obj_id": obj_id}) or []
    return session.scalar(_SAVED_GROUPS_IN, {"obj_id": obj_id, "group_ids": sorted(readable)}) or []


def serialize_source(
    session: Session,
    user: User,
    obj: Obj,
    include_photometry: bool = False,
    include_comments: bool = False,
    include_classifications: bool = False,
) -> dict:
    """The source as the API answers it: the object's fields, its readable groups, when and by whom it was
    last saved, and on request its photometry, classifications and comments."""
    out = obj_dict(obj)
    groups, saved_at, saved_by = _summarize_groups(saved_groups(session, user, obj.id))
    out.update(saved_at=saved_at, saved_by=saved_by, groups=groups)
    return add_extras(
        session,
        user,
        out,
        include_photometry=include_photometry,
        include_comments=include_comments,
        include_classifications=include_classifications,
    )


def get_source(
    session: Session,
    user: User,
    obj_id: str,
    include_photometry: bool = False,
    include_comments: bool = False,
    include_classifications: bool = False,
) -> dict:
    """One source the user may see; 404 when it does not exist or is not visible to the user."""
    obj = access.get_visible_obj(session, user, obj_id)
    return serialize_source(session, user, obj, include_photometry, include_comments, include_classifications)


def list_sources(
    session: Session,
    user: User,
    *,
    ra: float | None = None,
    dec: float | None = None,
    radius: float | None = None,
    source_id: str | None = None,
    group_ids: list[int] | None = None,
    page_number: int = 1,
    num_per_page: int = DEFAULT_PER_PAGE,
    sort_by: str | None = None,
    sort_order: str | None = None,
    include_photometry: bool = False,
    localization_dateobs: str | None = None,
    localization_name: str | None = None,
    localization_cumprob: float | None = None,
) -> dict:
    """A page of the sources the user can see, with optional cone, id-substring, group and credible-region
    filters.

    With `localization_dateobs` (an event's time; the localization `localization_name`, default its newest),
    only objects in the `localization_cumprob` credible region (default 0.95; a tile is in it iff its cumprob
    < p, see astroportal.gw.region) are listed, each with `localization_probdensity` (per steradian), and
    `sort_by="localization_probdensity"` orders them densest first.
    """
    cone = check_cone(ra, dec, radius)
    check_paging(page_number, num_per_page)
    region = localization_region(session, localization_dateobs, localization_name, localization_cumprob)
    sort_by = sort_by or "saved_at"
    if sort_by not in SORT_COLUMNS:
        raise ApiError(400, f"`sortBy` must be one of {list(SORT_COLUMNS)}, got {shown(sort_by)}")
    if sort_by == "localization_probdensity" and region is None:
        raise ApiError(400, "`sortBy=localization_probdensity` needs a localization: give `localizationDateobs`")
    sort_order = (sort_order or DEFAULT_ORDER[sort_by]).lower()
    if sort_order not in ("asc", "desc"):
        raise ApiError(400, f"`sortOrder` must be asc or desc, got {shown(sort_order)}")

    readable = access.accessible_group_ids(session, user)
    selected = resolve_read_groups(session, user, group_ids)
    params: dict[str, Any] = {"lim": num_per_page, "off": (page_number - 1) * num_per_page}
    ra_mode = None
    if cone is not None:
        ra_mode, cone_values = cone_params(*cone)
        params.update(cone_values)
    if source_id:
        escaped = source_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["id_pattern"] = f"%{escaped}%"
    if readable is not None:
        params["readable"] = sorted(readable)
    if selected is not None:
        params["selected"] = sorted(selected)

    shape = (ra_mode, bool(source_id), readable is not None, group_ids is not None, sort_by, sort_order)
    if region is None:
        count_stmt, page_stmt = _list_statements(*shape)
    else:
        from ..gw.region import without_jit

        from ..gw.region import saves_drive_count

        params.update(region.params())
        # A user limited to some groups (or asking for some): the count reads the saves' (group_id, healpix)
        # index directly, whatever the region's size. An all-seeing user's count does the same over every group
        # (every save belongs to one) while the groups are few; the other strategies remain for many groups and
        # for cone or id filters (conditions on the objects themselves).
        every_group = False
        if readable is None and group_ids is None and cone is None and not source_id:
            all_ids = session.scalars(select(Group.id).order_by(Group.id).limit(EVERY_GROUP_COUNT_MAX + 1)).all()
            if len(all_ids) <= EVERY_GROUP_COUNT_MAX:
                every_group = True
                params["selected"] = list(all_ids)
        join_saves = not _count_by_saves(*shape, every_group=every_group) and saves_drive_count(session, region)
        count_stmt, page_stmt = _region_list_statements(*shape, join_saves, every_group)
        without_jit(session)
    if region is not None and join_saves:
        # A large region: the region's objects are matched to the saves by one hash over the (index-only) scan
        # of the active saves, rather than one probe each; only the plan changes, not the answer.
        # Memory enough to hash hundreds of thousands of ids in one batch (4 MB, the default, spills to disk).
        session.execute(text("SET LOCAL enable_nestloop = off"))
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        total = session.execute(count_stmt, params).scalar()
        session.execute(text("RESET enable_nestloop"))
        session.execute(text("RESET work_mem"))
    else:
        total = session.execute(count_stmt, params).scalar()
    rows = session.execute(page_stmt, params).all()

    sources = []
    for row in rows:
        out = obj_dict(row)
        groups, saved_at, saved_by = _summarize_groups(row.groups)
        out.update(saved_at=saved_at, saved_by=saved_by, groups=groups)
        if region is not None:
            out["localization_probdensity"] = row.localization_probdensity
        if include_photometry:
            add_extras(session, user, out, include_photometry=True)
        sources.append(out)
    return {"sources": sources, "totalMatches": total, "pageNumber": page_number, "numPerPage": num_per_page}


@functools.lru_cache(maxsize=256)
def _list_statements(
    ra_mode: str | None, by_id: bool, limited: bool, group_filter: bool, sort_by: str, sort_order: str
) -> tuple:
    """The count and page statements of one shape of source list, with bind parameters for the values
    (built once per shape: building SQLAlchemy expressions costs more than running these queries).

    `limited`: the user reads only some groups (`readable`); `group_filter`: the caller chose groups
    (`selected`); without it `selected` equals `readable`.
    """
    o, src = Obj.__table__, Source.__table__

    def in_groups(col, name: str, on: bool) -> list:
        return [col.in_(bindparam(name, expanding=True))] if on else []

    def saved_in(name: str, on: bool):
        return exists().where(src.c.obj_id == o.c.id, src.c.active.is_(True), *in_groups(src.c.group_id, name, on))

    obj_conds = []
    if ra_mode is not None:
        obj_conds.append(cone_condition(ra_mode))
    if by_id:
        obj_conds.append(o.c.id.ilike(bindparam("id_pattern", type_=String), escape="\\"))

    if obj_conds:
        count_stmt = select(func.count()).select_from(o).where(saved_in("selected", limited or group_filter), *obj_conds)
    else:
        # Without a condition on the object, counting the saves themselves avoids joining every object.
        count_stmt = select(func.count(src.c.obj_id.distinct())).where(
            src.c.active.is_(True), *in_groups(src.c.group_id, "selected", limited or group_filter)
        )

    cols = [o.c.id, o.c.ra, o.c.dec, o.c.redshift, o.c.origin, o.c.alias, o.c.created_at]
    if sort_by == "saved_at":
        # An object's latest readable save is the one that no later save of it outdoes; walking saves in
        # time order (ix_sources_saved_at) then fills the first pages without aggregating every save.
        s, later = src.alias("s"), src.alias("later")
        outdone = exists().where(
            later.c.obj_id == s.c.obj_id,
            later.c.active.is_(True),
            *in_groups(later.c.group_id, "readable", limited),
            or_(later.c.saved_at > s.c.saved_at, and_(later.c.saved_at == s.c.saved_at, later.c.id > s.c.id)),
        )
        sort_col = s.c.saved_at.label("sort_key")
        inner = (
            select(*cols, sort_col)
            .select_from(s.join(o, o.c.id == s.c.obj_id))
            .where(s.c.active.is_(True), *in_groups(s.c.group_id, "readable", limited), ~outdone, *obj_conds)
        )
        if group_filter:
            inner = inner.where(saved_in("selected", True))
    else:
        sort_col = o.c[sort_by].label("sort_key")
        inner = select(*cols, sort_col).where(saved_in("selected", limited or group_filter), *obj_conds)
    desc = sort_order == "desc"
    page = (
        inner.order_by(sort_col.desc() if desc else sort_col.asc(), o.c.id)
        .limit(bindparam("lim", type_=Integer))
        .offset(bindparam("off", type_=Integer))
        .subquery("page")
    )
    # The groups are gathered for the page's rows only, after LIMIT, inside the same statement.
    s, g, u = src.alias("sg"), Group.__table__, User.__table__
    entry = func.json_build_object(
        "id", g.c.id, "name", g.c.name, "nickname", g.c.nickname, "saved_at", s.c.saved_at, "saved_by", u.c.username
    )
    groups = (
        select(func.json_agg(aggregate_order_by(entry, s.c.saved_at, g.c.id)))
        .select_from(s.join(g, g.c.id == s.c.group_id).outerjoin(u, u.c.id == s.c.saved_by_id))
        .where(s.c.obj_id == page.c.id, s.c.active.is_(True), *in_groups(s.c.group_id, "readable", limited))
        .scalar_subquery()
        .label("groups")
    )
    outer_key = page.c.sort_key.desc() if desc else page.c.sort_key.asc()
    page_stmt = select(page, groups).order_by(outer_key, page.c.id)
    return count_stmt, page_stmt


def localization_region(
    session: Session, dateobs: str | None, name: str | None, cumprob: float | None
):
    """The credible region asked for by `localizationDateobs`/`localizationName`/`localizationCumprob`, or
    None when no localization is asked for (400 when only the name or p is given)."""
    if dateobs is None:
        if name is not None or cumprob is not None:
            raise ApiError(
                400, "`localizationName` and `localizationCumprob` need `localizationDateobs` (the event's time)"
            )
        return None
    from ..gw import region  # the GW part of the portal is used only when a localization is asked for

    return region.find_region(session, dateobs, name, region.DEFAULT_CUMPROB if cumprob is None else cumprob)


# An all-seeing user's region count goes over the saves' healpix copy group by group up to this many groups
# (one index range scan per group and merged range); beyond, it probes or hashes as before migration 0011.
EVERY_GROUP_COUNT_MAX = 50


def _count_by_saves(
    ra_mode: str | None, by_id: bool, limited: bool, group_filter: bool, sort_by: str = "", sort_order: str = "",
    *, every_group: bool = False,
) -> bool:
    """Whether a region list of this shape is counted over the saves' healpix copy (migration 0011): when the
    saves are restricted to some groups (or `every_group` lists all of them, bound as `selected`) and no
    condition bears on the objects' own columns."""
    return (limited or group_filter or every_group) and ra_mode is None and not by_id


@functools.lru_cache(maxsize=256)
def _region_list_statements(
    ra_mode: str | None, by_id: bool, limited: bool, group_filter: bool, sort_by: str, sort_order: str,
    join_saves: bool = False, every_group: bool = False,
) -> tuple:
    """The count and page statements of a source list restricted to a credible region (bind parameters as in
    `_list_statements`, plus `loc_id` and `cumprob`).

    The region drives every statement (see astroportal.gw.region): its merged ranges for the count and for
    orders other than the density, its tiles in density order for that one (the first page then walks only the
    densest tiles). Whether an object is a source the user sees is a LATERAL probe of its saves with LIMIT 1:
    one index lookup per object in the region. With `join_saves` (regions holding many objects compared with the
    saves, see astroportal.gw.region.saves_drive_count) the count is instead a semi-join the caller runs with
    nested loops off, i.e. one hash of the region's objects probed by an index-only scan of the active saves.
    Both give way, for lists restricted to some groups without cone or id filters (_count_by_saves), to a count
    over the saves' copy of healpix (migration 0011): one range scan of their (group_id, healpix) index per
    (group, merged range of the region).
    """
    from ..gw import region as gwr

    o, src = Obj.__table__, Source.__table__

    def in_groups(col, name: str, on: bool) -> list:
        return [col.in_(bindparam(name, expanding=True))] if on else []

    obj_conds = []
    if ra_mode is not None:
        obj_conds.append(cone_condition(ra_mode))
    if by_id:
        obj_conds.append(o.c.id.ilike(bindparam("id_pattern", type_=String), escape="\\"))
    cols = [o.c.id, o.c.ra, o.c.dec, o.c.redshift, o.c.origin, o.c.alias, o.c.created_at, o.c.healpix]

    def visible(objs):
        return (
            select(literal(1).label("seen"))
            .where(src.c.obj_id == objs.c.id, src.c.active,
                   *in_groups(src.c.group_id, "selected", limited or group_filter))
            .limit(1)
            .lateral("visible")
        )

    def matched(*columns, ordered: bool = True):
        """The region's objects (with `columns`) in id order, gathered once: probing their saves in id order
        walks the saves' obj_id index forwards instead of jumping around it (about twice as fast for regions of
        thousands of square degrees)."""
        # The tiles themselves (read from their (localization_id, cumprob) index), not their merged runs: a few
        # thousand short index range scans cost less than merging the runs with window functions first.
        ranges = gwr.region_tiles()
        inside = gwr.objs_within(ranges, o.c.healpix, *columns, conds=obj_conds)
        stmt = select(*[inside.c[c.name] for c in columns]).select_from(ranges.join(inside, true()))
        if ordered:
            stmt = stmt.order_by(inside.c.id)
        return stmt.cte("region_matched").prefix_with("MATERIALIZED")

    if _count_by_saves(ra_mode, by_id, limited, group_filter, every_group=every_group):
        # Distinct objects among the active saves of the user's groups whose copied healpix lies in a merged
        # range of the region: one index range scan of ix_sources_active_group_id_healpix per (group, range),
        # index-only, no visit to the objects (an object saved to two groups counts once).
        ranges = gwr.merged_ranges()
        saves = (
            select(src.c.obj_id)
            .where(src.c.active, src.c.group_id.in_(bindparam("selected", expanding=True)),
                   src.c.healpix >= ranges.c.lo, src.c.healpix < ranges.c.hi)
            .offset(0)
            .lateral("region_saves")
        )
        count_stmt = select(func.count(func.distinct(saves.c.obj_id))).select_from(ranges.join(saves, true()))
    elif join_saves:
        in_region = matched(o.c.id, ordered=False)
        saved = (
            select(literal(1))
            .where(src.c.obj_id == in_region.c.id, src.c.active,
                   *in_groups(src.c.group_id, "selected", limited or group_filter))
            .exists()
        )
        count_stmt = select(func.count()).select_from(in_region).where(saved)
    else:
        in_region = matched(o.c.id)
        count_stmt = select(func.count()).select_from(in_region.join(visible(in_region), true()))

    desc = sort_order == "desc"
    if sort_by == "localization_probdensity":
        tiles = gwr.region_tiles()
        inside = gwr.objs_within(tiles, o.c.healpix, *cols, conds=obj_conds)
        # Densest first is cumprob ascending (ties between tiles broken by lo, as cumprob itself is).
        keys = [tiles.c.cumprob, tiles.c.lo, inside.c.id]
        inner = select(
            *[inside.c[c.name] for c in cols],
            tiles.c.probdensity.label("sort_key"),
            tiles.c.cumprob.label("k1"),
            tiles.c.lo.label("k2"),
        ).select_from(tiles.join(inside, true()).join(visible(inside), true()))
        inner = inner.order_by(*[k.asc() if desc else k.desc() for k in keys])
    else:
        inside = matched(*cols)
        if sort_by == "saved_at":
            later = src.alias("latest")
            sort_col = (
                select(func.max(later.c.saved_at))
                .where(later.c.obj_id == inside.c.id, later.c.active.is_(True),
                       *in_groups(later.c.group_id, "readable", limited))
                .scalar_subquery()
            )
        else:
            sort_col = inside.c[sort_by]
        key = sort_col.label("sort_key")
        inner = select(
            *[inside.c[c.name] for c in cols], key,
            cast(null(), Float).label("k1"), cast(null(), BigInteger).label("k2"),
        ).select_from(inside.join(visible(inside), true()))
        inner = inner.order_by(key.desc() if desc else key.asc(), inside.c.id)
    page = (
        inner.limit(bindparam("lim", type_=Integer)).offset(bindparam("off", type_=Integer)).subquery("page")
    )
    s, g, u = src.alias("sg"), Group.__table__, User.__table__
    entry = func.json_build_object(
        "id", g.c.id, "name", g.c.name, "nickname", g.c.nickname, "saved_at", s.c.saved_at, "saved_by", u.c.username
    )
    groups = (
        select(func.json_agg(aggregate_order_by(entry, s.c.saved_at, g.c.id)))
        .select_from(s.join(g, g.c.id == s.c.group_id).outerjoin(u, u.c.id == s.c.saved_by_id))
        .where(s.c.obj_id == page.c.id, s.c.active.is_(True), *in_groups(s.c.group_id, "readable", limited))
        .scalar_subquery()
        .label("groups")
    )
    if sort_by == "localization_probdensity":
        density = page.c.sort_key
        order = [page.c.k1, page.c.k2, page.c.id]
        order = [k.asc() if desc else k.desc() for k in order]
    else:
        density = gwr.probdensity_at(page.c.healpix)  # looked up for the page's rows only
        order = [page.c.sort_key.desc() if desc else page.c.sort_key.asc(), page.c.id]
    page_stmt = select(page, groups, density.label("localization_probdensity")).order_by(*order)
    return count_stmt, page_stmt


# --------------------------------------------------------------------------------------------------
# Writing


def can_manage_sources(user: User) -> bool:
    names = user.acl_names
    return "Manage sources" in names or "System admin" in names


def ensure_obj(
    session: Session, user: User, obj_id: str, fields: dict, *, update_existing: bool = True
) -> tuple[Obj, bool]:
    """The object `obj_id`, created from `fields` when new (ra and dec then required). With
    `update_existing`, an existing object's position and other filled-in fields change only for users who
    may manage sources, and its empty fields are filled for anyone. Returns (obj, created)."""
    obj = session.get(Obj, obj_id)
    created = False
    if obj is not None and not access.obj_is_visible(session, user, obj_id):
        # Another group's object: answered as if absent, and its fields are not the writer's to change.
        access.check_write_to_hidden_obj(obj, fields)
        return obj, False
    if obj is None:
        for field in ("ra", "dec"):
            if fields.get(field) is None:
                raise access.missing_position(field, obj_id)
        values = {k: fields.get(k) for k in OBJ_FIELDS}
        # Concurrent posts of the same new object (a broker's batches) must not fail on the primary key.
        inserted = session.execute(
            pg_insert(Obj).values(id=obj_id, **values).on_conflict_do_nothing(index_elements=["id"]).returning(Obj.id)
        ).scalar()
        created = inserted is not None
        obj = session.get(Obj, obj_id, populate_existing=True)
        if created:
            return obj, True
        if not access.obj_is_visible(session, user, obj_id):  # another group created it a moment ago
            access.check_write_to_hidden_obj(obj, fields)
            return obj, False
    if not update_existing or not fields:
        return obj, False
    # Scope OBJECT of access_rules.py: an object shared with groups the writer does not manage keeps its fields.
    may_edit = access.may_edit_obj(session, user, obj_id)
    # A repeated save does not move an object, unless it comes from a manager of sources (an alert's position
    # is one detection's).
    manager = may_edit and can_manage_sources(user)
    for field, value in fields.items():
        current = getattr(obj, field)
        if field in ("ra", "dec"):
            if manager and value is not None and value != current:
                setattr(obj, field, value)
        elif may_edit and value is not None and (current is None or current == [] or manager) and value != current:
            setattr(obj, field, value)
    return obj, created


def save_to_groups(session: Session, user: User, obj_id: str, group_ids: list[int]) -> list[int]:
    """Save the object to `group_ids` (already checked). A save that is already active stays as it is; an
    unsaved one becomes active again. Returns the groups it is now saved to among `group_ids`."""
    if not group_ids:
        return []
    active = set(
        session.scalars(
            select(Source.group_id).where(
                Source.obj_id == obj_id, Source.group_id.in_(group_ids), Source.active.is_(True)
            )
        )
    )
    missing = [g for g in group_ids if g not in active]
    if missing:
        stmt = pg_insert(Source).values(
            [{"obj_id": obj_id, "group_id": g, "saved_by_id": user.id} for g in missing]
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["obj_id", "group_id"],
            set_={
                "active": True,
                "saved_by_id": user.id,
                "saved_at": func.now(),
                "unsaved_by_id": None,
                "unsaved_at": None,
            },
            where=Source.__table__.c.active.is_(False),
        )
        session.execute(stmt)
        record(session, Event("source.saved", obj_ids=(obj_id,), group_ids=tuple(sorted(missing)), user_id=user.id))
    return sorted(group_ids)


def unsave_from_groups(session: Session, user: User, obj_id: str, group_ids: Iterable[int]) -> list[int]:
    """Mark the object's active saves in `group_ids` inactive, keeping who unsaved them and when."""
    group_ids = list(group_ids)
    if not group_ids:
        return []
    result = session.execute(
        update(Source)
        .where(Source.obj_id == obj_id, Source.group_id.in_(group_ids), Source.active.is_(True))
        .values(active=False, unsaved_by_id=user.id, unsaved_at=func.now())
        .returning(Source.group_id)
    )
    return sorted(result.scalars())


def post_source(session: Session, user: User, data: dict) -> dict:
    """POST /api/sources: create the object if needed and save it to groups (default: all the user's)."""
    allowed = {"id", "group_ids", *OBJ_FIELDS}
    extra = sorted(set(data) - allowed)
    if extra:
        raise ApiError(400, f"unknown field(s) {extra}; accepted fields: {sorted(allowed)}")
    obj_id = check_obj_id(data.get("id"))
    fields = check_obj_fields(data)
    groups = access.target_group_ids(
        session, user, body_group_ids(data.get("group_ids"), "group_ids"), default="all", need_save=True
    )
    ensure_obj(session, user, obj_id, fields)
    saved = save_to_groups(session, user, obj_id, groups)
    session.commit()
    return {"id": obj_id, "saved_to_groups": saved}


def patch_source(session: Session, user: User, obj_id: str, data: dict) -> dict:
    """PATCH /api/sources/ID: change ra, dec, redshift, alias or origin ("Manage sources" or a saver)."""
    obj = access.get_visible_obj(session, user, obj_id)
    extra = sorted(set(data) - set(OBJ_FIELDS))
    if extra:
        raise ApiError(400, f"unknown field(s) {extra}; accepted fields: {list(OBJ_FIELDS)}")
    if not data:
        raise ApiError(400, f"nothing to change: give one or more of {list(OBJ_FIELDS)}")
    fields = check_obj_fields(data)
    # Scope OBJECT of access_rules.py.
    if not access.may_edit_obj(session, user, obj_id):
        raise forbidden(
            "changing an object's fields needs the permission Manage sources and being an admin of every group "
            "it is in, or to have saved it and be a member of every group it is in; ask a system admin otherwise"
        )
    for field, value in fields.items():
        setattr(obj, field, value)
    session.commit()
    return {"id": obj_id}


def delete_source(session: Session, user: User, obj_id: str) -> dict:
    """DELETE /api/sources/ID: unsave the object from every group of the user (history is kept)."""
    access.get_visible_obj(session, user, obj_id)
    unsaved = unsave_from_groups(session, user, obj_id, access.user_group_ids(session, user))
    session.commit()
    return {"id": obj_id, "unsaved_from_groups": unsaved}


def source_groups(session: Session, user: User, data: dict) -> dict:
    """POST /api/source_groups: save the object to `inviteGroupIds` and unsave it from `unsaveGroupIds`."""
    allowed = {"objId", "inviteGroupIds", "unsaveGroupIds"}
    extra = sorted(set(data) - allowed)
    if extra:
        raise ApiError(400, f"unknown field(s) {extra}; accepted fields: {sorted(allowed)}")
    obj_id = check_obj_id(data.get("objId"), "objId")
    invite = body_group_ids(data.get("inviteGroupIds"), "inviteGroupIds") or []
    unsave = body_group_ids(data.get("unsaveGroupIds"), "unsaveGroupIds") or []
    if invite == "all" or unsave == "all":
        raise ApiError(400, "`inviteGroupIds` and `unsaveGroupIds` must be lists of integer group ids")
    if not invite and not unsave:
        raise ApiError(400, "give `inviteGroupIds` or `unsaveGroupIds` (lists of group ids)")
    overlap = set(invite) & set(unsave)
    if overlap:
        raise ApiError(400, f"group(s) {sorted(overlap)} are in both `inviteGroupIds` and `unsaveGroupIds`")
    access.get_visible_obj(session, user, obj_id)
    invite_ids = access.target_group_ids(session, user, invite, need_save=True) if invite else []
    unsave_ids = access.target_group_ids(session, user, unsave) if unsave else []
    saved = save_to_groups(session, user, obj_id, invite_ids)
    unsaved = unsave_from_groups(session, user, obj_id, unsave_ids)
    session.commit()
    return {"id": obj_id, "saved_to_groups": saved, "unsaved_from_groups": unsaved}
