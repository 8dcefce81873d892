"""Set-up for the live feed tests: portals sharing one database, members of two groups, websocket clients."""

from __future__ import annotations

import asyncio
import json
import uuid

import requests
import tornado.httpclient
import tornado.websocket

from conftest import unique


def ws_url(server, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return server.url.replace("http://", "ws://") + "/api/live" + (f"?{query}" if query else "")


async def connect(server, token: str, **params):
    """A websocket on `server` authenticated with `token`; returns (connection, hello frame)."""
    req = tornado.httpclient.HTTPRequest(ws_url(server, **params), headers={"Authorization": f"token {token}"})
    conn = await tornado.websocket.websocket_connect(req)
    hello = json.loads(await asyncio.wait_for(conn.read_message(), 10))
    assert hello["type"] == "hello", hello
    return conn, hello


async def next_events(conn, timeout: float = 10.0) -> list[dict]:
    """The events of the next "events" frame (other frames skipped); [] when the socket closed."""
    while True:
        msg = await asyncio.wait_for(conn.read_message(), timeout)
        if msg is None:
            return []
        frame = json.loads(msg)
        if frame["type"] == "events":
            return frame["events"]


async def events_until(conn, obj_id: str, timeout: float = 20.0) -> list[dict]:
    """Every event read until one about `obj_id` arrived (inclusive). On a busy machine an earlier test's event
    may still be on its way when a test starts: reading up to the test's own event keeps such stragglers from
    being taken for the test's answer, and whatever leaked before it is still in the list."""
    got: list[dict] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(e.get("obj_id") == obj_id for e in got):
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"no event about {obj_id} within {timeout} s; got {got}")
        events = await next_events(conn, left)
        if not events:
            raise AssertionError(f"the socket closed before an event about {obj_id}; got {got}")
        got.extend(events)
    return got


async def collect(conn, count: int, timeout: float = 10.0) -> list[dict]:
    """Read frames until `count` events arrived."""
    got: list[dict] = []
    while len(got) < count:
        events = await next_events(conn, timeout)
        if not events:
            break
        got.extend(events)
    return got


def post(server, token: str, path: str, body: dict) -> dict:
    r = requests.post(server.url + path, json=body, headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def save_source(server, token: str, group_id: int, ra: float = 10.0, dec: float = 20.0) -> str:
    """A new source saved to one group; its id."""
    obj_id = unique()
    post(server, token, "/api/sources", {"id": obj_id, "ra": ra, "dec": dec, "group_ids": [group_id]})
    return obj_id


def make_group(server, admin_token: str, member_ids: list[int], name: str | None = None) -> int:
    gid = post(server, admin_token, "/api/groups", {"name": name or f"live-{uuid.uuid4().hex[:8]}"})["id"]
    for uid in member_ids:
        post(server, admin_token, f"/api/groups/{gid}/users", {"userID": uid, "admin": False})
    return gid


def start_portals(pg, root, dbname: str, names=("a", "b"), **extra):
    """Portal processes (one per name) sharing one database and var directory, and two members: alice (group A)
    and bob (group B). `extra`: configuration keys (a__b=value for a.b). The caller stops `ns.servers`."""
    import types

    from astroportal import config as portal_config
    from astroportal.db import make_sessionmaker
    from astroportal.domain.accounts import create_token, create_user
    from conftest import Server, free_port, portal, write_config

    url = pg.create_database(dbname)
    shared = {"paths__var": str(root / "var"), "server__cookie_secret": "live-test-" + "0" * 40, **extra}
    configs = []
    for name in names:
        (root / name).mkdir()
        configs.append(write_config(root / name / "config.yaml", url, free_port(), **shared))
    portal("migrate", config=configs[0])
    ns = types.SimpleNamespace(servers=[])
    try:
        for c in configs:
            ns.servers.append(Server(c))
        cfg = portal_config.load(configs[0])
        maker = make_sessionmaker(cfg)
        admin = (root / "var" / "admin_token").read_text().strip()
        people = {}
        with maker() as session:
            for name in ("alice", "bob"):
                user = create_user(session, f"{name}-{uuid.uuid4().hex[:6]}", ["Full user"])
                user.contact_email = f"{name}@example.org"
                _, token = create_token(session, user, "test")
                session.commit()
                people[name] = (user.id, token)
        ns.__dict__.update(
            a=ns.servers[0], b=ns.servers[-1], admin=admin, db=maker, cfg=cfg,
            ga=make_group(ns.servers[0], admin, [people["alice"][0]]),
            gb=make_group(ns.servers[0], admin, [people["bob"][0]]),
            alice=people["alice"][1], bob=people["bob"][1], alice_id=people["alice"][0], bob_id=people["bob"][0],
        )
    except BaseException:
        for s in ns.servers:
            s.stop()
        raise
    return ns


def wait_for(check, timeout: float = 20.0, interval: float = 0.1):
    """Call `check()` until it returns something truthy (returned), or fail after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {check.__doc__ or check}")
        time.sleep(interval)
