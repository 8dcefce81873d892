"""The live feed: the websocket /api/live and the recent events /api/live/events."""

from __future__ import annotations

import json
from typing import Any

import tornado.websocket

from ...domain.access import accessible_group_ids
from ...errors import ApiError
from ...jsonutil import dumps
from ...live.feed import recent_events
from ...live.frames import FrameWriter
from ...live.sockets import Client, parse_filter
from ..base import APIHandler, BaseHandler, auth_required

REPLAY_LIMIT = 1000


class LiveEventsHandler(APIHandler):
    @auth_required
    def get(self) -> None:
        """
        summary: Recent events of the live feed that the caller may see
        parameters:
          - {in: query, name: since, schema: {type: integer}, description: "events after this id, oldest first"}
          - {in: query, name: limit, schema: {type: integer}, description: "at most this many (default 100, max 1000)"}
          - {in: query, name: types, schema: {type: string}, description: "comma-separated event kinds"}
          - {in: query, name: group_id, schema: {type: integer}}
          - {in: query, name: ra, schema: {type: number}}
          - {in: query, name: dec, schema: {type: number}}
          - {in: query, name: radius, schema: {type: number}}
        responses:
          200: {description: "{events: [...]}: newest first, or oldest first after `since`"}
        """
        since = self.query("since", None, int)
        limit = self.query("limit", 100, int)
        if not 1 <= limit <= REPLAY_LIMIT:
            raise ApiError(400, f"limit must be between 1 and {REPLAY_LIMIT}")
        flt = parse_filter(lambda n: self.get_query_argument(n, None))
        groups = accessible_group_ids(self.session, self.current_user)
        events = recent_events(self.session, groups, since=since, limit=limit, kinds=sorted(flt.kinds) or None,
                               group_id=flt.group_id, cone=flt.cone)
        self.success({"events": events})


class LiveSocket(BaseHandler, tornado.websocket.WebSocketHandler):
    """`/api/live?since=ID&types=a,b&group_id=G&ra=&dec=&radius=`: the events the user may see, as they happen.

    Authenticated like the API (an `Authorization: token` header, or the browser's session). Frames from the
    portal: {"type": "hello", "last_id"}, {"type": "events", "events": [...]}, {"type": "pong"}. A client may
    send {"type": "ping"} or {"type": "filter", "types": [...], "group_id": G, "ra": .., "dec": .., "radius": ..};
    anything else closes the socket with a reason.
    """

    client: Client | None = None

    def _refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(dumps({"status": "error", "message": message, "data": {}}))

    async def get(self, *args: Any, **kwargs: Any) -> None:
        try:
            user = self.current_user
            if user is None:
                raise ApiError(401, "authentication required: send the header `Authorization: token <token>` or log in")
            self._filter = parse_filter(lambda n: self.get_query_argument(n, None))
            raw_since = self.get_query_argument("since", None)
            try:
                self._since = int(raw_since) if raw_since not in (None, "") else None
            except ValueError:
                raise ApiError(400, f"since must be an event id (an integer), not {raw_since!r}") from None
            groups = accessible_group_ids(self.session, user)
            self._user_id = user.id
            self._groups = None if groups is None else frozenset(groups)
            if self._since is not None:
                self._replay = recent_events(self.session, groups, since=self._since, limit=REPLAY_LIMIT,
                                             kinds=sorted(self._filter.kinds) or None,
                                             group_id=self._filter.group_id, cone=self._filter.cone)
            else:
                self._replay = []
        except ApiError as exc:
            self._refuse(exc.status_code, exc.message)
            return
        finally:
            # A websocket lives long: it must not hold one of the pool's connections.
            if self._session is not None:
                self._session.close()
                self._session = None
        await tornado.websocket.WebSocketHandler.get(self, *args, **kwargs)

    def get_compression_options(self) -> None:
        return None  # compressing each frame for 1,000 clients costs more than the bytes it saves on a LAN

    def open(self, *args: Any, **kwargs: Any) -> None:
        runtime = self.application.settings["live_runtime"]
        # ws_connection.stream: the connection's IOStream, which the hub's frames are written to (see live/frames.py).
        assert self.ws_connection is not None
        self.client = Client(writer=FrameWriter(self.ws_connection.stream), close=self.close, user_id=self._user_id,
                             groups=self._groups, filter=self._filter)
        runtime.hub.add(self.client)
        runtime.start()  # an app built without cmd_serve (tests) starts its runtime with the first client
        last = max([e["id"] for e in self._replay], default=self._since)
        self.client.skip_ids = {e["id"] for e in self._replay}
        self.write_message(dumps({"type": "hello", "last_id": last, "replayed": len(self._replay),
                                  "truncated": len(self._replay) >= REPLAY_LIMIT}))
        if self._replay:
            self.write_message(dumps({"type": "events", "events": self._replay}))
        self._replay = []

    def on_message(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except (ValueError, UnicodeDecodeError):
            self.close(1007, 'messages must be JSON objects such as {"type": "ping"}')
            return
        if not isinstance(data, dict) or data.get("type") not in ("ping", "filter"):
            self.close(1008, 'unknown message: send {"type": "ping"} or {"type": "filter", ...}')
            return
        if data["type"] == "ping":
            self.write_message('{"type":"pong"}')
            return
        try:
            assert self.client is not None
            self.client.filter = parse_filter(data.get)
        except ApiError as exc:
            self.close(1008, ("bad filter: " + exc.message)[:120])
            return
        self.write_message('{"type":"filtered"}')

    def on_close(self) -> None:
        if self.client is not None:
            self.application.settings["live_runtime"].hub.remove(self.client)
            self.client = None


ROUTES = [(r"/api/live/events/?", LiveEventsHandler), (r"/api/live/?", LiveSocket)]
