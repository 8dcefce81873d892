"""The websocket clients of one app process: what each asked for, what it may see, and the slow-client rule.

Events are encoded once; each client gets, per batch of events the bus hands over, one frame holding the
events it may see and asked for: `{"type": "events", "events": [...]}`. A client whose unsent frames pile up
beyond `live.max_queued_frames` is closed (code 1008, "too slow") so that it never holds the others back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ApiError
from .feed import Cone, parse_cone

log = logging.getLogger("astroportal.live")


@dataclass
class FeedFilter:
    """What a client asked for: kinds (empty: all), one group, a sky cone."""

    kinds: frozenset[str] = frozenset()
    group_id: int | None = None
    cone: Cone | None = None

    def wants(self, event: dict) -> bool:
        if self.kinds and event["kind"] not in self.kinds:
            return False
        if self.group_id is not None and self.group_id not in event["group_ids"]:
            return False
        if self.cone is not None and not self.cone.contains(event["ra"], event["dec"]):
            return False
        return True


def parse_filter(get: Callable[[str], Any]) -> FeedFilter:
    """A FeedFilter from `get(name)` (query arguments or a JSON message): types (comma separated or a list),
    group_id, ra/dec/radius; ApiError(400) naming what is wrong."""
    kinds = get("types")
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    if kinds is not None and (not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds)):
        raise ApiError(400, "types must be a list of event kinds (or a comma-separated string)")
    group_id = get("group_id")
    if group_id not in (None, ""):
        try:
            group_id = int(group_id)
        except (TypeError, ValueError):
            raise ApiError(400, f"group_id must be an integer, not {group_id!r}") from None
    else:
        group_id = None
    cone = None
    parts = [get("ra"), get("dec"), get("radius")]
    if any(p not in (None, "") for p in parts):
        cone = parse_cone(*parts)
    return FeedFilter(frozenset(kinds or ()), group_id, cone)


@dataclass(eq=False)
class Client:
    """One open websocket: `send(text)` returns a Future (or None), `close(code, reason)` ends it."""

    send: Callable[[str], Any]
    close: Callable[[int, str], None]
    user_id: int
    groups: frozenset[int] | None  # None: a system admin, who sees every event
    filter: FeedFilter = field(default_factory=FeedFilter)
    queued: int = 0
    skip_ids: set[int] = field(default_factory=set)  # replayed at connection, not to be sent again live

    def may_see(self, event: dict) -> bool:
        return self.groups is None or not self.groups.isdisjoint(event["group_ids"])


class Hub:
    """The clients of this process and the fan-out of each batch of events to them."""

    def __init__(self, max_queued: int = 200) -> None:
        self.clients: set[Client] = set()
        self.max_queued = max_queued
        self.dropped = 0

    def add(self, client: Client) -> None:
        self.clients.add(client)

    def remove(self, client: Client) -> None:
        self.clients.discard(client)

    def publish(self, batch: list[tuple[dict, str]]) -> None:
        """Send each client, in one frame, the events of `batch` ((event, its JSON)) it may see and wants."""
        for client in list(self.clients):
            parts = [text for event, text in batch
                     if client.may_see(event) and client.filter.wants(event) and event["id"] not in client.skip_ids]
            if parts:
                self.send(client, '{"type":"events","events":[' + ",".join(parts) + "]}")

    def send(self, client: Client, text: str) -> None:
        if client.queued >= self.max_queued:
            self.dropped += 1
            self.remove(client)
            log.info("live: dropping user %s's websocket: %d frames unsent", client.user_id, client.queued)
            client.close(1008, "too slow: frames were piling up unsent; reconnect with since=<last event id>")
            return
        try:
            future = client.send(text)
        except Exception:  # noqa: BLE001 - a closed connection: forget it
            self.remove(client)
            return
        if future is not None:
            client.queued += 1

            def done(_f: Any, c: Client = client) -> None:
                c.queued -= 1

            future.add_done_callback(done)

    def update_groups(self, groups_by_user: dict[int, frozenset[int] | None]) -> None:
        """Apply current group memberships (a member removed from a group stops seeing its events)."""
        for client in self.clients:
            if client.user_id in groups_by_user:
                client.groups = groups_by_user[client.user_id]
