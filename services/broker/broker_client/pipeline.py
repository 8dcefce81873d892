"""A batch of alerts into the portal: map each, write them all with a handful of list requests, and when the
portal refuses the batch, find the alert(s) at fault by sending them one at a time (dead letters), so that the
others still land. Every write is idempotent, so sending an alert again never duplicates it."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from .deadletter import DeadLetters
from .mapping import AlertWrites, Context, MappingError, map_alert, photometry_bodies
from .portal_client import AuthFailed, PortalClient, PortalError, Rejected, Stopping, Unavailable, encode

log = logging.getLogger("broker")
#: Requests of one batch the portal is asked to write at once, after its sources.
IN_FLIGHT = 2
#: The content type of the encoded bodies (sent as the bytes they are: wrapping them in Encoded would copy them).
JSON = "application/json"


@dataclass
class Item:
    """One alert as a source hands it over."""

    where: str                      # where it came from, for people: "file.avro#12", "topic[0]@45", ...
    record: dict | None = None      # the decoded alert (Fink's Avro shape)
    topic: str | None = None        # the Kafka topic or Fink class it came with
    error: str | None = None        # why it could not be decoded (it then goes to the dead letters)
    payload: Any = None             # what a dead letter keeps to send it again (raw message, REST row)


@dataclass
class BatchResult:
    alerts: int = 0
    dead: int = 0
    points: int = 0
    new_sources: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass
class Prepared:
    pairs: list
    result: "BatchResult"
    bodies: list


class Pipeline:
    def __init__(self, portal: PortalClient, ctx: Context, dead_letters: DeadLetters, source: str) -> None:
        self.portal = portal
        self.ctx = ctx
        self.dead_letters = dead_letters
        self.source = source
        self._pool: ThreadPoolExecutor | None = None

    def prepare(self, items: list[Item]) -> "Prepared":
        """Map a batch (dead-lettering what cannot be mapped) and encode its request bodies; no portal call, so it
        can run in a thread while the previous batch is being written."""
        result = BatchResult()
        pairs: list[tuple[Item, AlertWrites]] = []
        for item in items:
            if item.error is not None:
                self._dead(result, item, None, item.error)
                continue
            try:
                pairs.append((item, map_alert(item.record, item.topic, self.ctx)))
            except MappingError as exc:
                self._dead(result, item, None, str(exc))
                continue
            item.record = None  # the decoded alert is several times its writes: keep the service small
        return Prepared(pairs, result, self.bodies([w for _, w in pairs]) if pairs else [])

    def send(self, items: "list[Item] | Prepared") -> BatchResult:
        """Write a batch; returns once every alert is in the portal or in the dead letters.

        Raises Unavailable or AuthFailed (nothing to blame on an alert: the caller waits and sends the same
        batch again) and Stopping (SIGTERM while waiting to retry).
        """
        prepared = items if isinstance(items, Prepared) else self.prepare(items)
        result = BatchResult(dead=prepared.result.dead, reasons=list(prepared.result.reasons))
        if prepared.pairs:
            self._send(prepared.pairs, result, prepared.bodies)
        return result

    # -- writing -----------------------------------------------------------------------------------------
    def bodies(self, writes: list[AlertWrites]) -> list[tuple[str, str, bytes, int]]:
        """The list requests of one batch, in dependency order, encoded: (method, path, body, points)."""
        out = [("POST", "/api/sources", encode([w.source for w in writes]), 0)]
        candidates = [w.candidate for w in writes if w.candidate is not None]
        if candidates:
            out.append(("POST", "/api/candidates", encode(candidates), 0))
        points = [p for w in writes for p in w.points]
        bodies = photometry_bodies(points, self.ctx.group_ids, self.ctx.origin) if points else []
        for i, body in enumerate(bodies):
            # (the batch's point count is carried by its first request)
            out.append(("PUT", "/api/photometry", encode(body), len(points) if i == 0 else 0))
        classifications = [c for w in writes for c in w.classifications]
        if classifications:
            out.append(("POST", "/api/classification", encode(classifications), 0))
        annotations = [{"obj_id": w.obj_id, "origin": self.ctx.origin, "data": w.annotations,
                        "group_ids": self.ctx.group_ids} for w in writes if w.annotations]
        if annotations:
            # One per object and origin, updated in place: the latest alert's scores, never a duplicate.
            out.append(("POST", "/api/annotations", encode(annotations), 0))
        thumbnails = [t for w in writes for t in w.thumbnails]
        for start in range(0, len(thumbnails), 300):  # ~5 MB a request
            out.append(("POST", "/api/thumbnail", encode(thumbnails[start:start + 300]), 0))
        return out

    def write(self, writes: list[AlertWrites], bodies: list | None = None) -> tuple[int, int]:
        """Send the batch's requests; returns (new sources, points).

        The sources go first (every other write names their objects); the rest depend on nothing but them and go
        IN_FLIGHT at a time: the portal writes the photometry in a worker thread while it stores the cutouts, and
        the database and the portal each get a core. A failure of any is raised once all have ended, so the
        batch is either confirmed whole or sent again whole (every write is idempotent)."""
        requests = list(bodies if bodies is not None else self.bodies(writes))
        first, rest = requests[0], requests[1:]
        answer = self.portal.request(first[0], first[1], first[2], JSON)
        new_sources = sum(1 for a in answer if isinstance(a, dict) and a.get("created"))
        if len(rest) <= 1 or IN_FLIGHT <= 1:
            for method, path, body, _ in rest:
                self.portal.request(method, path, body, JSON)
        else:
            # The photometry first: the database writes it while the portal stores the cutouts (two cutout
            # requests at once would only contend for the disk and leave the photometry to run alone at the end).
            rest.sort(key=lambda r: r[1] != "/api/photometry")
            futures = [self._executor().submit(self.portal.request, m, p, b, JSON) for m, p, b, _ in rest]
            errors = [f.exception() for f in futures]
            failed = [e for e in errors if e is not None]
            if failed:
                # What the caller can least fix decides: a refused alert is found by resending one by one.
                order = (AuthFailed, Stopping, Unavailable, Rejected)
                raise min(failed, key=lambda e: next((i for i, k in enumerate(order) if isinstance(e, k)),
                                                     len(order)))
        return new_sources, first[3] + sum(r[3] for r in rest)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            # Shared by the batches in flight (run_pipeline): IN_FLIGHT requests for each of a few batches.
            self._pool = ThreadPoolExecutor(max_workers=IN_FLIGHT * 4, thread_name_prefix="portal-write")
        return self._pool

    def _send(self, pairs: list[tuple[Item, AlertWrites]], result: BatchResult, bodies: list | None = None) -> None:
        try:
            new, points = self.write([w for _, w in pairs], bodies)
        except Rejected as exc:
            if len(pairs) == 1:
                self._dead(result, pairs[0][0], pairs[0][1], str(exc))
                return
            log.warning("the portal refused a batch of %d alerts (%s): sending them one by one", len(pairs), exc)
            for pair in pairs:
                self._send([pair], result)
            return
        except Unavailable as exc:
            if exc.status is None and "unreachable" in str(exc):
                raise  # the portal is down: wait and send the batch again
            if len(pairs) > 1:
                log.warning("a batch of %d alerts keeps failing (%s): sending them one by one", len(pairs), exc)
                for pair in pairs:
                    self._send([pair], result)
                return
            if not self.portal_healthy():
                raise
            self._dead(result, pairs[0][0], pairs[0][1], f"keeps failing while the portal is up: {exc}")
            return
        result.alerts += len(pairs)
        result.new_sources += new
        result.points += points

    def portal_healthy(self) -> bool:
        try:
            self.portal.request("GET", "/api/sysinfo", attempts=1)
            return True
        except PortalError:
            return False

    def _dead(self, result: BatchResult, item: Item, writes: AlertWrites | None, reason: str) -> None:
        record = item.record if isinstance(item.record, dict) else {}
        named = record.get("objectId")
        obj_id = writes.obj_id if writes else named if isinstance(named, str) else None
        candid = writes.candid if writes else None
        self.dead_letters.add(source=self.source, where=item.where, reason=reason, obj_id=obj_id, candid=candid,
                              payload=item.payload)
        log.error("dead letter: %s (%s): %s", item.where, obj_id or "no objectId", reason)
        result.dead += 1
        result.reasons.append(f"{item.where}: {reason}")


def describe(result: BatchResult, seconds: float, lag: Any = None) -> str:
    """The log line of one batch."""
    text = (f"batch: {result.alerts} alerts ({result.new_sources} new sources), {result.points} points, "
            f"{seconds:.2f} s")
    if result.dead:
        text += f", {result.dead} dead-lettered"
    if lag is not None:
        text += f", lag {lag}"
    return text


Committer = Callable[[], None]
