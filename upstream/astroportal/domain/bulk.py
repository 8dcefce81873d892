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

from sqlalchemy import Text, any_, bindparam, cast, select, text, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from ..array_params import array_literal, json_literal
from ..errors import ApiError, forbidden, not_found
from ..events import Event, record
from ..models import Obj, User
from ..models.base import utcnow
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

# The look-ups are constant too: a list of keys is one array parameter (`= ANY`, or a join to the unnest of
# several), never an IN list that SQLAlchemy would render again for each batch size. Statements built from the
# model (the visibility rule of access.obj_visible_clause) are built here once, on the tables (no ORM entities:
# rows, not objects, so nothing to flush or to track).
_OBJS_T = Obj.__table__
_IDS = any_(cast(bindparam("ids", type_=Text), ARRAY(Text)))  # an array_literal of object ids
_VISIBLE = access.obj_visible_clause(None, bindparam("group_ids", expanding=True))  # a reader's few groups
_OBJ_ROW = (_OBJS_T.c.id, _OBJS_T.c.ra, _OBJS_T.c.dec, _OBJS_T.c.redshift, _OBJS_T.c.origin, _OBJS_T.c.alias)
_OBJS_SQL = select(*_OBJ_ROW, true().label("visible")).where(_OBJS_T.c.id == _IDS)
_OBJS_VISIBILITY_SQL = select(*_OBJ_ROW, _VISIBLE.label("visible")).where(_OBJS_T.c.id == _IDS)
_VISIBLE_IDS_SQL = select(_OBJS_T.c.id).where(_OBJS_T.c.id == _IDS, _VISIBLE)
_ALL_IDS_SQL = select(_OBJS_T.c.id).where(_OBJS_T.c.id == _IDS)
# Active saves among the batch's objects and groups (the pairs are picked out of these in Python).
_ACTIVE_SAVES_SQL = text("""
SELECT obj_id, group_id FROM sources
WHERE obj_id = ANY(CAST(:obj_ids AS text[])) AND group_id = ANY(CAST(:group_ids AS integer[])) AND active IS true
""")
_FILTER_GROUPS_SQL = text("SELECT id, group_id FROM filters WHERE id = ANY(CAST(:ids AS integer[]))")
_KNOWN_PASSES_SQL = text("""
SELECT c.id, c.obj_id, c.filter_id, c.passed_at
FROM candidates c
JOIN unnest(CAST(:obj_id AS text[]), CAST(:filter_id AS integer[]), CAST(:passed_at AS timestamp[]))
     AS k(obj_id, filter_id, passed_at)
  ON c.obj_id = k.obj_id AND c.filter_id = k.filter_id AND c.passed_at = k.passed_at
""")
# The writer's own classifications of the batch's objects, oldest first (the first of a class is the one updated).
_OWN_CLASSIFICATIONS_SQL = text("""
SELECT id, obj_id, taxonomy_id, classification, probability FROM classifications
WHERE obj_id = ANY(CAST(:obj_ids AS text[])) AND author_id = :author_id
ORDER BY id
""")
_INSERT_CLASSIFICATIONS_SQL = text("""
INSERT INTO classifications (obj_id, taxonomy_id, classification, probability, author_id, author_name)
SELECT r.c_obj_id, r.c_taxonomy_id, r.c_classification, r.c_probability, :author_id, :author_name
FROM unnest(CAST(:obj_id AS text[]), CAST(:taxonomy_id AS integer[]), CAST(:classification AS text[]),
            CAST(:probability AS float8[]))
     WITH ORDINALITY AS r(c_obj_id, c_taxonomy_id, c_classification, c_probability, n)
ORDER BY r.n
RETURNING id, obj_id, taxonomy_id, classification
""")
# As the ORM's flush of a changed probability: `modified` is the writer's clock (Timestamped's onupdate).
_UPDATE_PROBABILITIES_SQL = text("""
UPDATE classifications c SET probability = r.probability, modified = :now
FROM unnest(CAST(:id AS integer[]), CAST(:probability AS float8[])) AS r(id, probability)
WHERE c.id = r.id
""")
_CLASSIFICATION_LINKS_SQL = text("""
SELECT classification_id, group_id FROM classification_groups WHERE classification_id = ANY(CAST(:ids AS integer[]))
""")
_UNLINK_CLASSIFICATIONS_SQL = text(
    "DELETE FROM classification_groups WHERE classification_id = ANY(CAST(:ids AS integer[]))")
_LINK_CLASSIFICATIONS_SQL = text("""
INSERT INTO classification_groups (classification_id, group_id)
SELECT * FROM unnest(CAST(:owner_id AS integer[]), CAST(:group_id AS integer[]))
""")
_KNOWN_ANNOTATIONS_SQL = text("""
SELECT a.id, a.obj_id, a.origin, a.author_id, a.data
FROM annotations a
JOIN unnest(CAST(:obj_id AS text[]), CAST(:origin AS text[])) AS k(obj_id, origin)
  ON a.obj_id = k.obj_id AND a.origin = k.origin
""")
_ANNOTATION_LINKS_SQL = text("""
SELECT annotation_id, group_id FROM annotation_groups WHERE annotation_id = ANY(CAST(:ids AS integer[]))
""")
_UPDATE_ANNOTATIONS_SQL = text("""
UPDATE annotations a SET data = CAST(r.data AS jsonb), modified = now()
FROM unnest(CAST(:id AS integer[]), CAST(:data AS text[])) AS r(id, data)
WHERE a.id = r.id
""")
_INSERT_ANNOTATIONS_SQL = text("""
INSERT INTO annotations (obj_id, origin, data, author_id, author_name)
SELECT r.a_obj_id, r.a_origin, CAST(r.a_data AS jsonb), :author_id, :author_name
FROM unnest(CAST(:obj_id AS text[]), CAST(:origin AS text[]), CAST(:data AS text[]))
     WITH ORDINALITY AS r(a_obj_id, a_origin, a_data, n)
ORDER BY r.n
ON CONFLICT (obj_id, origin) DO NOTHING
RETURNING id, obj_id, origin
""")
_UNLINK_ANNOTATIONS_SQL = text("DELETE FROM annotation_groups WHERE annotation_id = ANY(CAST(:ids AS integer[]))")
_LINK_ANNOTATIONS_SQL = text("""
INSERT INTO annotation_groups (annotation_id, group_id)
SELECT * FROM unnest(CAST(:owner_id AS integer[]), CAST(:group_id AS integer[]))
""")


def _column(rows: list[dict], key: str) -> str:
    return array_literal([row[key] for row in rows])


def _times(values: list) -> str:
    """array_literal of naive datetimes (passed_at), without its per-element dispatch: ISO strings need no escaping."""
    return '{"' + '","'.join(t.isoformat() for t in values) + '"}' if values else "{}"


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
    if data.keys() <= allowed:
        return
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


def _objs(session: Session, user: User, obj_ids: set[str]) -> dict:
    """{obj_id: row} of those of `obj_ids` that exist: id, ra, dec, redshift, origin, alias, and `visible`
    (whether `user` may read it), in one query."""
    groups = access.accessible_group_ids(session, user)
    params: dict[str, Any] = {"ids": array_literal(sorted(obj_ids))}
    if groups is None:
        return {r.id: r for r in session.execute(_OBJS_SQL, params)}
    params["group_ids"] = sorted(groups)
    return {r.id: r for r in session.execute(_OBJS_VISIBILITY_SQL, params)}


def _ensure_objs(session: Session, user: User, items: list[tuple[int, str, dict]], *, update_existing: bool) -> set[str]:
    """`sources.ensure_obj` for each (index in the batch, obj_id, fields) of a batch, in a handful of statements; returns the ids
    created. The rules are ensure_obj's, item by item (an error names the first item that would fail alone): an
    object the writer cannot read is answered as if absent and keeps its fields (`access.check_write_to_hidden_obj`);
    a new one needs a position; an existing one's fields change only as `access.may_edit_obj` allows."""
    wanted: dict[str, dict] = {}
    for _, obj_id, fields in items:
        wanted.setdefault(obj_id, {}).update(fields)
    # Rows, not ORM objects: an alert sent again changes nothing, and loading (then flushing) hundreds of objects
    # to find that out cost more than the rest of the request.
    existing = _objs(session, user, set(wanted))
    visible = {o for o, r in existing.items() if r.visible}
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
            found = _objs(session, user, set(raced))
            existing.update(found)
            raced_visible = {o for o, r in found.items() if r.visible}
            _check_hidden(items, existing, raced_visible, set(wanted) - set(raced))
            visible |= raced_visible
    if update_existing:
        # Scope OBJECT of access_rules.py, as in ensure_obj: another group's object keeps its fields.
        # The changes first: an alert sent again changes nothing, and then nobody's rights need looking up.
        manager = can_manage_sources(user)
        changes: dict[str, dict] = {}
        for obj_id, row in existing.items():
            if obj_id not in visible:
                continue
            for field, value in wanted[obj_id].items():
                current = getattr(row, field)
                if field in ("ra", "dec"):
                    if manager and value is not None and value != current:
                        changes.setdefault(obj_id, {})[field] = value
                elif value is not None and (current is None or current == [] or manager) and value != current:
                    changes.setdefault(obj_id, {})[field] = value
        if changes:
            editable = access.editable_obj_ids(session, user, list(changes))
            changes = {o: c for o, c in changes.items() if o in editable}
        if changes:
            # Through the ORM, as ensure_obj: a moved object's healpix follows (models.astro), `modified` is set.
            for obj in session.scalars(select(Obj).where(Obj.id.in_(sorted(changes)))):
                for field, value in changes[obj.id].items():
                    setattr(obj, field, value)
    return created


def _check_hidden(items: list[tuple[int, str, dict]], existing: dict, visible: set[str], skip: set[str]) -> None:
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
        active: set[tuple[str, int]] = set()
        if pairs:
            active = set(map(tuple, session.execute(_ACTIVE_SAVES_SQL, {
                "obj_ids": array_literal(sorted({o for o, _ in pairs})),
                "group_ids": array_literal(sorted({g for _, g in pairs}))})))
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
    filters = dict(map(tuple, session.execute(_FILTER_GROUPS_SQL, {"ids": array_literal(all_filters)})))
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
        existing = _known_passes(session, keys)
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
                "passed_at": _times([t for _, _, t in missing]),
                "passing_alert_id": array_literal([alert_ids[k] for k in missing]),
                "uploader_id": user.id}).all()
            passes: dict[tuple, list[tuple[int, int]]] = {(c[0], c[3]): [] for c in checked}  # the batch's order
            for cid, o, f, t in inserted:
                passes[(o, t)].append((cid, f))
            for (obj_id, _), new in ((k, v) for k, v in passes.items() if v):
                # As post_candidate: one event per object and time of passing, for the passes that are new.
                record(session, Event("candidate.passed", obj_ids=(obj_id,), ids=tuple(sorted(c for c, _ in new)),
                                      group_ids=tuple(sorted({filters[f] for _, f in new})), user_id=user.id))
            existing.update({(o, f, t): cid for cid, o, f, t in inserted})
            raced = [k for k in missing if k not in existing]  # recorded meanwhile by another writer
            if raced:
                existing.update(_known_passes(session, raced))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return [{"ids": [existing[(c[0], f, c[3])] for f in c[2]]} for c in checked]


def _known_passes(session: Session, keys: list[tuple]) -> dict[tuple, int]:
    """{(obj_id, filter_id, passed_at): candidate id} of the passes among `keys` already recorded."""
    return {(o, f, t): cid for cid, o, f, t in session.execute(_KNOWN_PASSES_SQL, {
        "obj_id": array_literal([k[0] for k in keys]), "filter_id": array_literal([k[1] for k in keys]),
        "passed_at": _times([k[2] for k in keys])})}


def _visible_among(session: Session, user: User, items: list, field: str) -> set[str]:
    """The objects named by `field` of the items that `user` may read: one query for the whole batch, so that
    each item's check can answer a hidden object exactly as the single form does (as absent)."""
    named = {item.get(field) for item in items if isinstance(item, dict)}
    return _visible_objs(session, user, {o for o in named if isinstance(o, str) and "\x00" not in o})


def _visible_objs(session: Session, user: User, obj_ids: set[str]) -> set[str]:
    if not obj_ids:
        return set()
    groups = access.accessible_group_ids(session, user)
    params: dict[str, Any] = {"ids": array_literal(sorted(obj_ids))}
    if groups is None:
        return set(session.execute(_ALL_IDS_SQL, params).scalars())
    params["group_ids"] = sorted(groups)
    return set(session.execute(_VISIBLE_IDS_SQL, params).scalars())


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
        ids = _write_classifications(session, user, checked, groups)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return ids


class _Class:
    """One classification of a batch: its id (None until a new one is inserted), its probability and groups as
    stored and as the batch's items leave them."""

    __slots__ = ("id", "key", "probability", "groups", "stored_probability", "stored_groups", "new", "created_with")

    def __init__(self, key: tuple, row_id: int | None, probability: float | None, groups: set[int] | None) -> None:
        self.key, self.id, self.probability, self.groups = key, row_id, probability, groups
        self.stored_probability, self.stored_groups = probability, groups
        self.new = row_id is None
        self.created_with: list[int] = []


def _write_classifications(session: Session, user: User, checked: list[tuple], groups: "_Groups") -> list[int]:
    """The writes of classify_many, item by item as create_classification then PUT would make them, in a handful
    of statements: the items are applied in order to the batch's classifications (the writer's own, loaded in
    one query, and the new ones), then each table is written once."""
    if not checked:
        return []
    mine: dict[tuple, _Class] = {}
    for cid, obj_id, taxonomy_id, cls, probability in session.execute(_OWN_CLASSIFICATIONS_SQL, {
            "obj_ids": array_literal(sorted({c[0] for c in checked})), "author_id": user.id}):
        mine.setdefault((obj_id, taxonomy_id, cls), _Class((obj_id, taxonomy_id, cls), cid, probability, None))
    if mine and any(c[5] is not None for c in checked):  # groups given: those of the stored ones are compared
        links: dict[int, set[int]] = {c.id: set() for c in mine.values()}
        for cid, gid in session.execute(_CLASSIFICATION_LINKS_SQL, {"ids": array_literal(sorted(links))}):
            links[cid].add(gid)
        for c in mine.values():
            c.groups = c.stored_groups = links[c.id]
    created: list[_Class] = []
    order: list[_Class] = []
    default_groups = None
    for obj_id, taxonomy_id, cls, probability, has_probability, gids in checked:
        key = (obj_id, taxonomy_id, cls)
        c = mine.get(key)
        if c is None:
            if gids is None:
                default_groups = default_groups or groups(None)
                gids = default_groups
            c = mine[key] = _Class(key, None, probability, set(gids))
            c.created_with = sorted(gids)
            created.append(c)
        else:
            if has_probability:
                c.probability = probability
            if gids is not None:
                c.groups = set(gids)
        order.append(c)
    if created:
        inserted = {(o, t, k): cid for cid, o, t, k in session.execute(_INSERT_CLASSIFICATIONS_SQL, {
            "obj_id": array_literal([c.key[0] for c in created]),
            "taxonomy_id": array_literal([c.key[1] for c in created]),
            "classification": array_literal([c.key[2] for c in created]),
            "probability": array_literal([c.probability for c in created]),
            "author_id": user.id, "author_name": user.username})}
        for c in created:
            c.id = inserted[c.key]
    # A stored one is written only where the batch leaves it different (as the ORM's flush compares the values a
    # row ends with to those loaded): sending a batch again writes nothing.
    changed = [c for c in mine.values() if not c.new and c.probability != c.stored_probability]
    if changed:
        session.execute(_UPDATE_PROBABILITIES_SQL, {"id": array_literal([c.id for c in changed]),
                                                    "probability": array_literal([c.probability for c in changed]),
                                                    "now": utcnow()})
    regrouped = [c for c in mine.values() if not c.new and c.groups != c.stored_groups]
    if regrouped:
        session.execute(_UNLINK_CLASSIFICATIONS_SQL, {"ids": array_literal([c.id for c in regrouped])})
    linked = [(c.id, g) for c in (*created, *regrouped) for g in sorted(c.groups)]
    if linked:
        session.execute(_LINK_CLASSIFICATIONS_SQL, {"owner_id": array_literal([i for i, _ in linked]),
                                                    "group_id": array_literal([g for _, g in linked])})
    for c in created:
        record(session, Event("classification.added", obj_ids=(c.key[0],), ids=(c.id,),
                              group_ids=tuple(c.created_with), user_id=user.id))
    return [c.id for c in order]


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
        keys = sorted(latest)
        known = {(o, org): (aid, author, data) for aid, o, org, author, data in session.execute(
            _KNOWN_ANNOTATIONS_SQL, {"obj_id": array_literal([o for o, _ in keys]),
                                     "origin": array_literal([org for _, org in keys])})}
        ids = {k: v[0] for k, v in known.items()}
        links: dict[int, set[int]] = {}
        if known:
            for aid, gid in session.execute(_ANNOTATION_LINKS_SQL, {"ids": array_literal(sorted(ids.values()))}):
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
                changed.append((aid, values))
            if gids is not None and set(gids) != links.get(aid, set()):
                regroup.append((aid, gids))
        if changed:
            session.execute(_UPDATE_ANNOTATIONS_SQL, {"id": array_literal([aid for aid, _ in changed]),
                                                      "data": json_literal(values for _, values in changed)})
        link_rows: list[tuple[int, int]] = []
        if regroup:
            session.execute(_UNLINK_ANNOTATIONS_SQL, {"ids": array_literal([aid for aid, _ in regroup])})
            link_rows += [(aid, g) for aid, gids in regroup for g in gids]
        new = [(key, v) for key, v in latest.items() if key not in known]
        if new:
            inserted = {(o, org): aid for aid, o, org in session.execute(_INSERT_ANNOTATIONS_SQL, {
                "obj_id": array_literal([o for (o, _), _ in new]),
                "origin": array_literal([org for (_, org), _ in new]),
                "data": json_literal(values for _, (_, values, _) in new),
                "author_id": user.id, "author_name": user.username})}
            if len(inserted) < len(new):
                raise ApiError(409, "an annotation of this batch was posted concurrently; nothing was written, send "
                                    "the batch again")
            ids.update(inserted)
            default_groups = None
            for key, (_, _, gids) in new:
                if gids is None:
                    default_groups = default_groups or groups(None)
                    gids = default_groups
                link_rows += [(inserted[key], g) for g in gids]
        if link_rows:
            session.execute(_LINK_ANNOTATIONS_SQL, {"owner_id": array_literal([a for a, _ in link_rows]),
                                                    "group_id": array_literal([g for _, g in link_rows])})
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return [ids[(c[0], c[1])] for c in checked]
