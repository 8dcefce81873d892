"""/api/gcn_event and /api/localization through the running portal: notices in (JSON, {"xml": ...}, XML body),
events and localizations out, the FITS download, and clear refusals that write nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

DATA = Path(__file__).parent / "data" / "gcn"


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def gwalert(superevent: str, time: str, alert_type: str = "PRELIMINARY", created: str = "2026-06-05T12:01:07Z"):
    """The sample preliminary alert renamed, so that each test has an event of its own."""
    alert = json.loads(raw("igwn_gwalert_preliminary.json"))
    alert.update(superevent_id=superevent, alert_type=alert_type, time_created=created)
    alert["event"]["time"] = time
    return alert


def n_events(db):
    from astroportal.models import GcnEvent

    with db() as s:
        return s.scalar(select(func.count()).select_from(GcnEvent))


def test_post_a_gwalert_then_read_the_event_and_its_localization(api, admin_token, role_tokens):
    # the sample alert under a name and time of its own (other test modules ingest the sample itself)
    body = json.dumps(gwalert("MS260606api", "2026-06-06T11:57:26.395Z")).encode()
    status, body = api.post("/api/gcn_event", admin_token, data=body, headers={"Content-Type": "application/json"})
    assert status == 200, body
    data = body["data"]
    assert data["dateobs"] == "2026-06-06T11:57:26.395000" and len(data["localization_ids"]) == 1
    # any logged-in user reads events
    reader = role_tokens["View only"]
    status, body = api.get("/api/gcn_event/2026-06-06T11:57:26.395", reader)
    assert status == 200, body
    event = body["data"]
    assert event["trigger_id"] == "MS260606api" and {"GW", "BNS", "Significant"} <= set(event["tags"])
    assert event["properties"]["classification"]["BNS"] > 0.99
    assert event["properties"]["urls"]["gracedb"].startswith("https://gracedb.ligo.org/superevents/")
    assert [n["notice_type"] for n in event["notices"]] == ["PRELIMINARY"] and "content" not in event["notices"][0]
    (loc,) = event["localizations"]
    assert 1 < loc["area_90"] < 100 and loc["area_50"] < loc["area_90"]
    # by alias, and by the time to the second
    assert api.get("/api/gcn_event/MS260606api", reader)[1]["data"]["id"] == event["id"]
    assert api.get("/api/gcn_event/2026-06-06T11:57:26", reader)[1]["data"]["id"] == event["id"]

    status, body = api.get(f"/api/localization/MS260606api/name/{loc['localization_name']}", reader)
    assert status == 200, body
    geo = body["data"]["contour"]
    assert [f["properties"].get("credible_level") for f in geo["features"][1:]] == [50, 90]

    # the download is a multi-order FITS file with the same tiles
    import requests

    r = requests.get(f"{api.base}/api/localization/MS260606api/name/{loc['localization_name']}/download",
                     headers={"Authorization": f"token {reader}"}, timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/fits"
    from astropy.table import Table

    from astroportal.gw import skymaps

    table = Table.read(io.BytesIO(r.content))
    assert len(table) == 19200 and {"UNIQ", "PROBDENSITY", "DISTMU"} <= set(table.colnames)
    sky = skymaps.read_fits(r.content, "again")
    assert skymaps.credible_area_deg2(sky, 0.9) == pytest.approx(loc["area_90"])


def test_the_same_notice_twice_changes_nothing_and_a_retraction_tags_the_event(api, admin_token, db):
    alert = gwalert("MS260101api", "2026-01-01T01:02:03.25Z")
    body = json.dumps(alert).encode()
    first = api.post("/api/gcn_event", admin_token, data=body, headers={"Content-Type": "application/json"})
    assert first[0] == 200 and first[1]["data"]["duplicate"] is False
    count = n_events(db)
    again = api.post("/api/gcn_event", admin_token, data=body, headers={"Content-Type": "application/json"})
    assert again[0] == 200 and again[1]["data"]["duplicate"] is True and n_events(db) == count
    assert again[1]["data"]["gcnevent_id"] == first[1]["data"]["gcnevent_id"]
    event = api.get("/api/gcn_event/MS260101api", admin_token)[1]["data"]
    assert len(event["notices"]) == 1 and len(event["localizations"]) == 1

    retraction = {"alert_type": "RETRACTION", "time_created": "2026-06-05T13:00:00Z", "superevent_id": "MS260101api",
                  "event": None, "external_coinc": None}
    status, answer = api.post("/api/gcn_event", admin_token, json=retraction)
    assert status == 200, answer
    event = api.get("/api/gcn_event/MS260101api", admin_token)[1]["data"]
    assert "RETRACTED" in event["tags"] and [n["notice_type"] for n in event["notices"]] == ["PRELIMINARY", "RETRACTION"]
    # the list's tag filters
    listed = api.get("/api/gcn_event", admin_token, params={"tagKeep": "RETRACTED"})[1]["data"]
    assert "MS260101api" in [e["trigger_id"] for e in listed["events"]]
    listed = api.get("/api/gcn_event", admin_token, params={"tagRemove": "RETRACTED", "numPerPage": 500})[1]["data"]
    assert "MS260101api" not in [e["trigger_id"] for e in listed["events"]]


def test_voevents_as_xml_body_and_as_xml_field(api, admin_token):
    # the samples with triggers and times of their own (other test modules store the samples themselves)
    swift_xml = raw("SWIFT_1125809-092.xml").replace(b'value="1125809"', b'value="7125809"').replace(
        b"2022-09-30T11:11:52.12", b"2022-09-30T07:11:52.12")
    status, body = api.post("/api/gcn_event", admin_token, data=swift_xml, headers={"Content-Type": "application/xml"})
    assert status == 200, body
    swift = api.get(f"/api/gcn_event/{body['data']['dateobs']}", admin_token)[1]["data"]
    assert {"Swift", "GRB"} <= set(swift["tags"]) and "SWIFT#7125809" in swift["aliases"]
    assert swift["localizations"][0]["area_90"] < 0.1
    fermi_xml = raw("GRB180116A_Fermi_GBM_Gnd_Pos.xml").replace(b"bn180116026", b"bn180116099").replace(
        b"2018-01-16T00:36:52.81", b"2018-01-16T09:36:52.81").replace(b'value="537755817"', b'value="537755899"')
    status, body = api.post("/api/gcn_event", admin_token, json={"xml": fermi_xml.decode()})
    assert status == 200, body
    fermi = api.get("/api/gcn_event/FERMI%23bn180116099", admin_token)[1]["data"]
    assert fermi["dateobs"] == "2018-01-16T09:36:52.810000" and "Fermi" in fermi["tags"]


def test_the_list_is_newest_first_paged_and_filtered_by_date(api, admin_token):
    for i, day in enumerate(("2025-03-01", "2025-03-03", "2025-03-02")):
        alert = gwalert(f"MS25030{i}page", f"{day}T00:00:00Z")
        assert api.post("/api/gcn_event", admin_token, json=alert)[0] == 200
    params = {"startDate": "2025-03-01T00:00:00", "endDate": "2025-03-03T00:00:00", "numPerPage": 2}
    status, body = api.get("/api/gcn_event", admin_token, params=params)
    assert status == 200, body
    page1 = body["data"]
    assert page1["totalMatches"] == 3 and page1["numPerPage"] == 2
    assert [e["dateobs"][:10] for e in page1["events"]] == ["2025-03-03", "2025-03-02"]
    page2 = api.get("/api/gcn_event", admin_token, params={**params, "pageNumber": 2})[1]["data"]
    assert [e["dateobs"][:10] for e in page2["events"]] == ["2025-03-01"]
    assert page1["events"][0]["localizations"][0]["area_90"] > 0


@pytest.mark.parametrize("kwargs, words", [
    ({"data": b"just words", "headers": {"Content-Type": "text/plain"}}, "neither JSON nor XML"),
    ({"json": [1, 2]}, "must be an object"),
    ({"data": b'{"a": ' * 500 + b"1" + b"}" * 500, "headers": {"Content-Type": "application/json"}}, "nested"),
    ({"data": b'{"superevent_id": ', "headers": {"Content-Type": "application/json"}}, "not valid JSON"),
    ({"json": {"xml": 5}}, "`xml` must be"),
    ({"data": b"<VOEvent><broken", "headers": {"Content-Type": "application/xml"}}, "not well-formed XML"),
    ({"json": {"superevent_id": "S1", "alert_type": "PRELIMINARY", "time_created": "2026-01-01T00:00:00Z",
               "event": {"time": "2026-01-01T00:00:00Z", "skymap": "not base64!"}}}, "not valid base64"),
    ({"json": {"superevent_id": "S1", "alert_type": "PRELIMINARY", "time_created": "2026-01-01T00:00:00Z",
               "event": {"time": "2026-01-01T00:00:00Z", "skymap": "aGVsbG8="}}}, "not a FITS file"),
    # (a byte more than the sample, which other tests store with its sky map read from test data)
    ({"data": raw("GW190425_initial.xml") + b"\n", "headers": {"Content-Type": "application/xml"}}, "does not download"),
])
def test_bad_posts_are_refused_with_a_reason_and_write_nothing(api, admin_token, db, kwargs, words):
    before = n_events(db)
    status, body = api.post("/api/gcn_event", admin_token, **kwargs)
    assert status == 400 and words in body["message"], body
    assert n_events(db) == before


def test_unknown_events_and_localizations_are_404(api, admin_token):
    retraction = {"alert_type": "RETRACTION", "time_created": "2026-01-01T02:00:00Z", "superevent_id": "S999999zz",
                  "event": None}
    status, body = api.post("/api/gcn_event", admin_token, json=retraction)
    assert status == 404 and "S999999zz" in body["message"]
    assert api.get("/api/gcn_event/1999-01-01T00:00:00", admin_token)[0] == 404
    assert api.get("/api/gcn_event/S999999zz", admin_token)[0] == 404
    status, body = api.get("/api/gcn_event", admin_token, params={"startDate": "yesterday"})
    assert status == 400 and "startDate" in body["message"]
    alert = gwalert("MS260202loc", "2026-02-02T00:00:00Z")
    assert api.post("/api/gcn_event", admin_token, json=alert)[0] == 200
    status, body = api.get("/api/localization/MS260202loc/name/nothing.fits", admin_token)
    assert status == 404 and "bayestar.multiorder.fits" in body["message"]


def test_reading_needs_login_and_posting_needs_manage_gcns(api, role_tokens):
    assert api.get("/api/gcn_event")[0] == 401
    assert api.get("/api/gcn_event", role_tokens["Full user"])[0] == 200
    status, body = api.post("/api/gcn_event", role_tokens["Full user"], json={"xml": "<x/>"})
    assert status == 403 and "Manage GCNs" in body["message"]


def test_a_new_notice_is_on_everyones_live_feed_at_the_sky_position(api, admin_token, role_tokens):
    alert = gwalert("MS260303live", "2026-03-03T03:03:03Z")
    assert api.post("/api/gcn_event", admin_token, json=alert)[0] == 200
    status, body = api.get("/api/live/events", role_tokens["View only"], params={"types": "gcn.notice"})
    assert status == 200, body
    (event,) = [e for e in body["data"]["events"] if e["data"].get("trigger_id") == "MS260303live"]
    assert event["data"]["notice_type"] == "PRELIMINARY" and event["data"]["is_test"] is True
    assert event["data"]["url"] == "/gcn_events/2026-03-03T03:03:03"
    # the position is the densest tile's, inside the 50% contour's extent
    loc = api.get("/api/gcn_event/MS260303live", admin_token)[1]["data"]["localizations"][0]
    geo = api.get(f"/api/localization/MS260303live/name/{loc['localization_name']}", admin_token)[1]["data"]["contour"]
    assert [event["ra"], event["dec"]] == pytest.approx(geo["features"][0]["geometry"]["coordinates"], abs=1e-3)
