"""Streams and filters through the API: who sees them, who changes them, and what is refused."""

import uuid
from datetime import datetime

import pytest
from sqlalchemy import func, select

from conftest import unique


def sname(prefix="stream"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def count(db, model):
    from astroportal import models

    with db() as s:
        return s.scalar(select(func.count()).select_from(getattr(models, model)))


@pytest.fixture
def setup(api, admin_token, make_user):
    """A stream read by a group whose admin holds "Manage groups"; a plain member; a stream it does not read."""
    owner = make_user("Group admin")
    member = make_user("Full user")
    outsider = make_user("Group admin")
    sid = api.post("/api/streams", admin_token, json={"name": sname(), "altdata": {"collection": "ztf"}})[1]["data"]["id"]
    other_sid = api.post("/api/streams", admin_token, json={"name": sname()})[1]["data"]["id"]
    gid = api.post("/api/groups", owner[1], json={"name": sname("group")})[1]["data"]["id"]
    assert api.post(f"/api/groups/{gid}/users", owner[1], json={"userID": member[0]})[0] == 200
    assert api.post(f"/api/groups/{gid}/streams", admin_token, json={"stream_id": sid})[0] == 200
    return dict(owner=owner, member=member, outsider=outsider, sid=sid, other_sid=other_sid, gid=gid)


def test_stream_create_and_read(api, admin_token):
    name = sname()
    status, body = api.post("/api/streams", admin_token, json={"name": name, "altdata": {"topic": "x"}})
    assert status == 200
    sid = body["data"]["id"]
    got = api.get(f"/api/streams/{sid}", admin_token)[1]["data"]
    assert got["name"] == name and got["altdata"] == {"topic": "x"}
    status, body = api.get("/api/streams", admin_token, params={"name": name})
    assert [s["id"] for s in body["data"]] == [sid]
    assert api.get("/api/streams")[0] == 401


def test_streams_visible_through_groups(api, setup):
    for who in ("member", "owner"):
        token = setup[who][1]
        listed = {s["id"] for s in api.get("/api/streams", token)[1]["data"]}
        assert setup["sid"] in listed and setup["other_sid"] not in listed
        assert api.get(f"/api/streams/{setup['sid']}", token)[0] == 200
        assert api.get(f"/api/streams/{setup['other_sid']}", token)[0] == 404
    token = setup["outsider"][1]
    assert setup["sid"] not in {s["id"] for s in api.get("/api/streams", token)[1]["data"]}
    assert api.get(f"/api/streams/{setup['sid']}", token)[0] == 404


@pytest.mark.parametrize("role", ["Group admin", "Full user", "View only"])
def test_stream_writes_need_system_admin(api, db, role_tokens, setup, role):
    token = role_tokens[role]
    before = count(db, "Stream")
    status, body = api.post("/api/streams", token, json={"name": sname()})
    assert status == 403 and "System admin" in body["message"]
    assert api.patch(f"/api/streams/{setup['sid']}", token, json={"name": "x"})[0] == 403
    assert api.delete(f"/api/streams/{setup['sid']}", token)[0] == 403
    assert api.post("/api/streams", None, json={"name": sname()})[0] == 401
    assert count(db, "Stream") == before


@pytest.mark.parametrize(
    "payload, field",
    [({}, "name"), ({"name": ""}, "name"), ({"name": ["a"]}, "name"), ({"name": "@new", "altdata": "text"}, "altdata")],
)
def test_bad_stream_is_refused_and_not_written(api, db, admin_token, payload, field):
    payload = {k: sname() if v == "@new" else v for k, v in payload.items()}
    before = count(db, "Stream")
    status, body = api.post("/api/streams", admin_token, json=payload)
    assert status == 400 and f"`{field}`" in body["message"]
    assert count(db, "Stream") == before


def test_duplicate_stream_name(api, db, admin_token, setup):
    name = api.get(f"/api/streams/{setup['sid']}", admin_token)[1]["data"]["name"]
    before = count(db, "Stream")
    status, body = api.post("/api/streams", admin_token, json={"name": name})
    assert status == 400 and name in body["message"]
    assert count(db, "Stream") == before
    status, body = api.patch(f"/api/streams/{setup['other_sid']}", admin_token, json={"name": name})
    assert status == 400 and "`name`" in body["message"]


def test_patch_and_delete_stream(api, admin_token, setup):
    sid = setup["other_sid"]
    new = sname("renamed")
    assert api.patch(f"/api/streams/{sid}", admin_token, json={"name": new, "altdata": {"a": 1}})[0] == 200
    got = api.get(f"/api/streams/{sid}", admin_token)[1]["data"]
    assert got["name"] == new and got["altdata"] == {"a": 1}
    status, body = api.patch(f"/api/streams/{sid}", admin_token, json={"nmae": "typo"})
    assert status == 400 and "nmae" in body["message"]
    assert api.delete(f"/api/streams/{sid}", admin_token)[0] == 200
    assert api.get(f"/api/streams/{sid}", admin_token)[0] == 404
    assert api.delete(f"/api/streams/{sid}", admin_token)[0] == 404


def test_stream_with_filters_is_not_deleted(api, admin_token, setup):
    owner = setup["owner"][1]
    assert api.post("/api/filters", owner, json={"name": "f", "stream_id": setup["sid"], "group_id": setup["gid"]})[0] == 200
    status, body = api.delete(f"/api/streams/{setup['sid']}", admin_token)
    assert status == 400 and "filter" in body["message"]
    assert api.get(f"/api/streams/{setup['sid']}", admin_token)[0] == 200


# -- filters ---------------------------------------------------------------------------------------------


def test_filter_create_and_read(api, setup, admin_token):
    owner = setup["owner"][1]
    status, body = api.post("/api/filters", owner, json={"name": "kilonova", "stream_id": setup["sid"], "group_id": setup["gid"]})
    assert status == 200, body
    fid = body["data"]["id"]
    for token in (owner, setup["member"][1], admin_token):
        status, body = api.get(f"/api/filters/{fid}", token)
        assert status == 200
        f = body["data"]
        assert f["name"] == "kilonova" and f["stream_id"] == setup["sid"] and f["group_id"] == setup["gid"]
        assert f["stream"]["id"] == setup["sid"]
        assert fid in {x["id"] for x in api.get("/api/filters", token)[1]["data"]}
    outsider = setup["outsider"][1]
    assert api.get(f"/api/filters/{fid}", outsider)[0] == 404
    assert fid not in {x["id"] for x in api.get("/api/filters", outsider)[1]["data"]}
    assert api.get("/api/filters")[0] == 401
    g = api.get(f"/api/groups/{setup['gid']}", owner)[1]["data"]
    assert [x["id"] for x in g["filters"]] == [fid]


@pytest.mark.parametrize(
    "change, field, status_code",
    [
        ({"name": None}, "name", 400),
        ({"name": ""}, "name", 400),
        ({"stream_id": None}, "stream_id", 400),
        ({"stream_id": "x"}, "stream_id", 400),
        ({"stream_id": 999999}, "stream_id", 400),
        ({"group_id": 999999}, "group_id", 400),
        ({"group_id": [1]}, "group_id", 400),
        ({"stream_id": "@other"}, "stream_id", 400),  # a stream the group does not read
    ],
)
def test_bad_filter_is_refused_and_not_written(api, db, setup, change, field, status_code):
    payload = {"name": "f", "stream_id": setup["sid"], "group_id": setup["gid"]}
    payload.update({k: setup["other_sid"] if v == "@other" else v for k, v in change.items()})
    before = count(db, "Filter")
    status, body = api.post("/api/filters", setup["owner"][1], json=payload)
    assert status == status_code, body
    assert f"`{field}`" in body["message"]
    assert count(db, "Filter") == before


@pytest.mark.parametrize("field", ["name", "stream_id", "group_id"])
def test_missing_filter_field(api, db, setup, field):
    payload = {"name": "f", "stream_id": setup["sid"], "group_id": setup["gid"]}
    del payload[field]
    before = count(db, "Filter")
    status, body = api.post("/api/filters", setup["owner"][1], json=payload)
    assert status == 400 and f"`{field}`" in body["message"]
    assert count(db, "Filter") == before


def test_filter_needs_membership_and_manage_groups(api, db, setup):
    payload = {"name": "f", "stream_id": setup["sid"], "group_id": setup["gid"]}
    before = count(db, "Filter")
    status, body = api.post("/api/filters", setup["outsider"][1], json=payload)
    assert status == 403 and "admin of group" in body["message"]
    status, body = api.post("/api/filters", setup["member"][1], json=payload)
    assert status == 403 and "Manage groups" in body["message"]
    assert api.post("/api/filters", None, json=payload)[0] == 401
    assert count(db, "Filter") == before


def test_patch_and_delete_filter(api, admin_token, setup):
    owner = setup["owner"][1]
    fid = api.post("/api/filters", owner, json={"name": "f", "stream_id": setup["sid"], "group_id": setup["gid"]})[1]["data"]["id"]
    assert api.patch(f"/api/filters/{fid}", owner, json={"name": "renamed"})[0] == 200
    assert api.get(f"/api/filters/{fid}", owner)[1]["data"]["name"] == "renamed"
    status, body = api.patch(f"/api/filters/{fid}", owner, json={"stream_id": setup["other_sid"]})
    assert status == 400 and "`stream_id`" in body["message"]
    assert api.get(f"/api/filters/{fid}", owner)[1]["data"]["stream_id"] == setup["sid"]
    status, body = api.patch(f"/api/filters/{fid}", owner, json={"group_id": 1})
    assert status == 400 and "group_id" in body["message"]
    # outsiders can neither see nor change it
    assert api.patch(f"/api/filters/{fid}", setup["outsider"][1], json={"name": "x"})[0] == 404
    assert api.delete(f"/api/filters/{fid}", setup["outsider"][1])[0] == 404
    assert api.delete(f"/api/filters/{fid}", setup["member"][1])[0] == 403
    assert api.delete(f"/api/filters/{fid}", owner)[0] == 200
    assert api.get(f"/api/filters/{fid}", admin_token)[0] == 404


def test_filter_with_candidates_is_not_deleted(api, db, setup):
    from astroportal.models import Candidate, Obj

    owner = setup["owner"][1]
    fid = api.post("/api/filters", owner, json={"name": "f", "stream_id": setup["sid"], "group_id": setup["gid"]})[1]["data"]["id"]
    obj_id = unique()
    with db() as s:
        s.add(Obj(id=obj_id, ra=1.0, dec=2.0))
        s.flush()
        s.add(Candidate(obj_id=obj_id, filter_id=fid, passed_at=datetime(2025, 1, 1)))
        s.commit()
    status, body = api.delete(f"/api/filters/{fid}", owner)
    assert status == 400 and "candidate" in body["message"]
    assert api.get(f"/api/filters/{fid}", owner)[0] == 200
