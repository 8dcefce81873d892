"""The GCN service end to end: the real sample notices produced into librdkafka's mock cluster (keyed by
superevent id, ~1 MB alerts), consumed by the service with its own token into a real portal, and checked through
the portal's API: events with their tags and localizations, a mock event skipped, a retraction tagging its
event, a redelivered stream adding nothing, a portal down then up losing nothing, 429/500 answers, SIGTERM;
and `./run.sh gcn ingest|status` by hand."""

from __future__ import annotations

import json
import time

import pytest
from broker_support import FaultProxy, MockKafka
from gcn_support import (
    FERMI,
    GW_VOEVENT,
    PRELIMINARY,
    RETRACTION,
    SWIFT,
    TOPIC,
    GcnPortal,
    GcnService,
    LargeProducer,
    real_event,
    service_config,
    service_token,
)

from conftest import wait_until

FERMI_TOPIC = "gcn.classic.voevent.FERMI_GBM_GND_POS"


@pytest.fixture(scope="module")
def portal():
    p = GcnPortal()
    try:
        p.token_file = service_token(p)
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="module")
def kafka():
    k = MockKafka()
    k.large = LargeProducer(k.servers)
    yield k
    del k.large  # before the cluster goes: a producer left over would keep trying to reach it
    k.close()


def service(portal, kafka, tmp_path, topics, group, url=None, **extra) -> GcnService:
    settings = {"kafka": {"servers": kafka.servers, "topics": topics, "group_id": group,
                          "security_protocol": "plaintext"},
                "backoff_seconds": 0.2, "backoff_max_seconds": 2, "max_attempts": 3}
    settings.update(extra)
    cfg = service_config(portal, tmp_path / "state", **settings)
    return GcnService(cfg, portal.token_file, url or portal.url)


def events(portal) -> list[dict]:
    data = portal.api("GET", "/api/gcn_event?numPerPage=100")
    return data["events"] if isinstance(data, dict) else data


def event_of(portal, trigger_id: str) -> dict | None:
    """The portal's event with this trigger id (GET /api/gcn_event/DATEOBS), or None."""
    found = [e for e in events(portal) if e.get("trigger_id") == trigger_id]
    if not found:
        return None
    return portal.api("GET", f"/api/gcn_event/{found[0]['dateobs']}")


def tag_names(event: dict) -> set[str]:
    return {t if isinstance(t, str) else t.get("text") for t in event.get("tags") or []}


def rows(portal) -> dict:
    q = lambda sql: portal.query(sql)[0][0]  # noqa: E731
    return {"events": q("SELECT count(*) FROM gcnevents"), "notices": q("SELECT count(*) FROM gcnnotices"),
            "localizations": q("SELECT count(*) FROM localizations"), "tags": q("SELECT count(*) FROM gcntags"),
            "tiles": q("SELECT count(*) FROM localizationtiles")}


def settled(svc: GcnService, received: int):
    """True once the service has handled `received` messages and committed all it was given."""
    st = svc.state()
    return (st.get("counts") or {}).get("received", 0) >= received and \
        (st.get("position") or {}).get("lag_total") == 0


def test_alerts_from_kafka_become_events_and_a_mock_one_is_skipped(portal, kafka, tmp_path):
    topic = "t1." + TOPIC
    kafka.large.produce(topic, "MS260605l", PRELIMINARY.read_bytes())        # the sample: an MDC mock event
    kafka.large.produce(topic, "S260605l", real_event("S260605l"))           # the same alert as a real event
    kafka.large.produce(topic, "S260605x", b"this is not a notice")          # goes to the dead letters
    kafka.large.produce(topic, "S260605l", real_event("S260605l", RETRACTION))
    kafka.large.produce("t1." + FERMI_TOPIC, None, FERMI.read_bytes())       # a VOEvent topic, posted as XML
    svc = service(portal, kafka, tmp_path, [topic, "t1." + FERMI_TOPIC], "g1").start()
    try:
        assert wait_until(lambda: settled(svc, 5), 120), svc.output()
    finally:
        rc = svc.terminate()
    assert rc == 0 and "finishing the notice in hand" in svc.output()
    out = svc.output()
    assert "skipped t1.igwn.gwalert" in out and "mock" in out.split("skipped t1.igwn.gwalert", 1)[1].splitlines()[0]

    gw = event_of(portal, "S260605l")
    assert gw is not None, events(portal)
    assert "RETRACTED" in tag_names(gw)
    assert len(gw["notices"]) == 2  # the preliminary and the retraction: the mock one never reached the portal
    assert gw["localizations"] and gw["localizations"][0]["area_90"] > gw["localizations"][0]["area_50"] > 0
    loc = gw["localizations"][0]
    detail = portal.api("GET", f"/api/localization/{gw['dateobs']}/name/{loc['localization_name']}")
    assert detail.get("contour")
    assert event_of(portal, "MS260605l") is None
    assert any("Fermi" in tag_names(portal.api("GET", f"/api/gcn_event/{e['dateobs']}")) for e in events(portal))

    st = svc.status()
    assert st["dead_letters"] == 1
    counts = st["status"]["counts"]
    assert counts == {"received": 5, "posted": 3, "skipped": 1, "dead": 1}
    assert st["status"]["state"] == "stopped"
    letter = json.loads((tmp_path / "state" / "gcn" / "dead-letters.jsonl").read_text())
    assert "neither a JSON notice nor a VOEvent" in letter["reason"] and letter["value_base64"]
    text = svc.run("status").stdout
    assert "offset" in text and "lag" in text and "dead letters:  1" in text and "last notice:" in text


def test_a_portal_down_then_up_and_a_crash_lose_nothing_and_redelivery_adds_nothing(portal, kafka, tmp_path):
    topic = "t2." + TOPIC
    kafka.large.produce(topic, "S260607a", real_event("S260607a", event__time="2026-06-07T01:02:03.000Z"))
    svc = service(portal, kafka, tmp_path, [topic], "g2").start()
    try:
        assert wait_until(lambda: settled(svc, 1), 120), svc.output()
        before = rows(portal)
        portal.stop_server()
        kafka.large.produce(topic, "S260607b", real_event("S260607b", event__time="2026-06-07T04:05:06.000Z"))
        assert wait_until(lambda: svc.state().get("state") == "portal unavailable", 60), svc.output()
    finally:
        svc.kill9()  # with the notice in hand, not committed
    svc = service(portal, kafka, tmp_path, [topic], "g2").start()
    try:
        assert wait_until(lambda: svc.state().get("pid") == svc.proc.pid
                          and svc.state().get("state") == "portal unavailable", 60), svc.output()
        portal.start_server()
        assert wait_until(lambda: settled(svc, 1) and svc.state()["counts"]["posted"] == 1, 120), svc.output()
    finally:
        assert svc.terminate() == 0
    assert event_of(portal, "S260607a") and event_of(portal, "S260607b")
    after = rows(portal)
    assert after["events"] == before["events"] + 1 and after["notices"] == before["notices"] + 1
    assert svc.status()["dead_letters"] == 0

    # Every message again, as after a crash before any commit (a new consumer group has committed nothing).
    again = service(portal, kafka, tmp_path, [topic], "g2-again").start()
    try:
        assert wait_until(lambda: settled(again, 2), 120), again.output()
    finally:
        assert again.terminate() == 0
    assert again.state()["counts"]["posted"] == 2
    assert rows(portal) == after


def test_429_and_5xx_answers_and_sigterm_with_a_notice_in_hand(portal, kafka, tmp_path):
    topic = "t3." + TOPIC
    proxy = FaultProxy(portal.url)
    proxy.rules = [{"method": "POST", "path": "/api/gcn_event", "times": 1, "status": 429, "retry_after": "2"},
                   {"method": "POST", "path": "/api/gcn_event", "times": 1000, "status": 500}]
    kafka.large.produce(topic, "S260608a", real_event("S260608a", event__time="2026-06-08T01:02:03.000Z"))
    svc = service(portal, kafka, tmp_path, [topic], "g3", url=proxy.url).start()
    try:
        assert wait_until(lambda: settled(svc, 1), 120), svc.output()
        log = [(t, status) for t, method, path, status in proxy.log if path.startswith("/api/gcn_event")]
        assert log[0][1] == 429 and log[1][0] - log[0][0] >= 1.9  # Retry-After: 2 honoured
        assert svc.status()["dead_letters"] == 1
        assert "keeps failing while the portal is up" in svc.state()["last_notice"]["reason"]
        # The stream goes on; SIGTERM while the portal takes its time with a notice: it is finished, committed.
        proxy.rules = [{"method": "POST", "path": "/api/gcn_event", "times": 1, "delay": 3}]
        kafka.large.produce(topic, "S260608b", real_event("S260608b", event__time="2026-06-08T04:05:06.000Z"))
        assert wait_until(lambda: proxy.rules[0]["times"] == 0, 60), svc.output()
    finally:
        rc = svc.terminate()
        proxy.stop()
    assert rc == 0
    st = svc.state()
    assert st["state"] == "stopped" and st["counts"]["posted"] == 1
    assert sum(st["position"]["committed_offsets"].values()) == 2
    assert event_of(portal, "S260608b") and event_of(portal, "S260608a") is None
    # Nothing comes again after the restart: both offsets were committed.
    svc = service(portal, kafka, tmp_path, [topic], "g3").start()
    try:
        assert wait_until(lambda: svc.state().get("pid") == svc.proc.pid
                          and svc.state().get("state") == "running", 60), svc.output()
        time.sleep(3)
        assert svc.state()["counts"]["received"] == 0
    finally:
        assert svc.terminate() == 0


def test_unconfigured_the_service_stays_up_idle_and_says_what_to_set(portal, tmp_path):
    cfg = service_config(portal, tmp_path / "state")  # the distribution's defaults: no servers, no credentials
    svc = GcnService(cfg, portal.token_file, portal.url).start()
    try:
        assert wait_until(lambda: svc.state().get("state") == "not configured", 30), svc.output()
        time.sleep(2)
        assert svc.alive()
        text = svc.run("status").stdout
        assert "services.gcn.kafka.servers is not set" in text and "kafka.gcn.nasa.gov" in text
    finally:
        assert svc.terminate(30) == 0


def test_ingest_by_hand_posts_a_voevent_once_and_says_why_one_is_refused(portal):
    res = portal.run("gcn", "ingest", str(SWIFT))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "voevent BAT_GRB_Pos 1125809 as application/xml" in res.stdout and "a new event" in res.stdout
    swift = event_of(portal, "1125809")
    assert swift is not None and {"Swift", "GRB"} <= tag_names(swift) and swift["localizations"]
    before = rows(portal)
    res = portal.run("gcn", "ingest", "--as-admin", str(SWIFT))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "already stored, nothing changed" in res.stdout
    assert rows(portal) == before  # the same notice again changes nothing
    # GW190425's VOEvent names its sky map by URL, which the portal does not download: refused, saying so.
    res = portal.run("gcn", "ingest", str(GW_VOEVENT), str(PRELIMINARY.parent / "LICENSE"))
    assert res.returncode == 1
    assert "voevent Initial S190425z" in res.stdout and "refused: POST /api/gcn_event: HTTP 400" in res.stderr
    assert "not a notice the portal takes" in res.stderr and "0 of 2 notice(s) posted" in res.stdout
    assert rows(portal) == before
    res = portal.run("gcn", "status")
    assert res.returncode == 3 and "never started" in res.stdout
