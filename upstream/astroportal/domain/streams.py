"""Alert streams, and the filters groups run on them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..models import Candidate, Filter, Group, Stream, User, group_streams
from . import checks
from .access import accessible_group_ids, require_group_admin_of
from .groups import group_stream_ids
from ..validate import shown

# -- streams ----------------------------------------------------------------------------------------


def serialize_stream(s: Stream) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "altdata": s.altdata, "created_at": s.created_at, "modified": s.modified}


def _visible_streams_query(session: Session, user: User):
    """Streams a user can see: those their groups read (all of them for system admins)."""
    query = select(Stream)
    groups = accessible_group_ids(session, user)
    if groups is not None:
        query = query.where(
            Stream.id.in_(select(group_streams.c.stream_id).where(group_streams.c.group_id.in_(groups)))
        )
    return query


def list_streams(session: Session, user: User, name: str | None = None) -> list[dict]:
    query = _visible_streams_query(session, user).order_by(Stream.id)
    if name is not None:
        query = query.where(Stream.name == name)
    return [serialize_stream(s) for s in session.scalars(query)]


def get_stream(session: Session, user: User, stream_id: int) -> Stream:
    """A stream the user can see; 404 otherwise."""
    stream = session.scalar(_visible_streams_query(session, user).where(Stream.id == stream_id))
    if stream is None:
        raise ApiError(404, f"stream {stream_id} not found")
    return stream


def _altdata(data: dict) -> Any:
    if "altdata" not in data:
        return checks.MISSING
    value = data["altdata"]
    if value is not None and not isinstance(value, dict):
        raise ApiError(400, f"`altdata` must be a JSON object, got {shown(value)}")
    return value


def _check_unique_stream_name(session: Session, name: str, exclude_id: int | None = None) -> None:
    query = select(Stream.id).where(Stream.name == name)
    if exclude_id is not None:
        query = query.where(Stream.id != exclude_id)
    if session.scalar(query) is not None:
        raise ApiError(400, f"`name`: a stream named {shown(name)} already exists")


def create_stream(session: Session, data: dict) -> int:
    """Create a stream `{name, altdata?}`; return its id."""
    name = checks.text(data, "name", required=True, nullable=False)
    altdata = _altdata(data)
    _check_unique_stream_name(session, name)
    with checks.unique_conflict(session, f"`name`: a stream named {shown(name)} already exists"):
        stream = Stream(name=name, altdata=None if altdata is checks.MISSING else altdata)
        session.add(stream)
        session.commit()
    return stream.id


def update_stream(session: Session, user: User, stream_id: int, data: dict) -> None:
    checks.unknown_fields(data, {"name", "altdata"})
    stream = get_stream(session, user, stream_id)
    name = checks.text(data, "name", nullable=False)
    altdata = _altdata(data)
    if name is not checks.MISSING:
        _check_unique_stream_name(session, name, exclude_id=stream_id)
        stream.name = name
    if altdata is not checks.MISSING:
        stream.altdata = altdata
    with checks.unique_conflict(session, f"`name`: a stream named {shown(name)} already exists"):
        session.commit()


def delete_stream(session: Session, user: User, stream_id: int) -> None:
    """Delete a stream, unless filters run on it (their candidates would be deleted with them)."""
    stream = get_stream(session, user, stream_id)
    n = session.scalar(select(func.count()).select_from(Filter).where(Filter.stream_id == stream_id))
    if n:
        raise ApiError(400, f"stream {stream_id} has {n} filter(s); delete them first")
    session.delete(stream)
    session.commit()


# -- filters ----------------------------------------------------------------------------------------


def serialize_filter(f: Filter) -> dict[str, Any]:
    return {
        "id": f.id,
        "name": f.name,
        "stream_id": f.stream_id,
        "group_id": f.group_id,
        "stream": {"id": f.stream.id, "name": f.stream.name},
        "created_at": f.created_at,
        "modified": f.modified,
    }


def _visible_filters_query(session: Session, user: User):
    query = select(Filter)
    groups = accessible_group_ids(session, user)
    if groups is not None:
        query = query.where(Filter.group_id.in_(groups))
    return query


def list_filters(session: Session, user: User) -> list[dict]:
    """The filters of the user's groups (every filter for system admins)."""
    return [serialize_filter(f) for f in session.scalars(_visible_filters_query(session, user).order_by(Filter.id))]


def get_filter(session: Session, user: User, filter_id: int) -> Filter:
    """A filter of one of the user's groups; 404 otherwise."""
    row = session.scalar(_visible_filters_query(session, user).where(Filter.id == filter_id))
    if row is None:
        raise ApiError(404, f"filter {filter_id} not found")
    return row


def _check_member(session: Session, user: User, group_id: int) -> None:
    """Scope GROUP of access_rules.py: a group's filters are its admins' to manage."""
    require_group_admin_of(session, user, group_id, "manage its filters")


def create_filter(session: Session, user: User, data: dict) -> int:
    """Create a filter `{name, stream_id, group_id}`: the user must be in the group, which must read the stream."""
    name = checks.text(data, "name", required=True, nullable=False)
    stream_id = checks.ident(data, "stream_id", required=True)
    group_id = checks.ident(data, "group_id", required=True)
    if session.get(Group, group_id) is None:
        raise ApiError(400, f"`group_id`: no group with id {group_id}")
    if session.get(Stream, stream_id) is None:
        raise ApiError(400, f"`stream_id`: no stream with id {stream_id}")
    _check_member(session, user, group_id)
    if stream_id not in group_stream_ids(session, group_id):
        raise ApiError(400, f"`stream_id`: group {group_id} has no access to stream {stream_id}")
    row = Filter(name=name, stream_id=stream_id, group_id=group_id)
    session.add(row)
    session.commit()
    return row.id


def update_filter(session: Session, user: User, filter_id: int, data: dict) -> None:
    """Rename a filter, or move it to another stream its group reads."""
    checks.unknown_fields(data, {"name", "stream_id"})
    row = get_filter(session, user, filter_id)
    _check_member(session, user, row.group_id)
    name = checks.text(data, "name", nullable=False)
    stream_id = checks.ident(data, "stream_id")
    if stream_id is not checks.MISSING and stream_id != row.stream_id:
        if session.get(Stream, stream_id) is None:
            raise ApiError(400, f"`stream_id`: no stream with id {stream_id}")
        if stream_id not in group_stream_ids(session, row.group_id):
            raise ApiError(400, f"`stream_id`: group {row.group_id} has no access to stream {stream_id}")
        row.stream_id = stream_id
    if name is not checks.MISSING:
        row.name = name
    session.commit()


def delete_filter(session: Session, user: User, filter_id: int) -> None:
    """Delete a filter, unless candidates passed it (deleting it would delete them)."""
    row = get_filter(session, user, filter_id)
    _check_member(session, user, row.group_id)
    n = session.scalar(select(func.count()).select_from(Candidate).where(Candidate.filter_id == filter_id))
    if n:
        raise ApiError(400, f"filter {filter_id} has {n} candidate(s) that passed it; it cannot be deleted")
    session.delete(row)
    session.commit()
