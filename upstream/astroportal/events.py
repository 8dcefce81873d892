"""Events announced to `app.event_subscribers` after the transaction that wrote them commits.

Why explicit `record()` calls in the domain's write functions rather than watching the session's flushes:
most writes here are Core statements (INSERT ... ON CONFLICT, one statement per photometry batch) that never
pass through the unit of work, so `before_flush`/`after_flush` would not see them; and the event's meaning
("saved to a group it was not active in", "passed a filter for the first time") is known only to the function
that decided it. So a write function records the event in its session, and the session's own transaction events
decide whether it is announced: `after_commit` hands the recorded events to the subscribers, a rollback (of the
transaction, or of the savepoint the event was recorded in) drops them. Nothing is announced before the data is
visible to others, and nothing for a write that did not happen.

Subscribers run in the writing process, synchronously, after the commit; an exception is logged and never
reaches the writer.
"""

from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

from . import extension_points as ep
from .config import Config
from .extension_points import Event

log = logging.getLogger("astroportal.events")

SUBSCRIBERS_KEY = "astroportal.event_subscribers"
PENDING_KEY = "astroportal.pending_events"


def session_info(cfg: Config) -> dict:
    """What a sessionmaker's `info` carries so that its sessions announce events: the configured subscribers."""
    return {SUBSCRIBERS_KEY: tuple(ep.EVENT_SUBSCRIBERS.callables(cfg))}


def record(session: Session, event: Event) -> None:
    """Announce `event` to the subscribers once the session's transaction commits (never if it rolls back)."""
    if event.kind not in ep.EVENT_KINDS:
        raise ValueError(f"event kind {event.kind!r} is not declared in extension_points.EVENT_KINDS")
    if SUBSCRIBERS_KEY not in session.info:
        return  # not a portal session (see db.make_sessionmaker)
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        session.connection()  # begins the transaction the event belongs to
        transaction = session.get_transaction()
    session.info.setdefault(PENDING_KEY, []).append((transaction, event))


def pending(session: Session) -> list[Event]:
    """The events recorded in the session's open transaction, in order (for code that must write them in the
    same transaction, from a `before_commit` listener)."""
    return [event for _, event in session.info.get(PENDING_KEY, [])]


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(PENDING_KEY)
    if pending:
        session.info[PENDING_KEY] = [(t, e) for t, e in pending if not _within(t, previous_transaction)]


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction is over (committed and announced, or rolled back, or closed): nothing is pending.
    if transaction.parent is None and transaction.nested is False:
        session.info.pop(PENDING_KEY, None)


@sa_event.listens_for(Session, "after_commit")
def _announce(session: Session) -> None:
    # SQLAlchemy sends after_commit for a savepoint's release too; only the outermost commit makes data visible.
    if session.get_nested_transaction() is not None:
        return
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    subscribers: tuple[Callable, ...] = session.info.get(SUBSCRIBERS_KEY) or ()
    for _, event in pending:
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:  # noqa: BLE001 - a subscriber's failure must never fail the write
                log.exception("event subscriber %s.%s failed on %s (the write is kept)",
                              getattr(subscriber, "__module__", "?"), getattr(subscriber, "__qualname__", subscriber),
                              event.kind)
