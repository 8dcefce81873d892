"""Telescopes and their instruments."""

from __future__ import annotations

from sqlalchemy import Boolean, Enum, Float, ForeignKey, Integer, String
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped
from ..validate import LINK_MAX, NAME_MAX

INSTRUMENT_TYPES = ("imager", "spectrograph", "imaging spectrograph")


class Telescope(Base, Timestamped):
    __tablename__ = "telescopes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True, nullable=False)
    nickname: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    elevation: Mapped[float | None] = mapped_column(Float)
    diameter: Mapped[float] = mapped_column(Float, nullable=False)
    robotic: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    fixed_location: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    skycam_link: Mapped[str | None] = mapped_column(String(LINK_MAX))
    weather_link: Mapped[str | None] = mapped_column(String(LINK_MAX))

    instruments: Mapped[list["Instrument"]] = relationship(back_populates="telescope")


class Instrument(Base, Timestamped):
    __tablename__ = "instruments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True, nullable=False)
    type: Mapped[str] = mapped_column(
        Enum(*INSTRUMENT_TYPES, name="instrument_type", validate_strings=True), nullable=False
    )
    band: Mapped[str | None] = mapped_column(String)
    filters: Mapped[list[str]] = mapped_column(ARRAY(String), nullable=False, server_default="{}")
    telescope_id: Mapped[int] = mapped_column(ForeignKey("telescopes.id", ondelete="CASCADE"), nullable=False, index=True)
    # {"shape": "square", "side_deg": s} | {"shape": "rectangle", "width_deg": w, "height_deg": h} |
    # {"shape": "circle", "radius_deg": r}; observation plans tile the sky with it.
    field_of_view: Mapped[dict | None] = mapped_column(JSONB)

    telescope: Mapped[Telescope] = relationship(back_populates="instruments")
