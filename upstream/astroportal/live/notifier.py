"""The app process's background work for the live feed, off the IOLoop: pruning old events (and, with
subscriptions, matching and sending)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from tornado.ioloop import IOLoop, PeriodicCallback

from ..config import Config
from .feed import prune

log = logging.getLogger("astroportal.live")


class Notifier:
    def __init__(self, cfg: Config, sessionmaker, hub) -> None:
        self.cfg = cfg
        self.sessionmaker = sessionmaker
        self.hub = hub
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="live-notifier")
        self.keep_days = float(cfg.get("live.keep_days") or 7)

    def start(self) -> None:
        self._prune_timer = PeriodicCallback(self._prune, 3600 * 1000)
        self._prune_timer.start()
        IOLoop.current().add_callback(self._prune)

    def wake(self) -> None:
        pass

    def subscriptions_changed(self) -> None:
        pass

    def _prune(self) -> None:
        IOLoop.current().run_in_executor(self.executor, self._prune_now)

    def _prune_now(self) -> None:
        try:
            with self.sessionmaker() as session:
                n = prune(session, self.keep_days)
            if n:
                log.info("live: pruned %d events older than %s days", n, self.keep_days)
        except Exception:  # noqa: BLE001
            log.exception("live: pruning failed")
