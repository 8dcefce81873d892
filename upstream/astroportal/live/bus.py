"""PostgreSQL as the bus: one LISTEN connection per app process, read on Tornado's IOLoop.

An event's NOTIFY carries only its id; the row is read after the commit (it is visible by then), encoded once
and handed to the process's websocket hub, and the notifier is woken to match subscriptions. A lost
connection is reopened, and the events written meanwhile are read by id so that none is skipped.
"""

from __future__ import annotations

import logging
from typing import Callable

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from tornado.ioloop import IOLoop

from ..jsonutil import dumps
from .feed import CHANNEL

log = logging.getLogger("astroportal.live")

SUBSCRIPTIONS_CHANNEL = "astroportal_live_subscriptions"
FETCH_DELAY = 0.005  # the default wait before reading announced rows (see Bus's fetch_delay)
COLUMNS = "id, created_at, kind, obj_id, ids, group_ids, user_id, ra, dec, data"


def dsn_of(url: str) -> str:
    """psycopg2's DSN for a SQLAlchemy URL (postgresql+psycopg2://... -> postgresql://...)."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest


def row_as_event(row: tuple) -> dict:
    id_, created_at, kind, obj_id, ids, group_ids, user_id, ra, dec, data = row
    return {"id": id_, "kind": kind, "created_at": created_at.isoformat(), "obj_id": obj_id, "ids": list(ids or []),
            "group_ids": list(group_ids or []), "user_id": user_id, "ra": ra, "dec": dec, "data": data or {}}


class Bus:
    """LISTEN on the live channels; `on_events(batch)` gets [(event, json)], `on_subscriptions()` a change.

    The rows of announced events are read `fetch_delay()` seconds after the first NOTIFY that finds none waiting,
    all at once: the app process's hub passes its batching window, so that one query reads what one fan-out sends.
    """

    def __init__(self, url: str, on_events: Callable[[list[tuple[dict, str]]], None],
                 on_subscriptions: Callable[[], None] = lambda: None,
                 fetch_delay: Callable[[], float] = lambda: FETCH_DELAY) -> None:
        self.dsn = dsn_of(url)
        self.on_events = on_events
        self.on_subscriptions = on_subscriptions
        self.fetch_delay = fetch_delay
        self.conn: psycopg2.extensions.connection | None = None
        self.last_id = 0
        self.loop: IOLoop | None = None
        self._ids: list[int] = []
        self._fetch_scheduled = False

    def start(self) -> None:
        self.loop = IOLoop.current()
        try:
            self._connect()
        except psycopg2.Error as exc:
            log.warning("live: cannot LISTEN (%s); retrying in 2 s", exc)
            self.loop.call_later(2, self.start)

    def _connect(self) -> None:
        conn = psycopg2.connect(self.dsn, application_name="astroportal-live-listen")
        conn.set_session(autocommit=True)
        with conn.cursor() as cur:
            cur.execute(f"LISTEN {CHANNEL}; LISTEN {SUBSCRIPTIONS_CHANNEL}")
            replayed: set[int] = set()
            if self.last_id:
                # Reconnected: what was written while nobody listened.
                cur.execute(f"SELECT {COLUMNS} FROM live_events WHERE id > %s ORDER BY id", (self.last_id,))
                rows = cur.fetchall()
                replayed = {row[0] for row in rows}
                self._dispatch(rows)
            else:
                cur.execute("SELECT coalesce(max(id), 0) FROM live_events")
                self.last_id = cur.fetchone()[0]
        self.conn = conn
        assert self.loop is not None
        self.loop.add_handler(conn.fileno(), self._readable, IOLoop.READ)
        # Events committed between the LISTEN and the query above were announced already: read those not read.
        self._take_notifies(conn, skip=replayed)

    def stop(self) -> None:
        if self.conn is not None:
            try:
                assert self.loop is not None
                self.loop.remove_handler(self.conn.fileno())
            except (ValueError, KeyError, psycopg2.Error):
                pass
            self.conn.close()
            self.conn = None

    def _readable(self, fd: int, events: int) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            conn.poll()
            self._take_notifies(conn)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            self._lost(exc)

    def _take_notifies(self, conn: psycopg2.extensions.connection, skip: set[int] = frozenset()) -> None:
        """Act on the notifications psycopg2 has collected on `conn` (ids in `skip` were read already).

        Called after every use of the connection, not only when its socket is readable: a query (the fetch of the
        rows) also reads whatever NOTIFY arrived meanwhile into `conn.notifies`, leaving nothing on the socket to
        wake the IOLoop; left there, such an event would wait for the next NOTIFY, and the last of a burst forever.
        """
        ids = []
        subs_changed = False
        for n in conn.notifies:
            if n.channel == CHANNEL:
                try:
                    event_id = int(n.payload)
                except ValueError:
                    continue
                if event_id not in skip:
                    ids.append(event_id)
            else:
                subs_changed = True
        conn.notifies.clear()
        if subs_changed:
            self.on_subscriptions()
        if ids:
            # The rows are read a little later, for every id announced meanwhile at once: under a stream of
            # writes, one query per NOTIFY would keep the IOLoop waiting on the database (the query blocks it).
            self._ids.extend(ids)
            if not self._fetch_scheduled:
                self._fetch_scheduled = True
                assert self.loop is not None
                self.loop.call_later(self.fetch_delay(), self._fetch)

    def _fetch(self) -> None:
        ids, self._ids, self._fetch_scheduled = self._ids, [], False
        conn = self.conn
        if conn is None or not ids:
            return
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT {COLUMNS} FROM live_events WHERE id = ANY(%s) ORDER BY id", (ids,))
                rows = cur.fetchall()
            self._take_notifies(conn)
            self._dispatch(rows)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            self._lost(exc)

    def _lost(self, exc: Exception) -> None:
        log.warning("live: LISTEN connection lost (%s); reconnecting", exc)
        self.stop()
        assert self.loop is not None
        self.loop.call_later(1, self.start)

    def _dispatch(self, rows: list[tuple]) -> None:
        if not rows:
            return
        batch = []
        for row in rows:
            event = row_as_event(row)
            batch.append((event, dumps(event)))
            self.last_id = max(self.last_id, event["id"])
        try:
            self.on_events(batch)
        except Exception:  # noqa: BLE001 - one bad consumer must not stop the bus
            log.exception("live: delivering events failed")
