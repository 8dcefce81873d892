"""Thumbnails: small cutout images of an object (an alert's science, reference and difference stamps)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

# SkyPortal's thumbnail types: an alert's new (science), ref (template) and sub (difference) cutouts, and survey
# images of the field.
THUMBNAIL_TYPES = ("new", "ref", "sub", "sdss", "dr8", "ls", "ps1", "other")


class Thumbnail(Base):
    """One image of one type per object, stored as received under the thumbnails directory of paths.var.

    Since migration 0012 the bytes are `size` bytes at `byte_offset` of a pack file (`file_path`, relative to the
    thumbnails directory: one pack per upload request, so a batch of cutouts creates one file); a row with no
    `byte_offset` is an image uploaded before, alone in its own file. A PNG rendering is made on first view and
    cached (domain/thumbnails.py)."""

    __tablename__ = "thumbnails"
    # One thumbnail per object and type: a later upload replaces the earlier one, so a replay adds nothing.
    __table_args__ = (UniqueConstraint("obj_id", "type"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    obj_id: Mapped[str] = mapped_column(ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)
    type: Mapped[str] = mapped_column(String, nullable=False)
    file_path: Mapped[str] = mapped_column(String, nullable=False)
    # "fits" (gzipped or not) or "png"/"jpeg": how the stored bytes are to be shown.
    file_format: Mapped[str] = mapped_column(String, nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    byte_offset: Mapped[int | None] = mapped_column(BigInteger)
    # Hex SHA-256 of the stored bytes: the same image sent again is recognised without reading it back, and it
    # names the cached PNG, so a replaced image never shows an old rendering. NULL on rows from before 0012.
    sha256: Mapped[str | None] = mapped_column(String)
    origin: Mapped[str | None] = mapped_column(String)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
    modified: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
