"""Users, roles, the profile and API tokens through the API."""

import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import func, select


def uname(prefix="bot"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def user_count(db):
    from astroportal.models import User

    with db() as s:
        return s.scalar(select(func.count()).select_from(User))


def token_count(db, user_id=None):
    from astroportal.models import Token

    with db() as s:
        q = select(func.count()).select_from(Token)
        if user_id is not None:
            q = q.where(Token.created_by_id == user_id)
        return s.scalar(q)


def roles_of(db, user_id):
    from astroportal.models import User

    with db() as s:
        return set(s.get(User, user_id).role_names)


# -- users -------------------------------------------------------------------------------------------------


def test_list_users_needs_manage_users(api, role_tokens):
    for role in ("Super admin", "Group admin"):
        status, body = api.get("/api/user", role_tokens[role])
        assert status == 200
        assert {"users", "totalMatches", "pageNumber", "numPerPage"} <= set(body["data"])
    for role in ("Full user", "View only"):
        status, body = api.get("/api/user", role_tokens[role])
        assert status == 403 and "Manage users" in body["message"]
    status, body = api.get("/api/user")
    assert status == 401 and "Authorization: token" in body["message"]


def test_list_users_pages(api, admin_token, make_user):
    for _ in range(3):
        make_user("Full user")
    body = api.get("/api/user", admin_token, params={"numPerPage": 2})[1]["data"]
    assert len(body["users"]) == 2 and body["totalMatches"] >= 4 and body["numPerPage"] == 2
    page2 = api.get("/api/user", admin_token, params={"numPerPage": 2, "pageNumber": 2})[1]["data"]
    assert page2["pageNumber"] == 2
    assert not {u["id"] for u in body["users"]} & {u["id"] for u in page2["users"]}
    for params in ({"pageNumber": 0}, {"numPerPage": 501}, {"numPerPage": "many"}):
        status, resp = api.get("/api/user", admin_token, params=params)
        assert status == 400 and list(params)[0] in resp["message"]


def test_list_users_by_username(api, admin_token, make_user):
    tag = uuid.uuid4().hex[:6]
    uid, _ = make_user("View only", username=f"find_{tag}_me")
    body = api.get("/api/user", admin_token, params={"username": f"_{tag}_"})[1]["data"]
    assert [u["id"] for u in body["users"]] == [uid] and body["totalMatches"] == 1


def test_get_user_self_or_manage_users(api, make_user, role_tokens):
    uid, token = make_user("Full user")
    status, body = api.get(f"/api/user/{uid}", token)
    assert status == 200
    u = body["data"]
    assert {"id", "username", "first_name", "last_name", "contact_email", "roles", "acls", "groups"} <= set(u)
    assert u["roles"] == ["Full user"] and "Upload data" in u["acls"] and "System admin" not in u["acls"]
    assert {g["name"] for g in u["groups"]} >= {"Sitewide Group", u["username"]}

    other, _ = make_user("Full user")
    status, body = api.get(f"/api/user/{other}", token)
    assert status == 403 and "Manage users" in body["message"]
    assert api.get(f"/api/user/{other}", role_tokens["Group admin"])[0] == 200
    assert api.get("/api/user/999999", role_tokens["Super admin"])[0] == 404
    assert api.get(f"/api/user/{uid}")[0] == 401


def test_create_bot_user(api, db, admin_token):
    name = uname()
    status, body = api.post(
        "/api/user",
        admin_token,
        json={"username": name, "roles": ["Full user"], "is_bot": True, "first_name": "Broker", "contact_email": "ops@example.org"},
    )
    assert status == 200, body
    uid = body["data"]["id"]
    u = api.get(f"/api/user/{uid}", admin_token)[1]["data"]
    assert u["username"] == name and u["is_bot"] is True and u["roles"] == ["Full user"]
    assert u["first_name"] == "Broker" and u["contact_email"] == "ops@example.org"
    groups = {g["name"]: g for g in u["groups"]}
    assert "Sitewide Group" in groups and groups[name]["single_user_group"] is True


@pytest.mark.parametrize("role", ["Group admin", "Full user"])
def test_create_user_needs_system_admin(api, db, role_tokens, role):
    before = user_count(db)
    status, body = api.post("/api/user", role_tokens[role], json={"username": uname(), "roles": []})
    assert status == 403 and "System admin" in body["message"]
    assert api.post("/api/user", None, json={"username": uname()})[0] == 401
    assert user_count(db) == before


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "username"),
        ({"username": ""}, "username"),
        ({"username": 42}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "Sitewide Group"}, "username"),
        ({"username": "@new", "roles": ["Overlord"]}, "roles"),
        ({"username": "@new", "roles": "Full user"}, "roles"),
        ({"username": "@new", "is_bot": "yes"}, "is_bot"),
        ({"username": "@new", "contact_email": "not-an-address"}, "contact_email"),
        ({"username": "@new", "first_name": 1}, "first_name"),
    ],
)
def test_bad_user_is_refused_and_not_written(api, db, admin_token, payload, field):
    payload = {k: uname() if v == "@new" else v for k, v in payload.items()}
    before = user_count(db)
    status, body = api.post("/api/user", admin_token, json=payload)
    assert status == 400, body
    assert f"`{field}`" in body["message"]
    assert user_count(db) == before


def test_duplicate_username(api, db, admin_token, make_user):
    uid, _ = make_user("Full user")
    name = api.get(f"/api/user/{uid}", admin_token)[1]["data"]["username"]
    before = user_count(db)
    status, body = api.post("/api/user", admin_token, json={"username": name})
    assert status == 400 and name in body["message"] and "`username`" in body["message"]
    assert user_count(db) == before


# -- roles -------------------------------------------------------------------------------------------------


def test_list_roles(api, role_tokens):
    status, body = api.get("/api/roles", role_tokens["View only"])
    assert status == 200
    roles = {r["id"]: set(r["acls"]) for r in body["data"]}
    assert {"Super admin", "Group admin", "Full user", "View only"} <= set(roles)
    assert "System admin" in roles["Super admin"] and roles["View only"] == set()
    assert "Manage users" in roles["Group admin"] and "System admin" not in roles["Group admin"]
    assert api.get("/api/roles")[0] == 401


def test_add_and_remove_roles(api, db, admin_token, make_user):
    uid, token = make_user("View only")
    # View only cannot create groups...
    assert api.post("/api/groups", token, json={"name": uname("g")})[0] == 403
    status, body = api.post(f"/api/user/{uid}/roles", admin_token, json={"roleIds": ["Group admin", "View only"]})
    assert status == 200 and body["data"] == {}
    assert roles_of(db, uid) == {"Group admin", "View only"}
    # ...and with the new role it can, with the same token
    assert api.post("/api/groups", token, json={"name": uname("g")})[0] == 200

    status, body = api.delete(f"/api/user/{uid}/roles/{quote('Group admin')}", admin_token)
    assert status == 200
    assert roles_of(db, uid) == {"View only"}
    assert api.post("/api/groups", token, json={"name": uname("g")})[0] == 403
    status, body = api.delete(f"/api/user/{uid}/roles/{quote('Group admin')}", admin_token)
    assert status == 404 and "does not have" in body["message"]
    status, body = api.delete(f"/api/user/{uid}/roles/Overlord", admin_token)
    assert status == 404 and "Overlord" in body["message"]


@pytest.mark.parametrize("payload", [{}, {"roleIds": []}, {"roleIds": "Full user"}, {"roleIds": ["Overlord"]}, {"roleIds": [3]}])
def test_bad_role_change(api, db, admin_token, make_user, payload):
    uid, _ = make_user("View only")
    status, body = api.post(f"/api/user/{uid}/roles", admin_token, json=payload)
    assert status == 400 and "`roleIds`" in body["message"]
    assert roles_of(db, uid) == {"View only"}


def test_role_changes_need_system_admin(api, db, role_tokens, make_user):
    uid, _ = make_user("View only")
    for role in ("Group admin", "Full user"):
        status, body = api.post(f"/api/user/{uid}/roles", role_tokens[role], json={"roleIds": ["Super admin"]})
        assert status == 403 and "System admin" in body["message"]
        assert api.delete(f"/api/user/{uid}/roles/{quote('View only')}", role_tokens[role])[0] == 403
    assert roles_of(db, uid) == {"View only"}
    assert api.post("/api/user/999999/roles", role_tokens["Super admin"], json={"roleIds": ["Full user"]})[0] == 404


def test_admin_cannot_remove_own_system_admin(api, db, make_user):
    uid, token = make_user("Super admin")
    status, body = api.delete(f"/api/user/{uid}/roles/{quote('Super admin')}", token)
    assert status == 400 and "System admin" in body["message"]
    assert roles_of(db, uid) == {"Super admin"}


# -- profile -----------------------------------------------------------------------------------------------


def test_profile(api, make_user):
    uid, token = make_user("Full user")
    status, body = api.get("/api/internal/profile", token)
    assert status == 200
    p = body["data"]
    assert p["id"] == uid and p["roles"] == ["Full user"]
    assert set(p["acls"]) == {"Upload data", "Classify", "Comment", "Annotate"} == set(p["permissions"])
    assert "Sitewide Group" in {g["name"] for g in p["groups"]}
    assert isinstance(p["preferences"], dict)
    assert api.get("/api/internal/profile")[0] == 401


# -- tokens ------------------------------------------------------------------------------------------------


def test_token_lifecycle(api, db, make_user):
    uid, token = make_user("Full user")
    status, body = api.post("/api/internal/tokens", token, json={"name": "laptop"})
    assert status == 200
    new_id, new_token = body["data"]["token_id"], body["data"]["token"]
    assert isinstance(new_token, str) and len(new_token) >= 32
    assert api.get("/api/internal/profile", new_token)[1]["data"]["id"] == uid

    status, body = api.get("/api/internal/tokens", new_token)
    assert status == 200
    listed = {t["id"]: t for t in body["data"]}
    assert new_id in listed and len(listed) == 2
    assert listed[new_id]["name"] == "laptop" and listed[new_id]["prefix"] == new_token[:8]
    assert {"id", "name", "prefix", "created_at", "last_used"} <= set(listed[new_id])
    # neither the token text nor its hash is ever listed
    raw = str(body)
    assert new_token not in raw and token not in raw and "hash" not in raw

    assert api.delete(f"/api/internal/tokens/{new_id}", token)[0] == 200
    status, body = api.get("/api/internal/profile", new_token)
    assert status == 401 and "invalid API token" in body["message"]
    assert token_count(db, uid) == 1
    assert api.delete(f"/api/internal/tokens/{new_id}", token)[0] == 404


def test_a_token_may_revoke_itself(api, make_user):
    uid, token = make_user("View only")
    tid = api.get("/api/internal/tokens", token)[1]["data"][0]["id"]
    assert api.delete(f"/api/internal/tokens/{tid}", token)[0] == 200
    assert api.get("/api/internal/tokens", token)[0] == 401


def test_tokens_are_private_to_their_owner(api, db, make_user):
    a, a_token = make_user("Full user")
    b, b_token = make_user("Group admin")
    a_tid = api.get("/api/internal/tokens", a_token)[1]["data"][0]["id"]
    assert api.delete(f"/api/internal/tokens/{a_tid}", b_token)[0] == 404
    assert api.get("/api/internal/profile", a_token)[0] == 200
    status, body = api.get("/api/internal/tokens", b_token, params={"user_id": a})
    assert status == 403
    assert a_tid not in {t["id"] for t in api.get("/api/internal/tokens", b_token)[1]["data"]}
    before = token_count(db)
    status, body = api.post("/api/internal/tokens", b_token, json={"name": "for a", "user_id": a})
    assert status == 403 and "system admin" in body["message"]
    assert token_count(db) == before


def test_admin_manages_bot_tokens(api, db, admin_token):
    bot = api.post("/api/user", admin_token, json={"username": uname(), "roles": ["Full user"], "is_bot": True})[1]["data"]["id"]
    status, body = api.post("/api/internal/tokens", admin_token, json={"name": "broker", "user_id": bot})
    assert status == 200 and body["data"]["user_id"] == bot
    bot_token, tid = body["data"]["token"], body["data"]["token_id"]
    assert api.get("/api/internal/profile", bot_token)[1]["data"]["id"] == bot
    listed = api.get("/api/internal/tokens", admin_token, params={"user_id": bot})[1]["data"]
    assert [t["id"] for t in listed] == [tid] and bot_token not in str(listed)
    assert tid not in {t["id"] for t in api.get("/api/internal/tokens", admin_token)[1]["data"]}
    assert api.delete(f"/api/internal/tokens/{tid}", admin_token)[0] == 200
    assert api.get("/api/internal/profile", bot_token)[0] == 401


@pytest.mark.parametrize(
    "payload, field",
    [({}, "name"), ({"name": ""}, "name"), ({"name": 5}, "name"), ({"name": "x", "user_id": 999999}, "user_id"),
     ({"name": "x", "user_id": "me"}, "user_id")],
)
def test_bad_token_request(api, db, admin_token, payload, field):
    before = token_count(db)
    status, body = api.post("/api/internal/tokens", admin_token, json=payload)
    assert status == 400 and f"`{field}`" in body["message"]
    assert token_count(db) == before


def test_tokens_need_login(api):
    assert api.get("/api/internal/tokens")[0] == 401
    assert api.post("/api/internal/tokens", json={"name": "x"})[0] == 401
    assert api.delete("/api/internal/tokens/1")[0] == 401


def test_the_last_super_admin_is_not_demoted_without_force(pg, tmp_path):
    from conftest import free_port, portal, write_config

    path = write_config(tmp_path / "c.yaml", pg.create_database("last_admin"), free_port())
    portal("migrate", config=path)
    portal("bootstrap", config=path)  # the initial admin, the only Super admin
    res = portal("set_user_role", "--user", "admin", "--role", "Full user", config=path, check=False)
    assert res.returncode == 1 and "admin is the last Super admin" in res.stderr and "--force" in res.stderr
    assert "admin\tSuper admin" in portal("set_user_role", "--list", config=path).stdout
    # Missing arguments: the portal says what to give.
    res = portal("set_user_role", "--user", "admin", config=path, check=False)
    assert res.returncode == 2 and "--role" in res.stderr
    # With --force it is done (the person asked for it knowingly), and promotion is never refused.
    assert portal("set_user_role", "--user", "admin", "--role", "Full user", "--force", config=path).stdout.strip() \
        == "admin: Full user"
    assert portal("set_user_role", "--user", "admin", "--role", "Super admin", config=path).returncode == 0
    # With another Super admin, demoting one needs no --force.
    from astroportal import config as portal_config
    from astroportal.db import session_scope
    from astroportal.domain.accounts import create_user

    with session_scope(portal_config.load(path)) as session:
        create_user(session, "second", ["Super admin"])
    assert portal("set_user_role", "--user", "admin", "--role", "Full user", config=path).returncode == 0
    res = portal("set_user_role", "--user", "second", "--role", "View only", config=path, check=False)
    assert res.returncode == 1 and "second is the last Super admin" in res.stderr
