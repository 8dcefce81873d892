"""What one app process runs for the live feed: the hub of websockets, the LISTEN bus and the notifier."""

from __future__ import annotations

from tornado.ioloop import IOLoop

from ..config import Config
from .bus import Bus
from .sockets import Hub


class LiveRuntime:
    """Started on the IOLoop when the app serves; the websocket handler reaches it through the app settings."""

    def __init__(self, cfg: Config, sessionmaker) -> None:
        from .notifier import Notifier

        self.cfg = cfg
        batch_ms = cfg.get("live.batch_ms")
        self.hub = Hub(max_unsent=int(float(cfg.get("live.max_unsent_kb") or 1024) * 1024),
                       batch_seconds=(20 if batch_ms is None else float(batch_ms)) / 1000)
        self.notifier = Notifier(cfg, sessionmaker, self.hub)
        self.bus = Bus(cfg.get("database.url"), self._on_events, self.notifier.subscriptions_changed)
        self.started = False

    def _on_events(self, batch) -> None:
        self.hub.enqueue(batch)
        self.notifier.wake()

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        self.bus.start()
        self.notifier.start()


def attach(settings: dict, cfg: Config) -> None:
    """Add the process's LiveRuntime to the app settings and start it once the IOLoop runs."""
    runtime = LiveRuntime(cfg, settings["sessionmaker"])
    settings["live_runtime"] = runtime
    IOLoop.current().add_callback(runtime.start)
