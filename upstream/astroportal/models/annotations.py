"""What people and programs say about objects: taxonomies, classifications, comments, annotations."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Integer, String, Table, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Timestamped
from ..validate import NAME_MAX

taxonomy_groups = Table(
    "taxonomy_groups",
    Base.metadata,
    Column("taxonomy_id", ForeignKey("taxonomies.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)
classification_groups = Table(
    "classification_groups",
    Base.metadata,
    Column("classification_id", ForeignKey("classifications.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True),
)
comment_groups = Table(
    "comment_groups",
    Base.metadata,
    Column("comment_id", ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True),
)
annotation_groups = Table(
    "annotation_groups",
    Base.metadata,
    Column("annotation_id", ForeignKey("annotations.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Taxonomy(Base, Timestamped):
    """A tree of classes ({"class": ..., "subclasses": [...]}) that classifications must come from."""

    __tablename__ = "taxonomies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    hierarchy: Mapped[dict] = mapped_column(JSONB, nullable=False)
    version: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    provenance: Mapped[str | None] = mapped_column(String)
    isLatest: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")


class Classification(Base, Timestamped):
    __tablename__ = "classifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    obj_id: Mapped[str] = mapped_column(ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)
    taxonomy_id: Mapped[int] = mapped_column(ForeignKey("taxonomies.id", ondelete="CASCADE"), nullable=False, index=True)
    classification: Mapped[str] = mapped_column(String, nullable=False)
    probability: Mapped[float | None] = mapped_column(Float)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author_name: Mapped[str] = mapped_column(String, nullable=False)


class Comment(Base, Timestamped):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    obj_id: Mapped[str] = mapped_column(ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)
    text: Mapped[str] = mapped_column(String, nullable=False)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author_name: Mapped[str] = mapped_column(String, nullable=False)


class Annotation(Base, Timestamped):
    """Machine-made facts about an object (a broker's scores, a pipeline's measurements): a flat JSON object of
    numbers, strings and booleans under an `origin`. As in SkyPortal, an object has at most one per origin."""

    __tablename__ = "annotations"
    __table_args__ = (UniqueConstraint("obj_id", "origin"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    obj_id: Mapped[str] = mapped_column(ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)
    origin: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    data: Mapped[dict] = mapped_column(JSONB, nullable=False)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author_name: Mapped[str] = mapped_column(String, nullable=False)
