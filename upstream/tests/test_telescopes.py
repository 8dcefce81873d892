"""Telescopes and instruments through the API: shapes, permissions, validation that writes nothing."""

import uuid

import pytest
from sqlalchemy import func, select

from conftest import unique


def name(prefix="T"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def telescope_payload(**over):
    data = {
        "name": name("Tel"),
        "nickname": "tel",
        "lat": 20.0195,
        "lon": -155.672,
        "elevation": 4204.0,
        "diameter": 3.58,
        "robotic": False,
        "fixed_location": True,
        "skycam_link": None,
        "weather_link": "https://example.org/weather",
    }
    data.update(over)
    return data


def count(db, model):
    from astroportal import models

    with db() as s:
        return s.scalar(select(func.count()).select_from(getattr(models, model)))


@pytest.fixture(scope="module")
def telescope(api, admin_token):
    payload = telescope_payload()
    status, body = api.post("/api/telescope", admin_token, json=payload)
    assert status == 200, body
    return body["data"]["id"], payload


def test_create_and_read_telescope(api, admin_token, role_tokens, telescope):
    tid, payload = telescope
    status, body = api.get(f"/api/telescope/{tid}", role_tokens["View only"])
    assert status == 200
    got = body["data"]
    for key, value in payload.items():
        assert got[key] == value
    assert got["id"] == tid

    status, body = api.get("/api/telescope", role_tokens["Full user"], params={"name": payload["name"]})
    assert status == 200 and [t["id"] for t in body["data"]] == [tid]
    # exact match only
    status, body = api.get("/api/telescope", admin_token, params={"name": payload["name"][:-1]})
    assert status == 200 and body["data"] == []
    status, body = api.get("/api/telescope", admin_token)
    assert tid in [t["id"] for t in body["data"]]


def test_telescope_reads_need_login(api, telescope):
    status, body = api.get("/api/telescope")
    assert status == 401 and "Authorization: token" in body["message"]
    assert api.get(f"/api/telescope/{telescope[0]}")[0] == 401


def test_unknown_telescope_is_404(api, admin_token):
    assert api.get("/api/telescope/999999", admin_token)[0] == 404
    assert api.get("/api/telescope/abc", admin_token)[0] == 404
    assert api.patch("/api/telescope/999999", admin_token, json={"nickname": "x"})[0] == 404
    assert api.delete("/api/telescope/999999", admin_token)[0] == 404


@pytest.mark.parametrize("role", ["Full user", "View only"])
def test_telescope_writes_need_manage_telescopes(api, db, role_tokens, telescope, role):
    token = role_tokens[role]
    before = count(db, "Telescope")
    status, body = api.post("/api/telescope", token, json=telescope_payload())
    assert status == 403 and "Manage telescopes" in body["message"]
    assert api.patch(f"/api/telescope/{telescope[0]}", token, json={"nickname": "no"})[0] == 403
    assert api.delete(f"/api/telescope/{telescope[0]}", token)[0] == 403
    assert count(db, "Telescope") == before
    assert api.post("/api/telescope", None, json=telescope_payload())[0] == 401


def test_telescopes_are_sitewide_data_a_group_admin_may_not_create(api, role_tokens):
    status, body = api.post("/api/telescope", role_tokens["Group admin"], json=telescope_payload())
    assert status == 403 and "Manage telescopes" in body["message"]
    status, body = api.post("/api/telescope", role_tokens["Super admin"], json=telescope_payload())
    assert status == 200 and isinstance(body["data"]["id"], int)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": 12}, "name"),
        ({"nickname": None}, "nickname"),
        ({"diameter": None}, "diameter"),
        ({"diameter": 0}, "diameter"),
        ({"diameter": -1.0}, "diameter"),
        ({"diameter": "big"}, "diameter"),
        ({"lat": 90.5}, "lat"),
        ({"lat": -91}, "lat"),
        ({"lat": "north"}, "lat"),
        ({"lon": 180.01}, "lon"),
        ({"lon": -200}, "lon"),
        ({"elevation": 9000}, "elevation"),
        ({"elevation": -600}, "elevation"),
        ({"elevation": "high"}, "elevation"),
        ({"robotic": "yes"}, "robotic"),
        ({"robotic": 1}, "robotic"),
        ({"fixed_location": "true"}, "fixed_location"),
        ({"skycam_link": 5}, "skycam_link"),
    ],
)
def test_bad_telescope_is_refused_and_not_written(api, db, admin_token, change, field):
    before = count(db, "Telescope")
    status, body = api.post("/api/telescope", admin_token, json=telescope_payload(**change))
    assert status == 400, body
    assert f"`{field}`" in body["message"]
    assert count(db, "Telescope") == before


@pytest.mark.parametrize("field", ["name", "nickname", "diameter"])
def test_missing_required_telescope_field(api, db, admin_token, field):
    payload = telescope_payload()
    del payload[field]
    before = count(db, "Telescope")
    status, body = api.post("/api/telescope", admin_token, json=payload)
    assert status == 400 and f"`{field}`" in body["message"] and "missing" in body["message"]
    assert count(db, "Telescope") == before


def test_bad_json_body(api, admin_token):
    status, body = api.post("/api/telescope", admin_token, data="{not json")
    assert status == 400 and "JSON" in body["message"]
    status, body = api.post("/api/telescope", admin_token, json=[1, 2])
    assert status == 400 and "object" in body["message"]


def test_duplicate_telescope_name(api, db, admin_token, telescope):
    before = count(db, "Telescope")
    status, body = api.post("/api/telescope", admin_token, json=telescope_payload(name=telescope[1]["name"]))
    assert status == 400 and telescope[1]["name"] in body["message"] and "`name`" in body["message"]
    assert count(db, "Telescope") == before


def test_optional_location_may_be_null(api, admin_token):
    payload = telescope_payload(lat=None, lon=None, elevation=None, fixed_location=False)
    status, body = api.post("/api/telescope", admin_token, json=payload)
    assert status == 200
    status, body = api.get(f"/api/telescope/{body['data']['id']}", admin_token)
    assert body["data"]["lat"] is None and body["data"]["fixed_location"] is False


def test_patch_and_put_telescope(api, admin_token, telescope):
    tid, payload = telescope
    status, body = api.patch(f"/api/telescope/{tid}", admin_token, json={"nickname": "CFHT", "elevation": 4200})
    assert status == 200
    status, body = api.put(f"/api/telescope/{tid}", admin_token, json={"robotic": True})
    assert status == 200
    got = api.get(f"/api/telescope/{tid}", admin_token)[1]["data"]
    assert got["nickname"] == "CFHT" and got["elevation"] == 4200 and got["robotic"] is True
    assert got["name"] == payload["name"]

    status, body = api.patch(f"/api/telescope/{tid}", admin_token, json={"lat": 100, "nickname": "changed"})
    assert status == 400 and "`lat`" in body["message"]
    status, body = api.patch(f"/api/telescope/{tid}", admin_token, json={"nick": "typo"})
    assert status == 400 and "nick" in body["message"]
    got = api.get(f"/api/telescope/{tid}", admin_token)[1]["data"]
    assert got["nickname"] == "CFHT" and got["lat"] == payload["lat"]


def test_rename_telescope_to_taken_name(api, admin_token, telescope):
    other = api.post("/api/telescope", admin_token, json=telescope_payload())[1]["data"]["id"]
    status, body = api.patch(f"/api/telescope/{other}", admin_token, json={"name": telescope[1]["name"]})
    assert status == 400 and "already exists" in body["message"]
    # renaming to its own name is no conflict
    own = api.get(f"/api/telescope/{other}", admin_token)[1]["data"]["name"]
    assert api.patch(f"/api/telescope/{other}", admin_token, json={"name": own})[0] == 200


# -- instruments -----------------------------------------------------------------------------------------


def instrument_payload(tel_id, **over):
    data = {"name": name("Cam"), "type": "imager", "band": "optical", "telescope_id": tel_id,
            "filters": ["ztfg", "ztfr", "ps1::open"]}
    data.update(over)
    return data


@pytest.fixture(scope="module")
def instrument(api, admin_token, telescope):
    payload = instrument_payload(telescope[0])
    status, body = api.post("/api/instrument", admin_token, json=payload)
    assert status == 200, body
    return body["data"]["id"], payload


def test_create_and_read_instrument(api, role_tokens, telescope, instrument):
    iid, payload = instrument
    status, body = api.get(f"/api/instrument/{iid}", role_tokens["View only"])
    assert status == 200
    got = body["data"]
    assert got["name"] == payload["name"] and got["filters"] == payload["filters"]
    assert got["type"] == "imager" and got["band"] == "optical"
    assert got["telescope"]["id"] == telescope[0] and got["telescope"]["name"] == telescope[1]["name"]

    status, body = api.get("/api/instrument", role_tokens["Full user"], params={"name": payload["name"]})
    assert status == 200 and len(body["data"]) == 1
    assert body["data"][0]["telescope"]["nickname"] is not None
    assert api.get("/api/instrument")[0] == 401


def test_telescope_id_as_digit_string(api, admin_token, telescope):
    payload = instrument_payload(str(telescope[0]), type="imaging spectrograph", filters=[])
    status, body = api.post("/api/instrument", admin_token, json=payload)
    assert status == 200
    got = api.get(f"/api/instrument/{body['data']['id']}", admin_token)[1]["data"]
    assert got["telescope_id"] == telescope[0] and got["filters"] == []


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"type": "camera"}, "type", ["imager", "spectrograph"]),
        ({"type": None}, "type", []),
        ({"telescope_id": 999999}, "telescope_id", ["999999"]),
        ({"telescope_id": "ZTF"}, "telescope_id", ["integer"]),
        ({"telescope_id": None}, "telescope_id", []),
        ({"filters": ["ztfg", "notafilter"]}, "filters", ["notafilter"]),
        ({"filters": "ztfg"}, "filters", ["list"]),
        ({"filters": [1, 2]}, "filters", []),
        ({"name": ""}, "name", []),
        ({"band": 3}, "band", []),
    ],
)
def test_bad_instrument_is_refused_and_not_written(api, db, admin_token, telescope, change, field, words):
    before = count(db, "Instrument")
    status, body = api.post("/api/instrument", admin_token, json=instrument_payload(telescope[0], **change))
    assert status == 400, body
    assert f"`{field}`" in body["message"]
    for w in words:
        assert w in body["message"]
    assert count(db, "Instrument") == before


@pytest.mark.parametrize("field", ["name", "type", "telescope_id"])
def test_missing_required_instrument_field(api, db, admin_token, telescope, field):
    payload = instrument_payload(telescope[0])
    del payload[field]
    before = count(db, "Instrument")
    status, body = api.post("/api/instrument", admin_token, json=payload)
    assert status == 400 and f"`{field}`" in body["message"]
    assert count(db, "Instrument") == before


def test_duplicate_instrument_name(api, db, admin_token, telescope, instrument):
    before = count(db, "Instrument")
    status, body = api.post("/api/instrument", admin_token, json=instrument_payload(telescope[0], name=instrument[1]["name"]))
    assert status == 400 and "`name`" in body["message"] and instrument[1]["name"] in body["message"]
    assert count(db, "Instrument") == before


def test_instrument_writes_need_manage_telescopes(api, db, role_tokens, telescope, instrument):
    token = role_tokens["Full user"]
    before = count(db, "Instrument")
    status, body = api.post("/api/instrument", token, json=instrument_payload(telescope[0]))
    assert status == 403
    assert api.patch(f"/api/instrument/{instrument[0]}", token, json={"band": "x"})[0] == 403
    assert api.put(f"/api/instrument/{instrument[0]}", token, json={"band": "x"})[0] == 403
    assert api.delete(f"/api/instrument/{instrument[0]}", token)[0] == 403
    assert count(db, "Instrument") == before


def test_patch_and_put_instrument(api, admin_token, telescope, instrument):
    iid = instrument[0]
    assert api.patch(f"/api/instrument/{iid}", admin_token, json={"filters": ["sdssg", "sdssr"]})[0] == 200
    assert api.put(f"/api/instrument/{iid}", admin_token, json={"band": "NIR"})[0] == 200
    got = api.get(f"/api/instrument/{iid}", admin_token)[1]["data"]
    assert got["filters"] == ["sdssg", "sdssr"] and got["band"] == "NIR"
    status, body = api.patch(f"/api/instrument/{iid}", admin_token, json={"filters": ["sdssg", "bogus"]})
    assert status == 400 and "bogus" in body["message"]
    status, body = api.patch(f"/api/instrument/{iid}", admin_token, json={"telescope_id": 424242})
    assert status == 400 and "`telescope_id`" in body["message"]
    got = api.get(f"/api/instrument/{iid}", admin_token)[1]["data"]
    assert got["filters"] == ["sdssg", "sdssr"] and got["telescope_id"] == telescope[0]


def test_delete_instrument_and_telescope(api, db, admin_token):
    tid = api.post("/api/telescope", admin_token, json=telescope_payload())[1]["data"]["id"]
    iid = api.post("/api/instrument", admin_token, json=instrument_payload(tid))[1]["data"]["id"]
    iid2 = api.post("/api/instrument", admin_token, json=instrument_payload(tid))[1]["data"]["id"]
    assert api.delete(f"/api/instrument/{iid}", admin_token)[0] == 200
    assert api.get(f"/api/instrument/{iid}", admin_token)[0] == 404
    assert api.delete(f"/api/telescope/{tid}", admin_token)[0] == 200
    assert api.get(f"/api/telescope/{tid}", admin_token)[0] == 404
    # the telescope's remaining instrument went with it
    assert api.get(f"/api/instrument/{iid2}", admin_token)[0] == 404


def test_delete_refused_while_photometry_uses_instrument(api, db, admin_token):
    from astroportal.models import Obj, Photometry

    tid = api.post("/api/telescope", admin_token, json=telescope_payload())[1]["data"]["id"]
    iid = api.post("/api/instrument", admin_token, json=instrument_payload(tid))[1]["data"]["id"]
    obj_id = unique()
    with db() as s:
        s.add(Obj(id=obj_id, ra=10.0, dec=-5.0))
        s.flush()
        s.add(Photometry(obj_id=obj_id, instrument_id=iid, filter="ztfg", mjd=60000.5, flux=100.0, fluxerr=5.0))
        s.commit()
    status, body = api.delete(f"/api/instrument/{iid}", admin_token)
    assert status == 400 and "photometry" in body["message"]
    status, body = api.delete(f"/api/telescope/{tid}", admin_token)
    assert status == 400 and "photometry" in body["message"]
    assert api.get(f"/api/instrument/{iid}", admin_token)[0] == 200
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Photometry).where(Photometry.instrument_id == iid)) == 1


# Entries of a real telescope network's data-loader files (SkyPortal's YAML format, "=id" references resolved).
NETWORK_TELESCOPES = [
    {"name": "TAROT/TCH", "nickname": "TAROT/TCH", "lat": -29.25992, "lon": -70.7326, "elevation": 2398.0,
     "diameter": 0.25, "robotic": True, "fixed_location": True, "skycam_link": None, "weather_link": None},
    {"name": "Zadko", "nickname": "Zadko", "lat": -31.356, "lon": 115.7131, "elevation": 50.0,
     "diameter": 1.0, "robotic": False, "fixed_location": True, "skycam_link": None, "weather_link": None},
]
NETWORK_INSTRUMENTS = [
    {"name": "iT11-PL11002M", "type": "imager", "band": "Optical", "telescope": 0,
     "filters": ["bessellb", "bessellv", "bessellr", "besselli", "bessellux", "ps1::open"]},
    {"name": "Spectrograph Canberra", "type": "spectrograph", "band": "optical", "telescope": 1, "filters": []},
]


def test_real_network_data_loads(api, admin_token):
    suffix = uuid.uuid4().hex[:6]
    ids = []
    for t in NETWORK_TELESCOPES:
        status, body = api.post("/api/telescope", admin_token, json=dict(t, name=f"{t['name']}-{suffix}"))
        assert status == 200, body
        ids.append(body["data"]["id"])
    for i in NETWORK_INSTRUMENTS:
        payload = {k: v for k, v in i.items() if k != "telescope"}
        payload.update(name=f"{i['name']}-{suffix}", telescope_id=ids[i["telescope"]])
        status, body = api.post("/api/instrument", admin_token, json=payload)
        assert status == 200, body
    status, body = api.get("/api/instrument", admin_token, params={"name": f"iT11-PL11002M-{suffix}"})
    assert body["data"][0]["telescope"]["name"] == f"TAROT/TCH-{suffix}"
