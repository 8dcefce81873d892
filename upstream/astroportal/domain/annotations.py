"""Classifications, comments and annotations on objects, each visible through the groups it is shared with."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Integer, bindparam, delete, exists, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from ..errors import ApiError
from ..events import Event, record
from ..models import (Annotation, Classification, Comment, User, annotation_groups, classification_groups,
                      comment_groups)
from .access import accessible_group_ids, get_visible_obj, may_manage_record, target_group_ids
from .taxonomies import check_no_nul, get_visible_taxonomy, groups_by_owner, taxonomy_classes
from ..validate import check_string, shown

MAX_COMMENT_LENGTH = 10_000
CLASSIFICATION_FIELDS = {"obj_id", "classification", "taxonomy_id", "probability", "group_ids"}
CLASSIFICATION_UPDATE_FIELDS = {"classification", "taxonomy_id", "probability", "group_ids"}
COMMENT_FIELDS = {"text", "group_ids"}


# -- shared helpers ------------------------------------------------------------------------------------
def _check_fields(data: dict, allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ApiError(400, f"unknown field(s) {extra}; accepted fields: {sorted(allowed)}")


def _id_field(data: dict, field: str) -> int:
    """An integer id from the body; SkyPortal clients send both 3 and "3"."""
    if field not in data or data[field] is None:
        raise ApiError(400, f"missing required field `{field}`")
    value = data[field]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ApiError(400, f"`{field}` must be an integer id, got {value!r:.80}")


def _probability(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError(400, f"`probability` must be a number between 0 and 1, got {value!r:.80}")
    if not 0 <= value <= 1:
        raise ApiError(400, f"`probability` must be between 0 and 1, got {value}")
    return float(value)


def may_manage(session: Session, user: User, author_id: int | None, link_table, owner_column: str, owner_id: int) -> bool:
    """Scope OWNER of access_rules.py: authors manage their own annotations; a holder of "Manage sources"
    manages those shared only with groups they administer; system admins manage everyone's."""
    groups = session.scalars(select(link_table.c.group_id).where(link_table.c[owner_column] == owner_id))
    return may_manage_record(session, user, author_id, groups)


def _visible_clause(link_table, owner_column: str, owner_id_column, groups: set[int] | None):
    if groups is None:
        return None
    link = link_table.c[owner_column]
    return exists().where(link == owner_id_column, link_table.c.group_id.in_(groups))


def _set_groups(session: Session, link_table, owner_column: str, owner_id: int, group_ids: list[int],
                new: bool = False) -> None:
    if not new:  # a record just made has no links to remove (one round trip less on every new comment)
        session.execute(delete(link_table).where(link_table.c[owner_column] == owner_id))
    session.execute(insert(link_table), [{owner_column: owner_id, "group_id": g} for g in group_ids])


# -- classifications -------------------------------------------------------------------------------------
def serialize_classification(c: Classification, groups: list[dict]) -> dict:
    return {
        "id": c.id,
        "obj_id": c.obj_id,
        "classification": c.classification,
        "probability": c.probability,
        "taxonomy_id": c.taxonomy_id,
        "author_id": c.author_id,
        "author_name": c.author_name,
        "groups": groups,
        "created_at": c.created_at,
        "modified": c.modified,
    }


def _check_class(session: Session, user: User, taxonomy_id: int, classification: Any) -> str:
    """The class name, if it is in the (visible) taxonomy's hierarchy; 400 naming it otherwise."""
    taxonomy = get_visible_taxonomy(session, user, taxonomy_id, field="taxonomy_id")
    if not isinstance(classification, str) or not classification.strip():
        raise ApiError(400, f"`classification` must be a non-empty string, got {classification!r:.80}")
    if classification not in taxonomy_classes(taxonomy.hierarchy):
        raise ApiError(
            400,
            f"classification {shown(classification)} is not a class of taxonomy {shown(taxonomy.name)} "
            f"(version {taxonomy.version}, id {taxonomy.id})",
        )
    return classification


def _visible_classification(session: Session, user: User, classification_id: int) -> Classification:
    query = select(Classification).where(Classification.id == classification_id)
    clause = _visible_clause(
        classification_groups, "classification_id", Classification.id, accessible_group_ids(session, user)
    )
    if clause is not None:
        query = query.where(clause)
    row = session.scalar(query)
    if row is None:
        raise ApiError(404, f"classification {classification_id} not found")
    return row


def create_classification(session: Session, user: User, data: dict) -> int:
    """Classify a visible object with a class from a visible taxonomy; returns the classification's id."""
    _check_fields(data, CLASSIFICATION_FIELDS)
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
    obj = get_visible_obj(session, user, obj_id)
    classification = _check_class(session, user, taxonomy_id, data["classification"])
    group_ids = target_group_ids(session, user, data.get("group_ids"), default="all")
    row = Classification(
        obj_id=obj.id,
        taxonomy_id=taxonomy_id,
        classification=classification,
        probability=probability,
        author_id=user.id,
        author_name=user.username,
    )
    session.add(row)
    session.flush()
    _set_groups(session, classification_groups, "classification_id", row.id, group_ids, new=True)
    record(session, Event("classification.added", obj_ids=(obj.id,), ids=(row.id,), group_ids=tuple(sorted(group_ids)),
                          user_id=user.id))
    session.commit()
    return row.id


def get_classification(session: Session, user: User, classification_id: int) -> dict:
    row = _visible_classification(session, user, classification_id)
    groups = groups_by_owner(session, classification_groups, "classification_id", [row.id])
    return serialize_classification(row, groups[row.id])


def update_classification(session: Session, user: User, classification_id: int, data: dict) -> None:
    """Change a classification's class, taxonomy, probability or groups (its author or "Manage sources")."""
    row = _visible_classification(session, user, classification_id)
    if not may_manage(session, user, row.author_id, classification_groups, "classification_id", row.id):
        raise ApiError(403, "only the classification's author, a system admin, or a holder of \"Manage sources\" who "
                       "administers every group it is shared with may change it")
    if "obj_id" in data and data["obj_id"] != row.obj_id:
        raise ApiError(400, "`obj_id` of a classification cannot be changed; delete it and classify the other object")
    data = {k: v for k, v in data.items() if k != "obj_id"}
    _check_fields(data, CLASSIFICATION_UPDATE_FIELDS)
    if not data:
        raise ApiError(400, f"nothing to change: send one or more of {sorted(CLASSIFICATION_UPDATE_FIELDS)}")
    taxonomy_id = _id_field(data, "taxonomy_id") if "taxonomy_id" in data else row.taxonomy_id
    classification = data.get("classification", row.classification)
    if "taxonomy_id" in data or "classification" in data:
        classification = _check_class(session, user, taxonomy_id, classification)
    probability = _probability(data["probability"]) if "probability" in data else row.probability
    group_ids = (
        target_group_ids(session, user, data["group_ids"], default="all") if "group_ids" in data else None
    )
    row.taxonomy_id = taxonomy_id
    row.classification = classification
    row.probability = probability
    if group_ids is not None:
        _set_groups(session, classification_groups, "classification_id", row.id, group_ids)
    session.commit()


def delete_classification(session: Session, user: User, classification_id: int) -> None:
    row = _visible_classification(session, user, classification_id)
    if not may_manage(session, user, row.author_id, classification_groups, "classification_id", row.id):
        raise ApiError(403, "only the classification's author, a system admin, or a holder of \"Manage sources\" who "
                       "administers every group it is shared with may delete it")
    session.delete(row)
    session.commit()


def classifications_for_obj(session: Session, user: User, obj_id: str) -> list[dict]:
    """The object's classifications visible to `user`, oldest first.

    Only the classifications' groups are checked here: the caller has already found the object visible.
    """
    query = select(Classification).where(Classification.obj_id == obj_id)
    clause = _visible_clause(
        classification_groups, "classification_id", Classification.id, accessible_group_ids(session, user)
    )
    if clause is not None:
        query = query.where(clause)
    rows = list(session.scalars(query.order_by(Classification.created_at, Classification.id)))
    groups = groups_by_owner(session, classification_groups, "classification_id", [r.id for r in rows])
    return [serialize_classification(r, groups[r.id]) for r in rows]


# -- comments --------------------------------------------------------------------------------------------
def serialize_comment(c: Comment, groups: list[dict]) -> dict:
    return {
        "id": c.id,
        "obj_id": c.obj_id,
        "text": c.text,
        "author_id": c.author_id,
        "author_name": c.author_name,
        "groups": groups,
        "created_at": c.created_at,
        "modified": c.modified,
    }


def _comment_text(data: dict) -> str:
    if "text" not in data or data["text"] is None:
        raise ApiError(400, "missing required field `text`")
    text = data["text"]
    if not isinstance(text, str):
        raise ApiError(400, f"`text` must be a string, got {text!r:.80}")
    if not text.strip():
        raise ApiError(400, "`text` must not be empty")
    if len(text) > MAX_COMMENT_LENGTH:
        raise ApiError(400, f"`text` is {len(text)} characters long; the limit is {MAX_COMMENT_LENGTH}")
    check_no_nul(text, "text")
    # Stored verbatim: escaping is the job of whatever displays it.
    return text


def _visible_comment(session: Session, user: User, obj_id: str, comment_id: int) -> Comment:
    get_visible_obj(session, user, obj_id)
    query = select(Comment).where(Comment.id == comment_id, Comment.obj_id == obj_id)
    clause = _visible_clause(comment_groups, "comment_id", Comment.id, accessible_group_ids(session, user))
    if clause is not None:
        query = query.where(clause)
    row = session.scalar(query)
    if row is None:
        raise ApiError(404, f"comment {comment_id} on object {shown(obj_id)} not found")
    return row


def _insert_comment_statement():
    """One statement for a new comment and its group links (one round trip, built once, no unit of work)."""
    table = Comment.__table__
    new = (
        insert(table)
        .values({c: bindparam(c) for c in ("obj_id", "text", "author_id", "author_name")})
        .returning(table.c.id, table.c.created_at, table.c.modified)
        .cte("new_comment")
    )
    group_ids = func.unnest(bindparam("group_ids", type_=ARRAY(Integer)))
    links = (
        insert(comment_groups)
        .from_select(["comment_id", "group_id"], select(new.c.id, group_ids).select_from(new))
        .returning(comment_groups.c.comment_id)
        .cte("new_links")
    )
    return select(new.c.id, new.c.created_at, new.c.modified).add_cte(links)


_INSERT_COMMENT = _insert_comment_statement()


def create_comment(session: Session, user: User, obj_id: str, data: dict) -> int:
    """Comment on a visible object; returns the comment's id."""
    _check_fields(data, COMMENT_FIELDS)
    text = _comment_text(data)
    obj = get_visible_obj(session, user, obj_id)
    group_ids = target_group_ids(session, user, data.get("group_ids"), default="all")
    values = {"obj_id": obj.id, "text": text, "author_id": user.id, "author_name": user.username}
    comment_id, created_at, modified = session.execute(_INSERT_COMMENT, {**values, "group_ids": group_ids}).one()
    # The new row joins the session as if it had been flushed from it, so that what reads it in this transaction
    # (the live feed's summary of the event, at commit) finds it without a query.
    row = Comment(id=comment_id, created_at=created_at, modified=modified, **values)
    make_transient_to_detached(row)
    session.add(row)
    record(session, Event("comment.added", obj_ids=(obj.id,), ids=(comment_id,), group_ids=tuple(sorted(group_ids)),
                          user_id=user.id))
    session.commit()
    return comment_id


def get_comment(session: Session, user: User, obj_id: str, comment_id: int) -> dict:
    row = _visible_comment(session, user, obj_id, comment_id)
    groups = groups_by_owner(session, comment_groups, "comment_id", [row.id])
    return serialize_comment(row, groups[row.id])


def update_comment(session: Session, user: User, obj_id: str, comment_id: int, data: dict) -> None:
    """Change a comment's text or groups (its author or "Manage sources")."""
    row = _visible_comment(session, user, obj_id, comment_id)
    if not may_manage(session, user, row.author_id, comment_groups, "comment_id", row.id):
        raise ApiError(403, "only the comment's author, a system admin, or a holder of \"Manage sources\" who "
                       "administers every group it is shared with may change it")
    _check_fields(data, COMMENT_FIELDS)
    if not data:
        raise ApiError(400, f"nothing to change: send one or more of {sorted(COMMENT_FIELDS)}")
    text = _comment_text(data) if "text" in data else row.text
    group_ids = target_group_ids(session, user, data["group_ids"], default="all") if "group_ids" in data else None
    row.text = text
    if group_ids is not None:
        _set_groups(session, comment_groups, "comment_id", row.id, group_ids)
    session.commit()


def delete_comment(session: Session, user: User, obj_id: str, comment_id: int) -> None:
    row = _visible_comment(session, user, obj_id, comment_id)
    if not may_manage(session, user, row.author_id, comment_groups, "comment_id", row.id):
        raise ApiError(403, "only the comment's author, a system admin, or a holder of \"Manage sources\" who "
                       "administers every group it is shared with may delete it")
    session.delete(row)
    session.commit()


def comments_for_obj(session: Session, user: User, obj_id: str) -> list[dict]:
    """The object's comments visible to `user`, oldest first.

    Only the comments' groups are checked here: the caller has already found the object visible.
    """
    query = select(Comment).where(Comment.obj_id == obj_id)
    clause = _visible_clause(comment_groups, "comment_id", Comment.id, accessible_group_ids(session, user))
    if clause is not None:
        query = query.where(clause)
    rows = list(session.scalars(query.order_by(Comment.created_at, Comment.id)))
    groups = groups_by_owner(session, comment_groups, "comment_id", [r.id for r in rows])
    return [serialize_comment(r, groups[r.id]) for r in rows]


# -- annotations -----------------------------------------------------------------------------------------
# Machine-made facts (a broker's scores): a flat object of numbers, strings and booleans, one per object and
# origin as in SkyPortal. Flat and small, so that the source page can show it as a table and a filter can
# compare its values.
ANNOTATION_FIELDS = {"origin", "data", "group_ids"}
MAX_ANNOTATION_KEYS = 100
MAX_ANNOTATION_STRING = 1_000


def annotation_origin(value: Any) -> str:
    """The `origin` of an annotation: a non-empty name starting with a letter, digit or underscore (SkyPortal's
    rule), at most NAME_MAX characters."""
    if value is None:
        raise ApiError(400, "missing required field `origin` (who made the annotation, e.g. a broker's name)")
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"`origin` must be a non-empty string, got {shown(value)}")
    check_string(value, "origin")
    if not (value[0].isalnum() or value[0] == "_"):
        raise ApiError(400, f"`origin` must begin with a letter, a digit or an underscore, got {shown(value)}")
    return value


def annotation_data(value: Any) -> dict:
    """The `data` of an annotation: a flat JSON object of finite numbers, strings and booleans."""
    if value is None:
        raise ApiError(400, "missing required field `data` (an object of key: number, string or boolean)")
    if not isinstance(value, dict):
        raise ApiError(400, f"`data` must be an object of key: number, string or boolean, got {shown(value)}")
    if not value:
        raise ApiError(400, "`data` is empty: give at least one key")
    if len(value) > MAX_ANNOTATION_KEYS:
        raise ApiError(400, f"`data` has {len(value)} keys; at most {MAX_ANNOTATION_KEYS} are allowed")
    for key, v in value.items():
        if not key.strip():
            raise ApiError(400, "`data` has an empty key")
        check_string(key, "data key")
        label = f"`data.{key}`" if len(key) <= 60 else "a `data` value"
        if isinstance(v, bool) or (isinstance(v, int) and -2**63 <= v < 2**63):
            continue
        if isinstance(v, float):
            if not math.isfinite(v):
                raise ApiError(400, f"{label} is {v}: values must be finite numbers, strings or booleans; "
                                    "leave out a value that is not known")
            continue
        if isinstance(v, str):
            check_string(v, f"data.{key}", MAX_ANNOTATION_STRING)
            continue
        raise ApiError(400, f"{label} must be a number, a string or a boolean (data is flat), got {shown(v)}")
    return value


def serialize_annotation(a: Annotation, groups: list[dict]) -> dict:
    return {
        "id": a.id,
        "obj_id": a.obj_id,
        "origin": a.origin,
        "data": a.data,
        "author_id": a.author_id,
        "author_name": a.author_name,
        "groups": groups,
        "created_at": a.created_at,
        "modified": a.modified,
    }


def _visible_annotation(session: Session, user: User, obj_id: str, annotation_id: int) -> Annotation:
    get_visible_obj(session, user, obj_id)
    query = select(Annotation).where(Annotation.id == annotation_id, Annotation.obj_id == obj_id)
    clause = _visible_clause(annotation_groups, "annotation_id", Annotation.id, accessible_group_ids(session, user))
    if clause is not None:
        query = query.where(clause)
    row = session.scalar(query)
    if row is None:
        raise ApiError(404, f"annotation {annotation_id} on object {shown(obj_id)} not found")
    return row


def create_annotation(session: Session, user: User, obj_id: str, data: dict) -> int:
    """Annotate a visible object; returns the annotation's id. An object has one annotation per origin: a
    second one is refused (change the first with PUT, or send the list form, which updates it)."""
    _check_fields(data, ANNOTATION_FIELDS)
    origin = annotation_origin(data.get("origin"))
    values = annotation_data(data.get("data"))
    obj = get_visible_obj(session, user, obj_id)
    group_ids = target_group_ids(session, user, data.get("group_ids"), default="all")
    existing = session.scalar(select(Annotation.id).where(Annotation.obj_id == obj.id, Annotation.origin == origin))
    if existing is not None:
        raise ApiError(400, f"object {shown(obj.id)} already has an annotation from origin {shown(origin)}; "
                            "change it with PUT /api/sources/{obj_id}/annotations/{id}, or delete it first")
    row = Annotation(obj_id=obj.id, origin=origin, data=values, author_id=user.id, author_name=user.username)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ApiError(400, f"object {shown(obj.id)} already has an annotation from origin {shown(origin)} "
                            "(posted a moment ago)") from None
    _set_groups(session, annotation_groups, "annotation_id", row.id, group_ids)
    session.commit()
    return row.id


def get_annotation(session: Session, user: User, obj_id: str, annotation_id: int) -> dict:
    row = _visible_annotation(session, user, obj_id, annotation_id)
    groups = groups_by_owner(session, annotation_groups, "annotation_id", [row.id])
    return serialize_annotation(row, groups[row.id])


def update_annotation(session: Session, user: User, obj_id: str, annotation_id: int, data: dict) -> None:
    """Change an annotation's data, origin or groups (its author or "Manage sources"); `data` replaces the
    previous object."""
    row = _visible_annotation(session, user, obj_id, annotation_id)
    if not may_manage(session, user, row.author_id, annotation_groups, "annotation_id", row.id):
        raise ApiError(403, "only the annotation's author, a system admin, or a holder of \"Manage sources\" who "
                       "administers every group it is shared with may change it")
    _check_fields(data, ANNOTATION_FIELDS)
    if not data:
        raise ApiError(400, f"nothing to change: send one or more of {sorted(ANNOTATION_FIELDS)}")
    origin = annotation_origin(data["origin"]) if "origin" in data else row.origin
    values = annotation_data(data["data"]) if "data" in data else row.data
    group_ids = target_group_ids(session, user, data["group_ids"], default="all") if "group_ids" in data else None
    if origin != row.origin and session.scalar(select(Annotation.id).where(
            Annotation.obj_id == row.obj_id, Annotation.origin == origin)) is not None:
        raise ApiError(400, f"object {shown(row.obj_id)} already has an annotation from origin {shown(origin)}")
    row.origin = origin
    row.data = values
    if group_ids is not None:
        _set_groups(session, annotation_groups, "annotation_id", row.id, group_ids)
    session.commit()


def delete_annotation(session: Session, user: User, obj_id: str, annotation_id: int) -> None:
    row = _visible_annotation(session, user, obj_id, annotation_id)
    if not may_manage(session, user, row.author_id, annotation_groups, "annotation_id", row.id):
        raise ApiError(403, "only the annotation's author, a system admin, or a holder of \"Manage sources\" who "
                       "administers every group it is shared with may delete it")
    session.delete(row)
    session.commit()


def annotations_for_obj(session: Session, user: User, obj_id: str) -> list[dict]:
    """The object's annotations visible to `user`, by origin.

    Only the annotations' groups are checked here: the caller has already found the object visible.
    """
    query = select(Annotation).where(Annotation.obj_id == obj_id)
    clause = _visible_clause(annotation_groups, "annotation_id", Annotation.id, accessible_group_ids(session, user))
    if clause is not None:
        query = query.where(clause)
    rows = list(session.scalars(query.order_by(Annotation.origin, Annotation.id)))
    groups = groups_by_owner(session, annotation_groups, "annotation_id", [r.id for r in rows])
    return [serialize_annotation(r, groups[r.id]) for r in rows]
