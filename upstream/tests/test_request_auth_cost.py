"""What makes a request cheaper must not make it less safe: the user's groups come with the authentication query
(and follow changes made in the same session), revocations and role changes apply at the next request, and
pooled connections that the server closed are replaced without an error reaching the client."""

from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy import delete

from conftest import Server, free_port, portal, unique, write_config


def _membership(api, admin_token, group_id: int, user_id: int, add: bool) -> None:
    if add:
        status, body = api.post(f"/api/groups/{group_id}/users", admin_token, json={"userID": user_id})
    else:
        status, body = api.delete(f"/api/groups/{group_id}/users/{user_id}", admin_token)
    assert status == 200, body


def test_group_change_applies_at_the_next_request(api, admin_token, make_user):
    status, body = api.post("/api/groups", admin_token, json={"name": unique("team-")})
    assert status == 200, body
    group_id = body["data"]["id"]
    obj_id = unique()
    status, body = api.post("/api/sources", admin_token, json={"id": obj_id, "ra": 1.0, "dec": 2.0,
                                                               "group_ids": [group_id]})
    assert status == 200, body
    uid, token = make_user("Full user")
    assert api.get(f"/api/sources/{obj_id}", token)[0] in (403, 404)
    _membership(api, admin_token, group_id, uid, add=True)
    assert api.get(f"/api/sources/{obj_id}", token)[0] == 200
    _membership(api, admin_token, group_id, uid, add=False)
    assert api.get(f"/api/sources/{obj_id}", token)[0] in (403, 404)


def test_revoked_token_deleted_user_and_role_change_apply_at_once(api, db, admin_token, make_user):
    from astroportal.models import Token, User

    obj_id = unique()
    assert api.post("/api/sources", admin_token, json={"id": obj_id, "ra": 3.0, "dec": 4.0})[0] == 200
    # A role change: a View only user may not comment; made a Full user, the very next request may.
    uid, token = make_user("View only")
    assert api.post(f"/api/sources/{obj_id}/comments", token, json={"text": "hello"})[0] == 403
    status, body = api.post(f"/api/user/{uid}/roles", admin_token, json={"roleIds": ["Full user"]})
    assert status == 200, body
    assert api.post(f"/api/sources/{obj_id}/comments", token, json={"text": "hello"})[0] == 200
    # A revoked token: refused at the next request.
    assert api.get(f"/api/sources/{obj_id}", token)[0] == 200
    with db() as session:
        session.execute(delete(Token).where(Token.created_by_id == uid))
        session.commit()
    assert api.get(f"/api/sources/{obj_id}", token)[0] == 401
    # A deleted user's token: refused at the next request.
    uid2, token2 = make_user("Full user")
    assert api.get(f"/api/sources/{obj_id}", token2)[0] == 200
    with db() as session:
        session.execute(delete(User).where(User.id == uid2))
        session.commit()
    assert api.get(f"/api/sources/{obj_id}", token2)[0] == 401


def test_preloaded_groups_follow_changes_in_the_same_session(db, make_user):
    from astroportal.domain.access import user_group_ids
    from astroportal.domain.accounts import user_for_token
    from astroportal.models import Group, GroupUser

    uid, token = make_user("Full user")
    with db() as session:
        user = user_for_token(session, token)
        before = user_group_ids(session, user)
        assert before and "_group_ids_cache" in user.__dict__  # preloaded: no query of its own
        group = Group(name=unique("preload-"))
        session.add(group)
        session.flush()
        session.add(GroupUser(group_id=group.id, user_id=uid, admin=False, can_save=True))
        session.flush()  # through the unit of work
        assert user_group_ids(session, user) == before | {group.id}
        user = user_for_token(session, token)  # preloaded again, with the new membership
        session.execute(delete(GroupUser).where(GroupUser.user_id == uid, GroupUser.group_id == group.id))
        assert user_group_ids(session, user) == before  # through a bulk statement
        session.rollback()


@pytest.fixture
def own_server(pg, tmp_path):
    path = write_config(tmp_path / "c.yaml", pg.create_database("dropped_conns"), free_port())
    portal("migrate", config=path)
    portal("bootstrap", config=path)
    srv = Server(path)
    yield srv, path
    srv.stop()


def test_connections_closed_by_the_server_are_replaced(own_server, pg):
    from conftest import Api

    srv, path = own_server
    token = (path.parent / "var" / "admin_token").read_text().strip()
    api = Api(srv.url)
    obj_id = unique()
    assert api.post("/api/sources", token, json={"id": obj_id, "ra": 5.0, "dec": 6.0})[0] == 200
    for round_ in range(2):
        for _ in range(8):  # more requests than the pool holds: every pooled connection is used
            assert api.get(f"/api/sources/{obj_id}", token)[0] == 200
        # What a database restart or an idle timeout does to the pool: every connection ends under it.
        conn = psycopg2.connect(pg.url())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = 'dropped_conns' AND pid <> pg_backend_pid()")
            assert cur.rowcount >= 1
        conn.close()
        for i in range(8):
            status, body = api.get(f"/api/sources/{obj_id}", token)
            assert status == 200, f"round {round_}, request {i} after the drop: {status} {body}"
            status, body = api.post(f"/api/sources/{obj_id}/comments", token, json={"text": f"after drop {i}"})
            assert status == 200, f"round {round_}, comment {i} after the drop: {status} {body}"
