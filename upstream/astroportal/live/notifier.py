"""The app process's background work for the live feed, in one worker thread (never on the IOLoop, never in
the writer's request): matching new events against subscriptions, sending the messages that are due, pruning.

It is woken by the bus for each batch of events and also runs every `notifications.poll_seconds`, which picks up
work another process left (a crash) and messages whose retry or grouping time has come.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tornado.ioloop import IOLoop, PeriodicCallback

from ..config import Config
from .feed import prune
from .matching import Readers, SubscriptionIndex, claim_due, process_events, send_one

log = logging.getLogger("astroportal.live")

# Wakes closer together than this fold into one round: every process hears every event, and a round per event
# would spend on empty claims what the writes need; a round claims up to 500 events, so one a second keeps up
# with hundreds of events a second, and a notification a second later is no loss. (Each round is several
# queries, in every process, and runs in a thread of the process that also writes the websockets' frames.)
MIN_ROUND_GAP = 1.0


class Notifier:
    def __init__(self, cfg: Config, sessionmaker, hub) -> None:
        self.cfg = cfg
        self.sessionmaker = sessionmaker
        self.hub = hub
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="live-notifier")
        self.keep_days = float(cfg.get("live.keep_days") or 7)
        self.group_seconds = float(cfg.get("notifications.group_seconds") if cfg.get("notifications.group_seconds") is not None else 60)
        self.poll_seconds = float(cfg.get("notifications.poll_seconds") or 2)
        self.max_attempts = int(cfg.get("notifications.max_attempts") or 8)
        self.retry_base = float(cfg.get("notifications.retry_base_seconds") or 30)
        self.index: SubscriptionIndex | None = None
        self.readers = Readers()
        self._lock = threading.Lock()
        self._queued = False
        self._last_prune = 0.0
        self._last_round = 0.0
        self._secret: str | None = None

    def start(self) -> None:
        self._timer = PeriodicCallback(self.wake, self.poll_seconds * 1000)
        self._timer.start()
        self.wake()

    def subscriptions_changed(self) -> None:
        self.index = None
        self.readers = Readers()
        self.wake()

    def wake(self) -> None:
        """Run a round soon (at most one waiting round: wakes during a round fold into the next)."""
        with self._lock:
            if self._queued:
                return
            self._queued = True
        wait = self._last_round + MIN_ROUND_GAP - time.monotonic()
        loop = IOLoop.current()
        if wait > 0:
            loop.call_later(wait, lambda: loop.run_in_executor(self.executor, self._round))
        else:
            loop.run_in_executor(self.executor, self._round)

    def _round(self) -> None:
        with self._lock:
            self._queued = False
        self._last_round = time.monotonic()
        try:
            with self.sessionmaker() as session:
                if self.index is None or time.monotonic() - self.index.loaded_at > 60:
                    self.index = SubscriptionIndex.load(session)
                    session.commit()
                while process_events(session, self.index, self.readers, self.group_seconds):
                    pass
                for delivery_id in claim_due(session):
                    send_one(session, self.cfg, self.secret(), delivery_id, self.max_attempts, self.retry_base)
                if time.monotonic() - self._last_prune > 3600:
                    self._last_prune = time.monotonic()
                    n = prune(session, self.keep_days)
                    if n:
                        log.info("live: pruned %d events older than %s days", n, self.keep_days)
        except Exception:  # noqa: BLE001 - the next round tries again; the events stay unprocessed
            log.exception("live: a notifier round failed")

    def secret(self) -> str:
        if self._secret is None:
            from ..app import cookie_secret

            self._secret = cookie_secret(self.cfg)
        return self._secret
