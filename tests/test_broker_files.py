"""The broker client's files source end to end into a real portal: `./run.sh broker replay` of the real Fink
alerts (objects, candidates, photometry with upper limits, thumbnails on the source page), replays that change
nothing, malformed files going to the dead letters, and a replay killed with -9 mid-batch."""

from __future__ import annotations

import hashlib
import json

import pytest
import requests
from broker_support import (
    ALERTS_DIR,
    GROUP,
    BrokerPortal,
    Service,
    admin_setup,
    expected_points,
    expected_scores,
    real_alerts,
    service_config,
    service_token,
    synth,
    write_avro,
)

from conftest import wait_until


@pytest.fixture(scope="module")
def portal():
    p = BrokerPortal()
    bot_id, token_file = service_token(p)
    p.group_id = admin_setup(p, bot_id)
    p.token_file = token_file
    yield p
    p.stop()


def snapshot(portal: BrokerPortal, prefix: str) -> list:
    """Everything the broker wrote about objects with this prefix, modification times included."""
    like = prefix + "%"
    return [
        portal.query("SELECT id, ra, dec, origin, modified FROM objs WHERE id LIKE %s ORDER BY id", like),
        portal.query("SELECT obj_id, group_id, saved_at FROM sources WHERE obj_id LIKE %s ORDER BY 1, 2", like),
        portal.query("SELECT obj_id, filter_id, passed_at, passing_alert_id FROM candidates WHERE obj_id LIKE %s "
                     "ORDER BY 1, 3", like),
        portal.query("SELECT obj_id, filter, mjd, flux, fluxerr, alert_id FROM photometry WHERE obj_id LIKE %s "
                     "ORDER BY 1, 2, 3", like),
        portal.query("SELECT obj_id, type, size, modified FROM thumbnails WHERE obj_id LIKE %s ORDER BY 1, 2", like),
        portal.query("SELECT id, obj_id, origin, data, modified FROM annotations WHERE obj_id LIKE %s ORDER BY 2, 3",
                     like),
    ]


def test_replay_of_the_real_alerts_writes_each_once_and_shows_cutouts(portal):
    alerts = [r for _, r in real_alerts()]
    res = portal.run("broker", "replay", str(ALERTS_DIR))
    assert res.returncode == 0, res.stderr + res.stdout
    assert "replayed 15 alerts (15 new sources" in res.stdout
    assert "0 dead-lettered" in res.stdout

    points = portal.points_by_obj("ZTF1")
    for a in alerts:
        assert points[a["objectId"]] == expected_points(a), a["objectId"]
    counts = portal.counts("ZTF1")
    assert counts == {"objs": 15, "sources": 15, "candidates": 15, "photometry": sum(map(expected_points, alerts)),
                      "classifications": 0, "thumbnails": 45}
    # upper limits are points with a limiting magnitude and no magnitude
    phot = portal.api("GET", "/api/sources/ZTF19acihgng/photometry")
    limits = [p for p in phot if p["mag"] is None]
    assert limits and all(p["limiting_mag"] for p in limits)
    assert {p["filter"] for p in phot} <= {"ztfg", "ztfr", "ztfi"}
    cand = portal.api("GET", "/api/candidates/ZTF19acihgng")
    assert cand["passing_alert_id"] == 1060135832015015002
    # Fink's scores: one annotation per object, from the broker, with the alert's present values
    scored = {a["objectId"]: expected_scores(a) for a in alerts if expected_scores(a)}
    assert scored, "the real alerts carry some of Fink's scores"
    assert portal.annotations("ZTF1") == {o: [("Fink", s)] for o, s in scored.items()}

    # the source page shows the three cutouts side by side, rendered to PNG when first viewed
    page = requests.get(f"{portal.url}/source/ZTF19acihgng", headers=portal.headers, timeout=30)
    assert page.status_code == 200
    for ttype in ("new", "ref", "sub"):
        assert f'id="thumbnail-{ttype}"' in page.text
    srcs = [part.split('"')[0] for part in page.text.split('src="/thumbnails/')[1:]]
    assert len(srcs) == 3
    for src in srcs:
        img = requests.get(f"{portal.url}/thumbnails/{src}", headers=portal.headers, timeout=30)
        assert img.status_code == 200 and img.content[:4] == b"\x89PNG"

    # what the broker brought in: the sources page lists its group
    listing = portal.api("GET", f"/api/sources?group_ids={portal.group_id}&numPerPage=100")
    assert {s["id"] for s in listing["sources"]} >= {a["objectId"] for a in alerts}
    sources_page = requests.get(f"{portal.url}/sources?group={portal.group_id}", headers=portal.headers, timeout=30)
    assert f'<option value="{portal.group_id}" selected>{GROUP}</option>' in sources_page.text


def test_replaying_the_same_files_again_changes_nothing(portal):
    before = snapshot(portal, "ZTF1")
    again = portal.run("broker", "replay", str(ALERTS_DIR))
    assert again.returncode == 0, again.stderr
    assert "replayed 0 alerts" in again.stdout and "15 skipped" in again.stdout
    forced = portal.run("broker", "replay", "--from-start", str(ALERTS_DIR))
    assert forced.returncode == 0, forced.stderr
    assert "replayed 15 alerts (0 new sources" in forced.stdout
    assert snapshot(portal, "ZTF1") == before
    assert all(len(found) == 1 for found in portal.annotations("ZTF1").values())


def test_malformed_files_go_to_the_dead_letters_and_the_rest_lands(portal, tmp_path):
    schema, records = synth(3, "MAL")
    write_avro(tmp_path / "good.avro", schema, records)
    (tmp_path / "garbage.avro").write_bytes(b"this is not an Avro file\n" * 10)
    # a record of a schema without `candidate`
    bare = {"type": "record", "name": "alert", "fields": [{"name": "objectId", "type": "string"},
                                                          {"name": "candid", "type": "long"}]}
    write_avro(tmp_path / "nocandidate.avro", bare, [{"objectId": "ZTFMALX", "candid": 1}])
    # a NaN magnitude loses that point only
    records2 = synth(1, "NAN")[1]
    records2[0]["candidate"]["magpsf"] = float("nan")
    records2[0]["candidate"]["diffmaglim"] = None
    records2[0]["rfscore"] = float("nan")  # a NaN score is left out of the annotation; the others stay
    write_avro(tmp_path / "nan.avro", schema, records2)

    res = portal.run("broker", "replay", str(tmp_path))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "2 dead-lettered" in res.stdout
    letters = [json.loads(line) for line in (portal.var / "broker" / "dead-letters.jsonl").read_text().splitlines()]
    reasons = {l["where"].split("/")[-1]: l["reason"] for l in letters}
    assert "not an Avro container file" in reasons["garbage.avro"]
    assert "has no `candidate`" in reasons["nocandidate.avro#0"]
    assert portal.counts("ZTFMAL")["objs"] == 3
    nan_counts = portal.counts("ZTFNAN")
    assert nan_counts["objs"] == 1 and nan_counts["photometry"] == expected_points(records2[0]) - 1
    [(origin, scores)] = portal.annotations("ZTFNAN")[records2[0]["objectId"]]
    assert "rfscore" not in scores and scores == expected_scores(records2[0]) and scores
    status = portal.run("broker", "status")
    assert "dead letters:  2" in status.stdout


def test_a_replay_killed_mid_batch_resumes_and_every_alert_lands_once(portal, tmp_path):
    schema, records = synth(400, "KIL", prv_points=50)
    path = write_avro(tmp_path / "many.avro", schema, records)
    state = tmp_path / "state"
    cfg = service_config(portal, state, batch_size=25, group_names=[GROUP])
    svc = Service(cfg, portal.token_file, portal.url, "replay", str(path)).start()
    assert wait_until(lambda: portal.counts("ZTFKIL")["objs"] >= 60, 120), svc.output()
    svc.kill9()
    partial = portal.counts("ZTFKIL")["objs"]
    assert partial < 400
    res = Service(cfg, portal.token_file, portal.url).run("replay", str(path))
    assert res.returncode == 0, res.stderr
    assert "skipped" in res.stdout
    counts = portal.counts("ZTFKIL")
    assert counts["objs"] == 400 and counts["candidates"] == 400 and counts["sources"] == 400
    assert counts["thumbnails"] == 1200
    assert counts["photometry"] == sum(map(expected_points, records))
    annotations = portal.annotations("ZTFKIL")
    assert len(annotations) == 400 and all(found == [("Fink", expected_scores(r))]
                                           for r, found in zip(records, (annotations[r["objectId"]] for r in records)))


def test_batches_in_flight_together_leave_each_object_with_its_newest_alert(portal, tmp_path):
    # Alerts of two objects interleaved, one per batch, four batches allowed in flight: batches of other objects
    # overlap, but one naming an object still in flight waits, so the newest alert's cutouts and scores win.
    schema, records = synth(7, "ORD")
    for i, r in enumerate(records):
        r["objectId"] = "ZTFORDA" if i % 2 == 0 else "ZTFORDB"
    path = write_avro(tmp_path / "interleaved.avro", schema, records)
    cfg = service_config(portal, tmp_path / "state", batch_size=1, batches_in_flight=4, group_names=[GROUP])
    res = Service(cfg, portal.token_file, portal.url).run("replay", str(path))
    assert res.returncode == 0, res.stderr
    assert "replayed 7 alerts (2 new sources" in res.stdout
    newest = {"ZTFORDA": records[6], "ZTFORDB": records[5]}
    stored = {(o, t): sha for o, t, sha in portal.query(
        "SELECT obj_id, type, sha256 FROM thumbnails WHERE obj_id LIKE 'ZTFORD%%'")}
    for obj_id, alert in newest.items():
        for field, ttype in (("cutoutScience", "new"), ("cutoutTemplate", "ref"), ("cutoutDifference", "sub")):
            assert stored[(obj_id, ttype)] == hashlib.sha256(alert[field]["stampData"]).hexdigest(), (obj_id, ttype)
    assert portal.annotations("ZTFORD") == {o: [("Fink", expected_scores(a))] for o, a in newest.items()
                                            if expected_scores(a)}
    per_object = dict(portal.query("SELECT obj_id, count(*) FROM candidates WHERE obj_id LIKE 'ZTFORD%%' "
                                   "GROUP BY obj_id"))
    assert per_object == {"ZTFORDA": 4, "ZTFORDB": 3}


def test_a_batch_with_more_points_than_one_upload_takes_is_sent_in_parts(portal, tmp_path):
    # 150 alerts with 150 earlier points each: 22,650 points in one batch, over the portal's 20,000 per upload.
    # The batch's photometry goes in two requests; the portal never refuses the batch (which would send every
    # alert again one by one).
    schema, records = synth(150, "LNG", prv_points=150)
    path = write_avro(tmp_path / "long.avro", schema, records)
    cfg = service_config(portal, tmp_path / "state", batch_size=200, group_names=[GROUP])
    res = Service(cfg, portal.token_file, portal.url).run("replay", str(path))
    assert res.returncode == 0, res.stderr
    assert "replayed 150 alerts (150 new sources" in res.stdout and "0 dead-lettered" in res.stdout
    assert "refused a batch" not in res.stderr and "one by one" not in res.stderr, res.stderr[-2000:]
    assert portal.counts("ZTFLNG")["photometry"] == sum(map(expected_points, records))
