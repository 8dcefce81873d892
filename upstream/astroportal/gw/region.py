"""Credible regions of sky localizations: which objects lie in them, and the probability density at each.

A localization is stored as multi-order HEALPix tiles, each a range [lo, hi) of depth-29 nested indices with
its probability density and `cumprob`, the probability of every tile denser than it (ties broken by lo), i.e.
the probability *before* the tile. Objects carry their own depth-29 index (`objs.healpix`, btree indexed).

The rule for the p credible region: **a tile belongs to it iff its cumprob < p**. The tile that crosses p
(cumprob < p <= cumprob + its own probability) is included, so the region holds at least probability p and is
the smallest set of densest tiles that does. (SkyPortal leaves that tile's fate unstated.)

How the queries are shaped, and why. An `EXISTS (tiles containing objs.healpix)` test evaluated for every
object of the table is a nested loop over millions of objects and does not return on big tables. Here the
region drives: its tiles with cumprob < p are merged into runs of adjacent ranges (far fewer than the tiles),
and each run is one index range scan of `objs.healpix >= lo AND objs.healpix < hi`. Those scans are written as
LATERAL subqueries with an OFFSET, which PostgreSQL cannot flatten, so the plan is a nested loop driven by the
runs whatever the planner's statistics say. The probability density of a matched object is read from its tile
by one backward step of the tiles' primary key (localization_id, lo): the tile with the largest lo <= healpix.
When a list is ordered by probability density, the tiles themselves drive in cumprob order (their index), so
the first page is found after walking only the densest tiles.

What it costs (tests/bench/bench_gcn.py, 2,000,000 sources): the work grows with the objects in the region, not
with the table; lists for a user also probe each matched object's saves (visibility), which dominates for regions
of thousands of square degrees. Migration 0010's indexes (objs (healpix) INCLUDE (id) and sources (obj_id, group_id)
WHERE active) make those reads index-only (the probes say `active`, not `active IS TRUE`, so that PostgreSQL can
use the partial index). When the region holds many objects compared with the saves (saves_drive_count), the count
is a hash semi-join over one scan of the saves instead of a probe per object.

A user limited to some groups is counted otherwise (migration 0011): each save carries a copy of its object's
healpix (sources.healpix, kept right by PostgreSQL triggers when a save is written or an object moves), so the
count is count(DISTINCT obj_id) over index range scans of sources (group_id, healpix) WHERE active, one per
(group, merged range), without reading the objects at all (domain.sources._region_list_statements). The probing
and hashing counts above remain for all-seeing users and for lists also filtered by cone or id.

The bind parameters of every statement built here are `loc_id` (localizations.id) and `cumprob` (p).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, Integer, bindparam, case, column, func, select, table, text, true
from sqlalchemy.orm import Session

from ..errors import ApiError

DEFAULT_CUMPROB = 0.95

# Lightweight table clauses: the queries need only these columns, named as in the schema of migration 0007.
TILES = table(
    "localizationtiles",
    column("localization_id", Integer),
    column("lo", BigInteger),
    column("hi", BigInteger),
    column("probdensity", Float),
    column("cumprob", Float),
)
LOCALIZATIONS = table(
    "localizations",
    column("id", Integer),
    column("event_id", Integer),
    column("localization_name"),
    column("created_at"),
)


@dataclass(frozen=True)
class Region:
    """The p credible region of one localization (what the statements' bind parameters are filled from)."""

    localization_id: int
    dateobs: datetime
    localization_name: str
    cumprob: float

    def params(self) -> dict[str, Any]:
        return {"loc_id": self.localization_id, "cumprob": self.cumprob}


def loc_param():
    return bindparam("loc_id", type_=Integer)


def cumprob_param():
    return bindparam("cumprob", type_=Float)


# --------------------------------------------------------------------------------------------------
# Checking the request


def check_cumprob(value: Any, field: str = "localizationCumprob") -> float:
    """A cumulative probability p in (0, 1]; 400 otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError(400, f"`{field}` must be a number in (0, 1], got {value!r}")
    if not 0 < value <= 1:
        raise ApiError(400, f"`{field}` must be greater than 0 and at most 1 (e.g. 0.9 for the 90% region), got {value}")
    return float(value)


def find_region(
    session: Session, event_key: Any, localization_name: str | None = None, cumprob: Any = DEFAULT_CUMPROB
) -> Region:
    """The p credible region of an event's localization named `localization_name`, or of its newest one.

    The event is named as in its URL (GET /api/gcn_event/KEY): its dateobs (exactly, or to the second), or an
    alias such as S190425z. 404 when there is no such event or localization (the message lists the event's
    localizations), 400 for p outside (0, 1]."""
    from .events import find_event

    p = check_cumprob(cumprob)
    event = find_event(session, str(event_key).strip())
    when = event.dateobs.isoformat()
    locs = session.execute(
        select(LOCALIZATIONS.c.id, LOCALIZATIONS.c.localization_name)
        .where(LOCALIZATIONS.c.event_id == event.id)
        .order_by(LOCALIZATIONS.c.created_at.desc(), LOCALIZATIONS.c.id.desc())
    ).all()
    if not locs:
        raise ApiError(404, f"the GCN event at {when} has no localization yet")
    if localization_name is None:
        loc_id, name = locs[0]
    else:
        match = [row for row in locs if row.localization_name == localization_name]
        if not match:
            names = ", ".join(repr(row.localization_name) for row in locs)
            raise ApiError(404, f"the GCN event at {when} has no localization named {localization_name!r}; it has {names}")
        loc_id, name = match[0]
    return Region(localization_id=loc_id, dateobs=event.dateobs, localization_name=name, cumprob=p)


# --------------------------------------------------------------------------------------------------
# Statement parts (bind parameters `loc_id` and `cumprob`)


def merged_ranges(name: str = "region_ranges"):
    """A MATERIALIZED CTE (lo, hi): the tiles with cumprob < p, adjacent ones merged into one range.

    Tiles are disjoint, so walking them in lo order, a tile starts a new run unless it begins where the
    previous one ended; the runs are numbered by a running count of those starts.
    """
    t = TILES
    starts = (
        select(
            t.c.lo,
            t.c.hi,
            case((t.c.lo == func.lag(t.c.hi).over(order_by=t.c.lo), 0), else_=1).label("starts"),
        )
        .where(t.c.localization_id == loc_param(), t.c.cumprob < cumprob_param())
        .subquery("tile_starts")
    )
    runs = select(
        starts.c.lo, starts.c.hi, func.sum(starts.c.starts).over(order_by=starts.c.lo).label("run")
    ).subquery("tile_runs")
    return (
        select(func.min(runs.c.lo).label("lo"), func.max(runs.c.hi).label("hi"))
        .group_by(runs.c.run)
        .cte(name)
        .prefix_with("MATERIALIZED")
    )


def region_tiles(name: str = "region_tiles"):
    """The tiles with cumprob < p (lo, hi, probdensity, cumprob), as a subquery PostgreSQL reads from the
    (localization_id, cumprob) index, i.e. densest first."""
    t = TILES
    return (
        select(t.c.lo, t.c.hi, t.c.probdensity, t.c.cumprob)
        .where(t.c.localization_id == loc_param(), t.c.cumprob < cumprob_param())
        .subquery(name)
    )


def objs_within(ranges, healpix_col, *cols, conds=(), name: str = "region_objs"):
    """A LATERAL subquery: the objects (columns `cols`) whose depth-29 index lies in the current row of
    `ranges` (lo, hi), with extra conditions `conds` on them. The OFFSET keeps PostgreSQL from flattening it:
    each range stays one index range scan of ix_objs_healpix."""
    return (
        select(*cols)
        .where(healpix_col >= ranges.c.lo, healpix_col < ranges.c.hi, *conds)
        .offset(0)
        .lateral(name)
    )


def probdensity_at(healpix_expr):
    """A correlated scalar subquery: the probability density (per steradian) of the localization's tile that
    holds `healpix_expr` (NULL outside every tile): one backward step of the tiles' primary key to the tile with
    the largest lo <= healpix_expr, which holds it when its hi is beyond."""
    t = TILES
    return (
        select(case((t.c.hi > healpix_expr, t.c.probdensity), else_=None))
        .where(t.c.localization_id == loc_param(), t.c.lo <= healpix_expr)
        .order_by(t.c.lo.desc())
        .limit(1)
        .scalar_subquery()
    )


def _objs_table():
    from ..models import Obj

    return Obj.__table__


def healpix_column():
    """objs.healpix."""
    return _objs_table().c.healpix


# --------------------------------------------------------------------------------------------------
# Plain queries


def without_jit(session: Session) -> None:
    """Turn PostgreSQL's JIT (and memoizing) off for the current transaction. The planner cannot know how many objects a
    range holds, so it estimates these nested loops high and would spend seconds compiling them for a query
    that runs in milliseconds."""
    session.execute(text("SET LOCAL jit = off"))
    # Memoizing the per-object probes only adds work: every object is probed once (its id is the cache key).
    session.execute(text("SET LOCAL enable_memoize = off"))


def objects_in_region(session: Session, region: Region) -> list[tuple[str, float]]:
    """Every object in the region with the probability density at its position, densest first (then by id).

    No visibility rule applies here (every object of the table): lists shown to a user go through
    list_sources / list_candidates, which add it. The objects come from one index range scan per merged
    range; each is then placed in its tile by a binary search over the region's tiles (in lo order), which
    stays fast for regions of thousands of square degrees where a lookup per object would not.
    """
    import numpy as np

    o = _objs_table()
    without_jit(session)
    ranges = merged_ranges()
    inside = objs_within(ranges, o.c.healpix, o.c.id, o.c.healpix)
    rows = session.execute(
        select(inside.c.id, inside.c.healpix).select_from(ranges.join(inside, true())), region.params()
    ).all()
    if not rows:
        return []
    t = TILES
    tiles = session.execute(
        select(t.c.lo, t.c.hi, t.c.probdensity)
        .where(t.c.localization_id == loc_param(), t.c.cumprob < cumprob_param())
        .order_by(t.c.lo),
        region.params(),
    ).all()
    lo = np.fromiter((r.lo for r in tiles), dtype=np.int64, count=len(tiles))
    density = np.fromiter((r.probdensity for r in tiles), dtype=float, count=len(tiles))
    healpix = np.fromiter((r.healpix for r in rows), dtype=np.int64, count=len(rows))
    at = np.searchsorted(lo, healpix, side="right") - 1  # the tile with the largest lo <= healpix
    found = [(row.id, float(density[i])) for row, i in zip(rows, at)]
    found.sort(key=lambda item: (-item[1], item[0]))
    return found


def count_in_region(session: Session, region: Region) -> int:
    """How many objects of the table lie in the region (no visibility rule)."""
    o = _objs_table()
    without_jit(session)
    ranges = merged_ranges()
    inside = objs_within(ranges, o.c.healpix, o.c.id)
    stmt = select(func.count()).select_from(ranges.join(inside, true()))
    return session.execute(stmt, region.params()).scalar()


def region_ranges(session: Session, region: Region) -> list[tuple[int, int]]:
    """The merged depth-29 ranges [lo, hi) of the region, in order."""
    ranges = merged_ranges()
    stmt = select(ranges.c.lo, ranges.c.hi).order_by(ranges.c.lo)
    return [(row.lo, row.hi) for row in session.execute(stmt, region.params())]


# Depth-29 nested indices on the whole sky (12 base pixels of 4**29 each).
SKY_INDICES = 12 * 4**29
# Above this ratio of (objects expected in the region) to (saves), matching the region's objects to the saves by
# one hash over a scan of the saves costs less than one index probe per object. Measured on 2,000,000 saves
# (EXPLAIN ANALYZE, load average 4-5): 48,000 objects (1,000 deg2) 0.55 s probing, 2.3 s hashing; 487,000 objects
# (10,000 deg2) 3.5 s probing, 2.4 s hashing; a probe costs about as much as hashing 6-7 saves.
SAVES_JOIN_RATIO = 0.15
# Below this many expected objects probing always wins (and small tables keep the plan the tests check).
SAVES_JOIN_MIN_OBJECTS = 10_000


def saves_drive_count(session: Session, region: Region) -> bool:
    """Whether a count of the user's sources in `region` should scan the active saves once (a hash semi-join)
    rather than probe the saves of each object of the region.

    The region's share of the sky times the objects table's size (PostgreSQL's estimate, no count) stands for the
    objects in the region: objects are not spread evenly, but this only chooses a plan, both give the same answer."""
    row = session.execute(
        text(
            "SELECT (SELECT coalesce(sum(hi - lo), 0) FROM localizationtiles "
            "        WHERE localization_id = :loc_id AND cumprob < :cumprob) AS indices, "
            "       (SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'objs'::regclass) AS objs, "
            "       (SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'sources'::regclass) AS saves"
        ),
        region.params(),
    ).one()
    expected = float(row.indices) / SKY_INDICES * float(row.objs or 0)
    return expected > float(row.saves or 0) * SAVES_JOIN_RATIO and expected >= SAVES_JOIN_MIN_OBJECTS
