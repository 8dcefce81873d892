"""Candidates and listings through the API: idempotent posting, filter rights, the candidate list's
filters, rejection, and a user's own lists."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from conftest import unique
from test_sources import count_rows, new_group, post_source


def new_filter(db, group_id: int) -> int:
    from astroportal.models import Filter, Stream

    with db() as s:
        stream = Stream(name=f"stream-{uuid.uuid4().hex[:10]}")
        s.add(stream)
        s.flush()
        f = Filter(name=f"filter-{uuid.uuid4().hex[:6]}", stream_id=stream.id, group_id=group_id)
        s.add(f)
        s.commit()
        return f.id


def candidate_rows(db, obj_id: str) -> list[tuple]:
    from astroportal.models import Candidate

    with db() as s:
        return s.execute(
            select(Candidate.filter_id, Candidate.passed_at, Candidate.passing_alert_id)
            .where(Candidate.obj_id == obj_id)
            .order_by(Candidate.filter_id, Candidate.passed_at)
        ).all()


@pytest.fixture(scope="module")
def brokers(make_user, db):
    """alice (Full user) and her group F with filters f1, f2; bob (Full user) with group B and filter fb;
    vic (View only) in F."""
    people = {}
    for name, role in (("alice", "Full user"), ("bob", "Full user"), ("vic", "View only")):
        uid, token = make_user(role)
        people[name] = {"id": uid, "token": token}
    people["F"] = new_group(db, people["alice"]["id"], people["vic"]["id"])
    people["B"] = new_group(db, people["bob"]["id"])
    people["f1"] = new_filter(db, people["F"])
    people["f2"] = new_filter(db, people["F"])
    people["fb"] = new_filter(db, people["B"])
    return people


MISSING = object()  # a field left out of the request


def post_candidate(api, token, **payload):
    return api.post("/api/candidates", token, json=payload)


# -- posting ------------------------------------------------------------------------------------------------
def test_post_candidate_creates_object_and_is_idempotent(api, db, brokers):
    from astroportal.models import Candidate, Obj

    obj_id = unique()
    payload = {"id": obj_id, "ra": 210.5, "dec": 12.25, "filter_ids": [brokers["f2"], brokers["f1"]],
               "passed_at": "2026-05-01T12:00:00Z", "passing_alert_id": 123456789012}
    status, body = post_candidate(api, brokers["alice"]["token"], **payload)
    assert status == 200, body
    ids = body["data"]["ids"]
    assert len(ids) == 2 and len(set(ids)) == 2
    with db() as s:
        obj = s.get(Obj, obj_id)
        assert (obj.ra, obj.dec) == (210.5, 12.25)
        by_filter = dict(s.execute(select(Candidate.filter_id, Candidate.id).where(Candidate.obj_id == obj_id)).all())
    assert ids == [by_filter[brokers["f2"]], by_filter[brokers["f1"]]]

    # the same alert again: same ids, nothing new (also with an equivalent time written differently)
    for passed_at in ("2026-05-01T12:00:00Z", "2026-05-01T14:00:00+02:00", "2026-05-01T12:00:00"):
        status, body = post_candidate(api, brokers["alice"]["token"], **{**payload, "passed_at": passed_at})
        assert status == 200 and body["data"]["ids"] == ids
    assert count_rows(db, Candidate, obj_id=obj_id) == 2

    # a later pass is a new candidate row
    status, body = post_candidate(api, brokers["alice"]["token"], **{**payload, "filter_ids": [brokers["f1"]],
                                                                     "passed_at": "2026-05-02T00:00:00Z"})
    assert status == 200 and body["data"]["ids"][0] not in ids
    assert count_rows(db, Candidate, obj_id=obj_id) == 3
    assert candidate_rows(db, obj_id)[0][2] == 123456789012


def test_post_candidate_for_existing_object_needs_no_position(api, db, brokers):
    obj_id = unique()
    post_source(api, brokers["alice"]["token"], id=obj_id, ra=1.0, dec=2.0, group_ids=[brokers["F"]])
    status, body = post_candidate(api, brokers["alice"]["token"], id=obj_id, filter_ids=[brokers["f1"]],
                                  passed_at="2026-05-03T00:00:00Z")
    assert status == 200, body
    assert len(candidate_rows(db, obj_id)) == 1


@pytest.mark.parametrize(
    "payload, status_code, needle",
    [
        ({"filter_ids": [999999999]}, 400, "999999999"),
        ({"filter_ids": ["{fb}"]}, 403, "not a member"),
        ({"filter_ids": ["{f1}", "{fb}"]}, 403, "not a member"),
        ({"filter_ids": []}, 400, "filter_ids"),
        ({"filter_ids": "{f1}"}, 400, "filter_ids"),
        ({"filter_ids": None}, 400, "filter_ids"),
        ({"passed_at": "yesterday"}, 400, "passed_at"),
        ({"passed_at": 1714564800}, 400, "passed_at"),
        ({"passed_at": None}, 400, "passed_at"),
        ({"passed_at": MISSING}, 400, "passed_at"),
        ({"filter_ids": MISSING}, 400, "filter_ids"),
        ({"id": MISSING}, 400, "id"),
        ({"ra": 360.0}, 400, "ra"),
        ({"dec": -90.01}, 400, "dec"),
        ({"ra": None}, 400, "ra"),
        ({"passing_alert_id": "abc"}, 400, "passing_alert_id"),
        ({"passing_alert_id": -1}, 400, "passing_alert_id"),
        ({"id": None}, 400, "id"),
        ({"id": 17}, 400, "id"),
        ({"magnitude": 17}, 400, "magnitude"),
    ],
)
def test_post_candidate_bad_input_writes_nothing(api, db, brokers, payload, status_code, needle):
    from astroportal.models import Candidate, Obj

    obj_id = unique()
    base = {"id": obj_id, "ra": 10.0, "dec": 10.0, "filter_ids": ["{f1}"], "passed_at": "2026-05-01T00:00:00Z"}
    body = {k: v for k, v in {**base, **payload}.items() if v is not MISSING}
    fill = lambda v: brokers[v[1:-1]] if isinstance(v, str) and v.startswith("{") else v  # noqa: E731
    body = {k: ([fill(x) for x in v] if isinstance(v, list) else fill(v)) for k, v in body.items()}
    status, answer = post_candidate(api, brokers["alice"]["token"], **body)
    assert status == status_code, answer
    assert needle in answer["message"]
    assert count_rows(db, Obj, id=obj_id) == 0
    assert count_rows(db, Candidate, obj_id=obj_id) == 0


def test_view_only_cannot_post_candidates(api, db, brokers):
    from astroportal.models import Obj

    obj_id = unique()
    status, body = post_candidate(api, brokers["vic"]["token"], id=obj_id, ra=1.0, dec=1.0,
                                  filter_ids=[brokers["f1"]], passed_at="2026-05-01T00:00:00Z")
    assert status == 403 and "Upload data" in body["message"]
    assert count_rows(db, Obj, id=obj_id) == 0


def test_admin_may_post_to_any_filter_and_alerts_do_not_move_objects(api, db, brokers, admin_token):
    from astroportal.models import Obj

    obj_id = unique()
    status, body = post_candidate(api, admin_token, id=obj_id, ra=1.0, dec=1.0, filter_ids=[brokers["fb"]],
                                  passed_at="2026-05-01T00:00:00Z")
    assert status == 200, body
    # a later alert's detection sits a little elsewhere: the object keeps its position
    status, body = post_candidate(api, admin_token, id=obj_id, ra=1.001, dec=0.999, filter_ids=[brokers["fb"]],
                                  passed_at="2026-05-02T00:00:00Z")
    assert status == 200, body
    with db() as s:
        obj = s.get(Obj, obj_id)
        assert (obj.ra, obj.dec) == (1.0, 1.0)


# -- the list -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stream_of(api, db, brokers, make_user):
    """A fresh group G (alice) with filters g1, g2 and five candidates passing at known times:
    c0..c4, with c1 also saved to G and c3 saved only to alice's group F."""
    g = new_group(db, brokers["alice"]["id"])
    g1, g2 = new_filter(db, g), new_filter(db, g)
    ids = [unique("CAND") for _ in range(5)]
    for i, obj_id in enumerate(ids):
        filters = [g1, g2] if i == 2 else [g1 if i % 2 == 0 else g2]
        status, body = post_candidate(api, brokers["alice"]["token"], id=obj_id, ra=20.0 + i, dec=-10.0,
                                      filter_ids=filters, passed_at=f"2026-06-0{i + 1}T00:00:00Z",
                                      passing_alert_id=1000 + i)
        assert status == 200, body
    # an earlier pass of c4 must not hide its latest one
    post_candidate(api, brokers["alice"]["token"], id=ids[4], filter_ids=[g2], passed_at="2026-01-01T00:00:00Z",
                   passing_alert_id=1)
    post_source(api, brokers["alice"]["token"], id=ids[1], group_ids=[g])
    post_source(api, brokers["alice"]["token"], id=ids[3], group_ids=[brokers["F"]])
    return {"group": g, "g1": g1, "g2": g2, "ids": ids}


def cand_list(api, token, query: str):
    status, body = api.get(f"/api/candidates?{query}", token)
    assert status == 200, body
    return [c["id"] for c in body["data"]["candidates"]], body["data"]


def test_list_newest_pass_first_with_fields(api, brokers, stream_of):
    ids, data = cand_list(api, brokers["alice"]["token"], f"groupIDs={stream_of['group']}")
    assert ids == stream_of["ids"][::-1]
    assert data["totalMatches"] == 5 and data["pageNumber"] == 1 and data["numPerPage"] == 100
    by_id = {c["id"]: c for c in data["candidates"]}
    c2 = by_id[stream_of["ids"][2]]
    assert c2["filter_ids"] == sorted([stream_of["g1"], stream_of["g2"]])
    assert c2["passed_at"].startswith("2026-06-03T00:00:00") and c2["passing_alert_id"] == 1002
    assert (c2["ra"], c2["dec"]) == (22.0, -10.0) and c2["is_source"] is False and c2["saved_groups"] == []
    c4 = by_id[stream_of["ids"][4]]
    assert c4["passed_at"].startswith("2026-06-05") and c4["passing_alert_id"] == 1004
    c1 = by_id[stream_of["ids"][1]]
    assert c1["is_source"] is True and [g["id"] for g in c1["saved_groups"]] == [stream_of["group"]]


def test_list_paging_and_filter_ids(api, brokers, stream_of):
    token, g = brokers["alice"]["token"], stream_of["group"]
    pages = [cand_list(api, token, f"groupIDs={g}&numPerPage=2&pageNumber={p}")[0] for p in (1, 2, 3)]
    assert pages[0] + pages[1] + pages[2] == stream_of["ids"][::-1] and len(pages[2]) == 1
    ids, data = cand_list(api, token, f"filterIDs={stream_of['g1']}")
    assert ids == [stream_of["ids"][i] for i in (4, 2, 0)] and data["totalMatches"] == 3
    assert all(c["filter_ids"] == [stream_of["g1"]] for c in data["candidates"])


@pytest.mark.parametrize(
    "status_name, expected",
    [
        ("all", [4, 3, 2, 1, 0]),
        ("savedToAnySelected", [1]),
        ("notSavedToAnySelected", [4, 3, 2, 0]),
        ("savedToAnyAccessible", [3, 1]),
        ("notSavedToAnyAccessible", [4, 2, 0]),
    ],
)
def test_list_saved_status(api, brokers, stream_of, status_name, expected):
    ids, _ = cand_list(api, brokers["alice"]["token"], f"groupIDs={stream_of['group']}&savedStatus={status_name}")
    assert ids == [stream_of["ids"][i] for i in expected]


def test_other_users_do_not_see_candidates(api, brokers, stream_of):
    bob = brokers["bob"]["token"]
    ids, _ = cand_list(api, bob, "numPerPage=500")
    assert not set(ids) & set(stream_of["ids"])
    assert api.get(f"/api/candidates?groupIDs={stream_of['group']}", bob)[0] == 403
    assert api.get(f"/api/candidates/{stream_of['ids'][0]}", bob)[0] == 404
    # nor as sources: a candidate is not a saved source
    status, body = api.get(f"/api/sources?sourceID={stream_of['ids'][0]}", brokers["alice"]["token"])
    assert body["data"]["totalMatches"] == 0


def test_get_one_candidate(api, brokers, stream_of, admin_token):
    obj_id = stream_of["ids"][2]
    status, body = api.get(f"/api/candidates/{obj_id}?includePhotometry=true", brokers["alice"]["token"])
    assert status == 200, body
    c = body["data"]
    assert c["id"] == obj_id and c["filter_ids"] == sorted([stream_of["g1"], stream_of["g2"]])
    assert c["photometry"] == [] and c["rejected"] is False
    assert api.get(f"/api/candidates/{obj_id}", admin_token)[0] == 200
    assert api.get("/api/candidates/ZTF00nosuchobj", brokers["alice"]["token"])[0] == 404
    assert api.get(f"/api/candidates/{obj_id}")[0] == 401


@pytest.mark.parametrize(
    "query, status_code, needle",
    [
        ("savedStatus=some", 400, "savedStatus"),
        ("groupIDs=x", 400, "groupIDs"),
        ("groupIDs=999999999", 400, "999999999"),
        ("filterIDs=999999999", 400, "999999999"),
        ("filterIDs=1;2", 400, "filterIDs"),
        ("numPerPage=1000", 400, "numPerPage"),
        ("pageNumber=-1", 400, "pageNumber"),
        ("includeRejected=perhaps", 400, "includeRejected"),
    ],
)
def test_list_bad_arguments(api, brokers, query, status_code, needle):
    status, body = api.get(f"/api/candidates?{query}", brokers["alice"]["token"])
    assert status == status_code, body
    assert needle in body["message"]


# -- rejecting, favourites: /api/listing ---------------------------------------------------------------------
def test_rejected_candidates_hidden_unless_asked(api, db, brokers, stream_of):
    from astroportal.models import Listing

    token, g = brokers["alice"]["token"], stream_of["group"]
    target = stream_of["ids"][0]
    status, body = api.post("/api/listing", token, json={"obj_id": target, "list_name": "rejected_candidates"})
    assert status == 200, body
    listing_id = body["data"]["id"]
    # rejecting again is harmless
    status, body = api.post("/api/listing", token, json={"obj_id": target, "list_name": "rejected_candidates"})
    assert status == 200 and body["data"]["id"] == listing_id
    assert count_rows(db, Listing, obj_id=target) == 1

    ids, data = cand_list(api, token, f"groupIDs={g}")
    assert target not in ids and data["totalMatches"] == 4
    ids, data = cand_list(api, token, f"groupIDs={g}&includeRejected=true")
    assert target in ids and {c["id"]: c["rejected"] for c in data["candidates"]}[target] is True

    status, body = api.get("/api/listing?listName=rejected_candidates", token)
    assert status == 200 and [(x["id"], x["obj_id"]) for x in body["data"]] == [(listing_id, target)]
    status, body = api.get("/api/listing?listName=favorites", token)
    assert status == 200 and body["data"] == []

    # another user's rejection list is theirs alone
    status, body = api.delete(f"/api/listing/{listing_id}", brokers["bob"]["token"])
    assert status == 403
    assert count_rows(db, Listing, id=listing_id) == 1

    status, body = api.delete(f"/api/listing/{listing_id}", token)
    assert status == 200
    assert count_rows(db, Listing, id=listing_id) == 0
    ids, _ = cand_list(api, token, f"groupIDs={g}")
    assert target in ids
    assert api.delete(f"/api/listing/{listing_id}", token)[0] == 404


def test_favorites_and_listing_errors(api, db, brokers, stream_of):
    from astroportal.models import Listing

    token = brokers["alice"]["token"]
    fav = stream_of["ids"][1]
    status, body = api.post("/api/listing", token, json={"obj_id": fav, "list_name": "favorites"})
    assert status == 200, body
    status, body = api.get("/api/listing", token)
    assert status == 200 and fav in [x["obj_id"] for x in body["data"] if x["list_name"] == "favorites"]

    before = count_rows(db, Listing)
    for payload, code, needle in [
        ({"obj_id": fav, "list_name": "wishlist"}, 400, "list_name"),
        ({"obj_id": fav}, 400, "list_name"),
        ({"list_name": "favorites"}, 400, "obj_id"),
        ({"obj_id": "ZTF00nosuchobj", "list_name": "favorites"}, 404, "not found"),
    ]:
        status, body = api.post("/api/listing", token, json=payload)
        assert status == code and needle in body["message"], (payload, body)
    # bob cannot list an object he cannot see
    status, body = api.post("/api/listing", brokers["bob"]["token"], json={"obj_id": fav, "list_name": "favorites"})
    assert status == 404
    assert count_rows(db, Listing) == before

    assert api.get("/api/listing?listName=wishlist", token)[0] == 400
    assert api.delete("/api/listing/notanumber", token)[0] == 404
    assert api.get("/api/listing")[0] == 401


def test_candidate_post_repeats_are_cheap(api, db, brokers):
    """A broker re-sending a batch: every repeat answers the same ids and adds no row."""
    from astroportal.models import Candidate

    token = brokers["alice"]["token"]
    objs = [unique("RPT") for _ in range(20)]
    first = {}
    for i, obj_id in enumerate(objs):
        status, body = post_candidate(api, token, id=obj_id, ra=100.0 + i / 10, dec=5.0, filter_ids=[brokers["f1"]],
                                      passed_at="2026-07-01T00:00:00Z", passing_alert_id=i)
        assert status == 200
        first[obj_id] = body["data"]["ids"]
    with db() as s:
        n = s.scalar(select(func.count()).select_from(Candidate).where(Candidate.obj_id.in_(objs)))
    for i, obj_id in enumerate(objs):
        status, body = post_candidate(api, token, id=obj_id, ra=100.0 + i / 10, dec=5.0, filter_ids=[brokers["f1"]],
                                      passed_at="2026-07-01T00:00:00Z", passing_alert_id=i)
        assert body["data"]["ids"] == first[obj_id]
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Candidate).where(Candidate.obj_id.in_(objs))) == n == 20
