"""Photometry: flux measurements and upper limits of an object."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Float, ForeignKey, Index, String, Table, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from ..validate import NAME_MAX

# Fluxes are stored in microjansky-like units on the AB system with this zero point (as SkyPortal does),
# so that mag = -2.5 log10(flux) + PHOT_ZP.
PHOT_ZP = 23.9
# A non-detection's limiting magnitude is this many sigma of its flux error.
PHOT_DETECTION_THRESHOLD = 5.0

photometry_groups = Table(
    "photometry_groups",
    Base.metadata,
    Column("photometry_id", ForeignKey("photometry.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Photometry(Base):
    """One measurement (flux not null) or one upper limit (flux null) of an object."""

    __tablename__ = "photometry"
    # One exposure of one object by one instrument in one filter from one origin: the same point twice is a duplicate.
    # A light curve is read in date order, a page at a time (0004).
    __table_args__ = (
        UniqueConstraint("obj_id", "instrument_id", "filter", "mjd", "origin", name="uq_photometry_point"),
        Index("ix_photometry_obj_id_mjd", "obj_id", "mjd", "id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    obj_id: Mapped[str] = mapped_column(ForeignKey("objs.id", ondelete="CASCADE"), nullable=False)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"), nullable=False, index=True)
    filter: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    mjd: Mapped[float] = mapped_column(Float, nullable=False)
    flux: Mapped[float | None] = mapped_column(Float)
    fluxerr: Mapped[float] = mapped_column(Float, nullable=False)
    origin: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False, server_default="")
    alert_id: Mapped[int | None] = mapped_column(BigInteger)
    ra: Mapped[float | None] = mapped_column(Float)
    dec: Mapped[float | None] = mapped_column(Float)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    upload_id: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
