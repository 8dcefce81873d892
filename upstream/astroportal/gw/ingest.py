"""Storing a GCN notice: its event (found or created), aliases, tags, properties, the raw notice, and one
localization per sky map with its tiles (depth-29 ranges, densities, cumulative probability) and contours.

Idempotent: a notice already stored (same bytes, by sha256) changes nothing. A retraction tags its event
RETRACTED; a later notice with a new sky map adds a localization.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..models import GcnEvent, GcnNotice, GcnProperty, GcnTag, Localization, User
from . import skymaps
from .contours import credible_contours
from .notices import Notice, SkymapRef
from .skymaps import Skymap, SkymapError

Fetch = Callable[[str], bytes]


class UnknownEvent(LookupError):
    """A notice that names an event the portal does not have and gives no time to create it (a retraction)."""


@dataclass
class IngestResult:
    event_id: int
    dateobs: datetime
    notice_id: int
    created: bool  # the event is new
    duplicate: bool  # the notice was stored already: nothing changed
    localization_ids: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)  # where the time went (parse of sky maps, tiles, contours)


def load_skymap(ref: SkymapRef, fetch: Fetch | None = None) -> Skymap:
    """The Skymap a notice refers to; a sky map given by URL needs `fetch` (the portal downloads nothing itself)."""
    if ref.circle is not None:
        ra, dec, radius = ref.circle
        return skymaps.from_error_circle(ref.name, ra, dec, radius)
    data = ref.data
    if data is None:
        if fetch is None:
            raise SkymapError(f"the notice's sky map is at {ref.url!r}, which this portal does not download; post the "
                              f"alert with its sky map included (igwn.gwalert JSON) instead")
        try:
            data = fetch(ref.url)
        except OSError as exc:
            raise SkymapError(f"the sky map at {ref.url!r} could not be fetched: {exc}") from None
    return skymaps.read_fits(data, ref.name)


def _localization_name(session: Session, event_id: int | None, sky: Skymap, ref: SkymapRef) -> str:
    """The sky map's name: the file name given, else '<creator>.multiorder.fits' (',N' appended for the N-th
    map of that name of the event, as SkyPortal's versions are)."""
    base = ref.name or f"{str(sky.meta.get('CREATOR') or 'skymap').lower()}.multiorder.fits"
    if ref.name == "combined":
        base = f"combined-{str(sky.meta.get('CREATOR') or 'skymap').lower()}.multiorder.fits"
    if event_id is None:
        return base
    taken = set(session.scalars(select(Localization.localization_name).where(
        Localization.event_id == event_id,
        or_(Localization.localization_name == base, Localization.localization_name.like(base + ",%")))))
    if base not in taken:
        return base
    n = 1
    while f"{base},{n}" in taken:
        n += 1
    return f"{base},{n}"


# numpy big-endian types of the PostgreSQL column types written by binary COPY.
_BINARY = {"integer": ">i4", "bigint": ">i8", "float8": ">f8"}


def _binary_copy(columns: list[tuple[str, np.ndarray, str]]) -> bytes:
    """Rows in PostgreSQL's binary COPY format, built by numpy in one go (text formatting of ~20,000 rows of
    floats costs a third of a second here; this, milliseconds). Columns are (name, values, PostgreSQL type);
    every value is present (no NULLs)."""
    n = len(columns[0][1])
    fields = [("count", ">i2")]
    for name, _, pgtype in columns:
        fields += [(f"{name}_len", ">i4"), (name, _BINARY[pgtype])]
    rows = np.empty(n, dtype=fields)
    rows["count"] = len(columns)
    for name, values, pgtype in columns:
        rows[f"{name}_len"] = np.dtype(_BINARY[pgtype]).itemsize
        rows[name] = values
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    return header + rows.tobytes() + (-1).to_bytes(2, "big", signed=True)


def store_tiles(session: Session, localization_id: int, sky: Skymap) -> tuple[np.ndarray, np.ndarray]:
    """Insert the tiles of `sky` with one binary COPY; returns (lo, cumprob) per tile."""
    lo, hi, cumprob = skymaps.cumulative_probability(sky)
    columns = [("localization_id", np.full(lo.size, localization_id), "integer"), ("lo", lo, "bigint"),
               ("hi", hi, "bigint"), ("probdensity", sky.probdensity, "float8"), ("cumprob", cumprob, "float8")]
    for name in ("distmu", "distsigma", "distnorm"):
        values = getattr(sky, name)
        if values is not None:
            columns.append((name, np.asarray(values, dtype=float), "float8"))
    data = _binary_copy(columns)
    cursor = session.connection().connection.cursor()
    try:
        names = ", ".join(name for name, _, _ in columns)
        cursor.copy_expert(f"COPY localizationtiles ({names}) FROM STDIN WITH (FORMAT binary)", io.BytesIO(data))
    finally:
        cursor.close()
    return lo, cumprob


def _find_event(session: Session, notice: Notice) -> GcnEvent | None:
    if notice.aliases:
        found = session.scalars(select(GcnEvent).where(GcnEvent.aliases.overlap(notice.aliases))
                                .order_by(GcnEvent.dateobs.desc()).limit(1)).first()
        if found is not None:
            return found
    if notice.dateobs is not None:
        return session.scalars(select(GcnEvent).where(GcnEvent.dateobs == notice.dateobs)).first()
    return None


def _announce(session: Session, event: GcnEvent, notice: Notice, notice_id: int, loaded: list, localization_ids: list,
              user: User | None) -> None:
    """A `gcn.notice` event on the live feed, for everyone (the sitewide group): events are public alerts."""
    from ..live.feed import record_live
    from ..models import Group
    from ..permissions import SITEWIDE_GROUP

    sitewide = session.scalar(select(Group.id).where(Group.name == SITEWIDE_GROUP))
    if sitewide is None:
        return
    ra = dec = None
    if loaded:
        sky = loaded[0][1]
        ra, dec = (float(x) for x in skymaps.densest_position(sky))
    name = event.trigger_id or event.dateobs.isoformat()
    classes = [t for t in notice.tags if t in ("BNS", "NSBH", "BBH", "RETRACTED", "GRB")]
    record_live(session, "gcn.notice", group_ids=[sitewide], ids=[notice_id], ra=ra, dec=dec,
                summary=f"{name} {notice.notice_type}" + (f" ({', '.join(classes)})" if classes else ""),
                url=f"/gcn_events/{event.dateobs.isoformat()}", user_id=user.id if user is not None else None,
                data={"dateobs": event.dateobs.isoformat(), "trigger_id": event.trigger_id,
                      "notice_type": notice.notice_type, "tags": list(notice.tags),
                      "localization_ids": list(localization_ids), "is_test": notice.is_test})


def ingest_notice(session: Session, notice: Notice, user: User | None = None, *, fetch: Fetch | None = None,
                  contours: bool = True) -> IngestResult:
    """Store `notice` (see the module's docstring) and commit. Sky maps are read before anything is written, so
    a notice whose sky map is unreadable (SkymapError) or that names an unknown event (UnknownEvent) leaves the
    database as it was. `user` is who posted it (kept for the live feed's attribution; no ACL check here)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    digest = hashlib.sha256(notice.content).hexdigest()
    known = session.execute(select(GcnNotice.id, GcnNotice.event_id).where(GcnNotice.content_sha256 == digest)).first()
    if known is not None:
        event = session.get(GcnEvent, known.event_id)
        return IngestResult(event.id, event.dateobs, known.id, created=False, duplicate=True,
                            tags=[t.text for t in event.tags])

    loaded = [(ref, load_skymap(ref, fetch)) for ref in notice.skymaps]
    timings["read_skymaps"] = time.perf_counter() - t0

    event = _find_event(session, notice)
    created = event is None
    if created:
        if notice.dateobs is None:
            raise UnknownEvent(f"no event {notice.trigger_id or '(unnamed)'} to apply this {notice.notice_type} "
                               f"notice to, and the notice gives no event time to create it")
        event_id = session.execute(
            pg_insert(GcnEvent).values(dateobs=notice.dateobs, trigger_id=notice.trigger_id,
                                       aliases=list(dict.fromkeys(notice.aliases)))
            .on_conflict_do_nothing(index_elements=["dateobs"]).returning(GcnEvent.id)).scalar()
        created = event_id is not None
        event = session.get(GcnEvent, event_id) if created else _find_event(session, notice)
    else:
        new_aliases = [a for a in dict.fromkeys(notice.aliases) if a not in (event.aliases or [])]
        if new_aliases:
            event.aliases = list(event.aliases or []) + new_aliases
        if event.trigger_id is None and notice.trigger_id:
            event.trigger_id = notice.trigger_id

    notice_id = session.execute(
        pg_insert(GcnNotice).values(event_id=event.id, notice_type=notice.notice_type, stream=notice.stream,
                                    ivorn=notice.ivorn, content=notice.content, content_sha256=digest,
                                    date=notice.date)
        .on_conflict_do_nothing(index_elements=["content_sha256"]).returning(GcnNotice.id)).scalar()
    if notice_id is None:  # the same notice stored a moment ago by another writer
        session.rollback()
        return ingest_notice(session, notice, user, fetch=fetch, contours=contours)

    if notice.tags:
        session.execute(pg_insert(GcnTag).values([{"event_id": event.id, "text": t}
                                                  for t in dict.fromkeys(notice.tags)])
                        .on_conflict_do_nothing(index_elements=["event_id", "text"]))
    data = dict(notice.properties)
    if notice.urls:
        data["urls"] = dict(notice.urls)  # e.g. the GraceDB page of the superevent
    if loaded:
        first = loaded[0][1]
        data.update({k: v for k, v in (("distmean", first.distmean), ("diststd", first.diststd)) if v is not None})
    if data:
        data["notice_type"] = notice.notice_type
        session.add(GcnProperty(event_id=event.id, notice_id=notice_id, data=data))

    localization_ids = []
    for ref, sky in loaded:
        name = _localization_name(session, event.id, sky, ref)
        if ref.circle is not None and name != ref.name:
            continue  # the same error circle again: it is stored already
        loc = Localization(event_id=event.id, dateobs=event.dateobs, localization_name=name, notice_id=notice_id,
                           distmean=sky.distmean, diststd=sky.diststd)
        session.add(loc)
        session.flush()
        t1 = time.perf_counter()
        lo, cumprob = store_tiles(session, loc.id, sky)
        timings["tiles"] = timings.get("tiles", 0.0) + time.perf_counter() - t1
        loc.area_50 = skymaps.credible_area_deg2(sky, 0.5, cumprob)
        loc.area_90 = skymaps.credible_area_deg2(sky, 0.9, cumprob)
        if contours:
            t2 = time.perf_counter()
            loc.contour = credible_contours(sky, lo, cumprob)
            timings["contours"] = timings.get("contours", 0.0) + time.perf_counter() - t2
        localization_ids.append(loc.id)
    event.modified = func.now()
    _announce(session, event, notice, notice_id, loaded, localization_ids, user)
    session.commit()
    timings["total"] = time.perf_counter() - t0
    tags = list(session.scalars(select(GcnTag.text).where(GcnTag.event_id == event.id).order_by(GcnTag.id)))
    return IngestResult(event.id, event.dateobs, notice_id, created=created, duplicate=False,
                        localization_ids=localization_ids, tags=tags, seconds=timings)
