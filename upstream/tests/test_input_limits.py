"""Input hardening (issue 9, parts 4 and 5): each kind of value that once answered 500 now gets a clear 400
naming the field, quoting at most 100 characters of it, and leaving the log short; physical ranges and
uniqueness rules are enforced, and nothing is written when a request is refused."""

from __future__ import annotations

import json
import secrets
import socket
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from conftest import unique

MB_VALUE = secrets.token_hex(500_000)  # 1 MB, random so that PostgreSQL cannot compress it into an index row


def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def site(api, admin_token):
    """A telescope with an instrument (ztfg, ztfr, ztfi) and a source with one ztfr point: {name: id}."""
    status, tel = api.post("/api/telescope", admin_token, json={
        "name": f"lim-tel-{tag()}", "nickname": "lim", "diameter": 1.0, "lat": 10.0, "lon": 20.0})
    assert status == 200, tel
    status, inst = api.post("/api/instrument", admin_token, json={
        "name": f"lim-inst-{tag()}", "type": "imager", "telescope_id": tel["data"]["id"],
        "filters": ["ztfg", "ztfr", "ztfi"]})
    assert status == 200, inst
    obj_id = unique("LIM")
    assert api.post("/api/sources", admin_token, json={"id": obj_id, "ra": 1.0, "dec": 2.0})[0] == 200
    point = {"obj_id": obj_id, "instrument_id": inst["data"]["id"], "filter": "ztfr", "mjd": 59000.0,
             "mag": 19.0, "magerr": 0.1, "magsys": "ab"}
    status, res = api.post("/api/photometry", admin_token, json=point)
    assert status == 200, res
    return {"telescope": tel["data"]["id"], "instrument": inst["data"]["id"], "obj_id": obj_id, "point": point}


def count(db, model, *where) -> int:
    from astroportal import models

    with db() as session:
        return session.scalar(select(func.count()).select_from(getattr(models, model)).where(*where))


def assert_clear_400(status, body, field: str, *words: str) -> None:
    assert status == 400, body
    assert f"`{field}" in body["message"], body["message"]
    for word in words:
        assert word in body["message"], body["message"]
    assert len(body["message"]) < 600, f"the message echoes too much: {len(body['message'])} characters"


# -- part 4: no 500 from input ------------------------------------------------------------------------------------
def test_nul_and_lone_surrogate_in_a_body_string_name_the_field(api, admin_token, db):
    from astroportal.models import Obj

    obj_id = unique("LIM")
    status, body = api.post("/api/sources", admin_token, json={"id": obj_id, "ra": 1.0, "dec": 2.0, "origin": "a\x00b"})
    assert_clear_400(status, body, "origin", "NUL")
    raw = '{"id": "%s", "ra": 1.0, "dec": 2.0, "alias": ["ok", "x\\udc80y"]}' % obj_id
    status, body = api.post("/api/sources", admin_token, data=raw, headers={"Content-Type": "application/json"})
    assert_clear_400(status, body, "alias[1]", "surrogate")
    assert count(db, "Obj", Obj.id == obj_id) == 0


def test_nul_in_a_query_or_path_argument(api, admin_token):
    status, body = api.get("/api/streams?name=a%00b", admin_token)
    assert_clear_400(status, body, "name", "NUL")
    status, body = api.get("/api/sources/ab%00cd", admin_token)
    assert status == 400 and "NUL" in body["message"], body
    status, body = api.get("/api/sources/ab%ED%A0%80cd/photometry", admin_token)
    assert status == 400 and "UTF-8" in body["message"], body


def test_a_bad_path_keeps_the_keep_alive_connection(server, admin_token):
    """Refusing a path before the body is read used to make Tornado drop the connection under the client."""
    http = requests.Session()
    headers = {"Authorization": f"token {admin_token}"}
    for method, path, body in [("GET", "/api/sources/ab%ED%A0%80cd/photometry", None),
                               ("PUT", "/api/instrument/x%ED%A0%80", {"name": "x"}),
                               ("GET", "/api/streams/1%00", None)]:
        r = http.request(method, f"{server.url}{path}", headers=headers, json=body, timeout=30)
        assert r.status_code == 400, r.text
        assert http.get(f"{server.url}/api/sysinfo", timeout=30).status_code == 200


def test_over_long_names_are_refused_before_the_database(api, admin_token, db):
    from astroportal.models import Telescope

    status, body = api.post("/api/telescope", admin_token, json={
        "name": MB_VALUE, "nickname": "n", "diameter": 1.0, "lat": 1.0, "lon": 2.0})
    assert_clear_400(status, body, "name", "1000000 characters", "at most 256")
    assert MB_VALUE[:101] not in body["message"] and MB_VALUE[:100] in body["message"]
    assert count(db, "Telescope", Telescope.nickname == "n", func.length(Telescope.name) > 256) == 0
    for path, payload, field in [
        ("/api/streams", {"name": MB_VALUE[:3000]}, "name"),
        ("/api/groups", {"name": MB_VALUE[:3000]}, "name"),
        ("/api/user", {"username": MB_VALUE[:3000]}, "username"),
        ("/api/sources", {"id": unique("LIM"), "ra": 1.0, "dec": 1.0, "origin": MB_VALUE[:3000]}, "origin"),
    ]:
        status, body = api.post(path, admin_token, json=payload)
        assert_clear_400(status, body, field, "at most 256")


def test_over_long_photometry_origin(api, admin_token, site, db):
    from astroportal.models import Photometry

    status, body = api.put("/api/photometry", admin_token, json={**site["point"], "origin": MB_VALUE[:5000]})
    assert_clear_400(status, body, "origin", "at most 256")
    assert count(db, "Photometry", Photometry.obj_id == site["obj_id"]) == 1


def test_the_schema_limits_lengths_too(db):
    """Migration 0003: the columns themselves hold at most 256 characters, whatever writes them."""
    from sqlalchemy.exc import DataError

    from astroportal.models import Stream

    with db() as session:
        session.add(Stream(name="s" * 257))
        with pytest.raises(DataError, match="too long"):
            session.commit()


def test_huge_integers(api, admin_token, site):
    for path in ("/api/sources", "/api/candidates", "/api/user"):
        status, body = api.get(f"{path}?pageNumber={'9' * 40}", admin_token)
        assert_clear_400(status, body, "pageNumber")
    status, body = api.put("/api/photometry", admin_token, json={**site["point"], "alert_id": 2**63})
    assert_clear_400(status, body, "alert_id")
    status, body = api.put("/api/photometry", admin_token, json={**site["point"], "alert_id": 10**30})
    assert_clear_400(status, body, "alert_id")
    status, body = api.post("/api/instrument", admin_token, json={
        "name": f"lim-{tag()}", "type": "imager", "telescope_id": 2**40})
    assert_clear_400(status, body, "telescope_id")


def test_deeply_nested_json(api, admin_token):
    for depth in (100, 100_000):
        raw = '{"name": "x", "altdata": ' + "[" * depth + "]" * depth + "}"
        status, body = api.post("/api/streams", admin_token, data=raw)
        assert status == 400 and "nested more than" in body["message"], body


def test_far_future_times_on_ephemeris_and_airmass(api, admin_token, site):
    for when in ("9999-12-31T23:59:59", "2200-01-01T00:00:00", "1000-01-01"):
        status, body = api.get(f"/api/internal/ephemeris/{site['telescope']}?time={when}", admin_token)
        assert_clear_400(status, body, "time", "2100")
        status, body = api.get(
            f"/api/internal/airmass/{site['obj_id']}?telescope_id={site['telescope']}&time={when}", admin_token)
        assert_clear_400(status, body, "time", "2100")
    status, body = api.get("/api/internal/ephemeris?time=9999-12-31T23:59:59", admin_token)
    assert_clear_400(status, body, "time")


def test_an_over_long_url_is_answered_414(server, admin_token):
    http = requests.Session()
    for size in (70_000, 900_000):
        r = http.get(f"{server.url}/api/sources?sourceID={'z' * size}",
                     headers={"Authorization": f"token {admin_token}"}, timeout=30)
        assert r.status_code == 414, r.text[:200]
        assert "65536" in r.json()["message"] and len(r.content) < 1000
    # the connection is still good for the next request
    assert http.get(f"{server.url}/api/sysinfo", timeout=30).status_code == 200


def test_an_over_long_url_answers_414_over_a_raw_socket(server):
    """The answer arrives (rather than a reset) even for a client that sends the whole line before reading."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"GET /{'a' * 100_000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 414")


def test_huge_values_are_not_echoed_into_answers_or_the_log(api, admin_token, server):
    log = Path(server.config).parent / "server.log"
    before = log.stat().st_size
    status, body = api.post("/api/telescope", admin_token, json={
        "name": "ok", "nickname": MB_VALUE, "diameter": 1.0, "lat": 1.0, "lon": 2.0})
    assert status == 400 and len(json.dumps(body)) < 1000
    status, body = api.get(f"/api/sources/{'q' * 60_000}", admin_token)
    assert status == 404 and len(json.dumps(body)) < 1000
    status, body = api.get(f"/api/streams?name={MB_VALUE[:60_000]}", admin_token)
    assert status == 200
    status, body = api.post("/api/streams", admin_token, data='{"a": ' * 50_000 + "1" + "}" * 50_000)
    assert status == 400 and len(json.dumps(body)) < 1000
    # four requests carrying ~1.2 MB: the log grew by a few lines, not by the values
    assert log.stat().st_size - before < 5000, log.read_text()[before:][:3000]


def test_pages_with_huge_numbers_in_the_url(server, admin_token):
    """Pages fall back to the first page, or answer 404 for an id that cannot exist; never 500."""
    http = requests.Session()
    http.headers["Authorization"] = f"token {admin_token}"
    for path, expected in [("/sources?pageNumber=" + "9" * 25 + "&numPerPage=" + "9" * 25, 200),
                           ("/candidates?pageNumber=" + "9" * 25, 200),
                           ("/group/" + "9" * 30_000, 404), ("/group/99999999999", 404),
                           ("/telescope/" + "9" * 30_000, 404), ("/source/ab%00", 400)]:
        r = http.get(server.url + path, timeout=30)
        assert r.status_code == expected, (path[:40], r.status_code)
        assert len(r.content) < 20_000


# -- part 5: physical ranges ------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, field", [
    ({"mjd": 2459000.5}, "mjd"),  # a JD sent as an MJD
    ({"mjd": 5000.0}, "mjd"),
    ({"mag": 99.0}, "mag"),
    ({"mag": -1e308}, "mag"),
    ({"magerr": 0.0}, "magerr"),
    ({"magerr": 50.0}, "magerr"),
    ({"mag": None, "limiting_mag": 1e300}, "limiting_mag"),
])
def test_photometry_magnitudes_out_of_range(api, admin_token, site, db, change, field):
    from astroportal.models import Photometry

    status, body = api.put("/api/photometry", admin_token, json={**site["point"], "mjd": 59010.0, **change})
    assert_clear_400(status, body, field, "between" if field != "magerr" else "0")
    assert count(db, "Photometry", Photometry.obj_id == site["obj_id"]) == 1


def test_photometry_fluxes_must_stay_finite(api, admin_token, site):
    base = {k: v for k, v in site["point"].items() if k not in ("mag", "magerr")}
    flux = {**base, "mjd": 59011.0, "flux": 1e300, "fluxerr": 1.0, "zp": -48.6}
    status, body = api.put("/api/photometry", admin_token, json=flux)
    assert_clear_400(status, body, "flux", "too large")
    status, body = api.put("/api/photometry", admin_token, json={**flux, "zp": 99.0})
    assert_clear_400(status, body, "zp", "between -60.0 and 60.0")
    status, body = api.put("/api/photometry", admin_token, json={**flux, "flux": 10.0, "zp": 23.9})
    assert status == 200, body


def test_put_refuses_two_values_for_one_point(api, admin_token, site, db):
    from astroportal.models import Photometry

    batch = {**site["point"], "mjd": [59020.0, 59021.0, 59020.0], "mag": [18.0, 18.5, 18.2]}
    status, body = api.put("/api/photometry", admin_token, json=batch)
    assert_clear_400(status, body, "flux", "points 0 and 2")
    assert count(db, "Photometry", Photometry.obj_id == site["obj_id"], Photometry.mjd >= 59020.0) == 0


def test_redshift_bounds(api, admin_token):
    status, body = api.post("/api/sources", admin_token, json={"id": unique("LIM"), "ra": 1.0, "dec": 1.0, "redshift": -0.2})
    assert_clear_400(status, body, "redshift", "-0.1")
    status, body = api.post("/api/sources", admin_token, json={"id": unique("LIM"), "ra": 1.0, "dec": 1.0, "redshift": -0.001})
    assert status == 200, body


@pytest.mark.parametrize("link", ["javascript:alert(1)", "ftp://example.org/x", "data:text/html,hi", "http://"])
def test_telescope_links_only_http(api, admin_token, site, link):
    status, body = api.patch(f"/api/telescope/{site['telescope']}", admin_token, json={"skycam_link": link})
    assert_clear_400(status, body, "skycam_link", "http")
    status, body = api.post("/api/telescope", admin_token, json={
        "name": f"lim-{tag()}", "nickname": "n", "diameter": 1.0, "lat": 1.0, "lon": 1.0, "weather_link": link})
    assert_clear_400(status, body, "weather_link", "http")


def test_telescope_links_http_accepted(api, admin_token, site):
    status, body = api.patch(f"/api/telescope/{site['telescope']}", admin_token,
                             json={"skycam_link": "HTTPS://sky.example.org/cam", "weather_link": "http://w.example.org"})
    assert status == 200, body


def test_fixed_location_requires_lat_and_lon(api, admin_token, db):
    from astroportal.models import Telescope

    name = f"lim-{tag()}"
    status, body = api.post("/api/telescope", admin_token, json={"name": name, "nickname": "n", "diameter": 1.0,
                                                                 "lat": 10.0})
    assert_clear_400(status, body, "fixed_location", "`lon`")
    assert count(db, "Telescope", Telescope.name == name) == 0
    status, body = api.post("/api/telescope", admin_token, json={"name": name, "nickname": "n", "diameter": 1.0,
                                                                 "fixed_location": False})
    assert status == 200, body
    tid = body["data"]["id"]
    status, body = api.patch(f"/api/telescope/{tid}", admin_token, json={"fixed_location": True})
    assert_clear_400(status, body, "fixed_location")
    status, body = api.patch(f"/api/telescope/{tid}", admin_token, json={"fixed_location": True, "lat": 1.0, "lon": 2.0})
    assert status == 200, body
    status, body = api.patch(f"/api/telescope/{tid}", admin_token, json={"lat": None})
    assert_clear_400(status, body, "fixed_location", "`lat`")


def test_instrument_filters_unique(api, admin_token, site):
    status, body = api.post("/api/instrument", admin_token, json={
        "name": f"lim-{tag()}", "type": "imager", "telescope_id": site["telescope"], "filters": ["ztfg", "ztfr", "ztfg"]})
    assert_clear_400(status, body, "filters", "ztfg")


def test_a_filter_used_by_photometry_cannot_be_removed(api, admin_token, site):
    iid = site["instrument"]
    status, body = api.patch(f"/api/instrument/{iid}", admin_token, json={"filters": ["ztfg"]})
    assert_clear_400(status, body, "filters", "ztfr (")
    status, body = api.get(f"/api/instrument/{iid}", admin_token)
    assert sorted(body["data"]["filters"]) == ["ztfg", "ztfi", "ztfr"]
    # an unused filter can go
    status, body = api.patch(f"/api/instrument/{iid}", admin_token, json={"filters": ["ztfg", "ztfr"]})
    assert status == 200, body


def test_usernames_unique_ignoring_case(api, admin_token, db):
    from sqlalchemy.exc import IntegrityError

    from astroportal.models import User

    name = f"Carol-{tag()}"
    status, body = api.post("/api/user", admin_token, json={"username": name})
    assert status == 200, body
    status, body = api.post("/api/user", admin_token, json={"username": name.lower()})
    assert_clear_400(status, body, "username", "ignoring case")
    assert count(db, "User", func.lower(User.username) == name.lower()) == 1
    with db() as session:  # the functional unique index of migration 0003 holds whatever writes the row
        session.add(User(username=name.upper()))
        with pytest.raises(IntegrityError, match="ix_users_username_lower"):
            session.commit()


def test_the_openapi_document_states_the_bounds(api):
    status, doc = api.get("/api/openapi.json")
    assert status == 200
    phot = doc["components"]["schemas"]["PhotometryUpload"]["properties"]
    assert (phot["mjd"]["minimum"], phot["mjd"]["maximum"]) == (10000, 100000)
    assert (phot["mag"]["minimum"], phot["mag"]["maximum"]) == (-30, 40)
    assert phot["magerr"]["exclusiveMinimum"] is True and phot["origin"]["maxLength"] == 256
    source = doc["paths"]["/api/sources"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert source["properties"]["redshift"]["minimum"] == -0.1
    tel = doc["paths"]["/api/telescope"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert tel["properties"]["skycam_link"]["pattern"].startswith("^[hH]")
    inst = doc["paths"]["/api/instrument"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert inst["properties"]["filters"]["uniqueItems"] is True
