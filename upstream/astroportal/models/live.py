"""The live activity feed and what members subscribe to: events, subscriptions, notifications, deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Timestamped


class LiveEvent(Base):
    """One thing that happened, written in the transaction of the change that caused it.

    `group_ids` decide who may see it (members of any of them; system admins see all); an event without
    groups is for system admins only. `processed_at` is set once subscriptions have been matched against it.
    """

    __tablename__ = "live_events"
    __table_args__ = (
        # The notifier's work queue: events not matched yet, oldest first.
        Index("ix_live_events_unprocessed", "id", postgresql_where=text("processed_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String, nullable=False)
    obj_id: Mapped[str | None] = mapped_column(String, index=True)
    ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False, server_default="{}")
    group_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), nullable=False, server_default="{}")
    user_id: Mapped[int | None] = mapped_column(Integer)
    ra: Mapped[float | None] = mapped_column(Float)
    dec: Mapped[float | None] = mapped_column(Float)
    data: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)


class Subscription(Base, Timestamped):
    """What a member wants to be told about (`kind` with its `params`) and through which channels."""

    __tablename__ = "subscriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String, nullable=False)
    kind: Mapped[str] = mapped_column(String, nullable=False)
    params: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    channels: Mapped[list[str]] = mapped_column(ARRAY(String), nullable=False, server_default="{portal}")
    webhook_url: Mapped[str | None] = mapped_column(String)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")


class Notification(Base):
    """One event matched by one subscription: at most one row per pair, whatever the channels."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_notifications_user_id_read_at", "user_id", "read_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id", ondelete="SET NULL"))
    # No foreign key: a notification outlives the event's pruning, so it keeps its own copy in `data`.
    event_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    in_portal: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    data: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
    read_at: Mapped[datetime | None] = mapped_column(DateTime)


class Delivery(Base):
    """One message (e-mail or webhook POST) about one or more events of one subscription, with its retries."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_status_next_attempt_at", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    channel: Mapped[str] = mapped_column(String, nullable=False)
    event_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False, server_default="{}")
    # pending -> sending -> sent, or back to pending with a later next_attempt_at, or failed after the last try.
    status: Mapped[str] = mapped_column(String, nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
