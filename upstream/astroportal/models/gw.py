"""Gravitational-wave and GRB events from GCN: events, their tags, properties, raw notices, sky localizations
and the localizations' multi-order tiles (as depth-29 nested HEALPix ranges)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped


class GcnEvent(Base, Timestamped):
    """An astrophysical event (a GW superevent, a GRB trigger), keyed by its time `dateobs` (UTC, naive)."""

    __tablename__ = "gcnevents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dateobs: Mapped[datetime] = mapped_column(DateTime, unique=True, nullable=False)
    trigger_id: Mapped[str | None] = mapped_column(Text)
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")

    tags: Mapped[list["GcnTag"]] = relationship(
        back_populates="event", cascade="all, delete-orphan", passive_deletes=True, order_by="GcnTag.id")
    notices: Mapped[list["GcnNotice"]] = relationship(
        back_populates="event", cascade="all, delete-orphan", passive_deletes=True, order_by="GcnNotice.date")
    properties: Mapped[list["GcnProperty"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="GcnProperty.id")
    localizations: Mapped[list["Localization"]] = relationship(
        back_populates="event", cascade="all, delete-orphan", passive_deletes=True, order_by="Localization.id")


class GcnTag(Base):
    """A label of an event: GW, BNS, NSBH, BBH, Significant, RETRACTED, Fermi, Swift, GRB, ..."""

    __tablename__ = "gcntags"
    __table_args__ = (UniqueConstraint("event_id", "text"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("gcnevents.id", ondelete="CASCADE"), nullable=False, index=True)
    text: Mapped[str] = mapped_column(Text, nullable=False)

    event: Mapped[GcnEvent] = relationship(back_populates="tags")


class GcnNotice(Base):
    """A notice as received (raw bytes); a repeated notice is recognised by its content's sha256."""

    __tablename__ = "gcnnotices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("gcnevents.id", ondelete="CASCADE"), nullable=False, index=True)
    notice_type: Mapped[str] = mapped_column(Text, nullable=False)
    stream: Mapped[str] = mapped_column(Text, nullable=False)
    ivorn: Mapped[str | None] = mapped_column(Text)
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    content_sha256: Mapped[str] = mapped_column(Text, unique=True, nullable=False)
    date: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)

    event: Mapped[GcnEvent] = relationship(back_populates="notices")


class GcnProperty(Base):
    """What one notice said about the event (FAR in Hz, significance, classification, HasNS, distance, ...)."""

    __tablename__ = "gcnproperties"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("gcnevents.id", ondelete="CASCADE"), nullable=False, index=True)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("gcnnotices.id", ondelete="CASCADE"), index=True)
    data: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)


class Localization(Base):
    """One sky map of an event, with its credible areas, distance and 50/90% contours (GeoJSON)."""

    __tablename__ = "localizations"
    __table_args__ = (UniqueConstraint("event_id", "localization_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("gcnevents.id", ondelete="CASCADE"), nullable=False, index=True)
    dateobs: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    localization_name: Mapped[str] = mapped_column(Text, nullable=False)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("gcnnotices.id", ondelete="SET NULL"), index=True)
    area_50: Mapped[float | None] = mapped_column(Float)
    area_90: Mapped[float | None] = mapped_column(Float)
    distmean: Mapped[float | None] = mapped_column(Float)
    diststd: Mapped[float | None] = mapped_column(Float)
    contour: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)

    event: Mapped[GcnEvent] = relationship(back_populates="localizations")


class LocalizationTile(Base):
    """One multi-order tile as the depth-29 nested range [lo, hi).

    `cumprob` is the probability of every tile denser than this one (ties broken by `lo`), i.e. the
    probability *before* it: a tile is in the p credible region iff cumprob < p (the tile crossing p is in).
    """

    __tablename__ = "localizationtiles"
    __table_args__ = (
        PrimaryKeyConstraint("localization_id", "lo"),
        Index("ix_localizationtiles_localization_id_cumprob", "localization_id", "cumprob"),
    )
    localization_id: Mapped[int] = mapped_column(ForeignKey("localizations.id", ondelete="CASCADE"), nullable=False)
    lo: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hi: Mapped[int] = mapped_column(BigInteger, nullable=False)
    probdensity: Mapped[float] = mapped_column(Float, nullable=False)
    cumprob: Mapped[float] = mapped_column(Float, nullable=False)
    distmu: Mapped[float | None] = mapped_column(Float)
    distsigma: Mapped[float | None] = mapped_column(Float)
    distnorm: Mapped[float | None] = mapped_column(Float)
