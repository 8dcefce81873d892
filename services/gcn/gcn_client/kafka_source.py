"""GCN's Kafka topics, one message at a time, read with gcn_kafka.Consumer (confluent-kafka underneath).

Auto-commit is off: a message's offset is committed only once the portal accepted its notice, or it was skipped
(a test event) or dead-lettered with its reason; a crash re-delivers what was not committed, and the portal
recognises a repeated notice. gcn_kafka's Consumer takes a librdkafka configuration dict: with client
credentials it sets up SASL_SSL with OpenID Connect against GCN's auth server; with
`security_protocol: plaintext` and no credentials it talks to any plain broker (the tests' librdkafka mock
cluster), so one code path serves both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import gcn_kafka
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from .config import KafkaSettings

log = logging.getLogger("gcn")


def consumer_config(k: KafkaSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(librdkafka settings, gcn_kafka keyword arguments) for the consumer."""
    max_bytes = int(k.max_message_mb * 1024 * 1024)
    conf: dict[str, Any] = {
        "bootstrap.servers": k.servers,
        "group.id": k.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": k.auto_offset_reset,
        # An alert with its sky map is ~1 MB; librdkafka's fetches must hold the largest message GCN may send.
        "message.max.bytes": max_bytes,
        "fetch.max.bytes": max_bytes * 2,
        "max.partition.fetch.bytes": max_bytes,
        "receive.message.max.bytes": max_bytes * 2 + 1024 * 1024,
        "session.timeout.ms": 45000,
        "reconnect.backoff.ms": 500,
        "reconnect.backoff.max.ms": 30000,
    }
    if k.security_protocol:
        conf["security.protocol"] = k.security_protocol
    kwargs: dict[str, Any] = {}
    if k.client_id:
        kwargs = {"client_id": k.client_id, "client_secret": k.client_secret, "domain": k.domain}
    return conf, kwargs


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class KafkaSource:
    def __init__(self, settings: KafkaSettings, on_error: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.on_error = on_error or (lambda message: None)
        conf, kwargs = consumer_config(settings)
        conf["error_cb"] = self._error
        conf["logger"] = log
        self.consumer = gcn_kafka.Consumer(conf, **kwargs)
        self.consumer.subscribe(settings.topics)
        self.committed: dict[str, int] = {}
        self.lag: dict[str, int] = {}
        self.dirty = True  # something was committed since the lag was last measured

    def _error(self, err: KafkaError) -> None:
        message = f"Kafka: {err.str()}"
        log.warning("%s", message)
        self.on_error(message)

    def next(self, timeout: float = 1.0) -> Message | None:
        """The next message, or None when none came within `timeout` seconds."""
        try:
            m = self.consumer.poll(timeout)
        except KafkaException as exc:
            self._error(exc.args[0])
            return None
        if m is None:
            return None
        if m.error():
            if m.error().code() != KafkaError._PARTITION_EOF:
                self._error(m.error())
            return None
        return Message(m.topic(), m.partition(), m.offset(), m.key(), m.value())

    def commit(self, m: Message) -> None:
        """Commit past `m` (synchronously: once this returns a restart does not deliver it again)."""
        self.consumer.commit(offsets=[TopicPartition(m.topic, m.partition, m.offset + 1)], asynchronous=False)
        key = f"{m.topic}[{m.partition}]"
        self.committed[key] = m.offset + 1
        if key in self.lag:
            # The lag is measured again when the stream is idle (a round trip per partition); until then this
            # partition's is what was known less what was just committed.
            self.lag[key] = max(0, self.lag[key] - 1)
        self.dirty = True

    def measure_lag(self) -> None:
        """Messages not yet committed per assigned partition (the high watermark less the committed offset)."""
        try:
            assigned = self.consumer.assignment()
            if not assigned:
                return  # not yet in the group: measured at the next idle moment
            self.dirty = False
            committed = {f"{tp.topic}[{tp.partition}]": tp.offset
                         for tp in self.consumer.committed(assigned, timeout=5)}
            for tp in assigned:
                lo, hi = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
                key = f"{tp.topic}[{tp.partition}]"
                done = committed.get(key, -1)
                if done is not None and done >= 0:
                    self.committed[key] = done
                self.lag[key] = max(0, hi - max(done if done is not None and done >= 0 else lo, lo))
        except KafkaException as exc:
            log.info("could not measure the lag: %s", exc)

    def position(self) -> dict[str, Any]:
        return {"committed_offsets": dict(self.committed), "lag": dict(self.lag),
                "lag_total": sum(self.lag.values()) if self.lag else None, "servers": self.settings.servers,
                "topics": self.settings.topics, "group_id": self.settings.group_id}

    def close(self) -> None:
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError):
            pass
