"""The websocket clients of one app process: what each asked for, what it may see, and the slow-client rule.

Events are encoded once; each client gets, per batch of events the bus hands over, one frame holding the
events it may see and asked for: `{"type": "events", "events": [...]}`. A client whose unsent frames pile up
beyond `live.max_unsent_kb` is closed (code 1008, "too slow") so that it never holds the others back.
"""

from __future__ import annotations

import logging
import struct
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

    def key(self) -> tuple:
        cone = None if self.cone is None else (self.cone.ra, self.cone.dec, self.cone.radius)
        return (self.kinds, self.group_id, cone)

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
    """One open websocket: `send(frame)` writes an encoded frame and returns a Future (or None),
    `close(code, reason)` ends it."""

    send: Callable[[bytes], Any]
    close: Callable[[int, str], None]
    user_id: int
    groups: frozenset[int] | None  # None: a system admin, who sees every event
    filter: FeedFilter = field(default_factory=FeedFilter)
    unsent: int = 0
    backlog: Callable[[], int] | None = None  # bytes written to the connection but not yet taken by the kernel
    skip_ids: set[int] = field(default_factory=set)  # replayed at connection, not to be sent again live

    def may_see(self, event: dict) -> bool:
        return self.groups is None or not self.groups.isdisjoint(event["group_ids"])

    def key(self) -> tuple:
        """Clients with the same key receive the same events."""
        return (self.groups, self.filter.key())


def text_frame(text: str) -> bytes:
    """A complete, unmasked websocket text frame (RFC 6455 5.2), as a server sends it."""
    data = text.encode()
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + data


class Hub:
    """The clients of this process and the fan-out of each batch of events to them.

    Events arriving within `batch_seconds` of the first go out together (one frame per client instead of one per
    event: with a thousand clients and hundreds of events a second, the number of frames is what costs); clients
    that see the same events get the very same text.
    """

    def __init__(self, max_unsent: int = 1 << 20, batch_seconds: float = 0.02) -> None:
        self.clients: set[Client] = set()
        self.max_unsent = max_unsent
        self.batch_seconds = batch_seconds
        self.dropped = 0
        self._pending: list[tuple[dict, str]] = []
        self._flush_scheduled = False

    def enqueue(self, batch: list[tuple[dict, str]]) -> None:
        """Publish `batch` with whatever else arrives within batch_seconds (on the running IOLoop)."""
        from tornado.ioloop import IOLoop

        self._pending.extend(batch)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            IOLoop.current().call_later(self.batch_seconds, self._flush)

    def _flush(self) -> None:
        batch, self._pending, self._flush_scheduled = self._pending, [], False
        if batch:
            self.publish(batch)

    def add(self, client: Client) -> None:
        self.clients.add(client)

    def remove(self, client: Client) -> None:
        self.clients.discard(client)

    def publish(self, batch: list[tuple[dict, str]]) -> None:
        """Send each client, in one frame, the events of `batch` ((event, its JSON)) it may see and wants."""
        # Clients are grouped by what they may see and asked for: each group's frame is chosen and encoded once.
        by_key: dict[tuple, bytes | None] = {}
        for client in list(self.clients):
            if client.skip_ids:
                frame = self._frame(client, batch)
                if len(client.skip_ids) > 10_000 or (batch and batch[0][0]["id"] > max(client.skip_ids)):
                    client.skip_ids = set()  # the replay is behind us
            else:
                key = client.key()
                if key in by_key:
                    frame = by_key[key]
                else:
                    frame = by_key[key] = self._frame(client, batch)
            if frame is not None:
                self.send(client, frame)

    @staticmethod
    def _frame(client: Client, batch: list[tuple[dict, str]]) -> bytes | None:
        parts = [text for event, text in batch
                 if client.may_see(event) and client.filter.wants(event) and event["id"] not in client.skip_ids]
        return text_frame('{"type":"events","events":[' + ",".join(parts) + "]}") if parts else None

    def send(self, client: Client, frame: bytes) -> None:
        if client.unsent > self.max_unsent:
            self.dropped += 1
            self.remove(client)
            log.info("live: dropping user %s's websocket: %d bytes unsent", client.user_id, client.unsent)
            client.close(1008, "too slow: frames were piling up unsent; reconnect with since=<last event id>")
            return
        try:
            client.send(frame)
        except Exception:  # noqa: BLE001 - a closed connection: forget it
            self.remove(client)
            return
        client.unsent = client.backlog() if client.backlog else 0

    def update_groups(self, groups_by_user: dict[int, frozenset[int] | None]) -> None:
        """Apply current group memberships (a member removed from a group stops seeing its events)."""
        for client in self.clients:
            if client.user_id in groups_by_user:
                client.groups = groups_by_user[client.user_id]
