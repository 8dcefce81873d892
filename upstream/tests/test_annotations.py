"""Taxonomies, classifications and comments through the API: validation, visibility through groups, authorship."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from conftest import unique

HIERARCHY = {
    "class": "Transient",
    "subclasses": [
        {"class": "Kilonova", "tags": ["KN"], "other names": ["macronova"], "url": "https://example.org/kn"},
        {"class": "SN", "subclasses": [{"class": "SN Ia"}, {"class": "SN II", "subclasses": []}]},
        {"class": "AGN"},
    ],
}


# -- set-up straight in the database (independent of the sources API) -------------------------------
def group_of(db, name: str) -> int:
    from astroportal.models import Group

    with db() as s:
        return s.scalar(select(Group.id).where(Group.name == name))


def own_group(db, user_id: int) -> int:
    from astroportal.models import Group, User

    with db() as s:
        user = s.get(User, user_id)
        return s.scalar(select(Group.id).where(Group.name == user.username, Group.single_user_group.is_(True)))


def new_group(db, *user_ids: int) -> int:
    from astroportal.models import Group, GroupUser

    with db() as s:
        g = Group(name=f"grp-{uuid.uuid4().hex[:8]}")
        s.add(g)
        s.flush()
        for uid in user_ids:
            s.add(GroupUser(group_id=g.id, user_id=uid))
        s.commit()
        return g.id


def new_obj(db, *group_ids: int) -> str:
    """An object saved as a source to `group_ids` (visible to their members)."""
    from astroportal.models import Obj, Source

    obj_id = unique()
    with db() as s:
        s.add(Obj(id=obj_id, ra=10.0, dec=-5.0))
        s.flush()
        for g in group_ids:
            s.add(Source(obj_id=obj_id, group_id=g))
        s.commit()
    return obj_id


def count(db, model, **where) -> int:
    with db() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.scalar(q)


@pytest.fixture(scope="module")
def people(make_user, db):
    """Three Full users (a, b in a shared group; c outside it), a Group admin, a View-only user."""
    a_id, a = make_user("Full user")
    b_id, b = make_user("Full user")
    c_id, c = make_user("Full user")
    ga_id, ga = make_user("Group admin")
    v_id, v = make_user("View only")
    shared = new_group(db, a_id, b_id, ga_id)
    from astroportal.models import GroupUser

    with db() as s:  # the Group admin administers the shared group (their "Manage sources" counts there)
        s.execute(GroupUser.__table__.update().where(GroupUser.group_id == shared, GroupUser.user_id == ga_id)
                  .values(admin=True))
        s.commit()
    return {
        "a": a, "b": b, "c": c, "ga": ga, "viewer": v,
        "a_id": a_id, "shared": shared, "sitewide": group_of(db, "Sitewide Group"),
    }


@pytest.fixture(scope="module")
def taxonomy(api, admin_token, people):
    """A taxonomy shared with the sitewide group (everyone can use it)."""
    status, body = api.post(
        "/api/taxonomy",
        admin_token,
        json={"name": f"tax-{uuid.uuid4().hex[:6]}", "hierarchy": HIERARCHY, "version": "1", "group_ids": [people["sitewide"]]},
    )
    assert status == 200, body
    return body["data"]["taxonomy_id"]


# -- taxonomies ---------------------------------------------------------------------------------------
def test_post_and_get_taxonomy(api, people):
    name = f"tax-{uuid.uuid4().hex[:6]}"
    status, body = api.post(
        "/api/taxonomy",
        people["ga"],
        json={"name": name, "hierarchy": HIERARCHY, "version": "2.0", "provenance": "tests", "group_ids": [people["shared"]]},
    )
    assert status == 200, body
    tid = body["data"]["taxonomy_id"]
    status, body = api.get(f"/api/taxonomy/{tid}", people["b"])
    assert status == 200
    t = body["data"]
    assert (t["name"], t["version"], t["provenance"], t["isLatest"]) == (name, "2.0", "tests", True)
    assert t["hierarchy"] == HIERARCHY
    assert [g["id"] for g in t["groups"]] == [people["shared"]]
    status, body = api.get("/api/taxonomy", people["a"])
    assert tid in [x["id"] for x in body["data"]]


def test_taxonomy_visible_only_through_groups(api, db, people):
    status, body = api.post(
        "/api/taxonomy",
        people["ga"],
        json={"name": f"tax-{uuid.uuid4().hex[:6]}", "hierarchy": HIERARCHY, "version": "1", "group_ids": [people["shared"]]},
    )
    tid = body["data"]["taxonomy_id"]
    status, body = api.get("/api/taxonomy", people["c"])
    assert tid not in [x["id"] for x in body["data"]]
    assert api.get(f"/api/taxonomy/{tid}", people["c"])[0] == 404
    # ... and it cannot be used by someone who cannot see it
    obj = new_obj(db, people["sitewide"])
    status, body = api.post(
        "/api/classification", people["c"], json={"obj_id": obj, "classification": "AGN", "taxonomy_id": tid}
    )
    assert status == 400 and "taxonomy_id" in body["message"]


@pytest.mark.parametrize(
    "hierarchy, where",
    [
        ({"class": "A", "subclasses": [{"class": "B"}, {"class": "C", "subclasses": [{"subclasses": []}]}]},
         "hierarchy.subclasses[1].subclasses[0].class"),
        ({"class": "A", "subclasses": [{"class": "B", "subclasses": "C"}]}, "hierarchy.subclasses[0].subclasses"),
        ({"class": "A", "subclasses": [{"class": "B"}, "C"]}, "hierarchy.subclasses[1]"),
        ({"class": "", "subclasses": []}, "hierarchy.class"),
        ({"class": "A", "subclasses": [{"class": "A"}]}, "hierarchy.subclasses[0].class"),
        ({"class": "A", "children": []}, "hierarchy"),
        ({"class": "A", "subclasses": [{"class": "B", "tags": "b"}]}, "hierarchy.subclasses[0].tags"),
        ({"class": "A", "subclasses": [{"class": "B\u0000"}]}, "hierarchy"),
        (["A"], "hierarchy"),
    ],
)
def test_bad_hierarchy_names_the_node_and_writes_nothing(api, db, people, hierarchy, where):
    from astroportal.models import Taxonomy

    name = f"bad-{uuid.uuid4().hex[:6]}"
    status, body = api.post("/api/taxonomy", people["ga"], json={"name": name, "hierarchy": hierarchy, "version": "1"})
    assert status == 400, body
    assert f"`{where}" in body["message"]
    assert count(db, Taxonomy, name=name) == 0


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"hierarchy": HIERARCHY, "version": "1"}, "name"),
        ({"name": "x", "version": "1"}, "hierarchy"),
        ({"name": "x", "hierarchy": HIERARCHY}, "version"),
        ({"name": "x", "hierarchy": HIERARCHY, "version": "1", "isLatest": "yes"}, "isLatest"),
        ({"name": "x", "hierarchy": HIERARCHY, "version": "1", "group_ids": [999999]}, "999999"),
        ({"name": "x", "hierarchy": HIERARCHY, "version": "1", "colour": "red"}, "colour"),
    ],
)
def test_bad_taxonomy_fields_are_named(api, people, payload, field):
    status, body = api.post("/api/taxonomy", people["ga"], json=payload)
    assert status == 400 and field in body["message"], body


def test_taxonomy_needs_post_taxonomy_permission(api, people):
    status, body = api.post("/api/taxonomy", people["a"], json={"name": "x", "hierarchy": HIERARCHY, "version": "1"})
    assert status == 403 and "Post taxonomy" in body["message"]


def test_new_version_becomes_latest_and_delete_restores(api, people):
    name = f"tax-{uuid.uuid4().hex[:6]}"
    post = lambda version, **kw: api.post(  # noqa: E731
        "/api/taxonomy", people["ga"],
        json={"name": name, "hierarchy": HIERARCHY, "version": version, "group_ids": [people["shared"]], **kw},
    )[1]["data"]["taxonomy_id"]
    v1 = post("1")
    v2 = post("2")
    latest = lambda tid: api.get(f"/api/taxonomy/{tid}", people["ga"])[1]["data"]["isLatest"]  # noqa: E731
    assert (latest(v1), latest(v2)) == (False, True)
    # posted explicitly as not the latest: the current latest stays so
    v0 = post("0.9", isLatest=False)
    assert (latest(v0), latest(v2)) == (False, True)
    # the same name and version again is refused
    status, body = api.post("/api/taxonomy", people["ga"], json={"name": name, "hierarchy": HIERARCHY, "version": "2"})
    assert status == 409 and body["data"]["taxonomy_id"] == v2
    assert api.delete(f"/api/taxonomy/{v2}", people["ga"])[0] == 200
    assert api.get(f"/api/taxonomy/{v2}", people["ga"])[0] == 404
    # the newest remaining version takes over
    assert latest(v0) is True and latest(v1) is False


def test_deleting_taxonomy_removes_its_classifications(api, db, people):
    from astroportal.models import Classification

    status, body = api.post(
        "/api/taxonomy", people["ga"],
        json={"name": f"tax-{uuid.uuid4().hex[:6]}", "hierarchy": HIERARCHY, "version": "1", "group_ids": [people["shared"]]},
    )
    tid = body["data"]["taxonomy_id"]
    obj = new_obj(db, people["shared"])
    status, body = api.post("/api/classification", people["ga"], json={"obj_id": obj, "classification": "SN Ia", "taxonomy_id": tid})
    assert status == 200, body
    assert api.delete(f"/api/taxonomy/{tid}", people["ga"])[0] == 200
    assert count(db, Classification, obj_id=obj) == 0
    assert api.delete(f"/api/taxonomy/{tid}", people["ga"])[0] == 404
    assert api.get("/api/taxonomy/notanumber", people["ga"])[0] == 404


# -- classifications ------------------------------------------------------------------------------------
def test_classify_and_list(api, db, people, taxonomy):
    obj = new_obj(db, people["shared"])
    status, body = api.post(
        "/api/classification",
        people["a"],
        json={"obj_id": obj, "classification": "Kilonova", "taxonomy_id": taxonomy, "probability": 0.8, "group_ids": [people["shared"]]},
    )
    assert status == 200, body
    cid = body["data"]["classification_id"]
    status, body = api.get(f"/api/sources/{obj}/classifications", people["b"])
    assert status == 200
    [c] = body["data"]
    assert c["id"] == cid and c["obj_id"] == obj and c["classification"] == "Kilonova"
    assert c["probability"] == 0.8 and c["taxonomy_id"] == taxonomy and c["author_id"] == people["a_id"]
    assert c["author_name"] and [g["id"] for g in c["groups"]] == [people["shared"]] and c["created_at"]
    status, body = api.get(f"/api/classification/{cid}", people["b"])
    assert status == 200 and body["data"]["classification"] == "Kilonova"


def test_classifications_visible_through_groups(api, db, people, taxonomy, admin_token):
    obj = new_obj(db, people["shared"], people["sitewide"])  # everyone sees the object
    status, body = api.post(
        "/api/classification",
        people["a"],
        json={"obj_id": obj, "classification": "AGN", "taxonomy_id": taxonomy, "group_ids": [people["shared"]]},
    )
    cid = body["data"]["classification_id"]
    # c sees the object but not the classification shared only with a's group
    status, body = api.get(f"/api/sources/{obj}/classifications", people["c"])
    assert status == 200 and body["data"] == []
    assert api.get(f"/api/classification/{cid}", people["c"])[0] == 404
    assert api.put(f"/api/classification/{cid}", people["c"], json={"probability": 0.1})[0] == 404
    # a system admin sees everything
    status, body = api.get(f"/api/sources/{obj}/classifications", admin_token)
    assert [x["id"] for x in body["data"]] == [cid]
    # without a group, the classification goes to all of the author's groups
    status, body = api.post("/api/classification", people["c"], json={"obj_id": obj, "classification": "SN", "taxonomy_id": taxonomy})
    assert status == 200
    status, body = api.get(f"/api/sources/{obj}/classifications", people["b"])
    assert sorted(x["classification"] for x in body["data"]) == ["AGN", "SN"]


@pytest.mark.parametrize(
    "change, status_, words",
    [
        ({"classification": "Quasar"}, 400, "'Quasar'"),
        ({"probability": 1.5}, 400, "probability"),
        ({"probability": -0.1}, 400, "probability"),
        ({"probability": "high"}, 400, "probability"),
        ({"probability": True}, 400, "probability"),
        ({"taxonomy_id": 987654321}, 400, "taxonomy_id"),
        ({"taxonomy_id": "abc"}, 400, "taxonomy_id"),
        ({"obj_id": "ZTF00nosuchobj"}, 404, "ZTF00nosuchobj"),
        ({"obj_id": None}, 400, "obj_id"),
        ({"classification": None}, 400, "classification"),
        ({"group_ids": [987654321]}, 400, "987654321"),
        ({"colour": "red"}, 400, "colour"),
    ],
)
def test_bad_classification_is_refused_and_nothing_written(api, db, people, taxonomy, change, status_, words):
    from astroportal.models import Classification

    obj = new_obj(db, people["shared"])
    payload = {"obj_id": obj, "classification": "Kilonova", "taxonomy_id": taxonomy, "probability": 0.5}
    payload.update(change)
    payload = {k: v for k, v in payload.items() if v is not None or k == "probability"}
    status, body = api.post("/api/classification", people["a"], json=payload)
    assert status == status_, body
    assert words in body["message"]
    assert count(db, Classification, obj_id=obj) == 0


def test_class_not_in_taxonomy_names_class(api, db, people, taxonomy):
    obj = new_obj(db, people["shared"])
    status, body = api.post("/api/classification", people["a"], json={"obj_id": obj, "classification": "Blazar", "taxonomy_id": taxonomy})
    assert status == 400 and "'Blazar'" in body["message"] and "taxonomy" in body["message"]


def test_classify_invisible_object_is_404(api, db, people, taxonomy):
    obj = new_obj(db, people["shared"])  # c is not in the shared group
    status, body = api.post("/api/classification", people["c"], json={"obj_id": obj, "classification": "AGN", "taxonomy_id": taxonomy})
    assert status == 404 and obj in body["message"]
    assert api.get(f"/api/sources/{obj}/classifications", people["c"])[0] == 404
    assert api.get("/api/sources/ZTF00nosuchobj/classifications", people["a"])[0] == 404


def test_classify_needs_permission(api, db, people, taxonomy):
    obj = new_obj(db, people["sitewide"])
    status, body = api.post("/api/classification", people["viewer"], json={"obj_id": obj, "classification": "AGN", "taxonomy_id": taxonomy})
    assert status == 403 and "Classify" in body["message"]
    assert api.post("/api/classification", None, json={})[0] == 401


def test_change_and_delete_classification_author_or_manager(api, db, people, taxonomy):
    obj = new_obj(db, people["shared"])
    status, body = api.post(
        "/api/classification", people["a"],
        json={"obj_id": obj, "classification": "SN", "taxonomy_id": taxonomy, "probability": 0.3, "group_ids": [people["shared"]]},
    )
    cid = body["data"]["classification_id"]
    get = lambda: api.get(f"/api/classification/{cid}", people["a"])[1]["data"]  # noqa: E731
    assert api.put(f"/api/classification/{cid}", people["a"], json={"classification": "SN Ia", "probability": 0.9})[0] == 200
    assert (get()["classification"], get()["probability"]) == ("SN Ia", 0.9)
    # b sees it but is not its author
    status, body = api.put(f"/api/classification/{cid}", people["b"], json={"probability": 0.1})
    assert status == 403 and "author" in body["message"]
    assert api.delete(f"/api/classification/{cid}", people["b"])[0] == 403
    # a bad change leaves it as it was
    status, body = api.put(f"/api/classification/{cid}", people["a"], json={"classification": "Quasar", "probability": 0.2})
    assert status == 400 and "'Quasar'" in body["message"]
    status, body = api.put(f"/api/classification/{cid}", people["a"], json={"probability": 2})
    assert status == 400 and "probability" in body["message"]
    assert api.put(f"/api/classification/{cid}", people["a"], json={"obj_id": "other"})[0] == 400
    assert (get()["classification"], get()["probability"]) == ("SN Ia", 0.9)
    # an admin of the shared group holding "Manage sources"
    assert api.put(f"/api/classification/{cid}", people["ga"], json={"probability": None})[0] == 200
    assert get()["probability"] is None
    assert api.delete(f"/api/classification/{cid}", people["a"])[0] == 200
    assert api.get(f"/api/classification/{cid}", people["a"])[0] == 404
    assert api.get("/api/classification/xyz", people["a"])[0] == 404


def test_classification_contract_function(db, people, taxonomy, api):
    from astroportal.domain.annotations import classifications_for_obj
    from astroportal.models import User

    obj = new_obj(db, people["shared"])
    api.post("/api/classification", people["a"], json={"obj_id": obj, "classification": "AGN", "taxonomy_id": taxonomy, "group_ids": [people["shared"]]})
    with db() as s:
        rows = classifications_for_obj(s, s.get(User, people["a_id"]), obj)
    assert [r["classification"] for r in rows] == ["AGN"]
    assert set(rows[0]) >= {"id", "obj_id", "classification", "probability", "taxonomy_id", "author_id", "author_name", "groups", "created_at"}


# -- comments ---------------------------------------------------------------------------------------------
def test_comment_round_trip_verbatim(api, db, people):
    obj = new_obj(db, people["shared"])
    text = "<script>alert('x')</script> & résumé\nline two"
    status, body = api.post(f"/api/sources/{obj}/comments", people["a"], json={"text": text, "group_ids": [people["shared"]]})
    assert status == 200, body
    cid = body["data"]["comment_id"]
    status, body = api.get(f"/api/sources/{obj}/comments", people["b"])
    assert status == 200
    [c] = body["data"]
    assert c["id"] == cid and c["text"] == text and c["author_id"] == people["a_id"] and c["obj_id"] == obj
    assert [g["id"] for g in c["groups"]] == [people["shared"]]
    status, body = api.get(f"/api/sources/{obj}/comments/{cid}", people["b"])
    assert status == 200 and body["data"]["text"] == text


@pytest.mark.parametrize(
    "payload, words",
    [
        ({"text": ""}, "text"),
        ({"text": "   \n "}, "text"),
        ({}, "text"),
        ({"text": 42}, "text"),
        ({"text": "nul \u0000 inside"}, "NUL"),
        ({"text": "x" * 10_001}, "10000"),
        ({"text": "ok", "group_ids": [987654321]}, "987654321"),
        ({"text": "ok", "group_ids": "mine"}, "group_ids"),
        ({"text": "ok", "author": "someone"}, "author"),
    ],
)
def test_bad_comment_refused_nothing_written(api, db, people, payload, words):
    from astroportal.models import Comment

    obj = new_obj(db, people["shared"])
    status, body = api.post(f"/api/sources/{obj}/comments", people["a"], json=payload)
    assert status == 400, body
    assert words in body["message"]
    assert count(db, Comment, obj_id=obj) == 0


def test_longest_comment_accepted(api, db, people):
    obj = new_obj(db, people["shared"])
    status, body = api.post(f"/api/sources/{obj}/comments", people["a"], json={"text": "y" * 10_000})
    assert status == 200


def test_comment_unknown_or_invisible_object(api, db, people):
    status, body = api.post("/api/sources/ZTF00nosuchobj/comments", people["a"], json={"text": "hi"})
    assert status == 404 and "ZTF00nosuchobj" in body["message"]
    obj = new_obj(db, people["shared"])
    assert api.post(f"/api/sources/{obj}/comments", people["c"], json={"text": "hi"})[0] == 404
    assert api.get(f"/api/sources/{obj}/comments", people["c"])[0] == 404


def test_comment_needs_permission(api, db, people):
    obj = new_obj(db, people["sitewide"])
    status, body = api.post(f"/api/sources/{obj}/comments", people["viewer"], json={"text": "hi"})
    assert status == 403 and "Comment" in body["message"]
    assert api.post(f"/api/sources/{obj}/comments", None, json={"text": "hi"})[0] == 401
    # viewing needs no permission beyond seeing the object
    assert api.get(f"/api/sources/{obj}/comments", people["viewer"])[0] == 200


def test_comments_visible_through_groups(api, db, people, admin_token):
    obj = new_obj(db, people["shared"], people["sitewide"])
    status, body = api.post(f"/api/sources/{obj}/comments", people["a"], json={"text": "private", "group_ids": [people["shared"]]})
    cid = body["data"]["comment_id"]
    status, body = api.post(f"/api/sources/{obj}/comments", people["c"], json={"text": "for all"})
    assert status == 200
    texts = lambda tok: sorted(c["text"] for c in api.get(f"/api/sources/{obj}/comments", tok)[1]["data"])  # noqa: E731
    assert texts(people["b"]) == ["for all", "private"]
    assert texts(people["c"]) == ["for all"]
    assert texts(admin_token) == ["for all", "private"]
    assert api.get(f"/api/sources/{obj}/comments/{cid}", people["c"])[0] == 404
    assert api.delete(f"/api/sources/{obj}/comments/{cid}", people["c"])[0] == 404


def test_change_and_delete_comment(api, db, people):
    from astroportal.domain.annotations import comments_for_obj
    from astroportal.models import User

    obj = new_obj(db, people["shared"])
    other = new_obj(db, people["shared"])
    status, body = api.post(f"/api/sources/{obj}/comments", people["a"], json={"text": "first", "group_ids": [people["shared"]]})
    cid = body["data"]["comment_id"]
    url = f"/api/sources/{obj}/comments/{cid}"
    assert api.put(url, people["a"], json={"text": "edited"})[0] == 200
    status, body = api.put(url, people["a"], json={"text": ""})
    assert status == 400 and "text" in body["message"]
    status, body = api.put(url, people["b"], json={"text": "not mine"})
    assert status == 403 and "author" in body["message"]
    assert api.delete(url, people["b"])[0] == 403
    assert api.get(url, people["a"])[1]["data"]["text"] == "edited"
    # the comment is reached only through its own object
    assert api.get(f"/api/sources/{other}/comments/{cid}", people["a"])[0] == 404
    assert api.put(url, people["ga"], json={"text": "moderated"})[0] == 200
    with db() as s:
        assert [c["text"] for c in comments_for_obj(s, s.get(User, people["a_id"]), obj)] == ["moderated"]
    assert api.delete(url, people["a"])[0] == 200
    assert api.get(url, people["a"])[0] == 404
    assert api.get(f"/api/sources/{obj}/comments/abc", people["a"])[0] == 404


# -- annotations --------------------------------------------------------------------------------------
def as_json(payload) -> dict:
    """Request arguments sending `payload` as JSON text even with NaN or Infinity in it (Python's json writes
    them; requests' json= refuses to), as a careless client would."""
    return {"data": json.dumps(payload), "headers": {"Content-Type": "application/json"}}


def test_annotation_round_trip_one_per_origin(api, db, people):
    obj = new_obj(db, people["shared"])
    url = f"/api/sources/{obj}/annotations"
    data = {"rf_kn_vs_nonkn": 0.82, "cdsxmatch": "Unknown", "nalerthist": 7, "flagged": True}
    status, body = api.post(url, people["a"], json={"origin": "fink", "data": data})
    assert status == 200, body
    aid = body["data"]["annotation_id"]
    status, body = api.get(url, people["b"])
    assert status == 200 and [(a["id"], a["origin"], a["data"]) for a in body["data"]] == [(aid, "fink", data)]
    assert body["data"][0]["author_id"] == people["a_id"]
    # SkyPortal's rule: one annotation per object and origin; the second says what to do instead
    status, body = api.post(url, people["b"], json={"origin": "fink", "data": {"x": 1}})
    assert status == 400 and "already has an annotation" in body["message"] and "PUT" in body["message"]
    assert api.post(url, people["b"], json={"origin": "alerce", "data": {"x": 1}})[0] == 200
    assert [a["origin"] for a in api.get(url, people["a"])[1]["data"]] == ["alerce", "fink"]
    assert api.get(f"{url}/{aid}", people["a"])[1]["data"]["data"] == data


@pytest.mark.parametrize("payload,words", [
    ({"origin": "fink", "data": {"score": float("nan")}}, "`data.score` is nan"),
    ({"origin": "fink", "data": {"score": float("inf")}}, "finite"),
    ({"origin": "fink", "data": {"score": float("-inf")}}, "finite"),
    ({"origin": "fink", "data": {"nested": {"a": 1}}}, "flat"),
    ({"origin": "fink", "data": {"list": [1, 2]}}, "flat"),
    ({"origin": "fink", "data": {"none": None}}, "must be a number, a string or a boolean"),
    ({"origin": "fink", "data": {}}, "empty"),
    ({"origin": "fink", "data": "0.5"}, "`data` must be an object"),
    ({"origin": "fink", "data": {f"k{i}": i for i in range(101)}}, "at most 100"),
    ({"origin": "fink", "data": {"s": "x" * 1001}}, "at most 1000"),
    ({"origin": "fink"}, "missing required field `data`"),
    ({"data": {"a": 1}}, "missing required field `origin`"),
    ({"origin": "", "data": {"a": 1}}, "non-empty"),
    ({"origin": "-fink", "data": {"a": 1}}, "must begin with"),
    ({"origin": "fink", "data": {"a": 1}, "score": 2}, "unknown field"),
])
def test_bad_annotation_refused_nothing_written(api, db, people, payload, words):
    from astroportal.models import Annotation

    obj = new_obj(db, people["shared"])
    status, body = api.post(f"/api/sources/{obj}/annotations", people["a"], **as_json(payload))
    assert status == 400 and words in body["message"], body
    assert count(db, Annotation, obj_id=obj) == 0


def test_annotation_permission_and_unknown_object(api, db, people):
    obj = new_obj(db, people["shared"], people["sitewide"])
    body = {"origin": "fink", "data": {"a": 1}}
    status, answer = api.post(f"/api/sources/{obj}/annotations", people["viewer"], json=body)
    assert status == 403 and "Annotate" in answer["message"]
    assert api.post(f"/api/sources/{obj}/annotations", None, json=body)[0] == 401
    assert api.post(f"/api/sources/{unique()}/annotations", people["a"], json=body)[0] == 404
    hidden = new_obj(db, people["shared"])
    assert api.post(f"/api/sources/{hidden}/annotations", people["c"], json=body)[0] == 404
    assert api.get(f"/api/sources/{obj}/annotations", people["viewer"])[0] == 200


def test_annotations_visible_through_groups(api, db, people, admin_token):
    obj = new_obj(db, people["shared"], people["sitewide"])
    url = f"/api/sources/{obj}/annotations"
    status, body = api.post(url, people["a"], json={"origin": "private", "data": {"a": 1},
                                                    "group_ids": [people["shared"]]})
    aid = body["data"]["annotation_id"]
    assert api.post(url, people["c"], json={"origin": "public", "data": {"b": 2}})[0] == 200
    origins = lambda tok: [a["origin"] for a in api.get(url, tok)[1]["data"]]  # noqa: E731
    assert origins(people["b"]) == ["private", "public"]
    assert origins(people["c"]) == ["public"]
    assert origins(admin_token) == ["private", "public"]
    assert api.get(f"{url}/{aid}", people["c"])[0] == 404
    assert api.put(f"{url}/{aid}", people["c"], json={"data": {"a": 2}})[0] == 404
    assert api.delete(f"{url}/{aid}", people["c"])[0] == 404


def test_change_and_delete_annotation(api, db, people):
    obj = new_obj(db, people["shared"])
    other = new_obj(db, people["shared"])
    status, body = api.post(f"/api/sources/{obj}/annotations", people["a"],
                            json={"origin": "fink", "data": {"a": 1}, "group_ids": [people["shared"]]})
    aid = body["data"]["annotation_id"]
    url = f"/api/sources/{obj}/annotations/{aid}"
    assert api.put(url, people["a"], json={"data": {"a": 2, "b": "x"}})[0] == 200
    assert api.get(url, people["b"])[1]["data"]["data"] == {"a": 2, "b": "x"}
    status, body = api.put(url, people["a"], **as_json({"data": {"a": float("nan")}}))
    assert status == 400 and "nan" in body["message"]
    status, body = api.put(url, people["b"], json={"data": {"a": 3}})
    assert status == 403 and "author" in body["message"]
    assert api.delete(url, people["b"])[0] == 403
    assert api.get(f"/api/sources/{other}/annotations/{aid}", people["a"])[0] == 404
    assert api.put(url, people["ga"], json={"data": {"a": 4}})[0] == 200  # "Manage sources" over its groups
    assert api.get(url, people["a"])[1]["data"]["data"] == {"a": 4}
    assert api.delete(url, people["a"])[0] == 200
    assert api.get(url, people["a"])[0] == 404
    assert api.get(f"/api/sources/{obj}/annotations/abc", people["a"])[0] == 404


def test_annotation_list_form_upserts_per_origin(api, db, people):
    from astroportal.models import Annotation

    objs = [new_obj(db, people["shared"]) for _ in range(3)]
    items = [{"obj_id": o, "origin": "fink", "data": {"score": i / 10, "cls": "KN"}} for i, o in enumerate(objs)]
    status, body = api.post("/api/annotations", people["a"], json=items)
    assert status == 200, body
    ids = body["data"]["ids"]
    assert len(set(ids)) == 3
    # the same alerts again: the same ids, nothing added or changed
    with db() as s:
        before = {a.id: a.modified for a in s.scalars(select(Annotation).where(Annotation.obj_id.in_(objs)))}
    assert api.post("/api/annotations", people["a"], json=items)[1]["data"]["ids"] == ids
    with db() as s:
        after = {a.id: a.modified for a in s.scalars(select(Annotation).where(Annotation.obj_id.in_(objs)))}
    assert after == before
    # new scores replace the old ones; groups stay
    items[0]["data"] = {"score": 0.9}
    assert api.post("/api/annotations", people["a"], json=items)[1]["data"]["ids"] == ids
    got = api.get(f"/api/sources/{objs[0]}/annotations", people["b"])[1]["data"]
    assert [(a["id"], a["data"]) for a in got] == [(ids[0], {"score": 0.9})]
    # a bad item refuses the batch and names its index
    bad = items + [{"obj_id": objs[1], "origin": "other", "data": {"score": float("nan")}}]
    status, body = api.post("/api/annotations", people["a"], **as_json(bad))
    assert status == 400 and "item 3" in body["message"] and "nan" in body["message"]
    assert count(db, Annotation, obj_id=objs[1]) == 1
    # someone else's annotation from that origin is not theirs to change
    status, body = api.post("/api/annotations", people["b"], json=[{"obj_id": objs[2], "origin": "fink",
                                                                    "data": {"score": 0}}])
    assert status == 403 and "someone else" in body["message"]
    status, body = api.post("/api/annotations", people["c"], json=items[:1])
    assert status == 404
    assert api.post("/api/annotations", people["viewer"], json=items[:1])[0] == 403
    status, body = api.post("/api/annotations", people["a"], json=items[0])
    assert status == 400 and "list" in body["message"]
