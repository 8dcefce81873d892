"""The websocket clients of one app process: what each asked for, what it may see, and the slow-client rule.

Events are encoded once; each client gets, per batch of events the bus hands over, one frame holding the
events it may see and asked for: `{"type": "events", "events": [...]}`. A client whose unsent frames pile up
beyond `live.max_unsent_kb` is closed (code 1008, "too slow") so that it never holds the others back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ApiError
from .feed import Cone, parse_cone
from .frames import text_frame

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


class Client:
    """One open websocket: `writer` sends encoded frames (`write(frame)`, raising once the connection is gone)
    and counts the bytes it could not send yet (`unsent`); `close(code, reason)` ends it.

    Clients with the same `key` (readable groups and filter) receive the same frames: it is kept up to date
    when either changes, for the hub to group clients without rebuilding it for every batch.
    """

    __slots__ = ("writer", "close", "user_id", "_groups", "_filter", "key", "skip_ids")

    def __init__(self, writer: Any, close: Callable[[int, str], None], user_id: int,
                 groups: frozenset[int] | None, filter: FeedFilter | None = None) -> None:
        self.writer = writer
        self.close = close
        self.user_id = user_id
        self._groups = groups  # None: a system admin, who sees every event
        self._filter = filter or FeedFilter()
        self.skip_ids: set[int] = set()  # replayed at connection, not to be sent again live
        self.key = self._key()

    def _key(self) -> tuple:
        return (self._groups, self._filter.key())

    @property
    def groups(self) -> frozenset[int] | None:
        return self._groups

    @groups.setter
    def groups(self, value: frozenset[int] | None) -> None:
        self._groups = value
        self.key = self._key()

    @property
    def filter(self) -> FeedFilter:
        return self._filter

    @filter.setter
    def filter(self, value: FeedFilter) -> None:
        self._filter = value
        self.key = self._key()

    def may_see(self, event: dict) -> bool:
        return self._groups is None or not self._groups.isdisjoint(event["group_ids"])


class Hub:
    """The clients of this process and the fan-out of each batch of events to them.

    Events arriving within a window of the first go out together (one frame per client instead of one per event:
    with a thousand clients and hundreds of events a second, the number of frames is what costs, mostly the
    kernel's work for each write); clients that see the same events get the very same bytes. The window is
    `batch_seconds`, widened to FANOUT_PACE times the CPU the last fan-out took (so that writing frames takes at
    most about a third of the process's time however many clients there are), and never beyond
    MAX_BATCH_SECONDS. The bus waits that window before reading the announced rows (`window`), and hands them to
    `deliver`; `enqueue` gathers for a window itself.
    """

    FANOUT_PACE = 2.0
    MAX_BATCH_SECONDS = 0.1

    def __init__(self, max_unsent: int = 1 << 20, batch_seconds: float = 0.02) -> None:
        self.clients: set[Client] = set()
        self.max_unsent = max_unsent
        self.batch_seconds = batch_seconds
        self.dropped = 0
        self.last_fanout = 0.0  # CPU seconds the last publish took
        self._pending: list[tuple[dict, str]] = []
        self._flush_scheduled = False

    def window(self) -> float:
        """How long events are gathered before the next fan-out."""
        return min(max(self.batch_seconds, self.FANOUT_PACE * self.last_fanout),
                   max(self.batch_seconds, self.MAX_BATCH_SECONDS))

    def enqueue(self, batch: list[tuple[dict, str]]) -> None:
        """Publish `batch` with whatever else arrives within the window (on the running IOLoop)."""
        from tornado.ioloop import IOLoop

        self._pending.extend(batch)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            IOLoop.current().call_later(self.window(), self._flush)

    def _flush(self) -> None:
        batch, self._pending, self._flush_scheduled = self._pending, [], False
        self.deliver(batch)

    def deliver(self, batch: list[tuple[dict, str]]) -> None:
        """Publish `batch` now (already gathered for a window), noting what the fan-out cost for the next window."""
        if batch:
            # The IOLoop thread's own CPU time, not the wall clock: a fan-out stretched by the notifier thread
            # holding the interpreter, or by other processes of a busy machine, has not cost this process more,
            # and widening the window for it would only add latency.
            start = time.thread_time()
            self.publish(batch)
            self.last_fanout = time.thread_time() - start

    def add(self, client: Client) -> None:
        self.clients.add(client)

    def remove(self, client: Client) -> None:
        self.clients.discard(client)

    def publish(self, batch: list[tuple[dict, str]]) -> None:
        """Send each client, in one frame, the events of `batch` ((event, its JSON)) it may see and wants."""
        # Clients are grouped by what they may see and asked for: each group's frame is chosen and encoded once
        # (the visibility and filter checks run per event and group of clients, not per client), and the very
        # same bytes are written to each of its clients.
        by_key: dict[tuple, bytes | None] = {}
        max_unsent = self.max_unsent
        frame_for = self._frame
        for client in list(self.clients):
            if client.skip_ids:
                frame = frame_for(client, batch)
                if len(client.skip_ids) > 10_000 or (batch and batch[0][0]["id"] > max(client.skip_ids)):
                    client.skip_ids = set()  # the replay is behind us
            else:
                key = client.key
                frame = by_key.get(key, b"")
                if frame == b"":  # not chosen yet for this key (a chosen frame is None or a non-empty frame)
                    frame = by_key[key] = frame_for(client, batch)
            if frame is None:
                continue
            writer = client.writer
            if writer.unsent > max_unsent:
                self.drop(client)
                continue
            try:
                writer.write(frame)
            except Exception:  # noqa: BLE001 - a closed connection: forget it
                self.remove(client)

    @staticmethod
    def _frame(client: Client, batch: list[tuple[dict, str]]) -> bytes | None:
        flt, skip = client.filter, client.skip_ids
        parts = [text for event, text in batch
                 if client.may_see(event) and flt.wants(event) and event["id"] not in skip]
        return text_frame('{"type":"events","events":[' + ",".join(parts) + "]}") if parts else None

    def drop(self, client: Client) -> None:
        """Close a client whose unsent frames pile up: it must not hold the others back (it reconnects with since=)."""
        self.dropped += 1
        self.remove(client)
        log.info("live: dropping user %s's websocket: %d bytes unsent", client.user_id, client.writer.unsent)
        client.close(1008, "too slow: frames were piling up unsent; reconnect with since=<last event id>")

    def update_groups(self, groups_by_user: dict[int, frozenset[int] | None]) -> None:
        """Apply current group memberships (a member removed from a group stops seeing its events)."""
        for client in self.clients:
            if client.user_id in groups_by_user:
                client.groups = groups_by_user[client.user_id]
