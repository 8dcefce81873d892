"""Service tokens: a bot user holding exactly the ACLs a service declares, through the API and the command line."""

import json
import stat
import uuid

from sqlalchemy import func, select

from conftest import free_port, portal, unique, write_config


def name(prefix="svc"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def users(db):
    from astroportal.models import User

    with db() as s:
        return s.scalar(select(func.count()).select_from(User))


def service_token(config, svc, *args, check=True):
    res = portal("service_token", svc, *args, config=config, check=False)
    if check:
        assert res.returncode == 0, res.stderr
    return res


def new_source(api, token):
    return api.post("/api/sources", token, json={"id": unique(), "ra": 10.0, "dec": -5.0})


# -- the API ---------------------------------------------------------------------------------------------


def test_bot_can_do_what_its_acls_allow_and_nothing_more(api, admin_token):
    svc = name()
    status, body = api.post("/api/service_tokens", admin_token, json={"name": svc, "acls": ["Upload data"]})
    assert status == 200, body
    data = body["data"]
    assert data["username"] == svc and data["acls"] == ["Upload data"] and len(data["token"]) >= 20
    token = data["token"]
    status, body = new_source(api, token)
    assert status == 200, body
    # beyond its ACLs: refused, with the permission it lacks named
    status, body = api.post("/api/telescope", token, json={})
    assert status == 403 and "Manage telescopes" in body["message"]
    status, body = api.post(f"/api/sources/{unique()}/comments", token, json={"text": "hi"})
    assert status == 403 and "Comment" in body["message"]
    # and an admin's route
    status, body = api.post("/api/service_tokens", token, json={"name": name(), "acls": []})
    assert status == 403 and "System admin" in body["message"]
    # the users API shows a bot with exactly those ACLs, through no role
    me = api.get(f"/api/user/{data['user_id']}", admin_token)[1]["data"]
    assert me["is_bot"] is True and me["roles"] == [] and me["acls"] == ["Upload data"]


def test_calling_again_narrows_the_acls_and_keeps_earlier_tokens(api, admin_token):
    svc = name()
    first = api.post("/api/service_tokens", admin_token, json={"name": svc, "acls": ["Upload data", "Comment"]})[1]
    token = first["data"]["token"]
    obj = new_source(api, token)[1]["data"]["id"]
    assert api.post(f"/api/sources/{obj}/comments", token, json={"text": "seen"})[0] == 200
    status, body = api.post("/api/service_tokens", admin_token, json={"name": svc, "acls": ["Upload data"]})
    assert status == 200 and body["data"]["user_id"] == first["data"]["user_id"]
    assert body["data"]["acls"] == ["Upload data"] and body["data"]["token"] != token
    # the earlier token still authenticates (a running service is not cut off), with the narrower ACLs
    status, resp = api.post(f"/api/sources/{obj}/comments", token, json={"text": "again"})
    assert status == 403 and "Comment" in resp["message"]
    assert new_source(api, token)[0] == 200


def test_unknown_acls_and_groups_are_refused_by_name_and_nothing_is_created(api, admin_token, db):
    before = users(db)
    status, body = api.post("/api/service_tokens", admin_token,
                            json={"name": name(), "acls": ["Upload data", "Fly", "Dance"]})
    assert status == 400 and "['Fly', 'Dance']" in body["message"] and "Upload data" in body["message"]
    status, body = api.post("/api/service_tokens", admin_token,
                            json={"name": name(), "acls": ["Classify"], "groups": ["No Such Group"]})
    assert status == 400 and "No Such Group" in body["message"]
    for bad, field in (({"acls": ["Classify"]}, "name"), ({"name": name()}, "acls"),
                       ({"name": "two words", "acls": []}, "name"), ({"name": name(), "acls": "Classify"}, "acls"),
                       ({"name": name(), "acls": [], "role": "x"}, "role")):
        status, body = api.post("/api/service_tokens", admin_token, json=bad)
        assert status == 400 and field in body["message"], (bad, body)
    assert users(db) == before


def test_only_system_admins_may_create_service_tokens(api, role_tokens, db):
    before = users(db)
    for role in ("Group admin", "Full user", "View only"):
        status, body = api.post("/api/service_tokens", role_tokens[role], json={"name": name(), "acls": ["Classify"]})
        assert status == 403 and "System admin" in body["message"], role
    assert api.post("/api/service_tokens", json={"name": name(), "acls": []})[0] == 401
    assert users(db) == before


def test_a_persons_account_never_becomes_a_bot(api, admin_token, make_user):
    uid, token = make_user("Full user")
    person = api.get(f"/api/user/{uid}", token)[1]["data"]["username"]
    status, body = api.post("/api/service_tokens", admin_token, json={"name": person, "acls": ["System admin"]})
    assert status == 400 and "person's account" in body["message"]
    assert "System admin" not in api.get(f"/api/user/{uid}", token)[1]["data"]["acls"]


def test_the_bot_joins_exactly_the_named_groups(api, admin_token):
    group = f"svc-group-{uuid.uuid4().hex[:6]}"
    gid = api.post("/api/groups", admin_token, json={"name": group})[1]["data"]["id"]
    svc = name()
    body = api.post("/api/service_tokens", admin_token, json={"name": svc, "acls": [], "groups": [group]})[1]
    uid = body["data"]["user_id"]

    def groups():
        return {g["name"] for g in api.get(f"/api/user/{uid}", admin_token)[1]["data"]["groups"]}

    assert groups() == {group, svc, "Sitewide Group"}
    api.post("/api/service_tokens", admin_token, json={"name": svc, "acls": []})
    assert groups() == {svc, "Sitewide Group"}
    assert api.get(f"/api/groups/{gid}", admin_token)[0] == 200


# -- the command line ------------------------------------------------------------------------------------


def test_command_writes_a_private_token_file_and_keeps_it_on_rerun(config_path, api, tmp_path, server):
    svc, out = name(), tmp_path / "tokens" / "svc.token"
    res = service_token(config_path, svc, "--acls", "Upload data", "Comment", "--output", str(out))
    answer = json.loads(res.stdout.strip().splitlines()[-1])
    assert answer["username"] == svc and answer["created"] is True
    assert sorted(answer["acls"]) == ["Comment", "Upload data"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    token = out.read_text().strip()
    obj = new_source(api, token)[1]["data"]["id"]
    assert api.post(f"/api/sources/{obj}/comments", token, json={"text": "bot"})[0] == 200
    assert api.post("/api/telescope", token, json={})[0] == 403

    # run again: same bot, same token
    answer = json.loads(service_token(config_path, svc, "--acls", "Upload data", "Comment", "--output",
                                      str(out)).stdout.strip())
    assert answer["created"] is False and out.read_text().strip() == token
    # ACLs narrowed by a re-run: the kept token loses what was taken away
    answer = json.loads(service_token(config_path, svc, "--acls", "Upload data", "--output", str(out)).stdout)
    assert answer["acls"] == ["Upload data"] and out.read_text().strip() == token
    assert api.post(f"/api/sources/{obj}/comments", token, json={"text": "no"})[0] == 403
    assert new_source(api, token)[0] == 200


def test_command_replaces_a_token_that_no_longer_works(config_path, api, admin_token, tmp_path, server):
    svc, out = name(), tmp_path / "svc.token"
    service_token(config_path, svc, "--acls", "Upload data", "--output", str(out))
    old = out.read_text().strip()
    token_id = next(t["id"] for t in api.get("/api/internal/tokens", old)[1]["data"])
    assert api.delete(f"/api/internal/tokens/{token_id}", admin_token)[0] == 200
    service_token(config_path, svc, "--acls", "Upload data", "--output", str(out))
    new = out.read_text().strip()
    assert new != old and new_source(api, new)[0] == 200
    # another user's token in the file (the admin's, say) is never kept for the bot
    out.write_text(admin_token + "\n")
    service_token(config_path, svc, "--acls", "Upload data", "--output", str(out))
    assert out.read_text().strip() not in (admin_token, new)
    assert api.post("/api/telescope", out.read_text().strip(), json={})[0] == 403


def test_command_creates_a_services_own_groups_with_the_bot_as_their_admin(config_path, api, admin_token, tmp_path):
    """The launcher's way for a service's configured groups: made on the first run, the bot administers them (so
    that "Manage groups" lets it create their filters), kept on a re-run; a group that exists is only joined."""
    own, other, out = f"svc-own-{uuid.uuid4().hex[:6]}", f"svc-other-{uuid.uuid4().hex[:6]}", tmp_path / "svc.token"
    other_id = api.post("/api/groups", admin_token, json={"name": other})[1]["data"]["id"]
    svc = name()
    for _ in range(2):
        answer = json.loads(service_token(config_path, svc, "--acls", "Manage groups", "--groups", own, other,
                                          "--create-groups", "--output", str(out)).stdout.strip().splitlines()[-1])
    token = out.read_text().strip()
    mine = {g["name"]: g["id"] for g in api.get("/api/groups", token)[1]["data"]["user_groups"]}
    assert own in mine and other in mine
    members = {m["id"]: m for m in api.get(f"/api/groups/{mine[own]}", admin_token)[1]["data"]["users"]}
    assert members[answer["user_id"]]["admin"] is True
    others = {m["id"]: m for m in api.get(f"/api/groups/{other_id}", admin_token)[1]["data"]["users"]}
    assert others[answer["user_id"]]["admin"] is False


def test_command_refuses_unknown_acls_and_writes_nothing(config_path, tmp_path, db):
    before, out = users(db), tmp_path / "svc.token"
    res = service_token(config_path, name(), "--acls", "Upload data", "Teleport", "--output", str(out), check=False)
    assert res.returncode == 2 and "service_token: `acls`: unknown ACL(s) ['Teleport']" in res.stderr
    res = service_token(config_path, name(), "--acls", "Classify", "--groups", "Nobody's", "--output", str(out),
                        check=False)
    assert res.returncode == 2 and "Nobody's" in res.stderr
    assert not out.exists() and users(db) == before
    res = portal("service_token", "--help", config=config_path)
    assert "--acls" in res.stdout and "--output" in res.stdout


def test_bootstrap_tells_a_new_database_from_a_used_one(pg, tmp_path):
    path = write_config(tmp_path / "c.yaml", pg.create_database("bootstrap_new"), free_port())
    portal("migrate", config=path)
    first = json.loads(portal("bootstrap", "--json", config=path).stdout)
    assert first["created_admin"] is True and first["new_database"] is True
    second = json.loads(portal("bootstrap", "--json", config=path).stdout)
    assert second["created_admin"] is False and second["new_database"] is False
    assert portal("bootstrap", config=path).stdout.startswith("admin token file: ")
