"""Fink's livestream: Kafka topics (one per science class) read with confluent-kafka, offsets committed by hand.

Fink's wire format: the message key holds the Avro schema as JSON, the value the schemaless Avro record.
Auto-commit is off: a batch's offsets are committed only after the portal confirmed it, so a crash re-delivers
what was not confirmed and the idempotent writes absorb it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
from typing import Any, Callable, Iterator

import fastavro
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from ..avro_decode import AlertDecoder, decoder_for
from ..config import KafkaSettings
from ..pipeline import Item
from ..projection import reader_schema
from . import Batch

log = logging.getLogger("broker")


def consumer_config(k: KafkaSettings) -> dict[str, Any]:
    """librdkafka settings: manual commits, and SASL SCRAM credentials when a username is configured."""
    conf: dict[str, Any] = {
        "bootstrap.servers": k.servers,
        "group.id": k.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": k.auto_offset_reset,
        "session.timeout.ms": 30000,
        # An unreachable broker is retried by librdkafka itself; these bound how often it says so.
        "reconnect.backoff.ms": 500,
        "reconnect.backoff.max.ms": 30000,
    }
    if k.username:
        conf.update({
            "security.protocol": k.security_protocol or "SASL_PLAINTEXT",
            "sasl.mechanisms": k.sasl_mechanism,
            "sasl.username": k.username,
            "sasl.password": k.password or "",
        })
    elif k.security_protocol:
        conf["security.protocol"] = k.security_protocol
    return conf


class Decoder:
    """Fink messages to alerts; each distinct schema (the key) is parsed once, into (the parsed writer schema, the
    narrowed reader schema or None, the generated decoder of avro_decode or None)."""

    def __init__(self) -> None:
        self.schemas: dict[str, tuple[Any, Any, AlertDecoder | None]] = {}

    def decode(self, key: bytes | None, value: bytes | None) -> dict:
        if not key:
            raise ValueError("the message has no key (Fink puts the alert's Avro schema there)")
        digest = hashlib.sha1(key).hexdigest()
        schema = self.schemas.get(digest)
        if schema is None:
            try:
                writer = json.loads(key)
                parsed = fastavro.parse_schema(writer)
            except Exception as exc:  # noqa: BLE001 - json and fastavro errors alike
                raise ValueError(f"the message key is not an Avro schema: {exc}") from None
            # The generated decoder reads only the mapping's fields, cheaply; fastavro reads what it does not handle.
            fast = decoder_for(writer)
            narrow = reader_schema(writer) if fast is None else None
            if narrow is not None:
                try:  # only the fields the mapping reads; a schema that cannot be narrowed is read whole
                    narrow = fastavro.parse_schema(narrow)
                except Exception:  # noqa: BLE001
                    narrow = None
            schema = (parsed, narrow, fast)
            if len(self.schemas) > 100:
                self.schemas.clear()
            self.schemas[digest] = schema
        if value is None:
            raise ValueError("the message has no value")
        parsed, narrow, fast = schema
        try:
            if fast is not None:
                return fast.decode(value)[0]
            return fastavro.schemaless_reader(io.BytesIO(value), parsed, narrow)
        except Exception as exc:  # noqa: BLE001 - truncated or mismatched data
            raise ValueError(f"the message value is not an Avro record of its schema: {exc}") from None


class KafkaSource:
    name = "kafka"

    def __init__(self, settings: KafkaSettings, batch_size: int, batch_seconds: float,
                 stop: threading.Event | None = None, on_error: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self.batch_seconds = max(batch_seconds, 0.1)
        self.stop = stop or threading.Event()
        self.on_error = on_error or (lambda message: None)
        self.decoder = Decoder()
        conf = consumer_config(settings)
        conf["error_cb"] = self._error
        self.consumer = Consumer(conf, logger=log)
        self.consumer.subscribe(settings.topics)
        self.committed: dict[str, int] = {}
        self.lag: dict[str, int] = {}

    def _error(self, err: KafkaError) -> None:
        message = f"Kafka: {err.str()}"
        log.warning("%s", message)
        self.on_error(message)

    def batches(self) -> Iterator[Batch | None]:
        while not self.stop.is_set():
            try:
                messages = self.consumer.consume(num_messages=self.batch_size, timeout=self.batch_seconds)
            except KafkaException as exc:
                self._error(exc.args[0])
                time.sleep(1)
                continue
            items: list[Item] = []
            offsets: dict[tuple[str, int], int] = {}
            for m in messages:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        self._error(m.error())
                    continue
                topic, part, off = m.topic(), m.partition(), m.offset()
                offsets[(topic, part)] = max(offsets.get((topic, part), -1), off)
                where = f"{topic}[{part}]@{off}"
                # The raw message goes with the item: a dead letter keeps it (base64) to be sent again.
                payload = {"topic": topic, "partition": part, "offset": off, "key": m.key(), "value": m.value()}
                try:
                    record = self.decoder.decode(m.key(), m.value())
                    items.append(Item(where=where, record=record, topic=topic, payload=payload))
                except ValueError as exc:
                    items.append(Item(where=where, topic=topic, error=str(exc), payload=payload))
            # None when the wait found nothing: the caller commits what was confirmed meanwhile.
            yield Batch(items, self._committer(offsets)) if items else None

    def _committer(self, offsets: dict[tuple[str, int], int]) -> Callable[[], None]:
        def commit() -> None:
            tps = [TopicPartition(t, p, off + 1) for (t, p), off in offsets.items()]
            self.consumer.commit(offsets=tps, asynchronous=False)
            for (t, p), off in offsets.items():
                self.committed[f"{t}[{p}]"] = off + 1
            self._measure_lag()

        return commit

    def _measure_lag(self) -> None:
        try:
            for tp in self.consumer.assignment():
                lo, hi = self.consumer.get_watermark_offsets(tp, timeout=2, cached=False)
                key = f"{tp.topic}[{tp.partition}]"
                done = self.committed.get(key, lo)
                self.lag[key] = max(0, hi - max(done, lo))
        except KafkaException as exc:
            log.info("could not measure the lag: %s", exc)

    def position(self) -> dict[str, Any]:
        return {"committed_offsets": dict(self.committed), "lag": dict(self.lag),
                "lag_total": sum(self.lag.values()) if self.lag else None,
                "servers": self.settings.servers, "topics": self.settings.topics, "group_id": self.settings.group_id}

    def close(self) -> None:
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError):
            pass
