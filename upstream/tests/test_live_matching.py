"""The notifier's rounds against a real database, with no portal process running (so nothing else claims the
events): a round skips the events another process holds, a process that dies mid-round leaves its events for
the next round, every event is matched once, and a round's matches for one subscription make one message,
due at once or `group_seconds` after the last message sent.
"""

from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy import text

from conftest import free_port, portal, write_config

CONE = '{"ra": 10, "dec": 10, "radius": 1, "kinds": ["comment.added"]}'


@pytest.fixture(scope="module")
def env(pg, tmp_path_factory):
    from astroportal import config as portal_config
    from astroportal.db import make_sessionmaker
    from astroportal.live.matching import SubscriptionIndex

    root = tmp_path_factory.mktemp("matching")
    url = pg.create_database("live_matching_test")
    config = write_config(root / "config.yaml", url, free_port())
    portal("migrate", config=config)
    maker = make_sessionmaker(portal_config.load(config))
    with maker() as s:
        s.execute(text("INSERT INTO users (id, username, contact_email) VALUES (500, 'matcher', 'm@example.org')"))
        s.execute(text("INSERT INTO groups (id, name) VALUES (500, 'matchers')"))
        s.execute(text("INSERT INTO group_users (group_id, user_id) VALUES (500, 500)"))
        sub = s.execute(text("INSERT INTO subscriptions (user_id, name, kind, params, channels) VALUES "
                             "(500, 'near', 'cone', CAST(:p AS jsonb), '{portal,email}') RETURNING id"),
                        {"p": CONE}).scalar()
        s.commit()
        index = SubscriptionIndex.load(s)
    yield {"url": url, "maker": maker, "sub": sub, "index": index}
    maker.kw["bind"].dispose()


def add_events(env, n: int, group_id: int = 500) -> list[int]:
    with env["maker"]() as s:
        ids = s.execute(text(
            "INSERT INTO live_events (kind, obj_id, group_ids, ra, dec, data) SELECT 'comment.added', 'ZTF26m' || i,"
            " ARRAY[:g], 10, 10, jsonb_build_object('summary', 'comment ' || i) FROM generate_series(1, :n) AS i"
            " RETURNING id"), {"n": n, "g": group_id}).scalars().all()
        s.commit()
    return sorted(ids)


def run_round(env, group_seconds: float = 60) -> int:
    from astroportal.live.matching import Readers, process_events

    with env["maker"]() as s:
        return process_events(s, env["index"], Readers(), group_seconds)


def state(env) -> tuple[list[int], list[tuple]]:
    """(event ids notified to the subscription, [(status, event_ids)] of its e-mail messages), oldest first."""
    with env["maker"]() as s:
        notified = s.execute(text("SELECT event_id FROM notifications WHERE subscription_id = :s ORDER BY event_id"),
                             {"s": env["sub"]}).scalars().all()
        messages = s.execute(text("SELECT status, event_ids FROM notification_deliveries WHERE subscription_id = :s"
                                  " AND channel = 'email' ORDER BY id"), {"s": env["sub"]}).all()
    return list(notified), [tuple(m) for m in messages]


def test_held_events_are_skipped_and_a_dead_process_leaves_them_for_the_next_round(env):
    ids = add_events(env, 6)
    # Another process is mid-round on the first two events: it holds their rows.
    other = psycopg2.connect(env["url"])
    try:
        with other.cursor() as cur:
            cur.execute("SELECT id FROM live_events WHERE id = ANY(%s) FOR UPDATE", (ids[:2],))
        assert run_round(env) == 4
        notified, messages = state(env)
        assert notified == ids[2:] and messages == [("pending", ids[2:])]
        assert run_round(env) == 0  # the held events are not taken twice, nor waited for
        other.rollback()  # ... and it dies before committing: its events are matched by the next round
    finally:
        other.close()
    assert run_round(env) == 2
    assert run_round(env) == 0
    notified, messages = state(env)
    assert notified == ids and messages == [("pending", ids[2:] + ids[:2])]
    with env["maker"]() as s:
        assert s.execute(text("SELECT count(*) FROM live_events WHERE processed_at IS NULL")).scalar() == 0
    # An event of a group the member cannot read is processed and tells nobody.
    hidden = add_events(env, 1, group_id=999)
    assert run_round(env) == 1 and state(env)[0] == ids and hidden[0] not in state(env)[1][-1][1]


def _last_message_sent(env, seconds_ago: int) -> None:
    with env["maker"]() as s:
        s.execute(text("UPDATE notification_deliveries SET status = 'sent', sent_at = now() - make_interval(secs => :ago)"
                       " WHERE subscription_id = :s"), {"s": env["sub"], "ago": seconds_ago})
        s.commit()


def _newest_message(env) -> tuple:
    """(status, event ids, seconds until it is due) of the subscription's newest message."""
    with env["maker"]() as s:
        return s.execute(text(
            "SELECT status, event_ids, extract(epoch FROM next_attempt_at - CAST(now() AS timestamp))"
            " FROM notification_deliveries WHERE subscription_id = :s ORDER BY id DESC LIMIT 1"),
            {"s": env["sub"]}).one()


def test_a_new_message_waits_the_grouping_time_after_the_last_one_sent(env):
    _last_message_sent(env, 20)
    ids = add_events(env, 2)
    assert run_round(env, group_seconds=60) == 2
    status, listed, wait = _newest_message(env)
    assert status == "pending" and listed == ids and 35 < wait <= 40
    # Sent long enough ago: the next message is due at once.
    _last_message_sent(env, 120)
    ids = add_events(env, 1)
    assert run_round(env, group_seconds=60) == 1
    _, listed, wait = _newest_message(env)
    assert listed == ids and -5 < wait <= 0
