"""The field grid of an instrument: the fixed pointings that tile the sky with its field of view."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, PrimaryKeyConstraint, SmallInteger
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class InstrumentField(Base):
    """One field of an instrument's grid (see `astroportal.gw.fields`).

    `ranges` is what the field covers, as depth-29 nested HEALPix ranges flattened [lo0, hi0, lo1, hi1, ...]
    (the pixels at `healpix_order` whose centres fall in the field), the form of the localization tiles, so
    that its contained probability is a sum over the ranges. `field_of_view` is the one the grid was built
    for: a grid whose instrument's field of view differs is stale and is rebuilt."""

    __tablename__ = "instrument_fields"
    __table_args__ = (PrimaryKeyConstraint("instrument_id", "field_id"),)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"), nullable=False)
    field_id: Mapped[int] = mapped_column(Integer, nullable=False)
    ra: Mapped[float] = mapped_column(Float, nullable=False)
    dec: Mapped[float] = mapped_column(Float, nullable=False)
    healpix_order: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    ranges: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False)
    field_of_view: Mapped[dict] = mapped_column(JSONB, nullable=False)
