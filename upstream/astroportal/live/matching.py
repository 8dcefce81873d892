"""From events to notifications: match each event once (across every app process) against the subscriptions,
write at most one notification per event and subscription, and queue the e-mail/webhook messages, grouping
what matches within `notifications.group_seconds` into one message.

Claiming: an app process takes unprocessed events with `FOR UPDATE SKIP LOCKED`, writes the notifications and
marks the events processed in one transaction; another process skips those rows, and a crash in between
leaves them unprocessed for the next run. The unique (subscription, event) key makes a second match a no-op.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Mapping

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .. import extension_points as ep
from ..config import Config
from ..domain.access import accessible_group_ids
from ..domain.accounts import is_expired, user_with_acls
from ..models.base import utcnow
from ..models import Delivery, Notification, Subscription, User
from .channels import DeliveryFailed, base_url, send_email, send_webhook
from .feed import Cone, event_as_json
from .sky_index import SkyIndex
from .unsubscribe import link as unsubscribe_link

log = logging.getLogger("astroportal.live")


@dataclass(frozen=True)
class Sub:
    """What matching needs of a subscription (plain values, usable outside any session)."""

    id: int
    user_id: int
    kind: str
    params: dict
    channels: tuple[str, ...]


class SubscriptionIndex:
    """Every active subscription, indexed by what an event is matched on."""

    def __init__(self, subs: list[Sub]) -> None:
        self.sky = SkyIndex()
        self.by_class: dict[str, list[Sub]] = {}
        self.by_obj: dict[str, list[Sub]] = {}
        self.by_group: dict[int, list[Sub]] = {}
        self.by_kind: dict[str, list[Sub]] = {}
        for s in subs:
            p = s.params
            if s.kind == "cone":
                self.sky.add(Cone(p["ra"], p["dec"], p["radius"]), s)
            elif s.kind == "classification":
                self.by_class.setdefault(p["classification"].lower(), []).append(s)
            elif s.kind == "source":
                self.by_obj.setdefault(p["obj_id"], []).append(s)
            elif s.kind == "group_candidates":
                self.by_group.setdefault(p["group_id"], []).append(s)
            elif s.kind == "event":
                self.by_kind.setdefault(p["event_kind"], []).append(s)
        self.size = len(subs)
        self.loaded_at = time.monotonic()

    @classmethod
    def load(cls, session: Session) -> "SubscriptionIndex":
        rows = session.execute(select(Subscription.id, Subscription.user_id, Subscription.kind, Subscription.params,
                                      Subscription.channels).where(Subscription.active.is_(True))).all()
        return cls([Sub(r[0], r[1], r[2], r[3], tuple(r[4])) for r in rows])

    def match(self, event: Mapping[str, Any]) -> list[Sub]:
        """The subscriptions `event` matches (permissions are checked by the caller). `event`: its fields, as
        `event_as_json` gives them or as the row's mapping."""
        kind, data = event["kind"], event["data"] or {}
        out = [s for s in self.sky.match(event["ra"], event["dec"]) if kind in s.params.get("kinds", ())]
        if kind == "classification.added" and data.get("classification"):
            prob = data.get("probability")
            for s in self.by_class.get(str(data["classification"]).lower(), ()):
                if (prob if prob is not None else 1.0) >= s.params["min_probability"]:
                    out.append(s)
        if event["obj_id"]:
            out.extend(s for s in self.by_obj.get(event["obj_id"], ())
                       if not s.params.get("kinds") or kind in s.params["kinds"])
        if kind == "candidate.passed":
            for gid in event["group_ids"]:
                out.extend(self.by_group.get(gid, ()))
        for s in self.by_kind.get(kind, ()):
            if all(data.get(k) == v for k, v in s.params["filter"].items()):
                out.append(s)
        seen: set[int] = set()
        return [s for s in out if not (s.id in seen or seen.add(s.id))]


class Readers:
    """Which groups each subscriber may read now (cached for a short while; None: every group)."""

    def __init__(self, ttl: float = 20.0) -> None:
        self.ttl = ttl
        self.cache: dict[int, tuple[float, Any]] = {}

    def groups(self, session: Session, user_id: int) -> set[int] | None | bool:
        """The user's readable groups, None for all, or False for an account that may read nothing."""
        hit = self.cache.get(user_id)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        user = user_with_acls(session, user_id)
        value: Any = False if user is None or is_expired(user) else accessible_group_ids(session, user)
        self.cache[user_id] = (time.monotonic(), value)
        return value


def may_read(groups: set[int] | None | bool, event: dict) -> bool:
    if groups is False:
        return False
    return groups is None or bool(groups & set(event["group_ids"]))


# The notifier's statements are constant text (no ORM objects, nothing compiled per round): a round runs in a
# thread of the process that writes the websockets' frames, and every millisecond of its CPU holds the GIL.

# Claim and mark in one statement: the events not processed yet, oldest first, skipping those another process
# holds; they become processed when this transaction commits, with the notifications written in it, and a
# crash before the commit leaves them unprocessed for the next round. (MATERIALIZED: the locking sub-select
# runs once, so its LIMIT holds.)
_CLAIM_EVENTS = text(
    "WITH claimed AS MATERIALIZED ("
    " SELECT id FROM live_events WHERE processed_at IS NULL ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)"
    " UPDATE live_events e SET processed_at = now() FROM claimed WHERE e.id = claimed.id"
    " RETURNING e.id, e.kind, e.created_at, e.obj_id, e.ids, e.group_ids, e.user_id, e.ra, e.dec, e.data")

# Every notification of a round in one statement; the unique (subscription, event) key makes a match another
# process already wrote a no-op, and RETURNING names the ones written here (only those get a message).
_WRITE_NOTIFICATIONS = text(
    "INSERT INTO notifications (user_id, subscription_id, event_id, in_portal, data)"
    " SELECT u, s, e, p, CAST(d AS jsonb) FROM unnest(CAST(:user_ids AS integer[]), CAST(:sub_ids AS integer[]),"
    " CAST(:event_ids AS bigint[]), CAST(:in_portal AS boolean[]), CAST(:data AS text[])) AS t(u, s, e, p, d)"
    " ON CONFLICT (subscription_id, event_id) DO NOTHING RETURNING subscription_id, event_id")

_PENDING_DELIVERY = text(
    "SELECT id FROM notification_deliveries WHERE subscription_id = :sub_id AND channel = :channel"
    " AND status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE")
_APPEND_TO_DELIVERY = text(
    "UPDATE notification_deliveries SET event_ids = event_ids || CAST(:event_ids AS bigint[]) WHERE id = :id")
# A new message is due now, or `group_seconds` after the last one went out (or was taken for sending) if that
# is later; GREATEST skips the NULL of a subscription that never had a message.
_START_DELIVERY = text(
    "INSERT INTO notification_deliveries (subscription_id, channel, event_ids, next_attempt_at)"
    " SELECT :sub_id, :channel, CAST(:event_ids AS bigint[]), GREATEST(CAST(now() AS timestamp),"
    " max(coalesce(sent_at, claimed_at)) + make_interval(secs => CAST(:group_seconds AS double precision)))"
    " FROM notification_deliveries WHERE subscription_id = :sub_id AND channel = :channel AND status <> 'pending'")


def process_events(session: Session, index: SubscriptionIndex, readers: Readers, group_seconds: float,
                   limit: int = 500) -> int:
    """Claim up to `limit` unprocessed events, write their notifications and queue their messages; the number
    of events processed."""
    rows = session.execute(_CLAIM_EVENTS, {"limit": limit}).all()
    if not rows:
        session.rollback()
        return 0
    rows.sort(key=lambda r: r.id)  # RETURNING follows no order; messages list their events oldest first
    user_ids, sub_ids, event_ids, in_portal, data = [], [], [], [], []
    subs: dict[int, Sub] = {}
    for row in rows:
        # Matched on the row's own fields: most events match nothing, and their JSON is never built.
        matched = index.match(row._mapping) if index.size else None
        if not matched:
            continue
        event, snapshot = event_as_json(row), None
        for s in matched:
            if may_read(readers.groups(session, s.user_id), event):
                snapshot = snapshot or json.dumps({**event, "subscription_name": None})
                subs[s.id] = s
                user_ids.append(s.user_id)
                sub_ids.append(s.id)
                event_ids.append(row.id)
                in_portal.append("portal" in s.channels)
                data.append(snapshot)
    if sub_ids:
        created = session.execute(_WRITE_NOTIFICATIONS, {"user_ids": user_ids, "sub_ids": sub_ids,
                                                         "event_ids": event_ids, "in_portal": in_portal,
                                                         "data": data}).all()
        messages: dict[tuple[int, str], list[int]] = {}
        for sub_id, event_id in created:
            for channel in ("email", "webhook"):
                if channel in subs[sub_id].channels:
                    messages.setdefault((sub_id, channel), []).append(event_id)
        # In one order in every process, so two rounds queueing for the same subscriptions never deadlock.
        for (sub_id, channel), ids in sorted(messages.items()):
            queue_delivery(session, sub_id, channel, sorted(ids), group_seconds)
    session.commit()
    return len(rows)


def queue_delivery(session: Session, sub_id: int, channel: str, event_ids: list[int], group_seconds: float) -> None:
    """Add the events to the subscription's message not sent yet, or start one: at once if the last message went
    out more than `group_seconds` ago, else when that much time has passed since it."""
    pending = session.execute(_PENDING_DELIVERY, {"sub_id": sub_id, "channel": channel}).scalar()
    if pending is not None:
        session.execute(_APPEND_TO_DELIVERY, {"id": pending, "event_ids": event_ids})
    else:
        session.execute(_START_DELIVERY, {"sub_id": sub_id, "channel": channel, "event_ids": event_ids,
                                          "group_seconds": group_seconds})


# -- sending ------------------------------------------------------------------------------------------------------
def claim_due(session: Session, limit: int = 20) -> list[int]:
    """Take the messages due now (and any left 'sending' by a process that died), marking them 'sending'."""
    ids = session.execute(text(
        "UPDATE notification_deliveries SET status = 'sending', claimed_at = now() WHERE id IN ("
        " SELECT id FROM notification_deliveries WHERE (status = 'pending' AND next_attempt_at <= now())"
        " OR (status = 'sending' AND claimed_at < now() - interval '10 minutes')"
        " ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED) RETURNING id"), {"limit": limit}).scalars().all()
    session.commit()
    return list(ids)


def compose(cfg: Config, secret: str, sub: Subscription, events: list[dict]) -> tuple[str, str, str]:
    """(subject, text, unsubscribe URL) of one message about `events`."""
    title = ep.TITLE.read(cfg)
    base = base_url(cfg)
    n = len(events)
    subject = f"[{title}] {n} new event{'s' if n != 1 else ''} for \"{sub.name}\""
    lines = [f"{subject[len(title) + 3:]}:"]
    for e in events:
        summary = (e.get("data") or {}).get("summary") or e["kind"]
        url = (e.get("data") or {}).get("url")
        lines.append(f"- {summary}" + (f" {base}{url}" if url and url.startswith("/") else ""))
    unsub = unsubscribe_link(base, secret, sub.id)
    return subject, "\n".join(lines), unsub


def send_one(session: Session, cfg: Config, secret: str, delivery_id: int, max_attempts: int,
             retry_base: float) -> str:
    """Send one claimed message; its new status (sent, pending for a retry, failed)."""
    d = session.get(Delivery, delivery_id)
    if d is None:
        return "gone"
    sub = session.get(Subscription, d.subscription_id)
    user = session.get(User, sub.user_id) if sub else None
    snapshots = {n.event_id: n.data for n in session.scalars(
        select(Notification).where(Notification.subscription_id == d.subscription_id,
                                   Notification.event_id.in_(list(d.event_ids))))}
    events = [snapshots[i] for i in sorted(set(d.event_ids)) if i in snapshots]
    error = None
    if sub is None or not sub.active or user is None:
        d.status, d.last_error = "failed", "the subscription was ended before the message was sent"
        session.commit()
        return d.status
    subject, body, unsub = compose(cfg, secret, sub, events)
    try:
        if d.channel == "email":
            if not user.contact_email:
                raise DeliveryFailed("the member has no contact e-mail")
            send_email(cfg, user.contact_email, subject, body + f"\n\nUnsubscribe: {unsub}\n", unsub)
        else:
            send_webhook(cfg, sub.webhook_url, {"text": body, "subscription": {"id": sub.id, "name": sub.name},
                                                "events": events, "unsubscribe": unsub})
    except Exception as exc:  # noqa: BLE001 - whatever went wrong is recorded and retried
        error = str(exc) or type(exc).__name__
    d.attempts += 1
    if error is None:
        d.status, d.sent_at, d.last_error = "sent", utcnow(), None
    else:
        d.last_error = error[:1000]
        if d.attempts >= max_attempts:
            d.status = "failed"
        else:
            d.status = "pending"
            d.next_attempt_at = utcnow() + timedelta(seconds=min(retry_base * 2 ** (d.attempts - 1), 3600))
        log.warning("live: %s message %d for subscription %d failed (attempt %d): %s", d.channel, d.id, sub.id,
                    d.attempts, error)
    session.commit()
    return d.status
