"""Ephemerides: the sun, night and twilight at a site, tonight's dark window, airmass curves (and their API)."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from astroportal.domain import ephemeris as eph

GREENWICH = (51.4769, 0.0, 46.0)
PARANAL = (-24.6272, -70.4042, 2635.0)
LONGYEARBYEN = (78.2232, 15.6267, 10.0)


def minutes_between(a: str, b: str) -> float:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return abs((datetime.strptime(a, fmt) - datetime.strptime(b, fmt)).total_seconds()) / 60


# -- the sun and the night at a site -------------------------------------------------------------------------
def test_sun_altitude_at_greenwich_midsummer_noon():
    # At local noon on the solstice the sun stands at 90 - latitude + obliquity = 61.96 degrees.
    out = eph.site_ephemeris(*GREENWICH, when="2024-06-21T12:02:00")
    assert out["sun_altitude"] == pytest.approx(61.96, abs=0.1)
    assert out["twilight"] == "day" and out["is_night"] is False and out["is_dark"] is False


def test_sunset_and_sunrise_match_the_almanac():
    # London, 21 June 2024: sunset 21:21 BST (20:21 UTC), next sunrise 04:43 BST (03:43 UTC).
    out = eph.site_ephemeris(*GREENWICH, when="2024-06-21T12:00:00")
    night = out["night"]
    assert night["exists"] and not night["ongoing"]
    assert minutes_between(night["start"], "2024-06-21T20:21:00Z") < 3
    assert minutes_between(night["end"], "2024-06-22T03:43:00Z") < 3


def test_no_astronomical_darkness_at_greenwich_in_june():
    out = eph.site_ephemeris(*GREENWICH, when="2024-06-21T12:00:00")
    assert out["dark_window"]["exists"] is False


def test_dark_window_is_inside_the_night_and_starts_at_minus_18():
    out = eph.site_ephemeris(*PARANAL, when="2024-03-15T18:00:00")
    night, dark = out["night"], out["dark_window"]
    assert dark["exists"] and night["exists"]
    assert night["start"] < dark["start"] < dark["end"] < night["end"]
    assert 7 < dark["hours"] < 10
    # The sun really is at -18 degrees at both ends of the window.
    for edge in (dark["start"], dark["end"]):
        assert eph.sun_altitudes_at([PARANAL], edge)[0] == pytest.approx(-18.0, abs=0.1)


def test_during_the_night_tonight_is_the_current_night():
    out = eph.site_ephemeris(*PARANAL, when="2024-03-16T05:00:00")
    assert out["is_night"] and out["is_dark"] and out["twilight"] == "night"
    assert out["night"]["ongoing"] and out["dark_window"]["ongoing"]
    assert out["dark_window"]["start"] < "2024-03-16T05:00:00Z" < out["dark_window"]["end"]


def test_polar_day_and_polar_night():
    summer = eph.site_ephemeris(*LONGYEARBYEN, when="2024-06-21T00:00:00")
    assert summer["is_night"] is False and summer["night"]["exists"] is False
    winter = eph.site_ephemeris(*LONGYEARBYEN, when="2024-12-21T12:00:00")
    assert winter["is_night"] is True
    assert winter["night"]["exists"] and winter["night"]["ongoing"]
    assert winter["night"]["start"] is None and winter["night"]["end"] is None


def test_twilight_bands_follow_the_sun():
    assert eph.twilight_state(10) == "day"
    assert eph.twilight_state(-3) == "civil"
    assert eph.twilight_state(-9) == "nautical"
    assert eph.twilight_state(-15) == "astronomical"
    assert eph.twilight_state(-30) == "night"


def test_many_sites_at_once_match_one_by_one():
    when = "2024-03-15T23:00:00"
    together = eph.sun_altitudes_at([GREENWICH, PARANAL, LONGYEARBYEN], when)
    alone = [eph.site_ephemeris(*site, when=when)["sun_altitude"] for site in (GREENWICH, PARANAL, LONGYEARBYEN)]
    assert together == pytest.approx(alone, abs=0.01)


def test_bad_inputs_are_refused_with_a_message():
    with pytest.raises(Exception) as info:
        eph.site_ephemeris(None, 10.0)
    assert "no fixed location" in str(info.value)
    with pytest.raises(Exception) as info:
        eph.as_time("yesterday-ish")
    assert "invalid time" in str(info.value)
    with pytest.raises(Exception) as info:
        eph.airmass_curve(*PARANAL, ra=400.0, dec=0.0)
    assert "invalid target position" in str(info.value)


# -- airmass ---------------------------------------------------------------------------------------------------
def test_airmass_formula():
    values = eph.airmass_from_altitude([90.0, 30.0, 10.0, 0.0, -5.0])
    assert values[0] == pytest.approx(1.0, abs=1e-3)
    assert values[1] == pytest.approx(2.0, abs=0.02)
    assert 5.0 < values[2] < 6.0
    assert all(v != v for v in values[3:])  # NaN below the horizon


def test_airmass_curve_spans_tonight_with_twilight_bands():
    # A target at the site's declination passes through the zenith at transit.
    curve = eph.airmass_curve(*PARANAL, ra=150.0, dec=-24.6, when="2024-03-15T18:00:00")
    n = len(curve["times"])
    assert n == len(curve["altitude"]) == len(curve["airmass"]) == len(curve["sun_altitude"]) > 100
    assert curve["times"][0] < curve["night"]["start"] and curve["night"]["end"] < curve["times"][-1]
    up = [a for a in curve["airmass"] if a is not None]
    assert min(up) == pytest.approx(1.0, abs=0.01)
    for alt, am in zip(curve["altitude"], curve["airmass"]):
        assert (am is None) == (alt <= 0)
    bands = curve["twilight"]
    assert [b["name"] for b in bands] == [
        "day", "civil", "nautical", "astronomical", "night", "astronomical", "nautical", "civil", "day",
    ]
    assert bands[0]["start"] == curve["start"] and bands[-1]["end"] == curve["end"]
    for a, b in zip(bands, bands[1:]):
        assert a["end"] == b["start"]
    night_band = bands[4]
    assert minutes_between(night_band["start"], curve["night"]["start"]) > 60  # dark comes > 1 h after sunset


def test_airmass_curve_without_a_night_spans_a_day():
    curve = eph.airmass_curve(*LONGYEARBYEN, ra=0.0, dec=60.0, when="2024-06-21T00:00:00")
    assert curve["night"]["exists"] is False
    assert minutes_between(curve["start"], curve["end"]) == pytest.approx(24 * 60, abs=5)
    assert {b["name"] for b in curve["twilight"]} == {"day"}


# -- through the API ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sites(api, admin_token):
    """A telescope at Paranal and one without a fixed site: {"paranal": id, "nowhere": id}."""
    tag = uuid.uuid4().hex[:6]
    ids = {}
    for key, body in {
        "paranal": {"lat": PARANAL[0], "lon": PARANAL[1], "elevation": PARANAL[2], "fixed_location": True},
        "nowhere": {"lat": None, "lon": None, "elevation": None, "fixed_location": False},
    }.items():
        status, answer = api.post(
            "/api/telescope",
            admin_token,
            json={"name": f"eph-{key}-{tag}", "nickname": key, "diameter": 1.0, "robotic": False, **body},
        )
        assert status == 200, answer
        ids[key] = answer["data"]["id"]
    return ids


def test_api_telescope_ephemeris(api, admin_token, sites):
    status, body = api.get(f"/api/internal/ephemeris/{sites['paranal']}?time=2024-03-16T05:00:00", admin_token)
    assert status == 200, body
    data = body["data"]
    assert data["location_known"] and data["is_dark"] and data["twilight"] == "night"
    assert data["telescope"]["id"] == sites["paranal"]
    assert data["dark_window"]["ongoing"]

    status, body = api.get(f"/api/internal/ephemeris/{sites['nowhere']}", admin_token)
    assert status == 200 and body["data"]["location_known"] is False and "sun_altitude" not in body["data"]


def test_api_every_telescope_status(api, admin_token, sites):
    status, body = api.get("/api/internal/ephemeris?time=2024-03-16T05:00:00", admin_token)
    assert status == 200
    by_id = {t["telescope_id"]: t for t in body["data"]}
    assert by_id[sites["paranal"]]["is_dark"] is True
    assert by_id[sites["nowhere"]]["location_known"] is False and by_id[sites["nowhere"]]["is_night"] is None


def test_api_ephemeris_errors(api, admin_token, sites):
    assert api.get(f"/api/internal/ephemeris/{sites['paranal']}")[0] == 401
    status, body = api.get("/api/internal/ephemeris/999999", admin_token)
    assert status == 404 and "telescope 999999 not found" in body["message"]
    status, body = api.get("/api/internal/ephemeris/abc", admin_token)
    assert status == 400 and "`id`" in body["message"]
    status, body = api.get(f"/api/internal/ephemeris/{sites['paranal']}?time=soon", admin_token)
    assert status == 400 and "invalid time" in body["message"]


def test_api_airmass_of_a_source(api, make_user, admin_token, sites):
    from conftest import unique
    from uihelpers import private_source

    _, token = make_user("Full user")
    obj_id = unique()
    private_source(api, token, obj_id, 150.0, -24.6)
    status, body = api.get(
        f"/api/internal/airmass/{obj_id}?telescope_id={sites['paranal']}&time=2024-03-15T18:00:00", token
    )
    assert status == 200, body
    data = body["data"]
    assert data["obj_id"] == obj_id and data["telescope"]["id"] == sites["paranal"]
    assert min(a for a in data["airmass"] if a is not None) == pytest.approx(1.0, abs=0.01)
    assert data["twilight"][0]["name"] == "day" and any(b["name"] == "night" for b in data["twilight"])

    status, body = api.get(f"/api/internal/airmass/{obj_id}", token)
    assert status == 400 and "telescope_id" in body["message"]
    status, body = api.get(f"/api/internal/airmass/{obj_id}?telescope_id={sites['nowhere']}", token)
    assert status == 400 and "no fixed location" in body["message"]
    status, body = api.get(f"/api/internal/airmass/{obj_id}?telescope_id=999999", token)
    assert status == 404

    # Someone who cannot see the source is not told it exists.
    _, stranger = make_user("Full user")
    status, body = api.get(f"/api/internal/airmass/{obj_id}?telescope_id={sites['paranal']}", stranger)
    assert status == 404 and "not found" in body["message"]
