"""Subscriptions: what a member wants to be told about, checked when made so that a bad one never waits silently.

Kinds and their params:
  cone               ra, dec, radius (degrees); kinds: event kinds (default candidate.passed, source.saved)
  classification     classification (a class of a taxonomy), min_probability (0..1, default 0)
  source             obj_id (an object the member may see); kinds (default: every kind)
  group_candidates   group_id (a group of the member): its new candidates
  event              event_kind (any kind, e.g. a distribution's "solve.job_state"), filter: {field: value}
                     matched against the event's data (e.g. {"instrument_id": 3, "state": "solved"})
Channels: portal (the bell and /notifications), email (the member's contact e-mail), webhook (webhook_url).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ..config import Config
from ..domain.access import accessible_group_ids, get_visible_obj
from ..errors import ApiError, not_found
from ..models import Group, Subscription, Taxonomy, User
from .channels import check_webhook_url
from .feed import KIND_PATTERN, parse_cone

KINDS = ("cone", "classification", "source", "group_candidates", "event")
CHANNELS = ("portal", "email", "webhook")
SUBSCRIPTIONS_CHANNEL = "astroportal_live_subscriptions"
DEFAULT_CONE_KINDS = ["candidate.passed", "source.saved"]


def _kinds(value: Any, default: list[str] | None) -> list[str] | None:
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(k, str) and KIND_PATTERN.match(k) for k in value):
        raise ApiError(400, "kinds must be a list of event kinds such as [\"candidate.passed\"]")
    return sorted(set(value))


def check_params(session: Session, user: User, kind: Any, params: Any) -> dict:
    """The subscription's params, checked and normalized; ApiError(400/404) naming what is wrong."""
    if kind not in KINDS:
        raise ApiError(400, f"unknown subscription kind {kind!r}; the kinds are {', '.join(KINDS)}")
    if not isinstance(params, dict):
        raise ApiError(400, "params must be an object")
    if kind == "cone":
        cone = parse_cone(params.get("ra"), params.get("dec"), params.get("radius"))
        return {"ra": cone.ra, "dec": cone.dec, "radius": cone.radius,
                "kinds": _kinds(params.get("kinds"), DEFAULT_CONE_KINDS)}
    if kind == "classification":
        name = params.get("classification")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "a classification subscription needs `classification` (a class name)")
        known = set()
        for hierarchy in session.scalars(select(Taxonomy.hierarchy)):
            _collect_classes(hierarchy, known)
        matches = {k for k in known if k.lower() == name.strip().lower()}
        if not matches:
            raise ApiError(400, f"unknown class {name!r}: it is in no taxonomy of the portal")
        prob = params.get("min_probability", 0)
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
            raise ApiError(400, "min_probability must be a number between 0 and 1")
        return {"classification": sorted(matches)[0], "min_probability": float(prob)}
    if kind == "source":
        obj_id = params.get("obj_id")
        if not isinstance(obj_id, str) or not obj_id:
            raise ApiError(400, "a source subscription needs `obj_id`")
        get_visible_obj(session, user, obj_id)  # 404 for an unknown or invisible object
        return {"obj_id": obj_id, "kinds": _kinds(params.get("kinds"), None)}
    if kind == "group_candidates":
        gid = params.get("group_id")
        if isinstance(gid, bool) or not isinstance(gid, int):
            raise ApiError(400, "a group_candidates subscription needs `group_id` (an integer)")
        if session.get(Group, gid) is None:
            raise not_found(f"group {gid}")
        groups = accessible_group_ids(session, user)
        if groups is not None and gid not in groups:
            raise ApiError(403, f"you are not a member of group {gid}")
        return {"group_id": gid}
    event_kind = params.get("event_kind")
    if not isinstance(event_kind, str) or not KIND_PATTERN.match(event_kind):
        raise ApiError(400, "an event subscription needs `event_kind` (such as \"solve.job_state\")")
    flt = params.get("filter") or {}
    if not isinstance(flt, dict) or not all(isinstance(v, (str, int, float, bool)) for v in flt.values()):
        raise ApiError(400, "filter must be an object of field: value (strings, numbers, booleans)")
    return {"event_kind": event_kind, "filter": flt}


def _collect_classes(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("class"), str):
            out.add(node["class"])
        for child in node.get("subclasses") or []:
            _collect_classes(child, out)


def check_channels(cfg: Config, user: User, channels: Any, webhook_url: Any) -> tuple[list[str], str | None]:
    if channels is None:
        channels = ["portal"]
    if not isinstance(channels, list) or not channels or not all(c in CHANNELS for c in channels):
        raise ApiError(400, f"channels must be a non-empty list of {', '.join(CHANNELS)}")
    if "email" in channels and not user.contact_email:
        raise ApiError(400, "e-mail notifications need your contact e-mail: set it in your profile first")
    url = check_webhook_url(cfg, webhook_url) if "webhook" in channels else None
    return sorted(set(channels)), url


def announce_change(session: Session) -> None:
    """Tell every app process (at commit) to reload its subscriptions."""
    session.execute(text("SELECT pg_notify(:c, '')"), {"c": SUBSCRIPTIONS_CHANNEL})


def serialize(sub: Subscription) -> dict:
    return {"id": sub.id, "name": sub.name, "kind": sub.kind, "params": sub.params, "channels": list(sub.channels),
            "webhook_url": sub.webhook_url, "active": sub.active, "created_at": sub.created_at}


def describe(kind: str, params: dict) -> str:
    """A default name for a subscription."""
    if kind == "cone":
        return f"within {params['radius']}° of {params['ra']}, {params['dec']}"
    if kind == "classification":
        return f"{params['classification']} with p ≥ {params['min_probability']}"
    if kind == "source":
        return f"source {params['obj_id']}"
    if kind == "group_candidates":
        return f"new candidates of group {params['group_id']}"
    return f"{params['event_kind']} {params['filter'] or ''}".strip()


def create(session: Session, cfg: Config, user: User, data: dict) -> dict:
    kind = data.get("kind")
    params = check_params(session, user, kind, data.get("params", {}))
    channels, url = check_channels(cfg, user, data.get("channels"), data.get("webhook_url"))
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ApiError(400, "name must be a non-empty string")
    sub = Subscription(user_id=user.id, kind=kind, params=params, channels=channels, webhook_url=url,
                       name=(name or describe(kind, params)).strip())
    session.add(sub)
    session.flush()
    announce_change(session)
    session.commit()
    return serialize(sub)


def own(session: Session, user: User, sub_id: int) -> Subscription:
    sub = session.get(Subscription, sub_id)
    if sub is None or sub.user_id != user.id:
        raise not_found(f"subscription {sub_id}")
    return sub


def list_own(session: Session, user: User) -> list[dict]:
    return [serialize(s) for s in session.scalars(
        select(Subscription).where(Subscription.user_id == user.id).order_by(Subscription.id))]


def update(session: Session, cfg: Config, user: User, sub_id: int, data: dict) -> dict:
    sub = own(session, user, sub_id)
    unknown = set(data) - {"name", "active", "channels", "webhook_url", "params"}
    if unknown:
        raise ApiError(400, f"unknown field(s) {sorted(unknown)}: give name, active, channels, webhook_url, params")
    if "params" in data:
        sub.params = check_params(session, user, sub.kind, data["params"])
    if "channels" in data or "webhook_url" in data:
        sub.channels, sub.webhook_url = check_channels(
            cfg, user, data.get("channels", list(sub.channels)), data.get("webhook_url", sub.webhook_url))
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise ApiError(400, "active must be true or false")
        sub.active = data["active"]
    if "name" in data:
        if not isinstance(data["name"], str) or not data["name"].strip():
            raise ApiError(400, "name must be a non-empty string")
        sub.name = data["name"].strip()
    announce_change(session)
    session.commit()
    return serialize(sub)


def delete(session: Session, user: User, sub_id: int) -> None:
    session.delete(own(session, user, sub_id))
    announce_change(session)
    session.commit()


def deactivate(session: Session, sub_id: int) -> Subscription | None:
    """End a subscription (from a signed unsubscribe link); None if it is gone."""
    sub = session.get(Subscription, sub_id)
    if sub is None:
        return None
    sub.active = False
    announce_change(session)
    session.commit()
    return sub
