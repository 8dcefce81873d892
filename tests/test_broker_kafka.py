"""The broker client's Kafka source end to end: Fink-format messages (key: the Avro schema as JSON, value: the
schemaless record) produced into librdkafka's mock cluster, consumed by the supervised-style daemon into a real
portal; malformed messages, SIGTERM, kill -9 mid-batch, a portal restarted mid-stream, an unreachable broker."""

from __future__ import annotations

import json

import pytest
from broker_support import (
    GROUP,
    BrokerPortal,
    MockKafka,
    Service,
    admin_setup,
    expected_points,
    fink_message,
    service_config,
    service_token,
    synth,
)

from conftest import free_port, wait_until

KN, EARLY = "fink_kn_candidates_ztf", "fink_early_kn_candidates_ztf"


@pytest.fixture(scope="module")
def portal():
    p = BrokerPortal()
    bot_id, p.token_file = service_token(p)
    p.group_id = admin_setup(p, bot_id)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def kafka():
    k = MockKafka()
    yield k
    k.close()


class ProduceAsConsumed:
    """Produces `messages` in chunks, each once the portal holds all but a few of those already produced."""

    def __init__(self, kafka, topic, messages, landed, chunk: int = 40) -> None:
        self.kafka, self.topic, self.messages, self.landed, self.chunk = kafka, topic, messages, landed, chunk
        self.sent = 0

    def step(self) -> int:
        done = self.landed()
        if self.sent < len(self.messages) and done >= self.sent - self.chunk // 2:
            self.kafka.produce(self.topic, self.messages[self.sent:self.sent + self.chunk])
            self.sent = min(len(self.messages), self.sent + self.chunk)
        return done


def daemon(portal, kafka, tmp_path, topics, group, **extra) -> Service:
    settings = {"source": "kafka", "group_names": [GROUP], "batch_size": 20, "batch_seconds": 0.5,
                "backoff_seconds": 0.2, "backoff_max_seconds": 2,
                "kafka": {"servers": kafka.servers, "topics": topics, "group_id": group}}
    settings.update(extra)
    cfg = service_config(portal, tmp_path / "state", **settings)
    return Service(cfg, portal.token_file, portal.url, "run")


def test_kafka_stream_into_the_portal_with_malformed_messages_and_sigterm(portal, kafka, tmp_path):
    schema, kn = synth(30, "KFA")
    _, early = synth(20, "KFB", seed=2)
    kafka.produce("t1_" + KN, [fink_message(schema, r) for r in kn[:15]])
    bare = {"type": "record", "name": "alert", "fields": [{"name": "objectId", "type": "string"}]}
    key, value = fink_message(schema, kn[0])
    kafka.produce("t1_" + KN, [(key, value[:40]),                                   # truncated Avro
                               fink_message(bare, {"objectId": "ZTFKFAX"}),        # no candidate
                               (b"not json", value)])                              # no schema in the key
    kafka.produce("t1_" + KN, [fink_message(schema, r) for r in kn[15:]])
    kafka.produce("t1_" + EARLY, [fink_message(schema, r) for r in early])
    svc = daemon(portal, kafka, tmp_path, ["t1_" + KN, "t1_" + EARLY], "g1").start()
    try:
        assert wait_until(lambda: portal.counts("ZTFKF")["objs"] == 50 and svc.status()["dead_letters"] == 3, 120), \
            svc.output()
    finally:
        rc = svc.terminate()
    assert rc == 0
    assert "finishing the batch in hand" in svc.output()
    counts = portal.counts("ZTFKF")
    assert counts["candidates"] == 50 and counts["thumbnails"] == 150
    assert counts["photometry"] == sum(map(expected_points, kn + early))
    classes = dict(portal.query(
        "SELECT classification, count(*) FROM classifications WHERE obj_id LIKE 'ZTFKF%%' GROUP BY 1"))
    assert classes == {"Kilonova candidate": 30, "Early Kilonova candidate": 20}
    letters = [json.loads(l) for l in (tmp_path / "state" / "broker" / "dead-letters.jsonl").read_text().splitlines()]
    assert len(letters) == 3 and all(l["payload"]["value"] for l in letters)
    assert any("no `candidate`" in l["reason"] for l in letters)
    assert any("not an Avro schema" in l["reason"] for l in letters)
    st = svc.status()["status"]
    assert st["state"] == "stopped"
    assert sum(st["position"]["committed_offsets"].values()) == 53
    assert st["position"]["lag_total"] == 0
    text = svc.run("status").stdout
    assert "offset" in text and "dead letters:  3" in text and "last batch:" in text


def test_kill_9_mid_batch_and_portal_restart_mid_stream_leave_every_alert_once(portal, kafka, tmp_path):
    schema, alerts = synth(300, "KKL", prv_points=50, seed=3)
    messages = [fink_message(schema, r) for r in alerts]
    # The mock cluster keeps a few MB per partition: the stream is produced as it is consumed, like a night's.
    stream = ProduceAsConsumed(kafka, "t2_" + KN, messages, lambda: portal.counts("ZTFKKL")["objs"])
    svc = daemon(portal, kafka, tmp_path, ["t2_" + KN], "g2").start()
    assert wait_until(lambda: stream.step() >= 40, 120), svc.output()
    svc.kill9()  # in the middle of a batch: its offsets were not committed
    svc = daemon(portal, kafka, tmp_path, ["t2_" + KN], "g2").start()
    try:
        assert wait_until(lambda: stream.step() >= 150, 180), svc.output()
        portal.stop_server()
        assert wait_until(lambda: "portal unavailable" in svc.output(), 60), svc.output()
        portal.start_server()
        assert wait_until(lambda: stream.step() == 300 and portal.counts("ZTFKKL")["candidates"] == 300
                          and svc.status()["status"]["position"].get("lag_total") == 0, 240), svc.output()
    finally:
        assert svc.terminate() == 0
    counts = portal.counts("ZTFKKL")
    assert counts == {"objs": 300, "sources": 300, "candidates": 300, "classifications": 300, "thumbnails": 900,
                      "photometry": sum(map(expected_points, alerts))}
    assert portal.query("SELECT count(*) FROM (SELECT obj_id, filter, mjd FROM photometry WHERE obj_id LIKE "
                        "'ZTFKKL%%' GROUP BY 1, 2, 3 HAVING count(*) > 1) d")[0][0] == 0


def test_an_unreachable_broker_is_reported_without_a_crash_loop(portal, tmp_path):
    class Nowhere:
        servers = f"127.0.0.1:{free_port()}"

    svc = daemon(portal, Nowhere, tmp_path, ["t3_" + KN], "g3").start()
    try:
        def last_error() -> str:
            return ((svc.status()["status"] or {}).get("last_error") or {}).get("message", "")

        assert wait_until(lambda: "Kafka" in last_error(), 60), svc.output()
        assert svc.alive()
        text = svc.run("status").stdout
        assert "last error:" in text and "Kafka" in text
    finally:
        assert svc.terminate(30) == 0
