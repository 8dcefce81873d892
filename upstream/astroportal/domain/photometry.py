"""Photometry: upload (mag or flux form, scalars or columns), upsert, read back as magnitudes or fluxes.

Points are stored as flux and flux error on the AB system at zero point PHOT_ZP (23.9, so microjansky);
an upper limit is a point whose flux is null and whose flux error is the limit divided by
PHOT_DETECTION_THRESHOLD (a limiting magnitude is a 5-sigma limit).

Writes are bulk by design: a batch is checked entirely in Python with set look-ups (one query for the
instruments and objects it names, one for the target groups), then written by one statement that inserts
(or upserts) the points and links them to their groups; no ORM object is built per point. A batch holds at
most MAX_BATCH_POINTS points. The checking queries lock the rows the points refer to (objects, instruments, the
uploader, the groups) FOR KEY SHARE, so that the statement may run without the per-row foreign-key triggers where
the database allows it (replica_writes). Reads are one query whose plan does not depend on the planner's statistics,
and come in pages of at most MAX_PAGE_POINTS points.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Iterable

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..array_params import array_literal
from ..bandpasses import KNOWN_FILTERS, check_filters
from ..errors import ApiError, forbidden, not_found
from ..events import Event, record
from ..models import (
    PHOT_DETECTION_THRESHOLD,
    PHOT_ZP,
    Group,
    GroupUser,
    Instrument,
    Obj,
    Photometry,
    User,
    photometry_groups,
)
from . import replica_writes
from .access import accessible_group_ids, get_visible_obj, may_manage_record, obj_visible_clause, target_group_ids
from ..validate import NAME_MAX, check_string, shown, string_problem

PHOT = Photometry.__table__
LN10_OVER_2_5 = math.log(10) / 2.5  # d(flux)/flux per magnitude
SUPPORTED_MAGSYS = ("ab",)

COMMON_FIELDS = ("obj_id", "mjd", "instrument_id", "filter", "magsys", "origin", "alert_id", "ra", "dec")
MAG_FIELDS = ("mag", "magerr", "limiting_mag")
FLUX_FIELDS = ("flux", "fluxerr", "zp")
# Fields that apply to the whole batch: never columns.
BATCH_FIELDS = ("group_ids", "stream_ids")
ALLOWED_FIELDS = frozenset(COMMON_FIELDS + MAG_FIELDS + FLUX_FIELDS + BATCH_FIELDS)
KEY_COLUMNS = ("obj_id", "instrument_id", "filter", "mjd", "origin")
FORMATS = ("mag", "flux")
MAX_SHOWN = 5  # offending values quoted in one error message
#: The most points one upload holds: a batch is checked and written in one transaction, which must stay short.
MAX_BATCH_POINTS = 20_000

# Physical ranges (documented in the OpenAPI document's PhotometryUpload). Outside them a value is a unit or
# typing mistake (a JD for an MJD, a flux for a magnitude), and 10**(-0.4 * mag) overflows for extreme ones.
MJD_RANGE = (10_000.0, 100_000.0)  # 1886 to 2132
MAG_RANGE = (-30.0, 40.0)  # the Sun is -26.7; the deepest images reach about 32
MAGERR_MAX = 10.0
ZP_RANGE = (-60.0, 60.0)  # from cgs flux densities (-48.6) to the faintest units in use
ID_MAX = {"instrument_id": 2**31 - 1, "alert_id": 2**63 - 1}  # PostgreSQL's integer and bigint


# --------------------------------------------------------------------------------------------------------------
# Parsing and checking a body (no database)
# --------------------------------------------------------------------------------------------------------------
class _Columns:
    """A body's per-point fields as equal-length columns; scalars are checked once and broadcast."""

    def __init__(self, data: dict) -> None:
        lengths = {k: len(v) for k, v in data.items() if k not in BATCH_FIELDS and isinstance(v, list)}
        empty = sorted(k for k, n in lengths.items() if n == 0)
        if empty:
            raise ApiError(400, f"empty list for {_names(empty)}: send at least one point")
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"`{k}` has {n}" for k, n in sorted(lengths.items()))
            raise ApiError(400, f"the columns of a batch must have equal lengths: {shown}")
        self.data = data
        self.lists = set(lengths)
        self.n = next(iter(lengths.values())) if lengths else 1
        if self.n > MAX_BATCH_POINTS:
            raise ApiError(
                400, f"a batch holds at most {MAX_BATCH_POINTS} points, this one has {self.n}: send it in parts"
            )

    def label(self, field: str, i: int) -> str:
        return f"`{field}`[{i}]" if field in self.lists else f"`{field}`"

    def values(self, field: str) -> list:
        """The distinct values to check: the whole column, or the one broadcast value."""
        return self.data[field] if field in self.lists else [self.data.get(field)]

    def column(self, checked: list) -> list:
        return checked if len(checked) == self.n else checked * self.n

    def require(self, field: str, why: str = "") -> None:
        if field not in self.data:
            raise ApiError(400, f"missing required field `{field}`{why}")


def _names(fields: Iterable[str]) -> str:
    return ", ".join(f"`{f}`" for f in fields)


def _bad(label: str, expected: str, value: Any) -> ApiError:
    return ApiError(400, f"{label} must be {expected}, got {shown(value)}")


def _finite(values: list[float | None], cols: _Columns, field: str) -> list[float | None]:
    """`values` computed from the input, refused when one overflowed to infinity."""
    for i, v in enumerate(values):
        if v is not None and not math.isfinite(v):
            raise ApiError(400, f"{cols.label(field, i)} gives a flux too large to store (check its units and `zp`)")
    return values


_FLOATS = {float}


def _plain_numbers(values: list, nullable: bool, positive: bool, low: float | None,
                   high: float | None) -> list[float | None] | None:
    """`values` as floats when every one passes (checked at C speed: a batch holds some 100,000 numbers), else
    None, and the caller's loop finds the first bad one and says why."""
    kinds = set(map(type, values))
    present = values
    if type(None) in kinds:
        if not nullable:
            return None
        kinds.discard(type(None))
        present = [v for v in values if v is not None]
        if not present:
            return values
    # Only floats: an int (rare in JSON from code) or anything else takes the careful loop.
    if kinds != _FLOATS or any(map(math.isnan, present)) or any(map(math.isinf, present)):
        return None
    lowest, highest = min(present), max(present)
    if (positive and lowest <= 0) or (low is not None and lowest < low) or (high is not None and highest > high):
        return None
    return values


def _numbers(cols: _Columns, field: str, *, nullable: bool, positive: bool = False,
             low: float | None = None, high: float | None = None) -> list[float | None]:
    plain = _plain_numbers(cols.values(field), nullable, positive, low, high)
    if plain is not None:
        return cols.column(plain)
    out: list[float | None] = []
    isfinite = math.isfinite
    for i, v in enumerate(cols.values(field)):
        t = type(v)
        if (t is float or t is int) and isfinite(v):
            if (positive and v <= 0) or (low is not None and v < low) or (high is not None and v > high):
                bounds = ["greater than 0"] if positive else []
                if low is not None and high is not None:
                    bounds.append(f"between {low} and {high}")
                elif high is not None or low is not None:
                    bounds.append(f"at most {high}" if high is not None else f"at least {low}")
                expected = " and ".join(bounds)
                raise _bad(cols.label(field, i), expected, v)
            out.append(float(v))
        elif v is None and nullable:
            out.append(None)
        else:
            raise _bad(cols.label(field, i), "a finite number" + (" or null" if nullable else ""), v)
    return cols.column(out)


def _ids(cols: _Columns, field: str, *, nullable: bool) -> list[int | None]:
    """Integer ids; strings of digits are taken too (SkyPortal clients send both)."""
    high = ID_MAX[field]
    values = cols.values(field)
    kinds = set(map(type, values))
    if kinds <= ({int, type(None)} if nullable else {int}):
        present = [v for v in values if v is not None] if type(None) in kinds else values
        if not present or (min(present) >= 0 and max(present) <= high):
            return cols.column(values)
    out: list[int | None] = []
    for i, v in enumerate(cols.values(field)):
        if type(v) is int and 0 <= v <= high:
            out.append(v)
        elif v is None and nullable:
            out.append(None)
        elif isinstance(v, str) and v.strip().isdigit() and int(v) <= high:
            out.append(int(v))
        else:
            raise _bad(cols.label(field, i), f"an integer id (0 to {high})", v)
    return cols.column(out)


def _strings(cols: _Columns, field: str, *, nullable: bool, default: str | None = None) -> list[str | None]:
    values = cols.values(field)
    if set(map(type, values)) == {str}:
        # A column repeats a few values (an object's points, two or three filters): each is checked once.
        distinct = set(values)
        if (nullable or "" not in distinct) and all(
                len(v) <= NAME_MAX and string_problem(v) is None for v in distinct):
            return cols.column(values)
    out: list[str | None] = []
    for i, v in enumerate(cols.values(field)):
        if type(v) is str and (v or nullable):
            out.append(check_string(v, cols.label(field, i).strip("`")))
        elif v is None and nullable:
            out.append(default)
        else:
            raise _bad(cols.label(field, i), "a non-empty string", v)
    return cols.column(out)


#: The photometry table's columns that a batch fills, in the order of the write statements' arrays.
POINT_COLUMNS = ("obj_id", "instrument_id", "filter", "mjd", "flux", "fluxerr", "origin", "alert_id", "ra", "dec")


def parse_points(data: dict) -> dict[str, list]:
    """Check a photometry body and return its points as columns of the photometry table (POINT_COLUMNS).

    Everything that can be checked without the database is checked here; any problem raises ApiError 400
    naming the field (and the index, for columns).
    """
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    unknown = sorted(set(data) - ALLOWED_FIELDS)
    if unknown:
        raise ApiError(400, f"unknown field(s) {_names(unknown)}; accepted fields: {_names(sorted(ALLOWED_FIELDS))}")
    has_mag = [f for f in MAG_FIELDS if f in data]
    has_flux = [f for f in FLUX_FIELDS if f in data]
    if has_mag and has_flux:
        raise ApiError(
            400, f"give a point either as magnitudes (`mag`, `magerr`, `limiting_mag`) or as fluxes "
            f"(`flux`, `fluxerr`, `zp`), not both: got {_names(has_mag + has_flux)}"
        )
    if not has_mag and not has_flux:
        raise ApiError(
            400, "missing the measurement: give `mag` and `magerr` (with `limiting_mag` for non-detections), "
            "or `flux`, `fluxerr` and `zp`"
        )
    cols = _Columns(data)
    for field in ("obj_id", "mjd", "instrument_id", "filter", "magsys"):
        cols.require(field)

    points: dict[str, list] = {
        "obj_id": _strings(cols, "obj_id", nullable=False),
        "instrument_id": _ids(cols, "instrument_id", nullable=False),
        "filter": _strings(cols, "filter", nullable=False),
        "mjd": _numbers(cols, "mjd", nullable=False, low=MJD_RANGE[0], high=MJD_RANGE[1]),
    }
    if not KNOWN_FILTERS.issuperset(points["filter"]):
        check_filters(points["filter"], "filter")
    for i, m in enumerate(cols.values("magsys")):
        if type(m) is not str:
            raise _bad(cols.label("magsys", i), "a magnitude system name such as \"ab\"", m)
        if m.lower() not in SUPPORTED_MAGSYS:
            raise ApiError(
                400, f"{cols.label('magsys', i)}: the magnitude system {shown(m)} is not supported; only \"ab\" is, "
                "because the portal ships no bandpass zero points to convert other systems to AB"
            )
    points["flux"], points["fluxerr"] = _from_magnitudes(cols) if has_mag else _from_fluxes(cols)
    points["origin"] = _strings(cols, "origin", nullable=True, default="")
    points["alert_id"] = _ids(cols, "alert_id", nullable=True)
    points["ra"] = _numbers(cols, "ra", nullable=True, low=0.0, high=360.0)
    points["dec"] = _numbers(cols, "dec", nullable=True, low=-90.0, high=90.0)
    return points


def _from_magnitudes(cols: _Columns) -> tuple[list, list]:
    cols.require("mag", " (null for a non-detection)")
    mags = _numbers(cols, "mag", nullable=True, low=MAG_RANGE[0], high=MAG_RANGE[1])
    magerrs = _numbers(cols, "magerr", nullable=True, positive=True, high=MAGERR_MAX)
    limits = _numbers(cols, "limiting_mag", nullable=True, low=MAG_RANGE[0], high=MAG_RANGE[1])
    try:
        # A detection: its flux and error; a non-detection: no flux, the error of its limit (a missing magerr or
        # limiting_mag is a TypeError here, and the loop below names it).
        fluxes = [None if mag is None else 10.0 ** (-0.4 * (mag - PHOT_ZP)) for mag in mags]
        fluxerrs = [10.0 ** (-0.4 * (limit - PHOT_ZP)) / PHOT_DETECTION_THRESHOLD if flux is None
                    else err * flux * LN10_OVER_2_5 for flux, err, limit in zip(fluxes, magerrs, limits)]
        return fluxes, fluxerrs
    except TypeError:
        pass
    fluxes = []
    fluxerrs = []
    for i, mag in enumerate(mags):
        if mag is not None:
            if magerrs[i] is None:
                raise ApiError(400, f"{cols.label('magerr', i)} is required (a positive number) for a detection")
            flux = 10.0 ** (-0.4 * (mag - PHOT_ZP))
            fluxes.append(flux)
            fluxerrs.append(magerrs[i] * flux * LN10_OVER_2_5)
        else:
            if limits[i] is None:
                raise ApiError(
                    400, f"{cols.label('limiting_mag', i)} is required when {cols.label('mag', i)} is null "
                    "(a non-detection is its limiting magnitude)"
                )
            fluxes.append(None)
            fluxerrs.append(10.0 ** (-0.4 * (limits[i] - PHOT_ZP)) / PHOT_DETECTION_THRESHOLD)
    return fluxes, fluxerrs


def _from_fluxes(cols: _Columns) -> tuple[list, list]:
    for field in FLUX_FIELDS:
        cols.require(field, " (flux form: `flux`, `fluxerr`, `zp`)")
    raw = _numbers(cols, "flux", nullable=True)
    errs = _numbers(cols, "fluxerr", nullable=False, positive=True)
    zps = _numbers(cols, "zp", nullable=False, low=ZP_RANGE[0], high=ZP_RANGE[1])
    fluxes: list[float | None] = []
    fluxerrs: list[float] = []
    for f, e, zp in zip(raw, errs, zps):
        scale = 10.0 ** (-0.4 * (zp - PHOT_ZP))
        fluxes.append(None if f is None else f * scale)
        fluxerrs.append(e * scale)
    return _finite(fluxes, cols, "flux"), _finite(fluxerrs, cols, "fluxerr")


def _describe_key(key: tuple) -> str:
    obj_id, instrument_id, filt, mjd, origin = key
    return f"(obj_id {shown(obj_id)}, instrument_id {instrument_id}, filter {shown(filt)}, mjd {shown(mjd)}, origin {shown(origin)})"


def _keys(points: dict[str, list]) -> list[tuple]:
    return list(zip(*(points[k] for k in KEY_COLUMNS)))


# --------------------------------------------------------------------------------------------------------------
# Checks against the database
# --------------------------------------------------------------------------------------------------------------
def _check_references(session: Session, user: User, points: dict[str, list]) -> None:
    """Every object must exist and be visible to `user`; every instrument must exist and carry the filter.

    One query answers both: the instruments, each with the array of the named objects the user may see. It
    locks the rows it finds FOR KEY SHARE (the lock a foreign-key check takes) until the transaction ends, so
    none of them can be deleted before the points that refer to them are committed (see _write). Under READ
    COMMITTED a row deleted by a transaction that commits while this one waits for its lock is not found.
    """
    instrument_ids = set(points["instrument_id"])
    obj_ids = set(points["obj_id"])
    visible = select(Obj.id).where(Obj.id.in_(obj_ids))
    if not user.is_system_admin:
        mine = select(GroupUser.group_id).where(GroupUser.user_id == user.id)
        visible = visible.where(obj_visible_clause(user, mine))
    locked = visible.with_for_update(read=True, key_share=True, of=Obj).subquery()
    found = session.execute(
        select(Instrument.id, Instrument.name, Instrument.filters, select(func.array_agg(locked.c.id)).scalar_subquery())
        .where(Instrument.id.in_(instrument_ids))
        .with_for_update(read=True, key_share=True, of=Instrument)
    ).all()
    instruments = {iid: (name, filters) for iid, name, filters, _ in found}
    missing = sorted(instrument_ids - instruments.keys())
    if missing:
        raise ApiError(400, f"`instrument_id`: no instrument with id {', '.join(map(str, missing[:MAX_SHOWN]))}")
    for iid, filt in sorted(set(zip(points["instrument_id"], points["filter"]))):
        name, allowed = instruments[iid]
        if allowed and filt not in allowed:
            raise ApiError(
                400, f"`filter`: {shown(filt)} is not one of the filters of instrument {iid} ({name}): {sorted(allowed)}"
            )
    unseen = sorted(obj_ids - set(found[0][3] or ()))
    if unseen:
        # An object the user cannot see is reported exactly like one that does not exist.
        raise ApiError(400, f"`obj_id`: no object {', '.join(repr(o) for o in unseen[:MAX_SHOWN])}")


def _stream_ids_ok(data: dict) -> None:
    value = data.get("stream_ids")
    if value is not None and not (isinstance(value, list) and all(type(v) is int for v in value)):
        raise ApiError(400, f"`stream_ids` must be a list of integer stream ids, got {shown(value)}")


# --------------------------------------------------------------------------------------------------------------
# Writing: one statement per batch, points and group links together
# --------------------------------------------------------------------------------------------------------------
# The batch travels as one array per column (a handful of parameters however many points), is unnested into
# rows, inserted, and the resulting ids are linked to the groups by a second data-modifying CTE.
_INPUT_CTE = """
input AS (
    SELECT * FROM unnest(
        CAST(:obj_id AS text[]), CAST(:instrument_id AS integer[]), CAST(:filter AS text[]),
        CAST(:mjd AS double precision[]), CAST(:flux AS double precision[]), CAST(:fluxerr AS double precision[]),
        CAST(:origin AS text[]), CAST(:alert_id AS bigint[]), CAST(:ra AS double precision[]),
        CAST(:dec AS double precision[])
    ) WITH ORDINALITY AS t(obj_id, instrument_id, filter, mjd, flux, fluxerr, origin, alert_id, ra, dec, n)
)"""
_INSERT = """
    INSERT INTO photometry (obj_id, instrument_id, filter, mjd, flux, fluxerr, origin, alert_id, ra, dec,
                            owner_id, upload_id)
    SELECT obj_id, instrument_id, filter, mjd, flux, fluxerr, origin, alert_id, ra, dec,
           CAST(:owner_id AS integer), CAST(:upload_id AS varchar)
    FROM input"""
_KEYS = "id, obj_id, instrument_id, filter, mjd, origin"

_POST_SQL = text(
    f"""WITH {_INPUT_CTE},
ins AS ({_INSERT}
    ON CONFLICT ON CONSTRAINT uq_photometry_point DO NOTHING
    RETURNING {_KEYS}
),
links AS (
    INSERT INTO photometry_groups (photometry_id, group_id)
    SELECT ins.id, g FROM ins CROSS JOIN unnest(CAST(:group_ids AS integer[])) AS g
)
SELECT {_KEYS} FROM ins"""
)

# PUT looks up the points that exist already by probing the unique index once per input row of an object that has
# photometry (a LATERAL subquery with a LIMIT is always a parameterised index scan: a join left to the planner read
# the whole photometry table, once per batch, as soon as it held a few thousand points). Only the points not found
# are inserted, with a plain INSERT (no speculative insertion: a point inserted meanwhile by another upload fails the
# statement, which answers 409 "send it again"), and their group links need no conflict check; the points found are
# updated only where a value changed, and linked to the groups they lack.
_PUT_SQL = text(
    f"""WITH {_INPUT_CTE},
-- The objects of the batch that have photometry at all: the points of the others are all new, and need no look-up
-- (a backfill or a new transient's first alert: one probe per object rather than one per point).
known AS MATERIALIZED (
    SELECT o.obj_id FROM (SELECT DISTINCT obj_id FROM input) AS o
    WHERE EXISTS (SELECT 1 FROM photometry AS q WHERE q.obj_id = o.obj_id)
),
old AS MATERIALIZED (
    SELECT p.id, i.n, i.obj_id, i.instrument_id, i.filter, i.mjd, i.origin, i.flux, i.fluxerr, i.alert_id, i.ra,
           i.dec,
           p.flux AS old_flux, p.fluxerr AS old_fluxerr, p.alert_id AS old_alert_id, p.ra AS old_ra,
           p.dec AS old_dec
    FROM input AS i CROSS JOIN LATERAL (
        SELECT q.id, q.flux, q.fluxerr, q.alert_id, q.ra, q.dec FROM photometry AS q
        WHERE q.obj_id = i.obj_id AND q.instrument_id = i.instrument_id AND q.filter = i.filter AND q.mjd = i.mjd
          AND q.origin = i.origin
        LIMIT 1  -- (one at most: the key is unique) keeps the planner from flattening this into a join
    ) AS p
    WHERE i.obj_id IN (SELECT obj_id FROM known)
),
upd AS (
    UPDATE photometry AS p SET
        flux = o.flux,
        fluxerr = o.fluxerr,
        alert_id = COALESCE(o.alert_id, p.alert_id),
        ra = COALESCE(o.ra, p.ra),
        dec = COALESCE(o.dec, p.dec)
    FROM old AS o
    -- an unchanged point is left alone (no new row version)
    WHERE p.id = o.id AND (
           o.old_flux IS DISTINCT FROM o.flux
        OR o.old_fluxerr IS DISTINCT FROM o.fluxerr
        OR (o.alert_id IS NOT NULL AND o.old_alert_id IS DISTINCT FROM o.alert_id)
        OR (o.ra IS NOT NULL AND o.old_ra IS DISTINCT FROM o.ra)
        OR (o.dec IS NOT NULL AND o.old_dec IS DISTINCT FROM o.dec))
),
-- The new points draw their ids here, so that each keeps its input position (n) without a join on the key.
fresh AS MATERIALIZED (
    SELECT nextval('photometry_id_seq') AS id, input.* FROM input
    WHERE NOT EXISTS (SELECT 1 FROM old AS o WHERE o.n = input.n)
),
ins AS (
    INSERT INTO photometry (id, obj_id, instrument_id, filter, mjd, flux, fluxerr, origin, alert_id, ra, dec,
                            owner_id, upload_id)
    SELECT id, obj_id, instrument_id, filter, mjd, flux, fluxerr, origin, alert_id, ra, dec,
           CAST(:owner_id AS integer), CAST(:upload_id AS varchar)
    FROM fresh
),
new_links AS (
    INSERT INTO photometry_groups (photometry_id, group_id)
    SELECT fresh.id, g FROM fresh CROSS JOIN unnest(CAST(:group_ids AS integer[])) AS g
),
-- The links existing points lack are written only for the points still there once locked FOR KEY SHARE (one
-- primary-key look-up each: a subquery with a locking clause is never flattened into a join). A point deleted by
-- another transaction meanwhile is `lost`: it is left out of the answer, which refuses the batch (409).
missing_links AS (
    SELECT old.id, g FROM old CROSS JOIN unnest(CAST(:group_ids AS integer[])) AS g
    WHERE NOT EXISTS (SELECT 1 FROM photometry_groups AS l WHERE l.photometry_id = old.id AND l.group_id = g)
),
kept AS (
    SELECT k.id FROM (SELECT DISTINCT id FROM missing_links) AS w
    CROSS JOIN LATERAL (SELECT q.id FROM photometry AS q WHERE q.id = w.id FOR KEY SHARE) AS k
),
lost AS (SELECT id FROM missing_links EXCEPT SELECT id FROM kept),
old_links AS (
    INSERT INTO photometry_groups (photometry_id, group_id)
    SELECT m.id, m.g FROM missing_links AS m WHERE m.id IN (SELECT id FROM kept)
    ON CONFLICT DO NOTHING
)
-- One array of ids in input order (NULL for a lost point): one value to read back, not a row per point.
SELECT array_agg(x.id ORDER BY x.n) FROM (
    SELECT id, n FROM fresh
    UNION ALL
    SELECT CASE WHEN old.id IN (SELECT id FROM lost) THEN NULL ELSE old.id END, n FROM old
) AS x"""
)


def _prepare(session: Session, user: User, data: dict) -> tuple[dict[str, list], list[int]]:
    points = parse_points(data)
    _stream_ids_ok(data)
    _check_references(session, user, points)
    group_ids = target_group_ids(session, user, data.get("group_ids"))
    _lock_owner_and_groups(session, user, group_ids)
    return points, group_ids


_LOCK_OWNER_AND_GROUPS = text(
    """SELECT (SELECT count(*) FROM (SELECT 1 FROM users WHERE id = :user_id FOR KEY SHARE) AS u),
              (SELECT array_agg(id) FROM (SELECT id FROM groups WHERE id = ANY(CAST(:group_ids AS integer[]))
                                          FOR KEY SHARE) AS g)"""
)


def _lock_owner_and_groups(session: Session, user: User, group_ids: list[int]) -> None:
    """Lock the uploader's users row and the target groups FOR KEY SHARE until the transaction ends (what the
    foreign-key checks of the points' owner and group links would lock); 409 when one went away meanwhile."""
    owner, groups = session.execute(
        _LOCK_OWNER_AND_GROUPS, {"user_id": user.id, "group_ids": array_literal(group_ids)}
    ).one()
    gone = sorted(set(group_ids) - set(groups or ()))
    if not owner or gone:
        session.rollback()
        what = f"the group(s) {gone}" if gone else f"your account (user {user.id})"
        raise ApiError(409, f"{what} was deleted while the batch was checked; nothing was written")


#: What the batch statements write, and the foreign keys whose parent rows _check_references and
#: _lock_owner_and_groups lock (photometry_groups.photometry_id: rows of the same statement, or locked by it).
#: Another trigger, rule or foreign key on these tables keeps the triggers on (replica_writes.check_tables).
PHOTOMETRY_WRITES = replica_writes.WriteShape(
    "photometry batch",
    ("photometry", "photometry_groups"),
    frozenset({
        replica_writes.ForeignKey("photometry", "obj_id", "objs", "id"),
        replica_writes.ForeignKey("photometry", "instrument_id", "instruments", "id"),
        replica_writes.ForeignKey("photometry", "owner_id", "users", "id"),
        replica_writes.ForeignKey("photometry_groups", "group_id", "groups", "id"),
        replica_writes.ForeignKey("photometry_groups", "photometry_id", "photometry", "id"),
    }),
)


def _write(session: Session, sql, points: dict[str, list], user: User, upload_id: str, group_ids: list[int]) -> list:
    """Run a batch statement; its result rows."""
    params = {k: array_literal(points[k]) for k in POINT_COLUMNS}
    params.update(owner_id=user.id, upload_id=upload_id, group_ids=array_literal(group_ids))
    # Every parent row is locked already (_prepare): the per-row foreign-key checks would find each one again.
    fast = replica_writes.allowed(session, PHOTOMETRY_WRITES)
    try:
        with replica_writes.triggers_off(session, fast):
            return session.execute(sql, params).all()
    except IntegrityError:
        # Only a concurrent change can do this (the same point inserted by another upload meanwhile: the parents
        # are locked since the checks): the batch may be sent again.
        session.rollback()
        raise ApiError(409, "the data changed while the batch was written; nothing was written, send it again") from None


def add_photometry(session: Session, user: User, data: dict) -> dict:
    """POST: insert new points; a point that already exists (or appears twice) refuses the whole batch."""
    points, group_ids = _prepare(session, user, data)
    keys = _keys(points)
    if len(set(keys)) < len(keys):
        seen: dict[tuple, int] = {}
        for i, key in enumerate(keys):
            if key in seen:
                raise ApiError(400, f"points {seen[key]} and {i} of the batch are the same point {_describe_key(key)}")
            seen[key] = i
    upload_id = str(uuid.uuid4())
    rows = _write(session, _POST_SQL, points, user, upload_id, group_ids)
    ids = {(obj_id, iid, filt, mjd, origin): pid for pid, obj_id, iid, filt, mjd, origin in rows}
    if len(ids) < len(keys):
        session.rollback()
        existing = [k for k in keys if k not in ids]
        shown = "; ".join(_describe_key(k) for k in existing[:MAX_SHOWN])
        more = f" and {len(existing) - MAX_SHOWN} more" if len(existing) > MAX_SHOWN else ""
        raise ApiError(
            400, f"{len(existing)} point(s) already exist: {shown}{more}; nothing was written "
            "(use PUT /api/photometry to upload idempotently)"
        )
    result = [ids[k] for k in keys]
    _record_added(session, user, points, result, group_ids)
    session.commit()
    return {"ids": result, "upload_id": upload_id}


def _record_added(session: Session, user: User, points: dict[str, list], ids: list[int], group_ids: list[int]) -> None:
    obj_ids = tuple(dict.fromkeys(points["obj_id"]))
    record(session, Event("photometry.added", obj_ids=obj_ids, ids=tuple(ids), group_ids=tuple(group_ids),
                          user_id=user.id))


VALUE_COLUMNS = tuple(c for c in POINT_COLUMNS if c not in KEY_COLUMNS)


def _refuse_conflicting_duplicates(points: dict[str, list], keys: list[tuple]) -> None:
    """400 when one point (same key) comes twice in a batch with different values."""
    first: dict[tuple, int] = {}
    for i, key in enumerate(keys):
        j = first.setdefault(key, i)
        if j == i:
            continue
        differ = [c for c in VALUE_COLUMNS if points[c][i] != points[c][j]]
        if differ:
            raise ApiError(
                400, f"points {j} and {i} of the batch are the same point {_describe_key(key)} with different "
                f"values ({_names(differ)}); send each point once; nothing was written"
            )


def upsert_photometry(session: Session, user: User, data: dict) -> dict:
    """PUT: insert the new points, update the changed values of existing ones, add the groups; ids in input order.

    A point given twice in one batch with the same values is written once and both positions get its id; with
    different values the batch is refused (which one is right cannot be told).
    """
    points, group_ids = _prepare(session, user, data)
    keys = _keys(points)
    unique_points = points
    position = None  # where each input point's id is in the statement's answer, when not at its own index
    if len(set(keys)) < len(keys):
        _refuse_conflicting_duplicates(points, keys)
        # One statement may not touch a row twice: keep each point's last occurrence.
        last = {key: i for i, key in enumerate(keys)}
        kept = sorted(last.values())
        unique_points = {k: [col[i] for i in kept] for k, col in points.items()}
        at = {keys[i]: j for j, i in enumerate(kept)}
        position = [at[k] for k in keys]
    upload_id = str(uuid.uuid4())
    ids = _write(session, _PUT_SQL, unique_points, user, upload_id, group_ids)[0][0]
    if None in ids:
        # A point deleted by another transaction before it could be linked to the groups.
        session.rollback()
        lost = keys[ids.index(None) if position is None else position.index(ids.index(None))]
        raise ApiError(
            409, f"point {_describe_key(lost)} was written or deleted concurrently; nothing was written, "
            "send the batch again"
        )
    result = ids if position is None else [ids[j] for j in position]
    _record_added(session, user, points, result, group_ids)
    session.commit()
    return {"ids": result, "upload_id": upload_id}


# --------------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------------
def check_format(fmt: str, magsys: str | None = None) -> None:
    """400 unless `fmt` is "mag" or "flux" and `magsys` (when given) is "ab"."""
    if fmt not in FORMATS:
        raise ApiError(400, f"invalid `format` {shown(fmt)}: use \"mag\" or \"flux\"")
    if magsys is not None and magsys.lower() not in SUPPORTED_MAGSYS:
        raise ApiError(400, f"`magsys` {shown(magsys)} is not supported; only \"ab\" is")


# A light curve of ten thousand points must answer in well under 150 ms: one query returns plain tuples, the
# magnitudes are computed by PostgreSQL, and orjson writes the JSON. Keys come out in SkyPortal's order.
_MEASUREMENT_SQL = {
    "mag": f"""
        CASE WHEN p.flux > 0 THEN -2.5 * log(p.flux) + {PHOT_ZP} END,
        CASE WHEN p.flux > 0 THEN p.fluxerr / p.flux * {1 / LN10_OVER_2_5!r} END,
        CASE WHEN p.fluxerr > 0 THEN -2.5 * log({PHOT_DETECTION_THRESHOLD} * p.fluxerr) + {PHOT_ZP} END,""",
    "flux": f"""
        p.flux, p.fluxerr, CAST({PHOT_ZP} AS double precision),""",
}
_MEASUREMENT_KEYS = {"mag": ("mag", "magerr", "limiting_mag"), "flux": ("flux", "fluxerr", "zp")}


_POINT_KEYS = {
    fmt: ("id", "obj_id", "mjd", "filter", *keys, "magsys", "instrument_id", "instrument_name", "origin", "alert_id",
          "ra", "dec", "owner_id", "groups", "created_at")
    for fmt, keys in _MEASUREMENT_KEYS.items()
}

#: Points in one page of GET /api/sources/ID/photometry when numPerPage is not given.
DEFAULT_PAGE_POINTS = 10_000
#: The most points one answer holds (a page, or the whole list when no page is asked for): about 6 MB of JSON,
#: and what a worker holds in memory while it builds that answer.
MAX_PAGE_POINTS = 20_000

# The readable points are found first (one index scan on the object, each point's group links looked up in the
# primary key of photometry_groups: a semi-join) and only then, for the points of the page, their group lists
# and instrument names, one index look-up per point. No join is left for the planner to choose but the semi-join:
# right after thousands of points were written to a new object, its statistics said "one row" and it chose a
# nested loop of every point against every aggregated point (12,700 x 12,700 rows, 40 s).
_READABLE = """
      AND EXISTS (SELECT 1 FROM photometry_groups AS pg
                  WHERE pg.photometry_id = {p}.id AND pg.group_id = ANY(%(group_ids)s))"""


def _points_rows_sql(fmt: str, where: str, restricted: bool) -> str:
    """SQL for the points matching `where` (a condition written on `{p}`, the photometry alias) that the user may
    read, in mjd order, `%(limit)s` of them after `%(offset)s`, as tuples in _POINT_KEYS order. `groups` comes
    as a text key ("1,4") of the point's group ids, resolved once per distinct key; the time comes as ISO text,
    which is cheaper than parsing it into a datetime and writing it back."""
    mine = " AND pg.group_id = ANY(%(group_ids)s)" if restricted else ""
    return f"""
    WITH page AS MATERIALIZED (
        SELECT q.id, q.obj_id, q.mjd, q.filter, q.flux, q.fluxerr, q.instrument_id, q.origin, q.alert_id, q.ra,
               q.dec, q.owner_id, q.created_at
        FROM photometry AS q
        WHERE {where.format(p="q")}{_READABLE.format(p="q") if restricted else ""}
        ORDER BY q.mjd, q.id
        LIMIT %(limit)s OFFSET %(offset)s
    )
    SELECT p.id, p.obj_id, p.mjd, p.filter,{_MEASUREMENT_SQL[fmt]}
        'ab', p.instrument_id, (SELECT i.name FROM instruments AS i WHERE i.id = p.instrument_id), p.origin,
        p.alert_id, p.ra, p.dec, p.owner_id, links.gids, to_char(p.created_at, 'YYYY-MM-DD"T"HH24:MI:SS.US')
    FROM page AS p
    CROSS JOIN LATERAL (
        SELECT string_agg(CAST(pg.group_id AS text), ',' ORDER BY pg.group_id) AS gids
        FROM photometry_groups AS pg
        WHERE pg.photometry_id = p.id{mine}
    ) AS links
    ORDER BY p.mjd, p.id"""


def _count_sql(where: str, restricted: bool, most: int | None = None) -> str:
    """How many readable points match `where` (counting no further than `most`, when given)."""
    found = f"SELECT 1 FROM photometry AS q WHERE {where.format(p='q')}{_READABLE.format(p='q') if restricted else ''}"
    limit = f" LIMIT {int(most)}" if most is not None else ""
    return f"SELECT count(*) FROM ({found}{limit}) AS found"


def _too_many(session: Session, user: User, where: str, params: dict, most: int) -> bool:
    """Whether more than `most` points match: an index scan that stops there, before any point is built."""
    group_ids = accessible_group_ids(session, user)
    if group_ids is not None:
        params = {**params, "group_ids": sorted(group_ids)}
    cursor = session.connection().connection.dbapi_connection.cursor()
    try:
        cursor.execute(_count_sql(where, group_ids is not None, most + 1), params)
        return cursor.fetchone()[0] > most
    finally:
        cursor.close()


def _points(
    session: Session, user: User, fmt: str, where: str, params: dict, limit: int | None = None, offset: int = 0,
    count: bool = False,
) -> tuple[list[dict], int | None]:
    """The points matching `where` that `user` may see (`limit` of them after `offset`, in mjd order), and when
    `count` how many there are in all. Each point's groups are limited to the user's own (system admins: all).
    `where` uses psycopg2 parameters (%(name)s) and `{p}` for the table alias. The one serialiser of points."""
    group_ids = accessible_group_ids(session, user)
    restricted = group_ids is not None
    params = {**params, "limit": limit, "offset": offset}
    if restricted:
        params["group_ids"] = sorted(group_ids)
    # The raw DB-API cursor: SQLAlchemy's row objects cost more than the query itself for long light curves.
    cursor = session.connection().connection.dbapi_connection.cursor()
    try:
        cursor.execute(_points_rows_sql(fmt, where, restricted), params)
        # In chunks: converting a long answer to Python holds the GIL, and shorter holds let the IOLoop in between.
        rows: list[tuple] = []
        while chunk := cursor.fetchmany(5000):
            rows += chunk
        total = None
        if count:
            if offset == 0 and (limit is None or len(rows) < limit):
                total = len(rows)
            else:
                cursor.execute(_count_sql(where, restricted), params)
                total = cursor.fetchone()[0]
    finally:
        cursor.close()
    keys = _POINT_KEYS[fmt]
    groups_at = keys.index("groups")
    # Points share a handful of group sets: each set's list is built once and shared.
    sets: dict[str | None, list[dict]] = {key: [] for key in {r[groups_at] for r in rows}}
    wanted = {int(g) for key in sets if key for g in key.split(",")}
    if wanted:
        found = session.execute(select(Group.id, Group.name, Group.nickname).where(Group.id.in_(wanted)))
        info = {gid: {"id": gid, "name": name, "nickname": nickname} for gid, name, nickname in found}
        for key in sets:
            if key:
                sets[key] = [info[int(g)] for g in key.split(",")]
    points = []
    for row in rows:
        point = dict(zip(keys, row))
        point["groups"] = sets[point["groups"]]
        points.append(point)
    return points, total


_BY_OBJ = "{p}.obj_id = %(obj_id)s"


def photometry_for_obj(session: Session, user: User, obj_id: str, fmt: str = "mag") -> list[dict]:
    """The points of object `obj_id` that `user` may see, by mjd, in SkyPortal's shape (fmt "mag" or "flux").

    Each point: id, obj_id, mjd, filter, mag, magerr, limiting_mag (or flux, fluxerr, zp), magsys,
    instrument_id, instrument_name, origin, alert_id, ra, dec, owner_id, groups ([{id, name, nickname}] of the
    user's groups it is shared with), created_at. 404 when the object does not exist or is not visible.
    """
    check_format(fmt)
    get_visible_obj(session, user, obj_id)
    return _points(session, user, fmt, _BY_OBJ, {"obj_id": obj_id})[0]


def _positive(value: Any, name: str, most: int | None = None) -> int:
    if type(value) is not int or value < 1 or (most is not None and value > most):
        limit = f" and at most {most}" if most is not None else ""
        raise ApiError(400, f"`{name}` must be an integer of at least 1{limit}, got {value!r}")
    return value


def light_curve(
    session: Session, user: User, obj_id: str, fmt: str = "mag",
    page_number: int | None = None, num_per_page: int | None = None,
) -> list[dict] | dict:
    """GET /api/sources/ID/photometry: the points of `obj_id` that `user` may see, in mjd order.

    Without paging arguments: the list of points (SkyPortal's answer), if there are at most MAX_PAGE_POINTS;
    a longer light curve is refused with a 400 that says how to page. With `page_number` and/or
    `num_per_page` (default DEFAULT_PAGE_POINTS, at most MAX_PAGE_POINTS): {"photometry": [...],
    "totalMatches": N, "pageNumber": P, "numPerPage": K}, as SkyPortal's paged lists answer.
    """
    check_format(fmt)
    get_visible_obj(session, user, obj_id)
    params = {"obj_id": obj_id}
    if page_number is None and num_per_page is None:
        if _too_many(session, user, _BY_OBJ, params, MAX_PAGE_POINTS):
            raise ApiError(
                400, f"{obj_id} has more than {MAX_PAGE_POINTS} points: read them in pages with `pageNumber` (from 1) "
                f"and `numPerPage` (at most {MAX_PAGE_POINTS}); the answer's `totalMatches` says how many there are"
            )
        return _points(session, user, fmt, _BY_OBJ, params)[0]
    page_number = _positive(1 if page_number is None else page_number, "pageNumber")
    num_per_page = _positive(DEFAULT_PAGE_POINTS if num_per_page is None else num_per_page, "numPerPage", MAX_PAGE_POINTS)
    points, total = _points(
        session, user, fmt, _BY_OBJ, params, limit=num_per_page, offset=(page_number - 1) * num_per_page, count=True
    )
    return {"photometry": points, "totalMatches": total, "pageNumber": page_number, "numPerPage": num_per_page}


def get_photometry(session: Session, user: User, point_id: int, fmt: str = "mag") -> dict:
    """One point, if `user` may see it (404 otherwise)."""
    check_format(fmt)
    found, _ = _points(session, user, fmt, "{p}.id = %(point_id)s", {"point_id": point_id})
    if not found:
        raise not_found(f"photometry point {point_id}")
    return found[0]


def _visible_point_row(session: Session, user: User, point_id: int):
    """The stored row of a point `user` may see; 404 otherwise."""
    query = select(PHOT).where(PHOT.c.id == point_id)
    group_ids = accessible_group_ids(session, user)
    if group_ids is not None:
        pg = photometry_groups
        query = query.where(
            select(pg.c.photometry_id).where(pg.c.photometry_id == PHOT.c.id, pg.c.group_id.in_(group_ids)).exists()
        )
    row = session.execute(query).first()
    if row is None:
        raise not_found(f"photometry point {point_id}")
    return row


def _check_may_edit(session: Session, user: User, owner_id: int | None, point_id: int) -> None:
    """Scope OWNER of access_rules.py: the uploader, a system admin, or a holder of "Manage sources" who
    administers every group the point is shared with."""
    groups = session.scalars(select(photometry_groups.c.group_id).where(photometry_groups.c.photometry_id == point_id))
    if not may_manage_record(session, user, owner_id, groups):
        raise forbidden(
            f"photometry point {point_id} is not yours; changing it requires the permission Manage sources "
            "and being an admin of every group it is shared with"
        )


PATCHABLE = frozenset(ALLOWED_FIELDS - {"obj_id", "stream_ids"})


def update_photometry(session: Session, user: User, point_id: int, data: dict) -> dict:
    """PATCH: change some fields of one point (given like a one-point upload); `group_ids` adds groups.

    The body is laid over the point's stored values, so a new measurement may come in either form; a flux
    given without `zp` is taken at the stored zero point (23.9).
    """
    if not isinstance(data, dict) or not data:
        raise ApiError(400, "the request body must be a JSON object with the fields to change")
    row = _visible_point_row(session, user, point_id)
    _check_may_edit(session, user, row.owner_id, point_id)
    unknown = sorted(set(data) - PATCHABLE)
    if unknown:
        raise ApiError(400, f"field(s) {_names(unknown)} cannot be changed; changeable: {_names(sorted(PATCHABLE))}")
    lists = sorted(k for k, v in data.items() if isinstance(v, list) and k != "group_ids")
    if lists:
        raise ApiError(400, f"PATCH changes one point: {_names(lists)} must be single values, not lists")
    stored = {
        "obj_id": row.obj_id, "mjd": row.mjd, "instrument_id": row.instrument_id, "filter": row.filter,
        "magsys": "ab", "origin": row.origin, "alert_id": row.alert_id, "ra": row.ra, "dec": row.dec,
    }
    if not any(f in data for f in MAG_FIELDS):
        stored.update(flux=row.flux, fluxerr=row.fluxerr, zp=PHOT_ZP)
    merged = {**stored, **{k: v for k, v in data.items() if k != "group_ids"}}
    points = parse_points(merged)
    _check_references(session, user, points)
    group_ids = target_group_ids(session, user, data["group_ids"]) if "group_ids" in data else []
    try:
        session.execute(update(PHOT).where(PHOT.c.id == point_id).values({k: v[0] for k, v in points.items()}))
    except IntegrityError:
        session.rollback()
        raise ApiError(400, f"another point already is {_describe_key(_keys(points)[0])}") from None
    if group_ids:
        session.execute(
            pg_insert(photometry_groups).on_conflict_do_nothing(),
            [{"photometry_id": point_id, "group_id": g} for g in group_ids],
        )
    session.commit()
    return {"id": point_id}


def delete_photometry(session: Session, user: User, point_id: int) -> None:
    """DELETE: remove one point (its owner, or a user with Manage sources)."""
    row = _visible_point_row(session, user, point_id)
    _check_may_edit(session, user, row.owner_id, point_id)
    session.execute(delete(PHOT).where(PHOT.c.id == point_id))
    session.commit()
