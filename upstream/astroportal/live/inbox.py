"""The in-portal notifications of a member: the bell's unread count, the list, marking read."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..models import Notification, Subscription, User
from ..models.base import utcnow


def unread_count(session: Session, user: User) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user.id, Notification.in_portal.is_(True), Notification.read_at.is_(None))) or 0


def list_notifications(session: Session, user: User, *, unread_only: bool = False, limit: int = 100) -> dict:
    q = (select(Notification, Subscription.name).outerjoin(Subscription, Subscription.id == Notification.subscription_id)
         .where(Notification.user_id == user.id, Notification.in_portal.is_(True)))
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    rows = session.execute(q.order_by(Notification.id.desc()).limit(limit)).all()
    return {
        "unread": unread_count(session, user),
        "notifications": [
            {"id": n.id, "subscription_id": n.subscription_id, "subscription_name": name, "event": n.data,
             "created_at": n.created_at, "read": n.read_at is not None}
            for n, name in rows
        ],
    }


def mark_read(session: Session, user: User, ids: list[int] | None) -> int:
    """Mark the member's notifications `ids` (None: all) read; how many changed."""
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
        raise ApiError(400, "ids must be a list of notification ids (or omitted for all)")
    q = update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if ids is not None:
        q = q.where(Notification.id.in_(ids))
    n = session.execute(q.values(read_at=utcnow())).rowcount
    session.commit()
    return n or 0
