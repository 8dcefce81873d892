"""What one app process runs for the live feed: the hub of websockets, the LISTEN bus and the notifier."""

from __future__ import annotations

import logging

from tornado.ioloop import IOLoop, PeriodicCallback

from ..config import Config
from .bus import Bus
from .sockets import Hub

log = logging.getLogger("astroportal.live")

# How often the group memberships of connected members are read again: a member removed from a group stops
# receiving its events within this time, without reconnecting.
MEMBERSHIP_REFRESH_SECONDS = 15


class LiveRuntime:
    """Started on the IOLoop when the app serves; the websocket handler reaches it through the app settings."""

    def __init__(self, cfg: Config, sessionmaker) -> None:
        from .notifier import Notifier

        self.cfg = cfg
        batch_ms = cfg.get("live.batch_ms")
        self.hub = Hub(max_unsent=int(float(cfg.get("live.max_unsent_kb") or 1024) * 1024),
                       batch_seconds=(20 if batch_ms is None else float(batch_ms)) / 1000)
        self.notifier = Notifier(cfg, sessionmaker, self.hub)
        # The bus waits the hub's window before reading the announced rows and the hub sends them at once: one
        # query and one fan-out per window.
        self.bus = Bus(cfg.get("database.url"), self._on_events, self.notifier.subscriptions_changed,
                       fetch_delay=self.hub.window)
        self.started = False

    def _on_events(self, batch) -> None:
        self.hub.deliver(batch)
        self.notifier.wake()

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        self.bus.start()
        self.notifier.start()
        self._refresh = PeriodicCallback(self._refresh_memberships, MEMBERSHIP_REFRESH_SECONDS * 1000)
        self._refresh.start()

    def _refresh_memberships(self) -> None:
        user_ids = {c.user_id for c in self.hub.clients}
        if not user_ids:
            return
        loop = IOLoop.current()

        def read() -> None:
            try:
                groups = read_memberships(self.notifier.sessionmaker, user_ids)
            except Exception:  # noqa: BLE001 - tried again at the next refresh
                log.exception("live: reading group memberships failed")
                return
            loop.add_callback(self.hub.update_groups, groups)

        loop.run_in_executor(self.notifier.executor, read)


def read_memberships(sessionmaker, user_ids: set[int]) -> dict:
    """{user id: frozenset of readable groups, or None for every group}; an account gone or expired reads none."""
    from ..domain.access import accessible_group_ids
    from ..domain.accounts import is_expired, user_with_acls

    out: dict = {}
    with sessionmaker() as session:
        for uid in user_ids:
            user = user_with_acls(session, uid)
            if user is None or is_expired(user):
                out[uid] = frozenset()
            else:
                groups = accessible_group_ids(session, user)
                out[uid] = None if groups is None else frozenset(groups)
    return out


def attach(settings: dict, cfg: Config) -> None:
    """Add the process's LiveRuntime to the app settings and start it once the IOLoop runs."""
    runtime = LiveRuntime(cfg, settings["sessionmaker"])
    settings["live_runtime"] = runtime
    IOLoop.current().add_callback(runtime.start)
