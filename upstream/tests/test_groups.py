"""Groups through the API: the three lists, creation, members, streams, and who may change what."""

import uuid

import pytest
from sqlalchemy import func, select


def gname(prefix="grp"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def group_count(db):
    from astroportal.models import Group

    with db() as s:
        return s.scalar(select(func.count()).select_from(Group))


def members(db, group_id):
    from astroportal.models import GroupUser

    with db() as s:
        return {m.user_id: (m.admin, m.can_save) for m in s.scalars(select(GroupUser).where(GroupUser.group_id == group_id))}


@pytest.fixture
def owner(make_user):
    """A user with the Group admin role (holds "Manage groups" but is not a system admin)."""
    return make_user("Group admin")


@pytest.fixture
def team(api, owner, make_user):
    """A group created by `owner`, with a plain member; returns (group_id, owner, member)."""
    member = make_user("Full user")
    status, body = api.post("/api/groups", owner[1], json={"name": gname(), "nickname": "team"})
    assert status == 200, body
    gid = body["data"]["id"]
    status, body = api.post(f"/api/groups/{gid}/users", owner[1], json={"userID": member[0], "admin": False})
    assert status == 200, body
    return gid, owner, member


def ids(groups):
    return {g["id"] for g in groups}


def test_public_group(api, role_tokens):
    status, body = api.get("/api/groups/public", role_tokens["View only"])
    assert status == 200 and body["data"]["name"] == "Sitewide Group"
    assert api.get("/api/groups/public")[0] == 401


def test_group_lists(api, db, admin_token, make_user, owner):
    uid, token = make_user("Full user")
    public = api.post("/api/groups", owner[1], json={"name": gname("public")})[1]["data"]["id"]
    private = api.post("/api/groups", owner[1], json={"name": gname("private"), "private": True})[1]["data"]["id"]
    status, body = api.get("/api/groups", token)
    assert status == 200
    data = body["data"]
    assert set(data) == {"user_groups", "user_accessible_groups", "all_groups"}
    sitewide = api.get("/api/groups/public", token)[1]["data"]["id"]
    assert ids(data["user_groups"]) == {sitewide}
    assert ids(data["user_accessible_groups"]) == {sitewide}
    assert public in ids(data["all_groups"]) and private not in ids(data["all_groups"])
    assert not any(g["single_user_group"] for g in data["all_groups"])

    body = api.get("/api/groups", token, params={"includeSingleUserGroups": "true"})[1]["data"]
    own = [g for g in body["user_groups"] if g["single_user_group"]]
    assert len(own) == 1 and own[0]["name"].startswith("user-")
    # nobody else's single-user group shows up
    assert [g for g in body["all_groups"] if g["single_user_group"]] == own

    # the owner is in both groups
    body = api.get("/api/groups", owner[1])[1]["data"]
    assert {public, private} <= ids(body["user_groups"]) and private in ids(body["all_groups"])

    # a system admin sees private groups of others too, in all_groups and as accessible
    body = api.get("/api/groups", admin_token)[1]["data"]
    assert private in ids(body["all_groups"]) and private in ids(body["user_accessible_groups"])
    assert private not in ids(body["user_groups"])
    assert api.get("/api/groups")[0] == 401
    assert api.get("/api/groups", token, params={"includeSingleUserGroups": "maybe"})[0] == 400


def test_create_group_makes_creator_and_named_admins(api, db, owner, make_user):
    other, _ = make_user("Full user")
    status, body = api.post(
        "/api/groups",
        owner[1],
        json={"name": gname(), "nickname": "gw", "description": "GW follow-up", "group_admins": [other]},
    )
    assert status == 200
    gid = body["data"]["id"]
    assert members(db, gid) == {owner[0]: (True, True), other: (True, True)}
    status, body = api.get(f"/api/groups/{gid}", owner[1])
    assert status == 200
    g = body["data"]
    assert g["nickname"] == "gw" and g["description"] == "GW follow-up" and g["private"] is False
    assert {u["id"]: u["admin"] for u in g["users"]} == {owner[0]: True, other: True}
    assert all({"username", "admin", "can_save"} <= set(u) for u in g["users"])
    assert g["streams"] == [] and g["filters"] == []


@pytest.mark.parametrize("role", ["Full user", "View only"])
def test_create_group_needs_manage_groups(api, db, role_tokens, role):
    before = group_count(db)
    status, body = api.post("/api/groups", role_tokens[role], json={"name": gname()})
    assert status == 403 and "Manage groups" in body["message"]
    assert api.post("/api/groups", None, json={"name": gname()})[0] == 401
    assert group_count(db) == before


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 7}, "name"),
        ({"name": "Sitewide Group"}, "name"),
        ({"name": "@new", "private": "yes"}, "private"),
        ({"name": "@new", "nickname": 3}, "nickname"),
        ({"name": "@new", "group_admins": [999999]}, "group_admins"),
        ({"name": "@new", "group_admins": "1"}, "group_admins"),
        ({"name": "@new", "group_admins": ["x"]}, "group_admins"),
    ],
)
def test_bad_group_is_refused_and_not_written(api, db, owner, payload, field):
    payload = {k: (gname() if v == "@new" else v) for k, v in payload.items()}
    before = group_count(db)
    status, body = api.post("/api/groups", owner[1], json=payload)
    assert status == 400, body
    assert f"`{field}`" in body["message"]
    assert group_count(db) == before


def test_group_name_cannot_take_a_username(api, owner, make_user):
    uid, _ = make_user("Full user", username=f"astro-{uuid.uuid4().hex[:6]}")
    username = api.get(f"/api/user/{uid}", owner[1])[1]["data"]["username"]
    status, body = api.post("/api/groups", owner[1], json={"name": username})
    assert status == 400 and "`name`" in body["message"]


def test_private_group_hidden_from_outsiders(api, owner, make_user, admin_token):
    gid = api.post("/api/groups", owner[1], json={"name": gname(), "private": True})[1]["data"]["id"]
    _, outsider = make_user("Full user")
    assert api.get(f"/api/groups/{gid}", outsider)[0] == 404
    assert api.get(f"/api/groups/{gid}", owner[1])[0] == 200
    assert api.get(f"/api/groups/{gid}", admin_token)[0] == 200
    assert api.get("/api/groups/999999", admin_token)[0] == 404


def test_patch_group(api, team, make_user, role_tokens):
    gid, owner, member = team
    status, body = api.patch(f"/api/groups/{gid}", member[1], json={"nickname": "mine"})
    assert status == 403 and "admin" in body["message"]
    status, body = api.patch(f"/api/groups/{gid}", role_tokens["Group admin"], json={"nickname": "mine"})
    assert status == 403
    new_name = gname("renamed")
    status, body = api.patch(f"/api/groups/{gid}", owner[1], json={"name": new_name, "description": "d", "private": True})
    assert status == 200, body
    g = api.get(f"/api/groups/{gid}", owner[1])[1]["data"]
    assert g["name"] == new_name and g["description"] == "d" and g["private"] is True
    status, body = api.patch(f"/api/groups/{gid}", owner[1], json={"private": "no"})
    assert status == 400 and "`private`" in body["message"]
    status, body = api.patch(f"/api/groups/{gid}", owner[1], json={"title": "x"})
    assert status == 400 and "title" in body["message"]


def test_special_groups_cannot_be_renamed_or_deleted(api, admin_token, make_user, db):
    uid, token = make_user("Full user")
    sitewide = api.get("/api/groups/public", admin_token)[1]["data"]["id"]
    status, body = api.delete(f"/api/groups/{sitewide}", admin_token)
    assert status == 400 and "sitewide" in body["message"]
    status, body = api.patch(f"/api/groups/{sitewide}", admin_token, json={"name": "Other"})
    assert status == 400 and "sitewide" in body["message"]
    own = [g for g in api.get("/api/groups", token, params={"includeSingleUserGroups": "true"})[1]["data"]["user_groups"]
           if g["single_user_group"]][0]
    # the user administers their own group, yet cannot delete it
    status, body = api.delete(f"/api/groups/{own['id']}", token)
    assert status == 400 and "single-user" in body["message"]
    status, body = api.delete(f"/api/groups/{own['id']}", admin_token)
    assert status == 400 and "single-user" in body["message"]
    status, body = api.post(f"/api/groups/{own['id']}/users", admin_token, json={"userID": 1})
    assert status == 400 and "single-user" in body["message"]
    assert api.get("/api/groups/public", admin_token)[1]["data"]["id"] == sitewide


def test_delete_group(api, db, team, admin_token):
    gid, owner, member = team
    assert api.delete(f"/api/groups/{gid}", member[1])[0] == 403
    assert api.get(f"/api/groups/{gid}", owner[1])[0] == 200
    assert api.delete(f"/api/groups/{gid}", owner[1])[0] == 200
    assert api.get(f"/api/groups/{gid}", admin_token)[0] == 404
    assert members(db, gid) == {}
    # system admins may delete any group
    other = api.post("/api/groups", owner[1], json={"name": gname()})[1]["data"]["id"]
    assert api.delete(f"/api/groups/{other}", admin_token)[0] == 200


# -- members ---------------------------------------------------------------------------------------------


def test_add_member_answer_and_effect(api, db, team, make_user):
    gid, owner, member = team
    newcomer, _ = make_user("View only")
    status, body = api.post(f"/api/groups/{gid}/users", owner[1], json={"userID": newcomer, "admin": True, "canSave": False})
    assert status == 200
    assert body["data"]["group_id"] == gid and body["data"]["user_id"] == newcomer and body["data"]["admin"] is True
    assert members(db, gid)[newcomer] == (True, False)
    users = {u["id"]: u for u in api.get(f"/api/groups/{gid}", owner[1])[1]["data"]["users"]}
    assert users[newcomer]["admin"] is True and users[newcomer]["can_save"] is False
    assert users[member[0]]["admin"] is False and users[member[0]]["can_save"] is True


def test_only_group_admins_change_members(api, db, team, make_user, role_tokens):
    gid, owner, member = team
    newcomer, newcomer_token = make_user("Full user")
    before = members(db, gid)
    # a plain member, an outsider, and an outsider holding "Manage users"/"Manage groups" are all refused
    for token in (member[1], newcomer_token, role_tokens["Group admin"]):
        status, body = api.post(f"/api/groups/{gid}/users", token, json={"userID": newcomer})
        assert status == 403, body
        assert api.patch(f"/api/groups/{gid}/users/{owner[0]}", token, json={"admin": False})[0] == 403
        assert api.delete(f"/api/groups/{gid}/users/{owner[0]}", token)[0] == 403
    assert api.post(f"/api/groups/{gid}/users", None, json={"userID": newcomer})[0] == 401
    assert members(db, gid) == before

    # promoting the member makes them able to add people
    status, body = api.patch(f"/api/groups/{gid}/users/{member[0]}", owner[1], json={"admin": True})
    assert status == 200 and body["data"]["admin"] is True
    status, body = api.post(f"/api/groups/{gid}/users", member[1], json={"userID": newcomer})
    assert status == 200
    assert members(db, gid)[newcomer] == (False, True)


def test_system_admin_changes_any_membership(api, db, team, admin_token, make_user):
    gid, owner, member = team
    uid, _ = make_user("Full user")
    assert api.post(f"/api/groups/{gid}/users", admin_token, json={"userID": uid})[0] == 200
    assert api.patch(f"/api/groups/{gid}/users/{uid}", admin_token, json={"canSave": False})[0] == 200
    assert members(db, gid)[uid] == (False, False)
    assert api.delete(f"/api/groups/{gid}/users/{uid}", admin_token)[0] == 200
    assert uid not in members(db, gid)


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "userID"),
        ({"userID": None}, "userID"),
        ({"userID": "abc"}, "userID"),
        ({"userID": 999999}, "userID"),
        ({"userID": "@member"}, "userID"),
        ({"userID": "@new", "admin": "yes"}, "admin"),
        ({"userID": "@new", "canSave": 0}, "canSave"),
    ],
)
def test_bad_member_is_refused_and_not_written(api, db, team, make_user, payload, field):
    gid, owner, member = team
    newcomer, _ = make_user("Full user")
    subst = {"@member": member[0], "@new": newcomer}
    payload = {k: subst.get(v, v) if isinstance(v, str) else v for k, v in payload.items()}
    before = members(db, gid)
    status, body = api.post(f"/api/groups/{gid}/users", owner[1], json=payload)
    assert status == 400, body
    assert f"`{field}`" in body["message"]
    assert members(db, gid) == before


def test_member_patch_and_delete_errors(api, team, make_user):
    gid, owner, member = team
    stranger, _ = make_user("Full user")
    assert api.patch(f"/api/groups/{gid}/users/{stranger}", owner[1], json={"admin": True})[0] == 404
    assert api.delete(f"/api/groups/{gid}/users/{stranger}", owner[1])[0] == 404
    status, body = api.patch(f"/api/groups/{gid}/users/{member[0]}", owner[1], json={"admin": "true"})
    assert status == 400 and "`admin`" in body["message"]
    assert api.post("/api/groups/999999/users", owner[1], json={"userID": member[0]})[0] == 404


def test_member_may_leave(api, db, team):
    gid, owner, member = team
    assert api.delete(f"/api/groups/{gid}/users/{member[0]}", member[1])[0] == 200
    assert member[0] not in members(db, gid)
    # the group admin removes nobody else by accident
    assert owner[0] in members(db, gid)


# -- streams of a group -----------------------------------------------------------------------------------


@pytest.fixture
def stream(api, admin_token):
    status, body = api.post("/api/streams", admin_token, json={"name": gname("stream")})
    assert status == 200, body
    return body["data"]["id"]


def group_stream_rows(db, gid):
    from astroportal.models import group_streams

    with db() as s:
        return set(s.scalars(select(group_streams.c.stream_id).where(group_streams.c.group_id == gid)))


def test_group_streams(api, db, team, stream, admin_token):
    gid, owner, member = team
    status, body = api.post(f"/api/groups/{gid}/streams", admin_token, json={"stream_id": stream})
    assert status == 200 and body["data"] == {"group_id": gid, "stream_id": stream}
    assert group_stream_rows(db, gid) == {stream}
    g = api.get(f"/api/groups/{gid}", member[1])[1]["data"]
    assert [s["id"] for s in g["streams"]] == [stream]
    status, body = api.post(f"/api/groups/{gid}/streams", admin_token, json={"stream_id": stream})
    assert status == 400 and "already" in body["message"]

    # a filter on the stream keeps it attached
    fid = api.post("/api/filters", owner[1], json={"name": "f", "stream_id": stream, "group_id": gid})[1]["data"]["id"]
    status, body = api.delete(f"/api/groups/{gid}/streams/{stream}", admin_token)
    assert status == 400 and "filter" in body["message"]
    assert api.delete(f"/api/filters/{fid}", owner[1])[0] == 200
    assert api.delete(f"/api/groups/{gid}/streams/{stream}", admin_token)[0] == 200
    assert group_stream_rows(db, gid) == set()
    assert api.delete(f"/api/groups/{gid}/streams/{stream}", admin_token)[0] == 404


def test_group_streams_need_system_admin(api, db, team, stream):
    gid, owner, member = team
    status, body = api.post(f"/api/groups/{gid}/streams", owner[1], json={"stream_id": stream})
    assert status == 403 and "System admin" in body["message"]
    assert api.post(f"/api/groups/{gid}/streams", None, json={"stream_id": stream})[0] == 401
    assert group_stream_rows(db, gid) == set()


@pytest.mark.parametrize("payload", [{}, {"stream_id": 999999}, {"stream_id": "one"}, {"stream_id": None}])
def test_bad_group_stream(api, db, team, admin_token, payload):
    gid = team[0]
    status, body = api.post(f"/api/groups/{gid}/streams", admin_token, json=payload)
    assert status == 400 and "`stream_id`" in body["message"]
    assert group_stream_rows(db, gid) == set()
