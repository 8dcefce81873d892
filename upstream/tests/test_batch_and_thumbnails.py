"""The list forms of POST /api/sources, /api/candidates, /api/classification and /api/thumbnail (one
transaction, all or nothing), and thumbnails: stored as received, rendered to PNG on first view, on the page."""

from __future__ import annotations

import base64
import gzip
import io

import numpy as np
import pytest
import requests

from conftest import unique
from test_candidates import candidate_rows, new_filter
from test_sources import count_rows, new_group


@pytest.fixture(scope="module")
def crew(make_user, db, api, admin_token):
    uid, token = make_user("Full user")
    group = new_group(db, uid)
    status, body = api.post("/api/taxonomy", admin_token, json={
        "name": f"tax-{unique()}", "version": "1", "group_ids": [group],
        "hierarchy": {"class": "Transient", "subclasses": [{"class": "Kilonova"}, {"class": "SN Ia"}]}})
    assert status == 200, body
    return {"id": uid, "token": token, "group": group, "filter": new_filter(db, group),
            "taxonomy": body["data"]["taxonomy_id"]}


def fits_gz(seed: int = 1) -> bytes:
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    image = rng.normal(100, 5, (63, 63)).astype("float32")
    image[30:33, 30:33] += 400
    image[0, 0] = np.nan
    buf = io.BytesIO()
    fits.PrimaryHDU(image).writeto(buf)
    return gzip.compress(buf.getvalue())


def test_sources_and_candidates_list_forms_are_idempotent(api, db, crew):
    from astroportal.models import Obj, Source

    ids = [unique() for _ in range(3)]
    body = [{"id": i, "ra": 10.0 + n, "dec": -5.0, "group_ids": [crew["group"]], "origin": "Fink"}
            for n, i in enumerate(ids)]
    for _ in range(2):
        status, answer = api.post("/api/sources", crew["token"], json=body)
        assert status == 200, answer
        assert [a["id"] for a in answer["data"]] == ids
    assert all(count_rows(db, Source, obj_id=i) == 1 for i in ids)
    cands = [{"id": i, "filter_ids": [crew["filter"]], "passed_at": "2026-05-01T00:00:00Z", "passing_alert_id": n}
             for n, i in enumerate(ids)]
    first = api.post("/api/candidates", crew["token"], json=cands)
    again = api.post("/api/candidates", crew["token"], json=cands)
    assert first[0] == 200 and first == again
    assert all(len(candidate_rows(db, i)) == 1 for i in ids)
    with db() as s:
        assert s.get(Obj, ids[2]).ra == 12.0


def test_list_forms_store_every_field_as_sent_and_answer_in_the_batchs_order(api, db, crew):
    """The batch writers send each column as one array literal: quoting, NULLs, arrays, times and the order of
    the ids must come out as the single forms write them."""
    from sqlalchemy import select

    from astroportal.gw.skymaps import healpix29
    from astroportal.models import Candidate, LiveEvent, Obj

    ids = [unique() for _ in range(3)]
    awkward = ['a "quoted", {braced} name', "back\\slash", "NULL", "é ∞"]
    body = [{"id": ids[0], "ra": 359.999999, "dec": -89.5, "alias": awkward, "origin": 'Fink "v2"',
             "redshift": 0.0123456789012345, "group_ids": [crew["group"]]},
            {"id": ids[1], "ra": 0.0, "dec": 0.0, "alias": [], "group_ids": [crew["group"]]},
            {"id": ids[2], "ra": 180.25, "dec": 45.0, "redshift": None, "origin": None, "group_ids": [crew["group"]]}]
    status, answer = api.post("/api/sources", crew["token"], json=body)
    assert status == 200, answer
    assert [(a["id"], a["created"]) for a in answer["data"]] == [(i, True) for i in ids]
    with db() as s:
        rows = {o.id: o for o in s.scalars(select(Obj).where(Obj.id.in_(ids)))}
        assert rows[ids[0]].alias == awkward and rows[ids[0]].origin == 'Fink "v2"'
        assert rows[ids[0]].redshift == 0.0123456789012345 and rows[ids[0]].ra == 359.999999
        assert rows[ids[1]].alias == [] and rows[ids[1]].origin is None and rows[ids[1]].redshift is None
        assert rows[ids[2]].alias is None and rows[ids[2]].altdata is None
        assert all(o.healpix == healpix29(o.ra, o.dec) and o.created_at is not None for o in rows.values())
        events = s.scalars(select(LiveEvent).where(LiveEvent.obj_id.in_(ids)).order_by(LiveEvent.id)).all()
    # One event per object, in the batch's order, with the object's position and its JSON data.
    assert [(e.kind, e.obj_id, e.group_ids, e.ids) for e in events] == [
        ("source.saved", i, [crew["group"]], []) for i in ids]
    assert (events[0].ra, events[0].dec, events[0].user_id) == (359.999999, -89.5, crew["id"])
    assert events[0].data == {"url": f"/source/{ids[0]}", "summary": f"{ids[0]} saved to a group"}

    big = 2**53 + 1
    cands = [{"id": ids[2], "filter_ids": [crew["filter"]], "passed_at": "2026-05-01T02:00:00.123456+02:00",
              "passing_alert_id": big},
             {"id": ids[0], "filter_ids": [crew["filter"]], "passed_at": "2026-05-01T00:00:00Z"}]
    status, answer = api.post("/api/candidates", crew["token"], json=cands)
    assert status == 200, answer
    with db() as s:
        got = {r.obj_id: r for r in s.scalars(select(Candidate).where(Candidate.obj_id.in_(ids)))}
    assert [a["ids"] for a in answer["data"]] == [[got[ids[2]].id], [got[ids[0]].id]]
    assert str(got[ids[2]].passed_at) == "2026-05-01 00:00:00.123456" and got[ids[2]].passing_alert_id == big
    assert got[ids[0]].passing_alert_id is None and got[ids[0]].uploader_id == crew["id"]


def test_a_bad_item_refuses_the_whole_batch_naming_its_index(api, db, crew):
    from astroportal.models import Obj

    good, other = unique(), unique()
    body = [{"id": good, "ra": 1.0, "dec": 1.0, "group_ids": [crew["group"]]},
            {"id": other, "ra": 400.0, "dec": 1.0, "group_ids": [crew["group"]]}]
    status, answer = api.post("/api/sources", crew["token"], json=body)
    assert status == 400
    assert "item 1" in answer["message"] and "`ra`" in answer["message"]
    with db() as s:
        assert s.get(Obj, good) is None
    assert api.post("/api/sources", crew["token"], json=[])[0] == 400
    assert api.post("/api/sources", crew["token"], json=[1, 2])[0] == 400
    assert api.post("/api/sources", crew["token"], json=[{"id": good, "ra": 1, "dec": 1}] * 1001)[0] == 400


def test_classification_list_form_updates_instead_of_duplicating(api, db, crew):
    from astroportal.models import Classification

    obj_id = unique()
    assert api.post("/api/sources", crew["token"], json={"id": obj_id, "ra": 1, "dec": 2,
                                                         "group_ids": [crew["group"]]})[0] == 200
    item = {"obj_id": obj_id, "taxonomy_id": crew["taxonomy"], "classification": "Kilonova", "probability": 0.4,
            "group_ids": [crew["group"]]}
    status, first = api.post("/api/classification", crew["token"], json=[item, {**item, "classification": "SN Ia"}])
    assert status == 200, first
    status, again = api.post("/api/classification", crew["token"], json=[{**item, "probability": 0.7}])
    assert status == 200 and again["data"]["classification_ids"][0] == first["data"]["classification_ids"][0]
    with db() as s:
        rows = s.query(Classification.classification, Classification.probability).filter_by(obj_id=obj_id).all()
    assert sorted(rows) == [("Kilonova", 0.7), ("SN Ia", 0.4)]
    # the single form keeps SkyPortal's behaviour: a new classification each time
    assert api.post("/api/classification", crew["token"], json=item)[0] == 200
    assert count_rows(db, Classification, obj_id=obj_id) == 3


def test_thumbnails_stored_as_received_rendered_on_view_and_shown(api, db, crew, server, cfg, make_user):
    from astroportal.domain.thumbnail_packs import cache_path
    from astroportal.domain.thumbnails import stored_bytes
    from astroportal.models import Thumbnail

    outsider = make_user("Full user")[1]

    obj_id = unique()
    assert api.post("/api/sources", crew["token"], json={"id": obj_id, "ra": 1, "dec": 2,
                                                         "group_ids": [crew["group"]]})[0] == 200
    raws = {t: fits_gz(n) for n, t in enumerate(("new", "ref", "sub"))}
    body = [{"obj_id": obj_id, "ttype": t, "data": base64.b64encode(r).decode(), "origin": "ZTF"}
            for t, r in raws.items()]
    status, answer = api.post("/api/thumbnail", crew["token"], json=body)
    assert status == 200, answer
    ids = answer["data"]["ids"]
    assert api.post("/api/thumbnail", crew["token"], json=body)[1]["data"]["ids"] == ids
    assert count_rows(db, Thumbnail, obj_id=obj_id) == 3
    with db() as s:
        row = s.get(Thumbnail, ids[0])
    assert stored_bytes(row, cfg.var_dir / "thumbnails") == raws["new"]
    # the single form, SkyPortal's shape; bad data is refused with a clear message
    status, one = api.post("/api/thumbnail", crew["token"], json=body[0])
    assert status == 200 and one["data"]["id"] == ids[0]
    status, bad = api.post("/api/thumbnail", crew["token"], json={**body[0], "data": "bm90IGFuIGltYWdl"})
    assert status == 400 and "PNG" in bad["message"]
    status, bad = api.post("/api/thumbnail", crew["token"], json={**body[0], "ttype": "xyz"})
    assert status == 400 and "ttype" in bad["message"]

    png = requests.get(f"{server.url}/thumbnails/{ids[0]}.png",
                       headers={"Authorization": f"token {crew['token']}"}, timeout=30)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert cache_path(cfg.var_dir / "thumbnails", row.id, row.sha256).exists()
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png.content)))
    # the bright source sits in the middle, brighter than the background
    assert img[115:125, 115:125].mean() > img[:40, :40].mean() + 50

    assert requests.get(f"{server.url}/thumbnails/{ids[0]}.png", timeout=30).status_code == 401
    assert requests.get(f"{server.url}/thumbnails/{ids[0]}.png", timeout=30,
                        headers={"Authorization": f"token {outsider}"}).status_code == 404
