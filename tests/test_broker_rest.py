"""The broker client's REST source end to end: a loopback server speaking Fink's REST API (latests per class with
a moving start date, light curves with upper limits, cutouts) polled by the daemon into a real portal."""

from __future__ import annotations

import pytest
from broker_support import (
    GROUP,
    BrokerPortal,
    FinkRest,
    Service,
    admin_setup,
    expected_points,
    service_config,
    service_token,
    synth,
)

from conftest import wait_until


@pytest.fixture(scope="module")
def portal():
    p = BrokerPortal()
    bot_id, p.token_file = service_token(p)
    p.group_id = admin_setup(p, bot_id)
    yield p
    p.stop()


def test_rest_polling_brings_each_alert_once_as_the_window_moves(portal, tmp_path):
    fink = FinkRest()
    schema, kn = synth(12, "RKN", prv_points=20)
    _, sn = synth(6, "RSN", seed=5)
    latest = max(r["candidate"]["jd"] for r in kn[:8] + sn)
    for k, r in enumerate(kn[8:]):  # alerts of later in the night
        r["candidate"]["jd"] = latest + 0.01 * (k + 1)
    fink.add("Kilonova candidate", kn[:8])
    fink.add("SN candidate", sn)
    cfg = service_config(portal, tmp_path / "state", source="rest", group_names=[GROUP], batch_size=5,
                         backoff_seconds=0.2, backoff_max_seconds=2,
                         rest={"url": fink.url, "classes": ["Kilonova candidate", "SN candidate"],
                               "poll_seconds": 0.5, "startdate": "2019-01-01 00:00:00"})
    svc = Service(cfg, portal.token_file, portal.url, "run").start()
    try:
        assert wait_until(lambda: portal.counts("ZTFR")["objs"] == 14, 120), svc.output()
        fink.add("Kilonova candidate", kn[8:])
        assert wait_until(lambda: portal.counts("ZTFRKN")["objs"] == 12, 120), svc.output()
        polls = len([r for r in fink.requests if r[0] == "/api/v1/latests"])
        assert wait_until(lambda: len([r for r in fink.requests if r[0] == "/api/v1/latests"]) > polls + 4, 30)
    finally:
        assert svc.terminate() == 0
        fink.stop()
    counts = portal.counts("ZTFR")
    assert counts["objs"] == 18 and counts["candidates"] == 18 and counts["thumbnails"] == 54
    assert counts["photometry"] == sum(map(expected_points, kn + sn))
    classes = dict(portal.query("SELECT classification, count(*) FROM classifications WHERE obj_id LIKE 'ZTFR%%' "
                                "GROUP BY 1"))
    assert classes == {"Kilonova candidate": 12, "SN candidate": 6}
    # the start date moved: later polls asked from the latest alert confirmed, not from the configured start
    starts = [body["startdate"] for path, body in fink.requests
              if path == "/api/v1/latests" and body["class"] == "Kilonova candidate"]
    assert starts[0] == "2019-01-01 00:00:00" and starts[-1] > "2019-11"
    # upper limits came from /api/v1/objects with withupperlim
    assert any(body.get("withupperlim") == "True" for path, body in fink.requests if path == "/api/v1/objects")
    limits = portal.query("SELECT count(*) FROM photometry WHERE obj_id LIKE 'ZTFRKN%%' AND flux IS NULL")[0][0]
    assert limits > 0
    st = svc.status()["status"]
    assert st["position"]["windows"]["Kilonova candidate"]["last_date"] > "2019-11"
    assert "rest window:" in svc.run("status").stdout
