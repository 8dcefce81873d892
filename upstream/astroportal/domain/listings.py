"""A user's own lists of objects: favorites, and rejected candidates (hidden from the candidate list)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..errors import ApiError, forbidden, not_found
from ..models import LIST_NAMES, Listing, User
from . import access
from .sources import check_obj_id
from ..validate import shown


def check_list_name(value, field: str = "list_name") -> str:
    if value is None:
        raise ApiError(400, f"missing required field `{field}` (one of {list(LIST_NAMES)})")
    if value not in LIST_NAMES:
        raise ApiError(400, f"`{field}` must be one of {list(LIST_NAMES)}, got {shown(value)}")
    return value


def listing_dict(row: Listing) -> dict:
    return {"id": row.id, "user_id": row.user_id, "obj_id": row.obj_id, "list_name": row.list_name, "created_at": row.created_at}


def add_listing(session: Session, user: User, data: dict) -> dict:
    """Put a visible object on one of the user's lists; listing it again returns the same id."""
    allowed = {"obj_id", "list_name"}
    extra = sorted(set(data) - allowed)
    if extra:
        raise ApiError(400, f"unknown field(s) {extra}; accepted fields: {sorted(allowed)}")
    obj_id = check_obj_id(data.get("obj_id"), "obj_id")
    list_name = check_list_name(data.get("list_name"))
    access.get_visible_obj(session, user, obj_id)
    session.execute(
        pg_insert(Listing)
        .values(user_id=user.id, obj_id=obj_id, list_name=list_name)
        .on_conflict_do_nothing(index_elements=["user_id", "obj_id", "list_name"])
    )
    listing_id = session.scalar(
        select(Listing.id).where(Listing.user_id == user.id, Listing.obj_id == obj_id, Listing.list_name == list_name)
    )
    session.commit()
    return {"id": listing_id}


def get_listings(session: Session, user: User, list_name: str | None = None) -> list[dict]:
    """The user's listings, newest first, optionally of one list."""
    q = select(Listing).where(Listing.user_id == user.id)
    if list_name is not None:
        q = q.where(Listing.list_name == check_list_name(list_name, "listName"))
    return [listing_dict(row) for row in session.scalars(q.order_by(Listing.created_at.desc(), Listing.id.desc()))]


def delete_listing(session: Session, user: User, listing_id: int) -> dict:
    """Remove one of the user's own listings (another user's gives 403)."""
    row = session.get(Listing, listing_id)
    if row is None:
        raise not_found(f"listing {listing_id}")
    if row.user_id != user.id:
        raise forbidden(f"listing {listing_id} belongs to another user")
    session.delete(row)
    session.commit()
    return {"id": listing_id}
