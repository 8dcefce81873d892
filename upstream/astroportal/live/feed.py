"""Events of the live feed: rows written in the same transaction as the change, announced with NOTIFY.

Core writes call `events.record(session, Event(...))`; a listener on the session's `before_commit` turns the
events recorded so far into `live_events` rows and queues `pg_notify(CHANNEL, id)` in that same transaction,
so PostgreSQL delivers the announcement only if (and when) the change commits, to every process and host
listening on the database. Code of a distribution records a kind of its own (a solve job's state, ...) with
`record_live(...)`, which writes its row the same way.
"""

from __future__ import annotations

import json
import math
import operator
import re
from datetime import timedelta
from typing import Any, Iterable

from sqlalchemy import event as sa_event
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from .. import events as portal_events
from ..array_params import array_literal
from ..errors import ApiError
from .. import extension_points as ep
from ..extension_points import Event
from ..models import Classification, Comment, LiveEvent, Obj, User
from ..models.base import utcnow

CHANNEL = "astroportal_live"
WRITTEN_KEY = "astroportal.live_written"
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

# What each core kind looks like in the feed (distribution kinds bring their own summary and url).
SUMMARIES = {
    "source.saved": "{obj_id} saved to a group",
    "photometry.added": "{count} photometry point(s) of {obj_id}",
    "candidate.passed": "{obj_id} passed a filter",
    "classification.added": "{obj_id} classified {classification}{probability_text}",
    "comment.added": "comment on {obj_id}: {text}",
}


def event_as_json(row: Any) -> dict:
    """The event as the API and the websocket send it."""
    return {
        "id": row.id,
        "kind": row.kind,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "obj_id": row.obj_id,
        "ids": list(row.ids or []),
        "group_ids": list(row.group_ids or []),
        "user_id": row.user_id,
        "ra": row.ra,
        "dec": row.dec,
        "data": row.data or {},
    }


# The rows and one NOTIFY per event in one statement (one round trip on the write's path); PostgreSQL delivers
# the notifications at commit, in order, and drops them on rollback. Constant SQL (each column one array
# parameter, see array_params; the JSON data of all rows one JSON array): compiled once per process whatever the
# number of events, and the ids are drawn in the rows' order.
_INSERT_SQL = text(f"""
WITH inserted AS (
    INSERT INTO live_events (kind, obj_id, ids, group_ids, user_id, ra, dec, data)
    SELECT r.e_kind, r.e_obj_id, CAST(r.e_ids AS bigint[]), CAST(r.e_group_ids AS integer[]), r.e_user_id,
           r.e_ra, r.e_dec, r.e_data
    FROM ROWS FROM (unnest(CAST(:kind AS text[])), unnest(CAST(:obj_id AS text[])), unnest(CAST(:ids AS text[])),
                    unnest(CAST(:group_ids AS text[])), unnest(CAST(:user_id AS integer[])),
                    unnest(CAST(:ra AS float8[])), unnest(CAST(:dec AS float8[])),
                    jsonb_array_elements(CAST(:data AS jsonb)))
         WITH ORDINALITY AS r(e_kind, e_obj_id, e_ids, e_group_ids, e_user_id, e_ra, e_dec, e_data, n)
    ORDER BY r.n
    RETURNING id
)
SELECT pg_notify('{CHANNEL}', CAST(id AS text)) FROM inserted ORDER BY id
""")


def _id_arrays(lists: list) -> str:
    """A text[] literal of per-row integer array literals ('{"{1,2}","{}"}'), as array_literal writes it; the
    rows' ids are plain integers nearly always, and then this is a few joins."""
    try:
        return "{" + ",".join('"{' + ",".join(map(str, map(operator.index, ids))) + '}"' for ids in lists) + "}"
    except TypeError:  # a None (NULL) or another kind of number: the general encoder
        return array_literal(lists)


def _insert(session: Session, rows: list[dict]) -> None:
    if not rows:
        return
    params = {k: array_literal([row[k] for row in rows]) for k in ("kind", "obj_id", "user_id", "ra", "dec")}
    params["ids"] = _id_arrays([row["ids"] for row in rows])
    params["group_ids"] = _id_arrays([row["group_ids"] for row in rows])
    # One JSON document (a C-speed dump, no per-row quoting): each element as a JSON column stores the row's data.
    params["data"] = json.dumps([row["data"] for row in rows])
    session.execute(_INSERT_SQL, params)


# What the events' rows need of the rows they are about, one constant statement each (a list of ids is one
# array parameter: nothing for SQLAlchemy to render again for each number of events).
_POSITIONS_SQL = text("SELECT id, ra, dec FROM objs WHERE id = ANY(CAST(:ids AS text[]))")
_CLASSES_SQL = text(
    "SELECT id, classification, probability FROM classifications WHERE id = ANY(CAST(:ids AS integer[]))")
_COMMENTS_SQL = text("SELECT id, text FROM comments WHERE id = ANY(CAST(:ids AS integer[]))")
_FILTER_NAMES_SQL = text("""
SELECT c.id, f.name FROM candidates c JOIN filters f ON f.id = c.filter_id WHERE c.id = ANY(CAST(:ids AS integer[]))
""")


def _fields_by_id(session: Session, model, ids, fields: tuple[str, ...], query) -> dict:
    """{id: (fields...)} for `ids`: from the session's identity map when the writer holds the ORM object (its
    values before the flush that follows), else from `query` (one round trip for the rest)."""
    # The identity map is walked once (it holds a few objects; a batch's events name hundreds of ids).
    held = {key[1][0]: key for key in session.identity_map.keys() if key[0] is model and len(key[1]) == 1}
    found, missing = {}, []
    for i in set(ids):
        row = session.identity_map.get(held[i]) if i in held else None
        if row is None:
            missing.append(i)
        else:
            found[i] = tuple(getattr(row, f) for f in fields)
    if missing:
        found.update({r[0]: tuple(r[1:]) for r in session.execute(query, {"ids": array_literal(sorted(missing))})})
    return found


def _positions(session: Session, obj_ids: set) -> dict:
    """{obj_id: (ra, dec)}: from the session's identity map when the writer loaded the object, else one query of
    the two columns (a batch writer inserts its new objects without loading them)."""
    return _fields_by_id(session, Obj, obj_ids, ("ra", "dec"), _POSITIONS_SQL)


def record_live(
    session: Session,
    kind: str,
    *,
    group_ids: Iterable[int],
    obj_id: str | None = None,
    ids: Iterable[int] = (),
    ra: float | None = None,
    dec: float | None = None,
    summary: str | None = None,
    url: str | None = None,
    data: dict | None = None,
    user_id: int | None = None,
) -> None:
    """Write an event of any kind (`area.what`, for example `solve.job_state`) in the session's transaction.

    `group_ids`: the groups whose members may see it (none: system admins only). `ra`/`dec`: where on the sky
    (taken from the object when omitted). `summary`: one line for people; `url`: the page it is about;
    `data`: fields subscriptions of kind "event" may filter on (for example {"instrument_id": 3, "state":
    "solved"}). Nothing is announced unless the transaction commits.
    """
    if not KIND_PATTERN.match(kind or ""):
        raise ValueError(f"{ep.LIVE_EVENTS.name}: event kind {kind!r} must look like area.what (lower case, dotted)")
    if (ra is None) != (dec is None):
        raise ValueError("give both ra and dec, or neither")
    if ra is None and obj_id is not None:
        pos = session.execute(select(Obj.ra, Obj.dec).where(Obj.id == obj_id)).first()
        if pos is not None:
            ra, dec = pos
    payload = dict(data or {})
    payload.setdefault("summary", summary or (f"{kind} {obj_id}" if obj_id else kind))
    if url or obj_id:
        payload.setdefault("url", url or f"/source/{obj_id}")
    _insert(session, [{
        "kind": kind, "obj_id": obj_id, "ids": [int(i) for i in ids], "group_ids": sorted({int(g) for g in group_ids}),
        "user_id": user_id, "ra": ra, "dec": dec, "data": payload,
    }])


def _core_rows(session: Session, events: list[Event]) -> list[dict]:
    """Rows for the core events: one per object (a photometry batch over several objects gives one each)."""
    if session.autoflush:
        # The look-ups below are plain SQL, which does not autoflush: what the writer left pending (a new object,
        # a moved one) is written first, as an ORM query would have done, so that they see it.
        session.flush()
    positions = _positions(session, {o for e in events for o in e.obj_ids})
    classes = _fields_by_id(session, Classification, [i for e in events if e.kind == "classification.added"
                                                      for i in e.ids], ("classification", "probability"), _CLASSES_SQL)
    comments = {i: t for i, (t,) in _fields_by_id(session, Comment, [i for e in events if e.kind == "comment.added"
                                                                    for i in e.ids], ("text",), _COMMENTS_SQL).items()}
    filters: dict[int, str] = {}
    wanted = {i for e in events if e.kind == "candidate.passed" for i in e.ids}
    if wanted:
        filters = dict(map(tuple, session.execute(_FILTER_NAMES_SQL, {"ids": array_literal(sorted(wanted))})))
    rows = []
    for e in events:
        for obj_id in e.obj_ids or (None,):
            ra, dec = positions.get(obj_id, (None, None))
            data: dict[str, Any] = {"url": f"/source/{obj_id}"} if obj_id else {}
            fields: dict[str, Any] = {"obj_id": obj_id, "count": len(e.ids)}
            if e.kind == "classification.added" and e.ids and e.ids[0] in classes:
                name, prob = classes[e.ids[0]]
                data.update(classification=name, probability=prob)
                fields.update(classification=name,
                              probability_text="" if prob is None else f" (p={prob:.2f})")
            elif e.kind == "comment.added" and e.ids and e.ids[0] in comments:
                snippet = comments[e.ids[0]]
                snippet = snippet if len(snippet) <= 140 else snippet[:139] + "…"
                data["text"] = snippet
                fields["text"] = snippet
            elif e.kind == "candidate.passed":
                data["filters"] = sorted({filters[i] for i in e.ids if i in filters})
            elif e.kind == "photometry.added":
                data["count"] = len(e.ids)
            template = SUMMARIES.get(e.kind)
            try:
                data["summary"] = template.format(**fields) if template else f"{e.kind} {obj_id or ''}".strip()
            except (KeyError, IndexError):
                data["summary"] = f"{e.kind} {obj_id or ''}".strip()
            rows.append({
                "kind": e.kind, "obj_id": obj_id,
                # A batch over several objects keeps its point ids only when it is about one object.
                "ids": list(e.ids) if len(e.obj_ids) <= 1 else [],
                "group_ids": sorted(set(e.group_ids)), "user_id": e.user_id, "ra": ra, "dec": dec, "data": data,
            })
    return rows


@sa_event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    # before_commit also runs when a savepoint is released: what is written then stays in the outer transaction
    # (and leaves with it on rollback), so an event is written once, at the first commit that follows it.
    if portal_events.SUBSCRIBERS_KEY not in session.info:
        return
    pending = portal_events.pending(session)
    if not pending:
        return
    written = session.info.setdefault(WRITTEN_KEY, set())
    new = [e for e in pending if id(e) not in written]
    if not new:
        return
    written.update(id(e) for e in new)
    _insert(session, _core_rows(session, new))


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_written(session: Session, transaction) -> None:
    if transaction.parent is None and transaction.nested is False:
        session.info.pop(WRITTEN_KEY, None)


# -- reading --------------------------------------------------------------------------------------------------
class Cone:
    """A circle on the sky (degrees), checked exactly with the haversine distance."""

    __slots__ = ("ra", "dec", "radius", "_cos_r")

    def __init__(self, ra: float, dec: float, radius: float) -> None:
        self.ra, self.dec, self.radius = ra, dec, radius
        self._cos_r = math.cos(math.radians(radius))

    def contains(self, ra: float | None, dec: float | None) -> bool:
        if ra is None or dec is None:
            return False
        d1, d2 = math.radians(self.dec), math.radians(dec)
        cos_d = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(math.radians(ra - self.ra))
        return cos_d >= self._cos_r - 1e-12


def parse_cone(ra: Any, dec: Any, radius: Any) -> Cone:
    """A Cone from user input; ApiError(400) naming the bad value (ra 0..360, dec -90..90, radius 0..180)."""
    try:
        ra_f, dec_f, r_f = float(ra), float(dec), float(radius)
    except (TypeError, ValueError):
        raise ApiError(400, "a sky region needs numbers ra, dec and radius (degrees)") from None
    if not all(math.isfinite(v) for v in (ra_f, dec_f, r_f)):
        raise ApiError(400, "ra, dec and radius must be finite numbers")
    if not 0 <= ra_f < 360:
        raise ApiError(400, f"ra {ra_f} is out of range: give 0 <= ra < 360 degrees")
    if not -90 <= dec_f <= 90:
        raise ApiError(400, f"dec {dec_f} is out of range: give -90 <= dec <= 90 degrees")
    if not 0 < r_f <= 180:
        raise ApiError(400, f"radius {r_f} is out of range: give 0 < radius <= 180 degrees")
    return Cone(ra_f, dec_f, r_f)


def visible_clause(group_ids: set[int] | None):
    """SQL condition: the events the holder of `group_ids` may see (None: all, for system admins)."""
    if group_ids is None:
        return text("true")
    return LiveEvent.group_ids.overlap(sorted(group_ids) or [-1])


def recent_events(
    session: Session, group_ids: set[int] | None, *, since: int | None = None, limit: int = 100,
    kinds: list[str] | None = None, group_id: int | None = None, cone: Cone | None = None,
) -> list[dict]:
    """Events the reader may see: after `since` (oldest first, to resume a feed) or else the newest `limit`
    (newest first)."""
    q = select(LiveEvent).where(visible_clause(group_ids))
    if kinds:
        q = q.where(LiveEvent.kind.in_(kinds))
    if group_id is not None:
        q = q.where(LiveEvent.group_ids.any(group_id))
    if cone is not None:
        # A box on dec first (the exact cone is checked below).
        q = q.where(LiveEvent.dec.between(cone.dec - cone.radius, cone.dec + cone.radius))
    q = q.where(LiveEvent.id > since).order_by(LiveEvent.id) if since is not None else q.order_by(LiveEvent.id.desc())
    out = []
    for row in session.scalars(q.limit(limit * 4 if cone else limit)):
        if cone is not None and not cone.contains(row.ra, row.dec):
            continue
        out.append(event_as_json(row))
        if len(out) >= limit:
            break
    return out


def prune(session: Session, keep_days: float) -> int:
    """Delete events older than `keep_days`; the number deleted."""
    cutoff = utcnow() - timedelta(days=float(keep_days))
    n = session.execute(delete(LiveEvent).where(LiveEvent.created_at < cutoff)).rowcount
    session.commit()
    return n or 0


def user_group_ids(session: Session, user: User) -> set[int] | None:
    """The groups whose events `user` may see (None: every group)."""
    from ..domain.access import accessible_group_ids

    return accessible_group_ids(session, user)



