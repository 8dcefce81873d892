"""Sources through the API: saving, reading, cone search, paging and sorting, visibility, edits, unsaving."""

from __future__ import annotations

import random
import uuid

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from sqlalchemy import func, select

from conftest import unique


# -- set-up straight in the database (the groups API is not under test here) ---------------------------
def new_group(db, *user_ids: int, can_save: bool = True) -> int:
    from astroportal.models import Group, GroupUser

    with db() as s:
        g = Group(name=f"src-{uuid.uuid4().hex[:10]}", nickname="nick")
        s.add(g)
        s.flush()
        for uid in user_ids:
            s.add(GroupUser(group_id=g.id, user_id=uid, can_save=can_save))
        s.commit()
        return g.id


def group_name(db, group_id: int) -> str:
    from astroportal.models import Group

    with db() as s:
        return s.get(Group, group_id).name


def add_member(db, group_id: int, user_id: int) -> None:
    from astroportal.models import GroupUser

    with db() as s:
        s.add(GroupUser(group_id=group_id, user_id=user_id))
        s.commit()


def user_group_ids(db, user_id: int) -> set[int]:
    from astroportal.models import GroupUser

    with db() as s:
        return set(s.scalars(select(GroupUser.group_id).where(GroupUser.user_id == user_id)))


def sitewide_id(db) -> int:
    from astroportal.models import Group
    from astroportal.permissions import SITEWIDE_GROUP

    with db() as s:
        return s.scalar(select(Group.id).where(Group.name == SITEWIDE_GROUP))


def username(db, user_id: int) -> str:
    from astroportal.models import User

    with db() as s:
        return s.get(User, user_id).username


def obj_row(db, obj_id: str):
    from astroportal.models import Obj

    with db() as s:
        return s.get(Obj, obj_id)


def source_rows(db, obj_id: str) -> dict[int, dict]:
    """{group_id: {active, saved_by_id, unsaved_by_id, unsaved_at}} for the object's Source rows."""
    from astroportal.models import Source

    with db() as s:
        return {
            r.group_id: {
                "active": r.active,
                "saved_by_id": r.saved_by_id,
                "unsaved_by_id": r.unsaved_by_id,
                "unsaved_at": r.unsaved_at,
            }
            for r in s.scalars(select(Source).where(Source.obj_id == obj_id))
        }


def count_rows(db, model, **where) -> int:
    with db() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.scalar(q)


def bulk_sources(db, group_id: int, positions, prefix: str) -> list[str]:
    """Objects at `positions` [(ra, dec)] saved to `group_id`, written straight to the database."""
    from astroportal.models import Obj, Source

    ids = [f"{prefix}{i:04d}" for i in range(len(positions))]
    with db() as s:
        s.add_all([Obj(id=i, ra=float(ra), dec=float(dec)) for i, (ra, dec) in zip(ids, positions)])
        s.flush()
        s.add_all([Source(obj_id=i, group_id=group_id) for i in ids])
        s.commit()
    return ids


@pytest.fixture(scope="module")
def team(make_user, db):
    """alice and dave (Full users) and manny (Group admin, and an admin of A) share group A; bob (Full user)
    is in group B only; vic is View only in A."""
    people = {}
    for name, role in (("alice", "Full user"), ("dave", "Full user"), ("manny", "Group admin"),
                       ("bob", "Full user"), ("vic", "View only")):
        uid, token = make_user(role)
        people[name] = {"id": uid, "token": token}
    a = new_group(db, people["alice"]["id"], people["dave"]["id"], people["manny"]["id"], people["vic"]["id"])
    b = new_group(db, people["bob"]["id"])
    people["A"], people["B"] = a, b
    from astroportal.models import GroupUser

    with db() as s:
        s.execute(GroupUser.__table__.update().where(GroupUser.group_id == a, GroupUser.user_id == people["manny"]["id"])
                  .values(admin=True))
        s.commit()
    return people


def post_source(api, token, **payload):
    return api.post("/api/sources", token, json=payload)


# -- saving -------------------------------------------------------------------------------------------------
def test_post_creates_object_and_saving_again_makes_no_duplicate(api, db, team):
    from astroportal.models import Obj, Source

    obj_id = unique()
    payload = {"id": obj_id, "ra": 123.25, "dec": -33.5, "group_ids": [team["A"]], "redshift": 0.01,
               "origin": "ZTF", "alias": ["AT2026abc"]}
    status, body = post_source(api, team["alice"]["token"], **payload)
    assert status == 200, body
    assert body["data"] == {"id": obj_id, "saved_to_groups": [team["A"]]}
    row = obj_row(db, obj_id)
    assert (row.ra, row.dec, row.redshift, row.origin, row.alias) == (123.25, -33.5, 0.01, "ZTF", ["AT2026abc"])

    status, body = post_source(api, team["alice"]["token"], **payload)
    assert status == 200 and body["data"]["saved_to_groups"] == [team["A"]]
    assert count_rows(db, Obj, id=obj_id) == 1
    assert count_rows(db, Source, obj_id=obj_id) == 1
    assert source_rows(db, obj_id)[team["A"]]["saved_by_id"] == team["alice"]["id"]


def test_post_without_group_ids_saves_to_all_my_groups(api, db, team):
    obj_id = unique()
    status, body = post_source(api, team["alice"]["token"], id=obj_id, ra=1.0, dec=2.0)
    assert status == 200, body
    mine = user_group_ids(db, team["alice"]["id"])
    assert set(body["data"]["saved_to_groups"]) == mine
    assert set(source_rows(db, obj_id)) == mine


def test_existing_position_kept_unless_manage_sources(api, db, team):
    obj_id = unique()
    assert post_source(api, team["alice"]["token"], id=obj_id, ra=10.0, dec=10.0, group_ids=[team["A"]])[0] == 200
    # a user holding "Manage sources" who administers every group of the object moves it
    status, body = post_source(api, team["manny"]["token"], id=obj_id, ra=12.0, dec=-12.0, group_ids=[team["A"]])
    assert status == 200, body
    assert (obj_row(db, obj_id).ra, obj_row(db, obj_id).dec) == (12.0, -12.0)
    # another user, who cannot see it, detecting it half an arcsecond away saves it elsewhere without moving it
    status, body = post_source(api, team["bob"]["token"], id=obj_id, ra=12.0 + 0.5 / 3600, dec=-12.0, group_ids=[team["B"]])
    assert status == 200 and body["data"]["saved_to_groups"] == [team["B"]]
    assert (obj_row(db, obj_id).ra, obj_row(db, obj_id).dec) == (12.0, -12.0)
    # now it is also group B's object, which manny does not administer: his re-save keeps it where it is
    status, body = post_source(api, team["manny"]["token"], id=obj_id, ra=13.0, dec=13.0, redshift=0.3, group_ids=[team["A"]])
    assert status == 200, body
    assert (obj_row(db, obj_id).ra, obj_row(db, obj_id).dec, obj_row(db, obj_id).redshift) == (12.0, -12.0, None)


@pytest.mark.parametrize(
    "payload, needle",
    [
        ({"ra": 360.0, "dec": 0.0}, "ra"),
        ({"ra": -0.5, "dec": 0.0}, "ra"),
        ({"ra": 10.0, "dec": 91.0}, "dec"),
        ({"ra": "10", "dec": 0.0}, "ra"),
        ({"ra": 10.0, "dec": None}, "dec"),
        ({"dec": 5.0}, "ra"),
        ({"ra": 10.0, "dec": 0.0, "redshift": "high"}, "redshift"),
        ({"ra": 10.0, "dec": 0.0, "alias": [3]}, "alias"),
        ({"ra": 10.0, "dec": 0.0, "group_ids": "mine"}, "group_ids"),
        ({"ra": 10.0, "dec": 0.0, "group_ids": [999999999]}, "999999999"),
        ({"ra": 10.0, "dec": 0.0, "colour": "red"}, "colour"),
    ],
)
def test_post_bad_input_is_400_and_writes_nothing(api, db, team, payload, needle):
    from astroportal.models import Obj

    obj_id = unique()
    status, body = post_source(api, team["alice"]["token"], id=obj_id, **payload)
    assert status == 400, body
    assert needle in body["message"]
    assert count_rows(db, Obj, id=obj_id) == 0


@pytest.mark.parametrize("bad_id", [None, "", 42, "has/slash", " padded "])
def test_post_bad_or_missing_id_is_400(api, team, bad_id):
    payload = {"ra": 1.0, "dec": 1.0} if bad_id is None else {"id": bad_id, "ra": 1.0, "dec": 1.0}
    status, body = api.post("/api/sources", team["alice"]["token"], json=payload)
    assert status == 400 and "`id`" in body["message"]


def test_post_not_json_or_no_body_is_400(api, team):
    status, body = api.post("/api/sources", team["alice"]["token"], data="{not json")
    assert status == 400 and "JSON" in body["message"]
    status, body = api.post("/api/sources", team["alice"]["token"], json=[1, 2])
    assert status == 400


def test_post_to_group_of_others_is_403_and_writes_nothing(api, db, team):
    from astroportal.models import Obj

    obj_id = unique()
    status, body = post_source(api, team["alice"]["token"], id=obj_id, ra=1.0, dec=1.0, group_ids=[team["B"]])
    # The refusal names the group as people know it, not by a list of ids.
    assert status == 403 and f"not a member of the group “{group_name(db, team['B'])}”" in body["message"], body
    assert f"[{team['B']}]" not in body["message"]
    assert count_rows(db, Obj, id=obj_id) == 0


def test_post_to_group_without_save_right_is_403(api, db, team, make_user):
    from astroportal.models import Obj

    uid, token = make_user("Full user")
    g = new_group(db, uid, can_save=False)
    obj_id = unique()
    status, body = post_source(api, token, id=obj_id, ra=1.0, dec=1.0, group_ids=[g])
    assert status == 403 and f"may not save sources to the group “{group_name(db, g)}”" in body["message"], body
    assert count_rows(db, Obj, id=obj_id) == 0


def test_view_only_and_anonymous_cannot_save(api, db, team):
    from astroportal.models import Obj

    obj_id = unique()
    status, body = post_source(api, team["vic"]["token"], id=obj_id, ra=1.0, dec=1.0)
    assert status == 403 and "Upload data" in body["message"]
    status, body = api.post("/api/sources", None, json={"id": obj_id, "ra": 1.0, "dec": 1.0})
    assert status == 401
    assert count_rows(db, Obj, id=obj_id) == 0


# -- reading one ---------------------------------------------------------------------------------------------
def test_get_source_fields(api, db, team):
    obj_id = unique()
    post_source(api, team["alice"]["token"], id=obj_id, ra=50.5, dec=-20.25, group_ids=[team["A"]], redshift=0.1,
                origin="test", alias="AT2026xyz")
    status, body = api.get(f"/api/sources/{obj_id}", team["dave"]["token"])
    assert status == 200, body
    src = body["data"]
    assert src["id"] == obj_id and (src["ra"], src["dec"], src["redshift"]) == (50.5, -20.25, 0.1)
    assert src["origin"] == "test" and src["alias"] == ["AT2026xyz"]
    assert src["created_at"] and src["saved_at"]
    assert src["saved_by"] == username(db, team["alice"]["id"])
    assert [(g["id"], g["nickname"]) for g in src["groups"]] == [(team["A"], "nick")]
    assert src["groups"][0]["name"].startswith("src-")
    assert "photometry" not in src and "comments" not in src


def test_get_source_with_photometry_comments_classifications(api, team):
    obj_id = unique()
    post_source(api, team["alice"]["token"], id=obj_id, ra=5.0, dec=5.0, group_ids=[team["A"]])
    query = "includePhotometry=true&includeComments=true&includeClassifications=true"
    status, body = api.get(f"/api/sources/{obj_id}?{query}", team["alice"]["token"])
    assert status == 200, body
    for key in ("photometry", "comments", "classifications"):
        assert body["data"][key] == []
    status, body = api.get(f"/api/sources/{obj_id}?includePhotometry=perhaps", team["alice"]["token"])
    assert status == 400 and "includePhotometry" in body["message"]


def test_unknown_source_is_404_and_login_needed(api, team):
    status, body = api.get("/api/sources/ZTF00nosuchthing", team["alice"]["token"])
    assert status == 404 and "not found" in body["message"]
    assert api.get("/api/sources/ZTF00nosuchthing")[0] == 401
    assert api.get("/api/sources")[0] == 401


# -- visibility ------------------------------------------------------------------------------------------------
def test_other_group_cannot_see_until_sitewide(api, db, team, admin_token):
    obj_id = unique("VIS")
    post_source(api, team["alice"]["token"], id=obj_id, ra=77.0, dec=7.0, group_ids=[team["A"]])
    bob = team["bob"]["token"]
    assert api.get(f"/api/sources/{obj_id}", bob)[0] == 404
    status, body = api.get(f"/api/sources?sourceID={obj_id}", bob)
    assert status == 200 and body["data"]["totalMatches"] == 0 and body["data"]["sources"] == []
    status, body = api.get("/api/sources?ra=77&dec=7&radius=0.001", bob)
    assert obj_id not in [s["id"] for s in body["data"]["sources"]]
    # bob cannot read group A's list either
    status, body = api.get(f"/api/sources?group_ids={team['A']}", bob)
    assert status == 403

    # the system admin sees everything
    status, body = api.get(f"/api/sources/{obj_id}", admin_token)
    assert status == 200 and body["data"]["id"] == obj_id

    # saved to the sitewide group, every user sees it (alice is a member of it, as every user is)
    sitewide = sitewide_id(db)
    status, body = api.post("/api/source_groups", team["alice"]["token"], json={"objId": obj_id, "inviteGroupIds": [sitewide]})
    assert status == 200 and body["data"]["saved_to_groups"] == [sitewide]
    status, body = api.get(f"/api/sources/{obj_id}", bob)
    assert status == 200
    # bob only sees the group he can read
    assert [g["id"] for g in body["data"]["groups"]] == [sitewide]
    status, body = api.get(f"/api/sources?sourceID={obj_id.lower()}", bob)
    assert [s["id"] for s in body["data"]["sources"]] == [obj_id]


# -- lists: paging, sorting, filters ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def listed(api, db, team):
    """Seven sources saved one after another by alice to a fresh group, with known positions."""
    g = new_group(db, team["alice"]["id"], team["dave"]["id"])
    prefix = "LST" + uuid.uuid4().hex[:6].upper()
    positions = [(200.0, 5.0), (10.0, -40.0), (300.0, 60.0), (45.0, 0.0), (150.0, -5.0), (90.0, 30.0), (250.0, -70.0)]
    ids = []
    for i, (ra, dec) in enumerate(positions):
        obj_id = f"{prefix}_{i}"
        status, body = post_source(api, team["alice"]["token"], id=obj_id, ra=ra, dec=dec, group_ids=[g])
        assert status == 200, body
        ids.append(obj_id)
    return {"group": g, "ids": ids, "positions": dict(zip(ids, positions)), "prefix": prefix}


def list_ids(api, token, query: str) -> tuple[list[str], dict]:
    status, body = api.get(f"/api/sources?{query}", token)
    assert status == 200, body
    return [s["id"] for s in body["data"]["sources"]], body["data"]


def test_paging(api, team, listed):
    token, g = team["alice"]["token"], listed["group"]
    pages = []
    for page in (1, 2, 3):
        ids, data = list_ids(api, token, f"group_ids={g}&numPerPage=3&pageNumber={page}&sortBy=id")
        assert data["totalMatches"] == 7 and data["pageNumber"] == page and data["numPerPage"] == 3
        pages.append(ids)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sum(pages, []) == sorted(listed["ids"])
    ids, data = list_ids(api, token, f"group_ids={g}&numPerPage=3&pageNumber=9")
    assert ids == [] and data["totalMatches"] == 7
    ids, data = list_ids(api, token, f"group_ids={g}")
    assert data["numPerPage"] == 100 and len(ids) == 7


@pytest.mark.parametrize("column", ["ra", "dec", "id"])
def test_sorting_by_position_and_id(api, team, listed, column):
    token, g = team["alice"]["token"], listed["group"]
    pos = listed["positions"]
    key = {"ra": lambda i: pos[i][0], "dec": lambda i: pos[i][1], "id": lambda i: i}[column]
    ids, _ = list_ids(api, token, f"group_ids={g}&sortBy={column}")
    assert ids == sorted(listed["ids"], key=key)
    ids, _ = list_ids(api, token, f"group_ids={g}&sortBy={column}&sortOrder=desc")
    assert ids == sorted(listed["ids"], key=key, reverse=True)


def test_sorting_by_save_time_default_newest_first(api, team, listed):
    token, g = team["alice"]["token"], listed["group"]
    ids, data = list_ids(api, token, f"group_ids={g}")
    assert ids == listed["ids"][::-1]
    saved = [s["saved_at"] for s in data["sources"]]
    assert saved == sorted(saved, reverse=True)
    ids, _ = list_ids(api, token, f"group_ids={g}&sortBy=saved_at&sortOrder=asc")
    assert ids == listed["ids"]
    ids, _ = list_ids(api, token, f"group_ids={g}&sortBy=created_at&sortOrder=asc")
    assert ids == listed["ids"]
    # paging through the save-time order gives every source once
    seen = []
    for page in (1, 2, 3, 4):
        seen += list_ids(api, token, f"group_ids={g}&numPerPage=2&pageNumber={page}")[0]
    assert seen == listed["ids"][::-1]


def test_source_id_substring_is_case_insensitive(api, team, listed):
    token = team["alice"]["token"]
    ids, data = list_ids(api, token, f"sourceID={listed['prefix'].lower()}_3")
    assert ids == [listed["ids"][3]] and data["totalMatches"] == 1
    ids, _ = list_ids(api, token, f"sourceID={listed['prefix']}&sortBy=id")
    assert ids == sorted(listed["ids"])
    # LIKE wildcards are taken literally
    ids, _ = list_ids(api, token, f"sourceID={listed['prefix']}%25")
    assert ids == []


def test_include_photometry_in_list(api, team, listed):
    status, body = api.get(f"/api/sources?group_ids={listed['group']}&includePhotometry=true", team["alice"]["token"])
    assert status == 200, body
    assert all(s["photometry"] == [] for s in body["data"]["sources"])


@pytest.mark.parametrize(
    "query, needle",
    [
        ("ra=360&dec=0&radius=1", "ra"),
        ("ra=-1&dec=0&radius=1", "ra"),
        ("ra=10&dec=91&radius=1", "dec"),
        ("ra=10&dec=-90.5&radius=1", "dec"),
        ("ra=10&dec=0&radius=-1", "radius"),
        ("ra=10&dec=0&radius=0", "radius"),
        ("ra=10&dec=0&radius=181", "radius"),
        ("ra=10&dec=0&radius=nan", "radius"),
        ("ra=ten&dec=0&radius=1", "ra"),
        ("ra=10&dec=0", "radius"),
        ("radius=1", "ra"),
        ("numPerPage=501", "numPerPage"),
        ("numPerPage=0", "numPerPage"),
        ("pageNumber=0", "pageNumber"),
        ("pageNumber=one", "pageNumber"),
        ("sortBy=mag", "sortBy"),
        ("sortOrder=up", "sortOrder"),
        ("group_ids=a,b", "group_ids"),
        ("group_ids=999999999", "999999999"),
        ("includePhotometry=maybe", "includePhotometry"),
    ],
)
def test_list_bad_arguments_are_400(api, team, query, needle):
    status, body = api.get(f"/api/sources?{query}", team["alice"]["token"])
    assert status == 400, body
    assert needle in body["message"]


# -- cone search ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sky(db, make_user):
    """A few hundred sources in a fresh group: uniform over the sky, plus crowds across ra = 0/360 and
    around both poles."""
    uid, token = make_user("Full user")
    g = new_group(db, uid)
    rng = np.random.default_rng(20260501)
    uniform = np.column_stack([rng.uniform(0, 360, 200), np.degrees(np.arcsin(rng.uniform(-1, 1, 200)))])
    wrap = np.column_stack([np.mod(rng.uniform(-3, 3, 150), 360.0), rng.uniform(-6, 6, 150)])
    north = np.column_stack([rng.uniform(0, 360, 80), rng.uniform(86.5, 90, 80)])
    south = np.column_stack([rng.uniform(0, 360, 50), rng.uniform(-90, -87, 50)])
    positions = np.vstack([uniform, wrap, north, south])
    positions[:, 0] = np.where(positions[:, 0] >= 360.0, 0.0, positions[:, 0])
    ids = bulk_sources(db, g, positions, "CONE" + uuid.uuid4().hex[:6].upper())
    return {"token": token, "group": g, "ids": np.array(ids), "coords": SkyCoord(positions[:, 0] * u.deg, positions[:, 1] * u.deg)}


CONES = [
    (0.5, 1.0, 2.5),  # straddles ra = 0/360
    (359.7, -3.0, 1.5),  # straddles it from the other side
    (0.0, 0.0, 4.0),
    (180.0, 89.0, 2.0),  # holds the north pole
    (33.0, 88.2, 1.2),  # touches the pole region without holding the pole
    (270.0, -89.9, 1.0),  # holds the south pole
    (120.0, 30.0, 25.0),
    (200.0, -60.0, 60.0),
    (10.0, 45.0, 120.0),
    (42.0, 0.0, 180.0),  # the whole sky
]


@pytest.mark.parametrize("ra, dec, radius", CONES)
def test_cone_search_matches_brute_force_separation(api, sky, ra, dec, radius):
    status, body = api.get(
        f"/api/sources?ra={ra}&dec={dec}&radius={radius}&group_ids={sky['group']}&numPerPage=500&sortBy=id",
        sky["token"],
    )
    assert status == 200, body
    got = {s["id"] for s in body["data"]["sources"]}
    sep = sky["coords"].separation(SkyCoord(ra * u.deg, dec * u.deg)).deg
    inside = set(sky["ids"][sep <= radius])
    # points within a hair of the rim may fall either way in floating point; none of these should exist
    rim = set(sky["ids"][np.abs(sep - radius) < 1e-9])
    assert got - rim == inside - rim
    assert body["data"]["totalMatches"] == len(got)
    assert inside, "every test cone should hold some points"


def test_cone_search_random_cones(api, sky):
    rng = random.Random(7)
    for _ in range(15):
        ra, dec, radius = rng.uniform(0, 360), rng.uniform(-90, 90), rng.uniform(0.5, 40)
        status, body = api.get(
            f"/api/sources?ra={ra}&dec={dec}&radius={radius}&group_ids={sky['group']}&numPerPage=500", sky["token"]
        )
        assert status == 200, body
        sep = sky["coords"].separation(SkyCoord(ra * u.deg, dec * u.deg)).deg
        assert {s["id"] for s in body["data"]["sources"]} == set(sky["ids"][sep <= radius]), (ra, dec, radius)


def test_cone_search_as_admin_and_paged(api, sky, admin_token):
    ra, dec, radius = 0.2, 0.0, 3.0
    sep = sky["coords"].separation(SkyCoord(ra * u.deg, dec * u.deg)).deg
    inside = set(sky["ids"][sep <= radius])
    status, body = api.get(f"/api/sources?ra={ra}&dec={dec}&radius={radius}&numPerPage=500", admin_token)
    assert status == 200
    # the admin sees every group's sources: ours are all there
    assert inside <= {s["id"] for s in body["data"]["sources"]}
    seen, page = [], 1
    while True:
        status, body = api.get(
            f"/api/sources?ra={ra}&dec={dec}&radius={radius}&group_ids={sky['group']}&numPerPage=10&pageNumber={page}&sortBy=dec",
            sky["token"],
        )
        assert body["data"]["totalMatches"] == len(inside)
        if not body["data"]["sources"]:
            break
        seen += [(s["dec"], s["id"]) for s in body["data"]["sources"]]
        page += 1
    assert page == len(inside) // 10 + (2 if len(inside) % 10 else 1)
    assert [i for _, i in seen] == [i for _, i in sorted(seen)]
    assert {i for _, i in seen} == inside


# -- editing --------------------------------------------------------------------------------------------------
def test_patch_by_saver_and_manager_only(api, db, team):
    obj_id = unique()
    post_source(api, team["alice"]["token"], id=obj_id, ra=10.0, dec=10.0, group_ids=[team["A"]])
    status, body = api.patch(f"/api/sources/{obj_id}", team["alice"]["token"], json={"redshift": 0.05, "alias": ["x"]})
    assert status == 200, body
    row = obj_row(db, obj_id)
    assert row.redshift == 0.05 and row.alias == ["x"]
    # dave sees it but did not save it
    status, body = api.patch(f"/api/sources/{obj_id}", team["dave"]["token"], json={"redshift": 0.5})
    assert status == 403 and "Manage sources" in body["message"]
    # bob does not even see it
    assert api.patch(f"/api/sources/{obj_id}", team["bob"]["token"], json={"redshift": 0.5})[0] == 404
    # the group admin holds "Manage sources"
    status, body = api.patch(f"/api/sources/{obj_id}", team["manny"]["token"], json={"ra": 11.0, "dec": -1.0, "origin": "fix"})
    assert status == 200, body
    row = obj_row(db, obj_id)
    assert (row.ra, row.dec, row.redshift, row.origin) == (11.0, -1.0, 0.05, "fix")
    # once group B has it too, neither its saver nor A's admin may change another group's object
    assert post_source(api, team["bob"]["token"], id=obj_id, ra=11.0, dec=-1.0, group_ids=[team["B"]])[0] == 200
    for who in ("alice", "manny"):
        status, body = api.patch(f"/api/sources/{obj_id}", team[who]["token"], json={"redshift": 0.9})
        assert status == 403 and "every group" in body["message"], (who, body)
        assert str(team["B"]) not in body["message"]
    assert obj_row(db, obj_id).redshift == 0.05


@pytest.mark.parametrize(
    "payload, needle",
    [({"ra": 360}, "ra"), ({"dec": -91}, "dec"), ({"redshift": "z"}, "redshift"), ({"name": "x"}, "name"), ({}, "nothing")],
)
def test_patch_bad_input_changes_nothing(api, db, team, payload, needle):
    obj_id = unique()
    post_source(api, team["alice"]["token"], id=obj_id, ra=10.0, dec=10.0, group_ids=[team["A"]], redshift=0.2)
    status, body = api.patch(f"/api/sources/{obj_id}", team["alice"]["token"], json=payload)
    assert status == 400 and needle in body["message"]
    row = obj_row(db, obj_id)
    assert (row.ra, row.dec, row.redshift) == (10.0, 10.0, 0.2)


# -- unsaving ---------------------------------------------------------------------------------------------------
def test_delete_unsaves_from_my_groups_and_keeps_history(api, db, team):
    obj_id = unique()
    post_source(api, team["alice"]["token"], id=obj_id, ra=10.0, dec=10.0, group_ids=[team["A"]])
    post_source(api, team["bob"]["token"], id=obj_id, ra=10.0, dec=10.0, group_ids=[team["B"]])
    status, body = api.delete(f"/api/sources/{obj_id}", team["alice"]["token"])
    assert status == 200 and body["data"]["unsaved_from_groups"] == [team["A"]]
    rows = source_rows(db, obj_id)
    assert rows[team["A"]]["active"] is False
    assert rows[team["A"]]["unsaved_by_id"] == team["alice"]["id"] and rows[team["A"]]["unsaved_at"] is not None
    assert rows[team["B"]]["active"] is True
    assert api.get(f"/api/sources/{obj_id}", team["alice"]["token"])[0] == 404
    ids, _ = list_ids(api, team["alice"]["token"], f"sourceID={obj_id}")
    assert ids == []
    assert api.get(f"/api/sources/{obj_id}", team["bob"]["token"])[0] == 200
    # saving again brings it back, in the same row (now that it is only B's, alice names its position like
    # anyone who cannot see it)
    status, body = post_source(api, team["alice"]["token"], id=obj_id, group_ids=[team["A"]])
    assert status == 400 and "`ra`" in body["message"]
    status, body = post_source(api, team["alice"]["token"], id=obj_id, ra=10.0, dec=10.0, group_ids=[team["A"]])
    assert status == 200, body
    rows = source_rows(db, obj_id)
    assert rows[team["A"]]["active"] is True and rows[team["A"]]["unsaved_at"] is None and len(rows) == 2


def test_delete_needs_visibility_and_upload_right(api, team):
    obj_id = unique()
    post_source(api, team["alice"]["token"], id=obj_id, ra=10.0, dec=10.0, group_ids=[team["A"]])
    assert api.delete(f"/api/sources/{obj_id}", team["bob"]["token"])[0] == 404
    assert api.delete(f"/api/sources/{obj_id}", team["vic"]["token"])[0] == 403
    assert api.get(f"/api/sources/{obj_id}", team["vic"]["token"])[0] == 200


def test_source_groups_invite_and_unsave(api, db, team):
    obj_id = unique()
    post_source(api, team["alice"]["token"], id=obj_id, ra=10.0, dec=10.0, group_ids=[team["A"]])
    extra = new_group(db, team["alice"]["id"])
    status, body = api.post(
        "/api/source_groups", team["alice"]["token"],
        json={"objId": obj_id, "inviteGroupIds": [extra], "unsaveGroupIds": [team["A"]]},
    )
    assert status == 200, body
    assert body["data"]["saved_to_groups"] == [extra] and body["data"]["unsaved_from_groups"] == [team["A"]]
    rows = source_rows(db, obj_id)
    assert rows[extra]["active"] is True and rows[team["A"]]["active"] is False
    # again: nothing changes, no duplicate
    status, body = api.post("/api/source_groups", team["alice"]["token"], json={"objId": obj_id, "inviteGroupIds": [extra]})
    assert status == 200 and len(source_rows(db, obj_id)) == 2


@pytest.mark.parametrize(
    "payload, status_code",
    [
        ({}, 400),
        ({"objId": "X"}, 400),
        ({"objId": "{obj}"}, 400),
        ({"objId": "{obj}", "inviteGroupIds": [999999999]}, 400),
        ({"objId": "{obj}", "inviteGroupIds": "{A}"}, 400),
        ({"objId": "{obj}", "inviteGroupIds": ["{A}"], "unsaveGroupIds": ["{A}"]}, 400),
        ({"objId": "{obj}", "inviteGroupIds": ["{B}"]}, 403),
        ({"objId": "ZTF00nosuchobj", "inviteGroupIds": ["{A}"]}, 404),
    ],
)
def test_source_groups_bad_input_writes_nothing(api, db, team, payload, status_code):
    obj_id = unique()
    post_source(api, team["alice"]["token"], id=obj_id, ra=10.0, dec=10.0, group_ids=[team["A"]])
    before = source_rows(db, obj_id)

    def fill(v):
        if isinstance(v, list):
            return [fill(x) for x in v]
        if v == "{obj}":
            return obj_id
        if v in ("{A}", "{B}"):
            return team[v[1]]
        return v

    status, body = api.post("/api/source_groups", team["alice"]["token"], json={k: fill(v) for k, v in payload.items()})
    assert status == status_code, body
    assert body["message"]
    assert source_rows(db, obj_id) == before
