"""Sky objects and the ways they enter the portal: streams, filters, candidates, saved sources."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    event,
    func,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped
from ..gw.skymaps import healpix29
from ..validate import NAME_MAX

group_streams = Table(
    "group_streams",
    Base.metadata,
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("stream_id", ForeignKey("streams.id", ondelete="CASCADE"), primary_key=True),
)


def _healpix_default(context) -> int | None:
    """objs.healpix of a row being inserted (ORM or Core, one row or many) from its ra and dec."""
    params = context.get_current_parameters()
    ra, dec = params.get("ra"), params.get("dec")
    return None if ra is None or dec is None else healpix29(ra, dec)


class Obj(Base, Timestamped):
    """A position on the sky with a survey-style string id (for example ZTF21aaqjmps)."""

    __tablename__ = "objs"
    # Cone searches bound dec first, then ra, inside one btree. The healpix btree carries the id so that a
    # credible region's objects are read from the index alone (astroportal.gw.region).
    __table_args__ = (
        Index("ix_objs_dec_ra", "dec", "ra"),
        Index("ix_objs_healpix", "healpix", postgresql_include=["id"]),
    )
    id: Mapped[str] = mapped_column(String(NAME_MAX), primary_key=True)
    ra: Mapped[float] = mapped_column(Float, nullable=False)
    dec: Mapped[float] = mapped_column(Float, nullable=False)
    # Depth-29 nested HEALPix index of (ra, dec): sky-map regions become index ranges joined to this btree.
    # Set on insert by the column default, on an ORM change of ra/dec by the listener below.
    healpix: Mapped[int | None] = mapped_column(BigInteger, default=_healpix_default)
    redshift: Mapped[float | None] = mapped_column(Float)
    origin: Mapped[str | None] = mapped_column(String(NAME_MAX))
    alias: Mapped[list[str] | None] = mapped_column(ARRAY(String))
    altdata: Mapped[dict | None] = mapped_column(JSONB)


@event.listens_for(Obj, "before_update")
def _healpix_follows_position(mapper, connection, obj: Obj) -> None:
    """A moved object (ra or dec changed through the ORM) gets the depth-29 index of its new position."""
    state = inspect(obj)
    if state.attrs.ra.history.has_changes() or state.attrs.dec.history.has_changes():
        obj.healpix = healpix29(obj.ra, obj.dec)


class Stream(Base, Timestamped):
    """A flow of alerts (for example a survey's public stream) that groups may read."""

    __tablename__ = "streams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True, nullable=False)
    altdata: Mapped[dict | None] = mapped_column(JSONB)


class Filter(Base, Timestamped):
    """A group's selection of alerts from a stream; what passes it becomes a candidate."""

    __tablename__ = "filters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    stream_id: Mapped[int] = mapped_column(ForeignKey("streams.id", ondelete="CASCADE"), nullable=False, index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), nullable=False, index=True)

    stream: Mapped[Stream] = relationship()


class Candidate(Base):
    """An object that passed a filter at a given time, from a given alert."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("obj_id", "filter_id", "passed_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    obj_id: Mapped[str] = mapped_column(ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)
    filter_id: Mapped[int] = mapped_column(ForeignKey("filters.id", ondelete="CASCADE"), nullable=False, index=True)
    passed_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    passing_alert_id: Mapped[int | None] = mapped_column(BigInteger)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)


class Source(Base):
    """An object saved to a group."""

    __tablename__ = "sources"
    __table_args__ = (
        UniqueConstraint("obj_id", "group_id"),
        # The saves that count (active ones), so that "may this user see this object" is read from the index alone
        # for every object of a credible region (astroportal.gw.region).
        Index("ix_sources_active_obj_id_group_id", "obj_id", "group_id", postgresql_where=text("active")),
        # A user's sources in a credible region: one range scan per (group, range of the region).
        Index("ix_sources_active_group_id_healpix", "group_id", "healpix", postgresql_include=["obj_id"],
              postgresql_where=text("active")),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    obj_id: Mapped[str] = mapped_column(ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), nullable=False, index=True)
    saved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    saved_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False, index=True)
    # Unsaving keeps the row (who unsaved it, when) so that the history is not lost.
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    unsaved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    unsaved_at: Mapped[datetime | None] = mapped_column(DateTime)
    # A copy of objs.healpix, written only by the database's triggers (migration 0011), never by the portal.
    healpix: Mapped[int | None] = mapped_column(BigInteger, deferred=True)

    obj: Mapped[Obj] = relationship()
