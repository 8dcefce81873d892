"""Reading GCN events and their localizations back: the list (filters, newest first, paged), one event, one
localization with its contours, and a localization as a multi-order FITS file."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import any_, func, select, true
from sqlalchemy.orm import Session, selectinload

from ..errors import ApiError
from ..models import GcnEvent, GcnProperty, GcnTag, Localization, LocalizationTile
from ..validate import shown
from . import skymaps

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 500


def parse_dateobs(raw: str, field: str = "dateobs") -> datetime:
    """An ISO 8601 time (naive = UTC) as naive UTC; 400 naming the field otherwise."""
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise ApiError(400, f"`{field}` must be an ISO 8601 time such as 2019-04-25T08:18:05, got {shown(raw)}") from None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when


def find_event(session: Session, key: str) -> GcnEvent:
    """The event named in a URL: its dateobs (exactly, or to the second when no fraction is given) or one of
    its aliases (S190425z); 404 otherwise."""
    event = session.scalars(select(GcnEvent).where(key == any_(GcnEvent.aliases)).order_by(GcnEvent.dateobs.desc())
                            ).first()
    if event is not None:
        return event
    try:
        when = parse_dateobs(key)
    except ApiError:
        raise ApiError(404, f"no GCN event {shown(key)}: give its dateobs (ISO time) or an alias such as S190425z") \
            from None
    event = session.scalars(select(GcnEvent).where(GcnEvent.dateobs == when)).first()
    if event is None and when.microsecond == 0:
        # the last second of year 9999 has no "next second" to bound it by
        upper = GcnEvent.dateobs < when + timedelta(seconds=1) if when < datetime.max - timedelta(seconds=1) else true()
        event = session.scalars(select(GcnEvent).where(GcnEvent.dateobs >= when, upper)
                                .order_by(GcnEvent.dateobs)).first()
    if event is None:
        raise ApiError(404, f"no GCN event at {shown(key)}")
    return event


def _localization_summary(loc: Localization) -> dict:
    return {"id": loc.id, "localization_name": loc.localization_name, "dateobs": loc.dateobs,
            "area_50": loc.area_50, "area_90": loc.area_90, "distmean": loc.distmean, "diststd": loc.diststd,
            "notice_id": loc.notice_id, "created_at": loc.created_at}


def _merged_properties(props: list[GcnProperty]) -> dict:
    """The newest value of each property over the event's notices."""
    out: dict = {}
    for p in sorted(props, key=lambda p: p.id):
        out.update(p.data or {})
    return out


def serialize_event(event: GcnEvent, *, full: bool) -> dict:
    out = {
        "id": event.id,
        "dateobs": event.dateobs,
        "trigger_id": event.trigger_id,
        "aliases": list(event.aliases or []),
        "tags": [t.text for t in event.tags],
        "created_at": event.created_at,
        "modified": event.modified,
        "localizations": [_localization_summary(loc) for loc in event.localizations],
        "properties": _merged_properties(event.properties),
    }
    if full:
        out["properties_history"] = [{"id": p.id, "notice_id": p.notice_id, "data": p.data, "created_at": p.created_at}
                                     for p in event.properties]
        out["notices"] = [{"id": n.id, "notice_type": n.notice_type, "stream": n.stream, "ivorn": n.ivorn,
                           "date": n.date, "received_at": n.received_at, "content_sha256": n.content_sha256}
                          for n in sorted(event.notices, key=lambda n: (n.date, n.id))]
    return out


def _tag_list(raw: str | None, field: str) -> list[str]:
    if raw is None:
        return []
    return [t.strip() for t in raw.split(",") if t.strip()]


def list_events(session: Session, *, start: str | None = None, end: str | None = None, tag_keep: str | None = None,
                tag_remove: str | None = None, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> dict:
    """GET /api/gcn_event: events newest first, between startDate and endDate (dateobs), having every tag of
    tagKeep and none of tagRemove (comma-separated)."""
    if page < 1:
        raise ApiError(400, f"`pageNumber` must be 1 or more, got {page}")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ApiError(400, f"`numPerPage` must be between 1 and {MAX_PER_PAGE}, got {per_page}")
    query = select(GcnEvent)
    if start is not None:
        query = query.where(GcnEvent.dateobs >= parse_dateobs(start, "startDate"))
    if end is not None:
        query = query.where(GcnEvent.dateobs <= parse_dateobs(end, "endDate"))
    for tag in _tag_list(tag_keep, "tagKeep"):
        query = query.where(select(GcnTag.id).where(GcnTag.event_id == GcnEvent.id, GcnTag.text == tag).exists())
    removed = _tag_list(tag_remove, "tagRemove")
    if removed:
        query = query.where(~select(GcnTag.id).where(GcnTag.event_id == GcnEvent.id, GcnTag.text.in_(removed))
                            .exists())
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(
        query.options(selectinload(GcnEvent.tags), selectinload(GcnEvent.localizations),
                      selectinload(GcnEvent.properties))
        .order_by(GcnEvent.dateobs.desc()).offset((page - 1) * per_page).limit(per_page))
    return {"events": [serialize_event(e, full=False) for e in rows], "totalMatches": total,
            "pageNumber": page, "numPerPage": per_page}


def get_event(session: Session, key: str) -> dict:
    """GET /api/gcn_event/DATEOBS: the event with its tags, properties, notices (timeline) and localizations."""
    return serialize_event(find_event(session, key), full=True)


def find_localization(session: Session, key: str, name: str) -> Localization:
    event = find_event(session, key)
    loc = session.scalars(select(Localization).where(Localization.event_id == event.id,
                                                     Localization.localization_name == name)).first()
    if loc is None:
        names = [loc.localization_name for loc in event.localizations]
        raise ApiError(404, f"event {key} has no localization named {shown(name)}; it has: "
                            f"{', '.join(names) or 'none'}")
    return loc


def get_localization(session: Session, key: str, name: str) -> dict:
    """GET /api/localization/DATEOBS/name/NAME: the localization with its contours."""
    loc = find_localization(session, key, name)
    out = _localization_summary(loc)
    out.update({"event_id": loc.event_id, "contour": loc.contour})
    return out


def localization_fits(session: Session, key: str, name: str) -> tuple[str, bytes]:
    """(file name, multi-order FITS bytes) of a localization, rebuilt from its stored tiles."""
    loc = find_localization(session, key, name)
    t = LocalizationTile.__table__.c
    rows = session.execute(select(t.lo, t.hi, t.probdensity, t.distmu, t.distsigma, t.distnorm)
                           .where(t.localization_id == loc.id).order_by(t.lo)).all()
    lo = np.array([r[0] for r in rows], dtype=np.int64)
    hi = np.array([r[1] for r in rows], dtype=np.int64)
    # A range [lo, hi) of 4**(29 - order) depth-29 cells is the tile lo >> 2*(29 - order) at that order.
    size = hi - lo
    orders = skymaps.MAX_DEPTH - (np.log2(size.astype(float)).round().astype(np.int64) // 2)
    uniq = (np.int64(4) << (2 * orders)) + (lo >> (2 * (skymaps.MAX_DEPTH - orders)))

    def column(i):
        values = [r[i] for r in rows]
        return None if all(v is None for v in values) else np.array([np.nan if v is None else v for v in values])

    data = skymaps.to_multiorder_fits(
        uniq, np.array([r[2] for r in rows]), column(3), column(4), column(5),
        meta={"DATE-OBS": loc.dateobs.isoformat(), "DISTMEAN": loc.distmean, "DISTSTD": loc.diststd,
              "OBJECT": (loc.event.trigger_id or "")[:68]})
    filename = name if name.endswith((".fits", ".fits.gz")) else f"{name}.fits"
    return filename.replace(",", "_").replace("/", "_"), data
