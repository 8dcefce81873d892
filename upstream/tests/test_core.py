"""The core: serving, the migration guard, bootstrap, the error envelope and body limits."""

import os
import stat

from conftest import free_port, portal, write_config


def test_sysinfo_answers_envelope(api):
    status, body = api.get("/api/sysinfo")
    assert status == 200
    assert body["status"] == "success" and "version" in body["data"]


def test_unknown_api_route_is_json_404(api):
    status, body = api.get("/api/no_such_thing")
    assert status == 404
    assert body["status"] == "error" and "no such API route" in body["message"]


def test_admin_token_file_is_private_and_works(cfg, admin_token, api):
    from astroportal.bootstrap import token_file

    mode = stat.S_IMODE(os.stat(token_file(cfg)).st_mode)
    assert mode == 0o600
    status, body = api.get("/api/sysinfo", admin_token)
    assert status == 200


def test_malformed_and_unknown_tokens_get_401(api):
    status, body = api.request("GET", "/api/sources", headers={"Authorization": "Bearer"})
    assert status == 401 and "Authorization: token" in body["message"]
    status, body = api.get("/api/sources", "not-a-real-token")
    assert status == 401 and "invalid API token" in body["message"]


def test_refusals_keep_the_connection_alive(api, admin_token):
    """A 401 or a 404 must not close a kept-alive connection (a broker client reuses one for hours)."""
    for _ in range(100):
        assert api.get("/api/no_such_thing", admin_token)[0] == 404
        assert api.get("/api/sources", "not-a-real-token")[0] == 401
        assert api.get("/api/sysinfo")[0] == 200


def test_serve_refuses_unmigrated_database(pg, tmp_path):
    path = write_config(tmp_path / "c.yaml", pg.create_database("unmigrated"), free_port())
    result = portal("serve", config=path, check=False)
    assert result.returncode == 2
    assert "refusing to serve" in result.stderr and "migrate" in result.stderr


def test_invalid_config_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  port: 5000\n  host: [unclosed\n")
    result = portal("migrate", config=bad, check=False)
    assert result.returncode == 2
    assert f"{bad}:" in result.stderr and "invalid YAML" in result.stderr


def test_token_user_holds_exactly_their_roles_acls(db, make_user):
    """Authentication preloads ACLs in one query; each user must get their own, not everyone's."""
    from astroportal.domain.accounts import user_for_token
    from astroportal.permissions import ROLES

    tokens = {role: make_user(role)[1] for role in ROLES}
    for role, token in tokens.items():
        with db() as session:
            user = user_for_token(session, token)
            assert user.acl_names == set(ROLES[role]), role
            assert user.is_system_admin == (role == "Super admin")


def test_view_only_token_cannot_write(api, make_user):
    _, token = make_user("View only")
    status, body = api.post("/api/sources", token, json={"id": "ZTF26viewonly", "ra": 1.0, "dec": 2.0})
    assert status == 403 and "Upload data" in body["message"]



def test_portal_connections_run_without_jit_unless_configured(db, cfg):
    """`database.jit: false` (the default) reaches every pooled connection; `true` leaves the server's setting."""
    import copy

    import psycopg2.extensions
    from sqlalchemy import text

    from astroportal.config import Config
    from astroportal.db import get_engine

    with db() as session:
        assert session.execute(text("SHOW jit")).scalar() == "off"
    on = Config(copy.deepcopy(dict(cfg)))
    on["database"]["jit"] = True
    on["database"]["url"] = cfg.get("database.url") + "?application_name=jit-on"  # its own engine and pool
    engine = get_engine(on)
    off = Config(copy.deepcopy(dict(cfg)))
    off["database"]["url"] = cfg.get("database.url") + "?application_name=jit-off"
    fresh = get_engine(off).raw_connection()
    try:
        # the SET is committed when the connection is made: a new connection is handed out outside a transaction
        assert fresh.driver_connection.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        fresh.close()
        with engine.connect() as connection:
            assert connection.execute(text("SHOW jit")).scalar() == "on"  # PostgreSQL's default
    finally:
        engine.dispose()
        get_engine(off).dispose()
