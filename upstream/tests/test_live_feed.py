"""The live feed end to end: two portal processes on one database, websockets authenticated by token.

An event written through one process reaches a websocket on the other; a member of group A never receives an
event about a source only in group B; reconnecting with the last id misses nothing; garbage closes the socket
with a reason.
"""

from __future__ import annotations

import asyncio
import json
import pytest
import requests
from sqlalchemy import text

from livehelpers import collect, connect, events_until, next_events, post, save_source, start_portals


@pytest.fixture(scope="module")
def live(pg, tmp_path_factory):
    """Two portal processes (a, b) sharing one database, and members of two groups (A and B)."""
    ns = start_portals(pg, tmp_path_factory.mktemp("live"), "live_feed_test")
    yield ns
    for s in ns.servers:
        s.stop()


def run(coro):
    return asyncio.run(coro)


def test_an_event_written_through_one_process_reaches_a_websocket_on_the_other(live):
    async def scenario():
        conn, _ = await connect(live.b, live.alice)
        hidden = save_source(live.a, live.admin, live.gb)      # only group B may see it
        shown = save_source(live.a, live.admin, live.ga, ra=150.0, dec=-30.0)
        events = await next_events(conn)
        conn.close()
        return hidden, shown, events

    hidden, shown, events = run(scenario())
    # Events come in the order they were written: the B-only one, had it been sent, would be first.
    assert [e["obj_id"] for e in events][:1] == [shown]
    event = events[0]
    assert event["kind"] == "source.saved" and event["group_ids"] == [live.ga]
    assert (event["ra"], event["dec"]) == (150.0, -30.0)
    assert event["data"]["url"] == f"/source/{shown}"
    assert hidden not in json.dumps(events)


def test_bob_sees_his_group_and_not_alices(live):
    async def scenario():
        conn, _ = await connect(live.a, live.bob)
        for_alice = save_source(live.b, live.admin, live.ga)
        for_bob = save_source(live.b, live.admin, live.gb)
        events = await events_until(conn, for_bob)
        conn.close()
        return for_alice, for_bob, events

    for_alice, for_bob, events = run(scenario())
    # Alice's event, written first, would have come before Bob's.
    seen = [e["obj_id"] for e in events]
    assert for_bob in seen and for_alice not in seen
    # And the recent past on the API is filtered the same way.
    r = requests.get(live.a.url + "/api/live/events", headers={"Authorization": f"token {live.bob}"}, timeout=10)
    seen = {e["obj_id"] for e in r.json()["data"]["events"]}
    assert for_bob in seen and for_alice not in seen


def test_photometry_comment_and_classification_events(live):
    obj_id = save_source(live.a, live.admin, live.ga)
    inst = post(live.a, live.admin, "/api/telescope", {"name": "live-tel", "nickname": "lt", "lat": 0, "lon": 0,
                                                       "elevation": 0, "diameter": 1.0})["id"]
    inst = post(live.a, live.admin, "/api/instrument", {"name": "live-cam", "type": "imager", "band": "optical",
                                                        "telescope_id": inst, "filters": ["ztfg"]})["id"]

    async def scenario():
        conn, _ = await connect(live.b, live.alice, types="photometry.added,comment.added")
        post(live.a, live.admin, "/api/photometry", {
            "obj_id": obj_id, "instrument_id": inst, "mjd": [60000.0, 60001.0, 60002.0], "filter": "ztfg",
            "mag": [18.0, 18.1, 18.2], "magerr": [0.1, 0.1, 0.1], "limiting_mag": [21.0] * 3, "magsys": "ab",
            "group_ids": [live.ga]})
        post(live.a, live.admin, f"/api/sources/{obj_id}/comments", {"text": "bright <b>now</b>", "group_ids": [live.ga]})
        events = await collect(conn, 2)
        conn.close()
        return events

    events = run(scenario())
    assert [e["kind"] for e in events] == ["photometry.added", "comment.added"]
    assert len(events[0]["ids"]) == 3 and events[0]["data"]["summary"] == f"3 photometry point(s) of {obj_id}"
    assert events[1]["data"]["text"] == "bright <b>now</b>"


def test_reconnecting_with_the_last_id_misses_nothing(live):
    async def scenario():
        conn, _ = await connect(live.a, live.alice)
        first = save_source(live.b, live.admin, live.ga)
        events = await events_until(conn, first)
        last_id = next(e["id"] for e in events if e["obj_id"] == first)
        conn.close()
        # Written while the member is away (through both processes), one of them hidden from her.
        missed = [save_source(live.a, live.admin, live.ga), save_source(live.b, live.admin, live.gb),
                  save_source(live.b, live.admin, live.ga)]
        conn, hello = await connect(live.b, live.alice, since=last_id)
        replayed = await next_events(conn)
        after = save_source(live.a, live.admin, live.ga)
        live_events = await events_until(conn, after)
        conn.close()
        return missed, hello, replayed, after, live_events

    missed, hello, replayed, after, live_events = run(scenario())
    assert [e["obj_id"] for e in replayed] == [missed[0], missed[2]]
    assert hello["replayed"] == 2 and hello["last_id"] == replayed[-1]["id"]
    assert [e["obj_id"] for e in live_events if e["obj_id"] in (*missed, after)] == [after]


def test_filters_by_sky_region_and_group(live):
    async def scenario():
        cone, _ = await connect(live.a, live.admin, ra=200, dec=45, radius=2)
        group, _ = await connect(live.a, live.admin, group_id=live.gb)
        outside = save_source(live.b, live.admin, live.ga, ra=200.0, dec=48.5)
        inside = save_source(live.b, live.admin, live.ga, ra=201.0, dec=45.5)
        in_b = save_source(live.b, live.admin, live.gb, ra=0.0, dec=0.0)
        got_cone = await next_events(cone)
        got_group = await next_events(group)
        cone.close()
        group.close()
        return outside, inside, in_b, got_cone, got_group

    outside, inside, in_b, got_cone, got_group = run(scenario())
    assert [e["obj_id"] for e in got_cone] == [inside]
    assert [e["obj_id"] for e in got_group] == [in_b]


def test_refusals_and_garbage(live):
    # No credentials, a bad token, a region out of range: refused before the upgrade, with the reason.
    for headers, query, status, words in [
        ({}, "", 401, "authentication required"),
        ({"Authorization": "token nope"}, "", 401, "invalid API token"),
        ({"Authorization": f"token {live.alice}"}, "?ra=400&dec=0&radius=1", 400, "ra 400.0 is out of range"),
        ({"Authorization": f"token {live.alice}"}, "?since=yesterday", 400, "since must be an event id"),
    ]:
        r = requests.get(live.a.url + "/api/live" + query, headers={**headers, "Connection": "Upgrade",
                         "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, timeout=10)
        assert r.status_code == status and words in r.json()["message"], (query, r.text)

    async def scenario():
        closes = []
        for message in ("not json", '{"type": "subscribe-all"}', '{"type": "filter", "dec": 91, "ra": 1, "radius": 1}'):
            conn, _ = await connect(live.a, live.alice)
            await conn.write_message(message)
            while await asyncio.wait_for(conn.read_message(), 10) is not None:
                pass
            closes.append((conn.close_code, conn.close_reason))
        conn, _ = await connect(live.a, live.alice)
        await conn.write_message('{"type": "ping"}')
        pong = json.loads(await asyncio.wait_for(conn.read_message(), 10))
        conn.close()
        return closes, pong

    closes, pong = run(scenario())
    assert closes[0][0] == 1007 and "JSON" in closes[0][1]
    assert closes[1][0] == 1008 and "unknown message" in closes[1][1]
    assert closes[2][0] == 1008 and "dec 91.0 is out of range" in closes[2][1]
    assert pong == {"type": "pong"}


def test_distribution_kinds_are_written_with_the_transaction_and_only_if_it_commits(live):
    from astroportal.live.feed import record_live

    async def scenario():
        conn, _ = await connect(live.a, live.alice, types="solve.job_state")
        with live.db() as session:
            record_live(session, "solve.job_state", group_ids=[live.ga], ra=12.5, dec=-5.0,
                        summary="job 7 rolled back", data={"instrument_id": 3, "state": "failed"})
            session.rollback()
            record_live(session, "solve.job_state", group_ids=[live.ga], ra=12.5, dec=-5.0, url="/solve/jobs/8",
                        summary="job 8 solved", data={"instrument_id": 3, "state": "solved"})
            record_live(session, "solve.job_state", group_ids=[live.gb], summary="job 9 solved")
            session.commit()
        events = await next_events(conn)
        conn.close()
        return events

    events = run(scenario())
    assert [e["data"]["summary"] for e in events] == ["job 8 solved"]
    assert events[0]["data"]["url"] == "/solve/jobs/8" and (events[0]["ra"], events[0]["dec"]) == (12.5, -5.0)
    with pytest.raises(ValueError, match="area.what"):
        with live.db() as session:
            record_live(session, "Bad Kind", group_ids=[live.ga])


def test_old_events_are_pruned(live):
    from astroportal.live.feed import prune

    obj_id = save_source(live.a, live.admin, live.ga)
    with live.db() as session:
        session.execute(text("UPDATE live_events SET created_at = now() - interval '8 days' WHERE obj_id = :o"),
                        {"o": obj_id})
        session.commit()
        assert prune(session, 7) >= 1
        assert session.execute(text("SELECT count(*) FROM live_events WHERE obj_id = :o"), {"o": obj_id}).scalar() == 0


def test_a_client_that_does_not_read_is_dropped_and_the_others_are_served(live):
    import base64
    import os
    import socket

    from astroportal.live.feed import record_live

    port = live.a.port
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", port))
    slow.sendall((f"GET /api/live?types=test.bulk HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nAuthorization: token {live.alice}\r\n\r\n").encode())
    assert slow.recv(12) == b"HTTP/1.1 101"
    big = "x" * 60_000

    async def scenario():
        reader, _ = await connect(live.a, live.alice, types="test.bulk")
        got = []
        for batch in range(3):  # each commit is one batch of 40 events of 60 KB: far more than socket buffers hold
            with live.db() as session:
                for i in range(40):
                    record_live(session, "test.bulk", group_ids=[live.ga], summary=f"{batch}-{i}", data={"pad": big})
                session.commit()
            got += await collect(reader, 40, timeout=30)
        reader.close()
        return got

    got = run(scenario())
    assert len(got) == 120  # the reading client had everything
    slow.settimeout(10)
    data = b""
    while True:
        chunk = slow.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    slow.close()
    # The slow client got a close frame (opcode 8) with code 1008 and the reason, and fewer than all events.
    close_at = data.rfind(b"\x88")
    assert close_at > 0 and data[close_at + 2:close_at + 4] == (1008).to_bytes(2, "big")
    assert b"too slow" in data[close_at:]
    assert data.count(b'"kind":"test.bulk"') < 120


def test_a_member_removed_from_a_group_stops_receiving_its_events_without_reconnecting(live):
    from astroportal.domain.accounts import create_token, create_user
    from livehelpers import make_group

    with live.db() as session:
        user = create_user(session, "carol-live", ["Full user"])
        _, token = create_token(session, user, "test")
        session.commit()
        carol = user.id
    group = make_group(live.a, live.admin, [carol])

    async def scenario():
        conn, _ = await connect(live.b, token)
        first = save_source(live.a, live.admin, group)
        seen = await next_events(conn)
        r = requests.delete(f"{live.a.url}/api/groups/{group}/users/{carol}",
                            headers={"Authorization": f"token {live.admin}"}, timeout=10)
        assert r.status_code == 200, r.text
        await asyncio.sleep(16)  # one membership refresh (MEMBERSHIP_REFRESH_SECONDS)
        hidden = save_source(live.a, live.admin, group)
        save_source(live.a, live.admin, live.ga)  # nor of a group she was never in
        try:
            later = await next_events(conn, timeout=3)
        except asyncio.TimeoutError:
            later = []
        conn.close()
        return first, seen, hidden, later

    first, seen, hidden, later = run(scenario())
    assert [e["obj_id"] for e in seen] == [first]
    assert later == []


def test_event_id_columns_are_encoded_as_the_general_array_encoder_does():
    """The feed writes each event's ids and group ids as text[] of array literals through a fast path; whatever
    the ids (plain or numpy integers, none, a NULL), it must send what array_literal would."""
    import numpy as np

    from astroportal.array_params import array_literal
    from astroportal.live.feed import _id_arrays

    for lists in ([[1, 2, 3], [], [2**62]], [[np.int64(7), 8]], [[None, 1]], [[1], [None]]):
        assert _id_arrays(lists) == array_literal(lists)
