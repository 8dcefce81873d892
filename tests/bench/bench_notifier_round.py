#!/usr/bin/env python3
"""CPU cost of the live notifier's matching: the notifier thread's CPU seconds per 1,000 events processed.

The notifier runs in a thread of the app process that also writes the websockets' frames, so every millisecond
of its CPU (Python holds the GIL) is taken from the frames' writer. This measures `process_events` alone, in
this process, with `time.thread_time()` (CPU, not wall time: the machine is shared): events written with SQL
in batches, then claimed, matched and marked processed by the notifier's own function, as the notifier's loop
calls it (rounds of up to 500 events until none is left).

Two cases: no subscription (the live feed benchmark's case: every event is claimed and marked, nothing
matches) and `--subscriptions` cone subscriptions of a member of the events' group, on the portal and e-mail
channels, matching `--match` of the events (a notification each, and the e-mail messages queued).

Measured on the shared 2-core machine (3,000 events a series; figures vary by about 20% between runs):
                                           before (ORM rows, per-event     after (one constant claim-and-mark
                                           inserts and message queries)    statement, one insert a round)
  no subscription                          121 ms                          15 ms
  50 cone subscriptions, 10% matched       16,900 ms                       157 ms
and in `bench_live.py --sockets 1000 --rate 300 --seconds 10 --inject` the app process's CPU went from 3.8 s to
2.2-2.3 s (two runs each).

Usage: .venv/bin/python tests/bench/bench_notifier_round.py [--events 3000] [--repeats 5] [--subscriptions 50]
       [--match 0.1]
It starts its own PostgreSQL cluster (migrated with `python -m astroportal migrate`) and removes it at the end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import yaml

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ROOT / "upstream"
sys.path.insert(0, str(UPSTREAM))
sys.path.insert(0, str(UPSTREAM / "tests"))
from pgcluster import PgCluster, free_port  # noqa: E402


def write_events(db_url: str, n: int, match: float) -> None:
    """`n` comment events in group 1; a fraction `match` of them inside the subscriptions' cone at (10, 10)."""
    every = max(1, round(1 / match)) if match > 0 else 0
    with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO live_events (kind, obj_id, ids, group_ids, ra, dec, data) "
            "SELECT 'comment.added', 'ZTF26bench' || i, ARRAY[i]::bigint[], '{1}', "
            " CASE WHEN %s > 0 AND i %% %s = 0 THEN 10 ELSE 100 + (i %% 100) END, 10, "
            " jsonb_build_object('summary', 'comment ' || i, 'url', '/source/ZTF26bench' || i) "
            "FROM generate_series(1, %s) AS i", (every, every or 1, n))
    conn.close()


def measure(sessionmaker, index, readers, n_events: int, repeats: int, db_url: str, match: float) -> list[float]:
    """CPU milliseconds of the notifier thread per 1,000 events, one figure a repeat."""
    from astroportal.live.matching import process_events

    out = []
    for _ in range(repeats):
        write_events(db_url, n_events, match)
        done = 0
        cpu = 0.0
        with sessionmaker() as session:
            while True:
                t0 = time.thread_time()
                n = process_events(session, index, readers, 60.0)
                cpu += time.thread_time() - t0
                if not n:
                    break
                done += n
        assert done == n_events, f"processed {done} of {n_events} events"
        out.append(cpu * 1000 / done * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="events written before each measured series")
    parser.add_argument("--repeats", type=int, default=5, help="measured series per case")
    parser.add_argument("--subscriptions", type=int, default=50, help="cone subscriptions in the second case")
    parser.add_argument("--match", type=float, default=0.1, help="fraction of events inside the subscriptions' cone")
    args = parser.parse_args()

    cluster = PgCluster().start()
    try:
        db_url = cluster.create_database("bench_notifier")
        root = Path(tempfile.mkdtemp(prefix="bench-notifier-"))
        config = root / "config.yaml"
        config.write_text(yaml.safe_dump({"database": {"url": db_url},
                                          "server": {"port": free_port(), "host": "127.0.0.1"},
                                          "paths": {"var": str(root / "var")}}))
        subprocess.run([sys.executable, "-m", "astroportal", "migrate", "--config", str(config)], cwd=UPSTREAM,
                       check=True, capture_output=True)
        from astroportal import config as portal_config
        from astroportal.db import make_sessionmaker
        from astroportal.live.matching import Readers, SubscriptionIndex

        sessionmaker = make_sessionmaker(portal_config.load(config))
        with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO users (id, username, contact_email) VALUES (1000, 'bench', 'b@example.org')")
            cur.execute("INSERT INTO groups (id, name) VALUES (1, 'bench') ON CONFLICT (id) DO NOTHING")
            cur.execute("INSERT INTO group_users (group_id, user_id) VALUES (1, 1000)")
            for i in range(args.subscriptions):
                cur.execute("INSERT INTO subscriptions (user_id, name, kind, params, channels) VALUES "
                            "(1000, %s, 'cone', %s, '{portal,email}')",
                            (f"cone {i}", '{"ra": 10, "dec": 10, "radius": 1, "kinds": ["comment.added"]}'))
        conn.close()

        print(f"notifier CPU per 1,000 events ({args.events:,} events a series, {args.repeats} series, "
              "rounds of up to 500):")
        empty = SubscriptionIndex([])
        figures = measure(sessionmaker, empty, Readers(), args.events, args.repeats, db_url, 0)
        print(f"  no subscription:               median {statistics.median(figures):.1f} ms "
              f"(min {min(figures):.1f}, max {max(figures):.1f})")
        with sessionmaker() as session:
            index = SubscriptionIndex.load(session)
        figures = measure(sessionmaker, index, Readers(), args.events, args.repeats, db_url, args.match)
        print(f"  {args.subscriptions} cone subscriptions, {args.match:.0%} of events matched by each: "
              f"median {statistics.median(figures):.1f} ms (min {min(figures):.1f}, max {max(figures):.1f})")
        with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM notifications), (SELECT count(*) FROM notification_deliveries),"
                        " (SELECT sum(cardinality(event_ids)) FROM notification_deliveries)")
            notes, messages, listed = cur.fetchone()
        conn.close()
        print(f"  written: {notes:,} notifications; {messages:,} e-mail messages queued, listing {listed or 0:,} events")
        sessionmaker.kw["bind"].dispose()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
