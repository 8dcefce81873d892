"""A user's personal lists of objects (favorites, rejected candidates)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

LIST_NAMES = ("favorites", "rejected_candidates")


class Listing(Base):
    """One object on one of a user's lists; a user lists an object at most once per list."""

    __tablename__ = "listings"
    __table_args__ = (UniqueConstraint("user_id", "obj_id", "list_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    obj_id: Mapped[str] = mapped_column(ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)
    list_name: Mapped[str] = mapped_column(String, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
