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


def _classifications_of(db, obj_id: str):
    """({id: (class, probability, modified)}, {id: group ids}, [(kind, ids, group ids, probability) of the feed's
    classification events]) of an object."""
    from sqlalchemy import select

    from astroportal.models import Classification, LiveEvent, classification_groups

    with db() as s:
        rows = {c.id: (c.classification, c.probability, c.modified)
                for c in s.scalars(select(Classification).where(Classification.obj_id == obj_id))}
        links: dict[int, set[int]] = {}
        for cid, gid in s.execute(select(classification_groups.c.classification_id, classification_groups.c.group_id)
                                  .where(classification_groups.c.classification_id.in_(list(rows)))):
            links.setdefault(cid, set()).add(gid)
        events = [(e.kind, e.ids, e.group_ids, e.data.get("probability")) for e in s.scalars(
            select(LiveEvent).where(LiveEvent.obj_id == obj_id, LiveEvent.kind == "classification.added")
            .order_by(LiveEvent.id))]
    return rows, links, events


def test_classification_list_form_applies_its_items_in_order(api, db, crew, make_user):
    """Items about one classification are applied in order (the first creates it, the next ones change its
    probability and groups); the feed announces each new classification once; the same batch again writes
    nothing; another author's classification of the same class is theirs, never an update of the writer's."""
    from sqlalchemy import select

    from astroportal.models import GroupUser

    g1, g2 = crew["group"], new_group(db, crew["id"])
    obj_id = unique()
    assert api.post("/api/sources", crew["token"], json={"id": obj_id, "ra": 1, "dec": 2, "group_ids": [g1]})[0] == 200
    base = {"obj_id": obj_id, "taxonomy_id": crew["taxonomy"]}
    batch = [{**base, "classification": "Kilonova", "probability": 0.4, "group_ids": [g1]},
             {**base, "classification": "SN Ia"},
             {**base, "classification": "Kilonova", "probability": 0.65, "group_ids": [g1, g2]},
             {**base, "classification": "Kilonova"}]  # neither probability nor groups: both stay
    status, body = api.post("/api/classification", crew["token"], json=batch)
    assert status == 200, body
    kn, sn, *rest = body["data"]["classification_ids"]
    assert rest == [kn, kn] and sn != kn
    with db() as s:
        everyone = set(s.scalars(select(GroupUser.group_id).where(GroupUser.user_id == crew["id"])))
    rows, links, events = _classifications_of(db, obj_id)
    assert {i: r[:2] for i, r in rows.items()} == {kn: ("Kilonova", 0.65), sn: ("SN Ia", None)}
    assert links == {kn: {g1, g2}, sn: everyone}  # no groups given: every group of the writer's
    # One event per new classification, in the batch's order, shared with the groups it was created with; the
    # feed shows the probability the batch left.
    assert events == [("classification.added", [kn], [g1], 0.65), ("classification.added", [sn], sorted(everyone), None)]

    status, again = api.post("/api/classification", crew["token"], json=batch)
    assert status == 200 and again["data"]["classification_ids"] == [kn, sn, kn, kn]
    assert _classifications_of(db, obj_id) == (rows, links, events)

    status, body = api.post("/api/classification", crew["token"], json=[
        {**base, "classification": "Kilonova", "probability": 0.9, "group_ids": [g2]}])
    assert status == 200 and body["data"]["classification_ids"] == [kn]
    changed = _classifications_of(db, obj_id)
    assert changed[0][kn][:2] == ("Kilonova", 0.9) and changed[0][kn][2] != rows[kn][2] and changed[0][sn] == rows[sn]
    assert changed[1] == {kn: {g2}, sn: everyone} and changed[2] == events

    other, token = make_user("Full user")
    with db() as s:
        s.add(GroupUser(group_id=g1, user_id=other))
        s.commit()
    status, body = api.post("/api/classification", token, json=[
        {**base, "classification": "Kilonova", "probability": 0.1, "group_ids": [g1]}])
    assert status == 200 and body["data"]["classification_ids"][0] not in (kn, sn)
    assert _classifications_of(db, obj_id)[0][kn][:2] == ("Kilonova", 0.9)

    # an unknown (or unreadable) object refuses the batch, naming the item; nothing is written
    status, body = api.post("/api/classification", crew["token"], json=[
        {**base, "classification": "SN Ia", "probability": 0.2}, {**base, "obj_id": unique(), "classification": "SN Ia"}])
    assert status == 404 and "item 1" in body["message"]
    assert _classifications_of(db, obj_id)[0][sn][1] is None


def test_annotation_list_form_groups(api, db, crew):
    """An annotation of the list form is shared with the writer's groups by default; given groups replace its
    groups without touching the annotation; new data replaces its data."""
    from sqlalchemy import select

    from astroportal.models import Annotation, GroupUser, annotation_groups

    g1, g2 = crew["group"], new_group(db, crew["id"])
    obj_id = unique()
    assert api.post("/api/sources", crew["token"], json={"id": obj_id, "ra": 1, "dec": 2, "group_ids": [g1]})[0] == 200

    def state():
        with db() as s:
            row = s.scalars(select(Annotation).where(Annotation.obj_id == obj_id)).one()
            groups = set(s.scalars(select(annotation_groups.c.group_id).where(annotation_groups.c.annotation_id == row.id)))
            return row.id, row.data, row.modified, groups

    item = {"obj_id": obj_id, "origin": "Fink", "data": {"rf_kn_vs_nonkn": 0.25, "cls": "KN"}}
    status, body = api.post("/api/annotations", crew["token"], json=[item])
    assert status == 200, body
    with db() as s:
        everyone = set(s.scalars(select(GroupUser.group_id).where(GroupUser.user_id == crew["id"])))
    first = state()
    assert first[0] == body["data"]["ids"][0] and first[1] == item["data"] and first[3] == everyone
    status, body = api.post("/api/annotations", crew["token"], json=[{**item, "group_ids": [g2]}])
    assert status == 200 and body["data"]["ids"] == [first[0]]
    assert state() == (*first[:3], {g2})
    status, body = api.post("/api/annotations", crew["token"], json=[{**item, "data": {"x": 1}, "group_ids": [g1]}])
    assert status == 200 and body["data"]["ids"] == [first[0]]
    now = state()
    assert now[1] == {"x": 1} and now[2] != first[2] and now[3] == {g1}
