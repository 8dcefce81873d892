"""The LISTEN bus on its own, against a real PostgreSQL: every announced event is read, whatever the timing.

The bus reads the rows of the announced events a few milliseconds after their NOTIFY, on the same connection.
A NOTIFY that arrives while that query runs is read off the socket by the query itself: the bus must act on it
then, for nothing will wake it later (the bench saw the last event of a burst never delivered).
"""

from __future__ import annotations

import time

import psycopg2
from tornado.ioloop import IOLoop

from astroportal.live.bus import Bus, dsn_of


def write_event(conn, n: int) -> int:
    """A live event written and announced in its own transaction, as the portal's writes do; its id."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO live_events (kind, obj_id, ids, group_ids, ra, dec, data) VALUES "
                    "('comment.added', 'ZTF26busbus', ARRAY[%s]::bigint[], '{1}', 10, 10, '{}') RETURNING id", (n,))
        event_id = cur.fetchone()[0]
        cur.execute("SELECT pg_notify('astroportal_live', %s)", (str(event_id),))
    conn.commit()
    return event_id


def test_an_event_announced_while_the_bus_reads_rows_is_delivered(cfg):
    url = cfg.get("database.url")
    delivered: list[int] = []
    loop = IOLoop(make_current=False)
    writer = psycopg2.connect(dsn_of(url))
    bus = Bus(url, lambda batch: delivered.extend(event["id"] for event, _ in batch))
    try:
        async def listen() -> None:
            bus.start()

        loop.run_sync(listen)
        assert bus.conn is not None, "the bus could not LISTEN"
        fd = bus.conn.fileno()

        # The interleaving the IOLoop produces under a stream of writes, step by step: the NOTIFY of `first` is
        # read (its rows to be fetched shortly), then `second` is announced before that fetch runs.
        first = write_event(writer, 1)
        time.sleep(0.3)  # the NOTIFY has reached the bus's socket
        bus._readable(fd, IOLoop.READ)
        second = write_event(writer, 2)
        time.sleep(0.3)
        bus._fetch()  # the fetch of `first`; its query also reads `second`'s NOTIFY off the socket
        assert delivered == [first]

        # Nothing more is written: `second` must still arrive.
        async def wait() -> None:
            import asyncio

            deadline = time.monotonic() + 3
            while second not in delivered and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

        loop.run_sync(wait)
        assert delivered == [first, second]
    finally:
        writer.close()
        bus.stop()
        loop.close()
