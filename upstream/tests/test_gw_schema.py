"""The schema of gravitational-wave events as objects and instruments see it: every object carries the depth-29
nested HEALPix index of its position (single writes, batch writes, moves, and rows that existed before the
migration), and instruments carry a validated field of view."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from conftest import free_port, unique, write_config
from test_candidates import new_filter
from test_sources import new_group


def expected(ra, dec):
    """The depth-29 nested index straight from astropy_healpix (what the portal must have stored)."""
    import astropy.units as u
    from astropy_healpix import lonlat_to_healpix

    return np.asarray(lonlat_to_healpix(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg, 2**29, order="nested"),
                      dtype=np.int64)


def stored(db, ids):
    from astroportal.models import Obj

    with db() as s:
        rows = {o.id: o for o in s.query(Obj).filter(Obj.id.in_(ids))}
        return [(rows[i].ra, rows[i].dec, rows[i].healpix) for i in ids]


def check(db, ids):
    rows = stored(db, ids)
    ra, dec, hp = (np.array([r[k] for r in rows]) for k in range(3))
    assert (hp == expected(ra, dec)).all()


@pytest.fixture(scope="module")
def writer(make_user, db):
    uid, token = make_user("Full user")
    group = new_group(db, uid)
    return {"token": token, "group": group, "filter": new_filter(db, group)}


def random_points(n, seed):
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    return ra, dec


def test_healpix29_helper_matches_astropy_healpix_for_random_points():
    from astroportal.gw.skymaps import healpix29

    ra, dec = random_points(2000, 1)
    assert (healpix29(ra, dec) == expected(ra, dec)).all()
    assert healpix29(float(ra[0]), float(dec[0])) == int(expected(ra[:1], dec[:1])[0])
    # the poles and ra=360 (the same place as ra=0) are indexed without error
    assert healpix29(360.0, 0.0) == healpix29(0.0, 0.0)
    assert 0 <= healpix29(0.0, 90.0) < 12 * 4**29 and 0 <= healpix29(0.0, -90.0) < 12 * 4**29


def test_single_source_and_candidate_posts_set_healpix(api, db, writer, admin_token):
    ra, dec = random_points(20, 2)
    ids = [unique() for _ in ra]
    for i, (obj_id, r, d) in enumerate(zip(ids, ra, dec)):
        if i % 2:
            status, body = api.post("/api/sources", writer["token"],
                                    json={"id": obj_id, "ra": r, "dec": d, "group_ids": [writer["group"]]})
        else:
            status, body = api.post("/api/candidates", writer["token"],
                                    json={"id": obj_id, "ra": r, "dec": d, "filter_ids": [writer["filter"]],
                                          "passed_at": "2026-05-01T00:00:00Z"})
        assert status == 200, body
    check(db, ids)


def test_an_object_added_through_the_orm_gets_its_index(db):
    from astroportal.models import Obj

    obj_id = unique()
    with db() as s:
        s.add(Obj(id=obj_id, ra=123.456, dec=-33.3))
        s.commit()
    check(db, [obj_id])


def test_batch_forms_set_healpix(api, db, writer):
    ra, dec = random_points(50, 3)
    src = [unique() for _ in range(25)]
    cand = [unique() for _ in range(25)]
    status, body = api.post("/api/sources", writer["token"], json=[
        {"id": i, "ra": r, "dec": d, "group_ids": [writer["group"]]} for i, r, d in zip(src, ra[:25], dec[:25])])
    assert status == 200, body
    status, body = api.post("/api/candidates", writer["token"], json=[
        {"id": i, "ra": r, "dec": d, "filter_ids": [writer["filter"]], "passed_at": "2026-05-01T00:00:00Z"}
        for i, r, d in zip(cand, ra[25:], dec[25:])])
    assert status == 200, body
    check(db, src + cand)


def test_a_moved_object_gets_the_index_of_its_new_position(api, db, writer, admin_token):
    obj_id, other = unique(), unique()
    for i in (obj_id, other):
        status, body = api.post("/api/sources", writer["token"], json={"id": i, "ra": 10.0, "dec": 20.0})
        assert status == 200, body
    before = stored(db, [obj_id])[0][2]
    # PATCH of one coordinate only
    status, body = api.patch(f"/api/sources/{obj_id}", admin_token, json={"dec": -45.5})
    assert status == 200, body
    ra, dec, hp = stored(db, [obj_id])[0]
    assert (ra, dec) == (10.0, -45.5) and hp != before
    check(db, [obj_id])
    # a manager's repeated save with another position moves the object too (single and batch forms)
    status, body = api.post("/api/sources", admin_token, json={"id": obj_id, "ra": 200.25, "dec": 5.0})
    assert status == 200, body
    status, body = api.post("/api/sources", admin_token, json=[{"id": other, "ra": 300.0, "dec": -70.0}])
    assert status == 200, body
    assert [r[:2] for r in stored(db, [obj_id, other])] == [(200.25, 5.0), (300.0, -70.0)]
    check(db, [obj_id, other])
    # a change of another field leaves the index alone
    status, body = api.patch(f"/api/sources/{obj_id}", admin_token, json={"redshift": 0.1})
    assert status == 200, body
    check(db, [obj_id])


def test_the_migration_backfills_healpix_of_existing_objects(pg, tmp_path):
    """Objects written before revision 0007 (more than one backfill batch of them) get their index."""
    from astroportal import config as portal_config, migrations
    from astroportal.db import engine_url

    cfg = portal_config.load(write_config(tmp_path / "c.yaml", pg.create_database("gw_backfill"), free_port()))
    migrations.upgrade(cfg, "0006")
    ra, dec = random_points(120_000, 4)
    engine = create_engine(engine_url(cfg.get("database.url")))
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO objs (id, ra, dec) SELECT 'O' || lpad(i::text, 7, '0'), r, d "
                              "FROM unnest(CAST(:ra AS float8[]), CAST(:dec AS float8[])) WITH ORDINALITY AS t(r, d, i)"),
                         {"ra": ra.tolist(), "dec": dec.tolist()})
        migrations.upgrade(cfg, "0007")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT ra, dec, healpix FROM objs ORDER BY id")).all()
            indexes = conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'objs'")).scalars().all()
    finally:
        engine.dispose()
    assert len(rows) == 120_000
    got = np.array([r[2] for r in rows], dtype=np.int64)
    assert (got == expected([r[0] for r in rows], [r[1] for r in rows])).all()
    assert "ix_objs_healpix" in indexes


# -- instruments' field of view ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def telescope_id(api, admin_token):
    status, body = api.post("/api/telescope", admin_token, json={
        "name": f"gwtel-{unique()}", "nickname": "gw", "diameter": 0.25, "lat": 43.75, "lon": 6.92, "elevation": 1270})
    assert status == 200, body
    return body["data"]["id"]


def test_field_of_view_is_stored_returned_and_changed(api, admin_token, telescope_id):
    name = f"cam-{unique()}"
    status, body = api.post("/api/instrument", admin_token, json={
        "name": name, "type": "imager", "telescope_id": telescope_id,
        "field_of_view": {"shape": "square", "side_deg": 1.9}})
    assert status == 200, body
    iid = body["data"]["id"]
    status, body = api.get(f"/api/instrument/{iid}", admin_token)
    assert body["data"]["field_of_view"] == {"shape": "square", "side_deg": 1.9}
    status, body = api.patch(f"/api/instrument/{iid}", admin_token,
                             json={"field_of_view": {"shape": "rectangle", "width_deg": 2, "height_deg": 1.5}})
    assert status == 200, body
    status, body = api.get("/api/instrument", admin_token, params={"name": name})
    assert body["data"][0]["field_of_view"] == {"shape": "rectangle", "width_deg": 2.0, "height_deg": 1.5}
    status, body = api.patch(f"/api/instrument/{iid}", admin_token, json={"field_of_view": None})
    assert status == 200, body
    assert api.get(f"/api/instrument/{iid}", admin_token)[1]["data"]["field_of_view"] is None


@pytest.mark.parametrize("fov, words", [
    ("1.9 deg", "must be an object"),
    ({"shape": "hexagon", "side_deg": 1}, "shape` must be one of square, rectangle, circle"),
    ({"shape": "square"}, "side_deg` must be a number"),
    ({"shape": "square", "side_deg": 0}, "> 0 and <= 180"),
    ({"shape": "circle", "radius_deg": 200}, "> 0 and <= 180"),
    ({"shape": "circle", "radius_deg": "1"}, "radius_deg` must be a number"),
    ({"shape": "rectangle", "width_deg": 1}, "height_deg` must be a number"),
    ({"shape": "square", "side_deg": 1, "radius_deg": 2}, "unknown: radius_deg"),
])
def test_a_bad_field_of_view_is_refused_and_nothing_is_written(api, admin_token, telescope_id, fov, words):
    name = f"cam-{unique()}"
    status, body = api.post("/api/instrument", admin_token, json={
        "name": name, "type": "imager", "telescope_id": telescope_id, "field_of_view": fov})
    assert status == 400 and words in body["message"], body
    assert api.get("/api/instrument", admin_token, params={"name": name})[1]["data"] == []
