"""Set-based list forms for alert brokers: a batch of sources, candidates, classifications or thumbnails written
with a handful of statements whatever its size, in one transaction.

Each item is checked by the single-object form's own validators (same fields, same messages, prefixed with the
item's index); the database work is then done for the whole batch at once: one look-up of the objects, one
insert of the new ones, one of the saves, and so on. A broker sends hundreds of alerts a second; one query per
object and check would not keep up. Semantics are the single forms' (idempotent where they are).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..array_params import array_literal
from ..errors import ApiError, forbidden, not_found
from ..events import Event, record
from ..models import (Annotation, Candidate, Classification, Filter, Obj, Source, User,
                      annotation_groups, classification_groups)
from . import access
from .annotations import CLASSIFICATION_FIELDS, _id_field, _probability, annotation_data, annotation_origin
from .batch import check_items
from .candidates import _alert_id, parse_time
from .sources import OBJ_FIELDS, body_group_ids, can_manage_sources, check_obj_fields, check_obj_id
from ..gw.skymaps import healpix29
from ..validate import shown
from .taxonomies import check_no_nul, get_visible_taxonomy, taxonomy_classes
from .thumbnails import check_item as check_thumbnail, store_images, visible_obj_ids


# The batch inserts: constant SQL (each column one array parameter, see array_params), so SQLAlchemy compiles
# each once per process whatever the batch size, and rows are inserted in the batch's order.
# New objects, as the objs table's defaults would write them (healpix computed here, as its column default does).
_INSERT_OBJS_SQL = text("""
INSERT INTO objs (id, ra, dec, redshift, origin, alias, healpix)
SELECT r.o_id, r.o_ra, r.o_dec, r.o_redshift, r.o_origin, CAST(r.o_alias AS varchar[]), r.o_healpix
FROM unnest(CAST(:id AS text[]), CAST(:ra AS float8[]), CAST(:dec AS float8[]), CAST(:redshift AS float8[]),
            CAST(:origin AS text[]), CAST(:alias AS text[]), CAST(:healpix AS bigint[]))
     WITH ORDINALITY AS r(o_id, o_ra, o_dec, o_redshift, o_origin, o_alias, o_healpix, n)
ORDER BY r.n
ON CONFLICT (id) DO NOTHING
RETURNING id
""")
# Saves: a new one, or an unsaved one made active again (an active one is left alone).
_SAVE_SOURCES_SQL = text("""
INSERT INTO sources (obj_id, group_id, saved_by_id)
SELECT r.s_obj_id, r.s_group_id, :user_id
FROM unnest(CAST(:obj_id AS text[]), CAST(:group_id AS integer[])) WITH ORDINALITY AS r(s_obj_id, s_group_id, n)
ORDER BY r.n
ON CONFLICT (obj_id, group_id) DO UPDATE SET active = true, saved_by_id = :user_id, saved_at = now(),
    unsaved_by_id = NULL, unsaved_at = NULL
WHERE sources.active IS false
""")
# Passes not yet recorded (one recorded meanwhile by another writer is skipped, not duplicated).
_INSERT_CANDIDATES_SQL = text("""
INSERT INTO candidates (obj_id, filter_id, passed_at, passing_alert_id, uploader_id)
SELECT r.c_obj_id, r.c_filter_id, r.c_passed_at, r.c_alert_id, :uploader_id
FROM unnest(CAST(:obj_id AS text[]), CAST(:filter_id AS integer[]), CAST(:passed_at AS timestamp[]),
            CAST(:passing_alert_id AS bigint[])) WITH ORDINALITY AS r(c_obj_id, c_filter_id, c_passed_at, c_alert_id, n)
ORDER BY r.n
ON CONFLICT (obj_id, filter_id, passed_at) DO NOTHING
RETURNING id, obj_id, filter_id, passed_at
""")


def _column(rows: list[dict], key: str) -> str:
    return array_literal([row[key] for row in rows])


def _healpix_column(rows: list[dict]) -> str:
    """objs.healpix of each new row, as the column's default computes it (None without a position)."""
    placed = [i for i, row in enumerate(rows) if row["ra"] is not None and row["dec"] is not None]
    values: list[int | None] = [None] * len(rows)
    if placed:
        pix = healpix29([rows[i]["ra"] for i in placed], [rows[i]["dec"] for i in placed])
        for i, p in zip(placed, pix.tolist()):
            values[i] = p
    return array_literal(values)


def _at(i: int, exc: ApiError) -> ApiError:
    return ApiError(exc.status_code, f"item {i} of the batch: {exc.message}; nothing was written", {"index": i, **exc.data})


def _each(items: list[dict], check) -> list:
    out = []
    for i, item in enumerate(items):
        try:
            out.append(check(item))
        except ApiError as exc:
            raise _at(i, exc) from None
    return out


def _unknown(data: dict, allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ApiError(400, f"unknown field(s) {extra}; accepted fields: {sorted(allowed)}")


class _Groups:
    """target_group_ids once per distinct request of groups in a batch."""

    def __init__(self, session: Session, user: User, **kw: Any) -> None:
        self.session, self.user, self.kw, self.cache = session, user, kw, {}

    def __call__(self, value: Any) -> list[int]:
        key = repr(value)
        if key not in self.cache:
            self.cache[key] = access.target_group_ids(self.session, self.user, value, **self.kw)
        return self.cache[key]


def _ensure_objs(session: Session, user: User, items: list[tuple[int, str, dict]], *, update_existing: bool) -> set[str]:
    """`sources.ensure_obj` for each (index in the batch, obj_id, fields) of a batch, in a handful of statements; returns the ids
    created. The rules are ensure_obj's, item by item (an error names the first item that would fail alone): an
    object the writer cannot read is answered as if absent and keeps its fields (`access.check_write_to_hidden_obj`);
    a new one needs a position; an existing one's fields change only as `access.may_edit_obj` allows."""
    wanted: dict[str, dict] = {}
    for _, obj_id, fields in items:
        wanted.setdefault(obj_id, {}).update(fields)
    existing = {o.id: o for o in session.scalars(select(Obj).where(Obj.id.in_(list(wanted))))}
    visible = _visible_objs(session, user, set(existing))
    _check_hidden(items, existing, visible, set())
    new = [{"id": obj_id, **{k: fields.get(k) for k in OBJ_FIELDS}}
           for obj_id, fields in wanted.items() if obj_id not in existing]
    created: set[str] = set()
    if new:
        params = {k: _column(new, k) for k in ("id", "ra", "dec", "redshift", "origin", "alias")}
        params["healpix"] = _healpix_column(new)
        created = set(session.execute(_INSERT_OBJS_SQL, params).scalars())
        raced = [row["id"] for row in new if row["id"] not in created]
        if raced:  # created by another writer a moment ago: an existing object like the others
            for obj in session.scalars(select(Obj).where(Obj.id.in_(raced)).execution_options(populate_existing=True)):
                existing[obj.id] = obj
            raced_visible = _visible_objs(session, user, set(raced))
            _check_hidden(items, existing, raced_visible, set(wanted) - set(raced))
            visible |= raced_visible
    if update_existing:
        # Scope OBJECT of access_rules.py, as in ensure_obj: another group's object keeps its fields.
        candidates = [o for o in existing if o in visible and wanted[o]]
        editable = access.editable_obj_ids(session, user, candidates) if candidates else set()
        manager = can_manage_sources(user)
        for obj_id in editable:
            obj = existing[obj_id]
            for field, value in wanted[obj_id].items():
                current = getattr(obj, field)
                if field in ("ra", "dec"):
                    if manager and value is not None and value != current:
                        setattr(obj, field, value)
                elif value is not None and (current is None or current == [] or manager) and value != current:
                    setattr(obj, field, value)
    return created


def _check_hidden(items: list[tuple[int, str, dict]], existing: dict[str, Obj], visible: set[str], skip: set[str]) -> None:
    """The refusals of ensure_obj, in item order: a new object first named without a position, an object the
    writer cannot read named without its position or with another one. Ids in `skip` were checked already."""
    seen: set[str] = set()
    for i, obj_id, fields in items:
        if obj_id in skip:
            continue
        obj = existing.get(obj_id)
        try:
            if obj is None:
                if obj_id not in seen:  # the first item creates it; the next ones find it (visible: theirs)
                    for field in ("ra", "dec"):
                        if fields.get(field) is None:
                            raise access.missing_position(field, obj_id)
            elif obj_id not in visible:
                access.check_write_to_hidden_obj(obj, fields)
        except ApiError as exc:
            raise _at(i, exc) from None
        seen.add(obj_id)


def post_sources(session: Session, user: User, items: list[dict]) -> list[dict]:
    """POST /api/sources with a list: each item as post_source, plus `created`."""
    check_items(items, "source")
    groups = _Groups(session, user, default="all", need_save=True)
    allowed = {"id", "group_ids", *OBJ_FIELDS}

    def check(data: dict) -> tuple[str, dict, list[int]]:
        _unknown(data, allowed)
        return (check_obj_id(data.get("id")), check_obj_fields(data),
                groups(body_group_ids(data.get("group_ids"), "group_ids")))

    checked = _each(items, check)
    try:
        created = _ensure_objs(session, user, [(i, c[0], c[1]) for i, c in enumerate(checked)],
                               update_existing=True)
        pairs = sorted({(obj_id, g) for obj_id, _, gids in checked for g in gids})
        active = set(session.execute(select(Source.obj_id, Source.group_id).where(
            tuple_(Source.obj_id, Source.group_id).in_(pairs), Source.active.is_(True))).all()) if pairs else set()
        missing = [p for p in pairs if p not in active]
        if missing:
            session.execute(_SAVE_SOURCES_SQL, {"obj_id": array_literal([o for o, _ in missing]),
                                                "group_id": array_literal([g for _, g in missing]),
                                                "user_id": user.id})
            newly: dict[str, list[int]] = {obj_id: [] for obj_id, _, _ in checked}  # in the batch's order
            for obj_id, group_id in missing:
                newly[obj_id].append(group_id)
            for obj_id, group_ids in ((o, g) for o, g in newly.items() if g):  # as save_to_groups: one per object
                record(session, Event("source.saved", obj_ids=(obj_id,), group_ids=tuple(sorted(group_ids)),
                                      user_id=user.id))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return [{"id": obj_id, "saved_to_groups": sorted(gids), "created": obj_id in created}
            for obj_id, _, gids in checked]


def post_candidates(session: Session, user: User, items: list[dict]) -> list[dict]:
    """POST /api/candidates with a list: each item as post_candidate (`{"ids": [...]}` each)."""
    check_items(items, "candidate")
    allowed = {"id", "filter_ids", "passed_at", "passing_alert_id", "ra", "dec", "redshift", "origin", "alias"}

    def check(data: dict):
        _unknown(data, allowed)
        obj_id = check_obj_id(data.get("id"))
        fields = check_obj_fields(data)
        if data.get("filter_ids") is None:
            raise ApiError(400, "missing required field `filter_ids` (a list of filter ids)")
        filter_ids = body_group_ids(data["filter_ids"], "filter_ids")
        if not isinstance(filter_ids, list) or not filter_ids:
            raise ApiError(400, "`filter_ids` must be a non-empty list of integer filter ids")
        if data.get("passed_at") is None:
            raise ApiError(400, "missing required field `passed_at` (an ISO 8601 time)")
        return obj_id, fields, filter_ids, parse_time(data["passed_at"], "passed_at"), _alert_id(data.get("passing_alert_id"))

    checked = _each(items, check)
    all_filters = sorted({f for c in checked for f in c[2]})
    filters = dict(session.execute(select(Filter.id, Filter.group_id).where(Filter.id.in_(all_filters))).all())
    mine = None if user.is_system_admin else access.user_group_ids(session, user)
    for i, (_, _, filter_ids, _, _) in enumerate(checked):
        unknown = [f for f in filter_ids if f not in filters]
        if unknown:
            raise _at(i, ApiError(400, f"unknown filter id(s): {unknown}"))
        if mine is not None:
            outside = [f for f in filter_ids if filters[f] not in mine]
            if outside:
                raise _at(i, forbidden(f"you are not a member of the group(s) of filter(s) {outside}"))
    try:
        keys = sorted({(c[0], f, c[3]) for c in checked for f in c[2]})
        key_cols = tuple_(Candidate.obj_id, Candidate.filter_id, Candidate.passed_at)
        existing = {(o, f, t): cid for cid, o, f, t in session.execute(
            select(Candidate.id, Candidate.obj_id, Candidate.filter_id, Candidate.passed_at).where(key_cols.in_(keys)))}
        missing = [k for k in keys if k not in existing]
        if missing:
            # As post_candidate: only an item with a pass not yet recorded looks at (and may create) its object.
            absent = set(missing)
            _ensure_objs(session, user, [(i, c[0], c[1]) for i, c in enumerate(checked)
                                         if any((c[0], f, c[3]) in absent for f in c[2])], update_existing=False)
            alert_ids = {(c[0], f, c[3]): c[4] for c in checked for f in c[2]}
            inserted = session.execute(_INSERT_CANDIDATES_SQL, {
                "obj_id": array_literal([o for o, _, _ in missing]),
                "filter_id": array_literal([f for _, f, _ in missing]),
                "passed_at": array_literal([t for _, _, t in missing]),
                "passing_alert_id": array_literal([alert_ids[k] for k in missing]),
                "uploader_id": user.id}).all()
            passes: dict[tuple, list[tuple[int, int]]] = {(c[0], c[3]): [] for c in checked}  # the batch's order
            for cid, o, f, t in inserted:
                passes[(o, t)].append((cid, f))
            for (obj_id, _), new in ((k, v) for k, v in passes.items() if v):
                # As post_candidate: one event per object and time of passing, for the passes that are new.
                record(session, Event("candidate.passed", obj_ids=(obj_id,), ids=tuple(sorted(c for c, _ in new)),
                                      group_ids=tuple(sorted({filters[f] for _, f in new})), user_id=user.id))
            existing.update({(o, f, t): cid for cid, o, f, t in session.execute(
                select(Candidate.id, Candidate.obj_id, Candidate.filter_id, Candidate.passed_at).where(
                    key_cols.in_(missing)))})
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return [{"ids": [existing[(c[0], f, c[3])] for f in c[2]]} for c in checked]


def _visible_among(session: Session, user: User, items: list, field: str) -> set[str]:
    """The objects named by `field` of the items that `user` may read: one query for the whole batch, so that
    each item's check can answer a hidden object exactly as the single form does (as absent)."""
    named = {item.get(field) for item in items if isinstance(item, dict)}
    return _visible_objs(session, user, {o for o in named if isinstance(o, str) and "\x00" not in o})


def _visible_objs(session: Session, user: User, obj_ids: set[str]) -> set[str]:
    query = select(Obj.id).where(Obj.id.in_(sorted(obj_ids)))
    clause = access.obj_visible_clause(user, access.accessible_group_ids(session, user))
    if clause is not None:
        query = query.where(clause)
    return set(session.scalars(query))


def classify_many(session: Session, user: User, items: list[dict]) -> list[int]:
    """POST /api/classification with a list: each item as create_classification, except that your own
    classification of the object with the same taxonomy and class gets the new probability (and groups, when
    given) instead of a duplicate."""
    check_items(items, "classification")
    groups = _Groups(session, user, default="all")
    taxonomies: dict[int, set[str]] = {}

    def check(data: dict):
        _unknown(data, CLASSIFICATION_FIELDS)
        obj_id = data.get("obj_id")
        if obj_id is None:
            raise ApiError(400, "missing required field `obj_id`")
        if not isinstance(obj_id, str) or not obj_id.strip():
            raise ApiError(400, f"`obj_id` must be a non-empty string, got {obj_id!r:.80}")
        check_no_nul(obj_id, "obj_id")
        if "classification" not in data:
            raise ApiError(400, "missing required field `classification`")
        taxonomy_id = _id_field(data, "taxonomy_id")
        probability = _probability(data.get("probability"))
        if obj_id not in visible:  # as create_classification: the object before the taxonomy
            raise not_found(f"object {shown(obj_id)}")
        if taxonomy_id not in taxonomies:
            t = get_visible_taxonomy(session, user, taxonomy_id, field="taxonomy_id")
            taxonomies[taxonomy_id] = (t.name, t.version, taxonomy_classes(t.hierarchy))
        cls = data["classification"]
        if not isinstance(cls, str) or not cls.strip():
            raise ApiError(400, f"`classification` must be a non-empty string, got {cls!r:.80}")
        name, version, classes = taxonomies[taxonomy_id]
        if cls not in classes:
            raise ApiError(400, f"classification {cls!r} is not a class of taxonomy {name!r} "
                                f"(version {version}, id {taxonomy_id})")
        gids = groups(data.get("group_ids")) if "group_ids" in data else None
        return obj_id, taxonomy_id, cls, probability, "probability" in data, gids

    visible = _visible_among(session, user, items, "obj_id")
    checked = _each(items, check)
    try:
        keys = sorted({(c[0], c[1], c[2]) for c in checked})
        rows = session.scalars(select(Classification).where(
            tuple_(Classification.obj_id, Classification.taxonomy_id, Classification.classification).in_(keys),
            Classification.author_id == user.id).order_by(Classification.id)).all()
        mine: dict[tuple, Classification] = {}
        for r in rows:
            mine.setdefault((r.obj_id, r.taxonomy_id, r.classification), r)
        ids = []
        default_groups = None
        for obj_id, taxonomy_id, cls, probability, has_probability, gids in checked:
            row = mine.get((obj_id, taxonomy_id, cls))
            if row is None:
                row = Classification(obj_id=obj_id, taxonomy_id=taxonomy_id, classification=cls,
                                     probability=probability, author_id=user.id, author_name=user.username)
                session.add(row)
                session.flush()
                if gids is None:
                    default_groups = default_groups or groups(None)
                    gids = default_groups
                session.execute(classification_groups.insert(),
                                [{"classification_id": row.id, "group_id": g} for g in gids])
                mine[(obj_id, taxonomy_id, cls)] = row
                record(session, Event("classification.added", obj_ids=(obj_id,), ids=(row.id,),
                                      group_ids=tuple(sorted(gids)), user_id=user.id))
            else:
                if has_probability and row.probability != probability:
                    row.probability = probability
                if gids is not None:
                    current = set(session.scalars(select(classification_groups.c.group_id).where(
                        classification_groups.c.classification_id == row.id)))
                    if current != set(gids):
                        session.execute(classification_groups.delete().where(
                            classification_groups.c.classification_id == row.id))
                        session.execute(classification_groups.insert(),
                                        [{"classification_id": row.id, "group_id": g} for g in gids])
            ids.append(row.id)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return ids


def post_thumbnails(session: Session, user: User, items: list[dict], root: Path) -> list[int]:
    """POST /api/thumbnail with a list: each item as post_thumbnail (one image per object and type); every item
    is checked before anything is written."""
    check_items(items, "thumbnail")

    def check(data: dict):
        obj_id, ttype, raw, ext, origin = check_thumbnail(data)  # fields in the single form's order
        if obj_id not in visible:
            raise not_found(f"object {shown(obj_id)}")
        return obj_id, ttype, raw, ext, origin

    visible = visible_obj_ids(session, user, {o for item in items if isinstance(o := item.get("obj_id"), str)})
    checked = _each(items, check)
    latest = {}
    for obj_id, ttype, raw, ext, origin in checked:  # the same object and type twice: the last one wins
        latest[(obj_id, ttype)] = (raw, ext, origin)
    ids = store_images(session, user, latest, root)  # one pack file for the batch's new images, then the rows
    return [ids[(c[0], c[1])] for c in checked]


def annotate_many(session: Session, user: User, items: list[dict]) -> list[int]:
    """POST /api/annotations: each item as create_annotation (with its `obj_id`), except that an object's
    annotation from the same origin is updated instead of refused: its data replaced (and its groups, when given),
    a row left alone when nothing changed. So an alert sent again changes nothing. An existing annotation is
    changed only as PUT would allow (its author, a system admin, or "Manage sources" over all its groups)."""
    check_items(items, "annotation")
    groups = _Groups(session, user, default="all")
    allowed = {"obj_id", "origin", "data", "group_ids"}

    def check(data: dict):
        _unknown(data, allowed)
        obj_id = check_obj_id(data.get("obj_id"), "obj_id")
        origin = annotation_origin(data.get("origin"))
        values = annotation_data(data.get("data"))
        if obj_id not in visible:
            raise not_found(f"object {shown(obj_id)}")
        gids = groups(data.get("group_ids")) if data.get("group_ids") is not None else None
        return obj_id, origin, values, gids

    visible = _visible_among(session, user, items, "obj_id")
    checked = _each(items, check)
    latest: dict[tuple[str, str], tuple[int, dict, list[int] | None]] = {}
    for i, (obj_id, origin, values, gids) in enumerate(checked):  # the same object and origin twice: the last wins
        latest[(obj_id, origin)] = (i, values, gids)
    try:
        table = Annotation.__table__
        known = {(o, org): (aid, author, data) for aid, o, org, author, data in session.execute(
            select(table.c.id, table.c.obj_id, table.c.origin, table.c.author_id, table.c.data).where(
                tuple_(table.c.obj_id, table.c.origin).in_(sorted(latest))))}
        ids = {k: v[0] for k, v in known.items()}
        links: dict[int, set[int]] = {}
        if known:
            for aid, gid in session.execute(select(annotation_groups.c.annotation_id, annotation_groups.c.group_id)
                                            .where(annotation_groups.c.annotation_id.in_(list(ids.values())))):
                links.setdefault(aid, set()).add(gid)
        changed, regroup = [], []
        for key, (aid, author, data) in known.items():
            i, values, gids = latest[key]
            if data == values and (gids is None or set(gids) == links.get(aid, set())):
                continue  # the same annotation again: nothing to write
            if not access.may_manage_record(session, user, author, links.get(aid, ())):
                raise _at(i, forbidden(f"object {shown(key[0])} has an annotation from origin {shown(key[1])} by "
                                       "someone else; only its author, a system admin, or a holder of \"Manage "
                                       "sources\" who administers every group it is shared with may change it"))
            if data != values:
                changed.append({"aid": aid, "data": values})
            if gids is not None and set(gids) != links.get(aid, set()):
                regroup.append((aid, gids))
        if changed:
            session.connection().execute(
                table.update().where(table.c.id == bindparam("aid")).values(data=bindparam("data"),
                                                                           modified=func.now()), changed)
        for aid, gids in regroup:
            session.execute(annotation_groups.delete().where(annotation_groups.c.annotation_id == aid))
            session.execute(annotation_groups.insert(), [{"annotation_id": aid, "group_id": g} for g in gids])
        new = [(key, v) for key, v in latest.items() if key not in known]
        if new:
            rows = [{"obj_id": o, "origin": org, "data": values, "author_id": user.id, "author_name": user.username}
                    for (o, org), (_, values, _) in new]
            inserted = {(o, org): aid for aid, o, org in session.connection().execute(
                pg_insert(table).on_conflict_do_nothing(index_elements=["obj_id", "origin"]).returning(
                    table.c.id, table.c.obj_id, table.c.origin), rows)}
            if len(inserted) < len(new):
                raise ApiError(409, "an annotation of this batch was posted concurrently; nothing was written, send "
                                    "the batch again")
            ids.update(inserted)
            default_groups = None
            link_rows = []
            for key, (_, _, gids) in new:
                if gids is None:
                    default_groups = default_groups or groups(None)
                    gids = default_groups
                link_rows += [{"annotation_id": inserted[key], "group_id": g} for g in gids]
            session.execute(annotation_groups.insert(), link_rows)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return [ids[(c[0], c[1])] for c in checked]
