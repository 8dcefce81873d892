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
