"""Group boundaries: a user learns nothing of an object none of whose groups they can read, through any route.

For each route that takes an object id, the answer for a hidden object (saved, with a candidate pass, in
another group only) is compared with the answer for an id that does not exist; afterwards the hidden object
is checked to be unchanged and still invisible. The outsider is a Group admin (who holds "Manage sources"),
so that no ACL of theirs can widen what they see.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

import pytest
from sqlalchemy import select

from conftest import unique

HIDDEN_RA, HIDDEN_DEC, HIDDEN_Z = 187.25, -31.5, 0.0321


def new_group(db, *user_ids: int) -> int:
    from astroportal.models import Group, GroupUser

    with db() as s:
        g = Group(name=f"gb-{uuid.uuid4().hex[:10]}")
        s.add(g)
        s.flush()
        for uid in user_ids:
            s.add(GroupUser(group_id=g.id, user_id=uid, admin=True))
        s.commit()
        return g.id


def new_filter(db, group_id: int) -> int:
    from astroportal.models import Filter, Stream

    with db() as s:
        stream = Stream(name=f"gb-stream-{uuid.uuid4().hex[:8]}")
        s.add(stream)
        s.flush()
        f = Filter(name="gb filter", stream_id=stream.id, group_id=group_id)
        s.add(f)
        s.commit()
        return f.id


def obj_row(db, obj_id: str):
    from astroportal.models import Obj

    with db() as s:
        o = s.get(Obj, obj_id)
        return None if o is None else (o.ra, o.dec, o.redshift, o.origin, o.alias)


def records_of(db, obj_id: str) -> dict:
    """How many rows of each kind name the object (nothing may be added through a refused write)."""
    from sqlalchemy import func

    from astroportal.models import Candidate, Classification, Comment, Listing, Photometry, Source

    with db() as s:
        return {
            m.__name__: s.scalar(select(func.count()).select_from(m).where(m.obj_id == obj_id))
            for m in (Candidate, Classification, Comment, Listing, Photometry, Source)
        }


@pytest.fixture(scope="module")
def world(db, make_user, server):
    """An owner's private group with a hidden object; an outsider (Group admin) with a group and filter of their own."""
    from astroportal.models import Candidate, Instrument, Obj, Source, Telescope

    owner, owner_token = make_user("Full user")
    outsider, outsider_token = make_user("Group admin")
    owners_group = new_group(db, owner)
    outsiders_group = new_group(db, outsider)
    owners_filter = new_filter(db, owners_group)
    hidden = unique("ZTF")
    tag = uuid.uuid4().hex[:6]
    with db() as s:
        s.add(Obj(id=hidden, ra=HIDDEN_RA, dec=HIDDEN_DEC, redshift=HIDDEN_Z, origin="secret survey", alias=["AT secret"]))
        s.flush()
        s.add(Source(obj_id=hidden, group_id=owners_group, saved_by_id=owner))
        s.add(Candidate(obj_id=hidden, filter_id=owners_filter, passed_at=datetime(2026, 1, 1)))
        tel = Telescope(name=f"GB scope {tag}", nickname=f"GB-{tag}", diameter=1.0, lat=-29.0, lon=-70.7, elevation=2400)
        s.add(tel)
        s.flush()
        inst = Instrument(name=f"GB cam {tag}", type="imager", filters=[], telescope_id=tel.id)
        s.add(inst)
        s.commit()
        instrument, telescope = inst.id, tel.id
    with db() as s:
        from astroportal.models import User

        outsider_name = s.get(User, outsider).username
    return {
        "owner": owner_token,
        "outsider_name": outsider_name,
        "token": outsider_token,
        "group": outsiders_group,
        "filter": new_filter(db, outsiders_group),
        "hidden": hidden,
        "instrument": instrument,
        "telescope": telescope,
    }


def requests_for(w: dict, obj_id: str) -> list[tuple[str, str, dict | None]]:
    """(method, path, json body) of every route that names an object, for `obj_id`."""
    point = {"obj_id": obj_id, "mjd": 60000.5, "instrument_id": w["instrument"], "filter": "ztfg", "mag": 19.0,
             "magerr": 0.1, "limiting_mag": 21.0, "magsys": "ab", "group_ids": [w["group"]]}
    return [
        ("GET", f"/api/sources/{obj_id}", None),
        ("GET", f"/api/candidates/{obj_id}", None),
        ("GET", f"/api/sources/{obj_id}/photometry", None),
        ("GET", f"/api/sources/{obj_id}/classifications", None),
        ("GET", f"/api/sources/{obj_id}/comments", None),
        ("GET", f"/api/internal/airmass/{obj_id}?telescope_id={w['telescope']}", None),
        ("POST", "/api/sources", {"id": obj_id, "group_ids": [w["group"]]}),
        ("POST", "/api/sources", {"id": obj_id, "group_ids": [w["group"]], "redshift": 3.0}),
        ("POST", "/api/candidates", {"id": obj_id, "filter_ids": [w["filter"]], "passed_at": "2026-02-01T00:00:00"}),
        ("PATCH", f"/api/sources/{obj_id}", {"redshift": 2.0}),
        ("DELETE", f"/api/sources/{obj_id}", None),
        ("POST", "/api/source_groups", {"objId": obj_id, "inviteGroupIds": [w["group"]]}),
        ("POST", f"/api/sources/{obj_id}/comments", {"text": "hello", "group_ids": [w["group"]]}),
        ("POST", "/api/classification", {"obj_id": obj_id, "classification": "Kilonova", "taxonomy_id": 1}),
        ("POST", "/api/listing", {"obj_id": obj_id, "list_name": "favorites"}),
        ("POST", "/api/photometry", point),
        ("PUT", "/api/photometry", point),
    ]


def test_a_hidden_object_is_answered_like_an_absent_one(api, db, world):
    hidden = world["hidden"]
    absent = unique("ZTF")  # same length and shape as the hidden id
    before = (obj_row(db, hidden), records_of(db, hidden))
    differences = []
    for (method, path, body), (_, absent_path, absent_body) in zip(requests_for(world, hidden), requests_for(world, absent)):
        kwargs = {} if body is None else {"json": body}
        status, answer = api.request(method, path, world["token"], **kwargs)
        kwargs = {} if absent_body is None else {"json": absent_body}
        absent_status, absent_answer = api.request(method, absent_path, world["token"], **kwargs)
        message = answer.get("message", "") if isinstance(answer, dict) else str(answer)
        absent_message = absent_answer.get("message", "") if isinstance(absent_answer, dict) else str(absent_answer)
        if (status, message.replace(hidden, "ID")) != (absent_status, absent_message.replace(absent, "ID")):
            differences.append(f"{method} {path}: hidden {status} {message!r} / absent {absent_status} {absent_message!r}")
        assert status >= 400, f"{method} {path} succeeded on a hidden object: {answer}"
        assert str(HIDDEN_RA) not in str(answer) and str(HIDDEN_Z) not in str(answer)
    assert not differences, "\n".join(differences)
    assert (obj_row(db, hidden), records_of(db, hidden)) == before


def test_the_candidate_write_of_the_report_no_longer_reveals_the_object(api, server, world):
    """The reported attack: a candidate through one's own filter, without a position, then reading the object."""
    hidden = world["hidden"]
    status, body = api.post("/api/candidates", world["token"], json={
        "id": hidden, "filter_ids": [world["filter"]], "passed_at": "2026-03-01T00:00:00"})
    assert status == 400 and "missing required field `ra`" in body["message"]
    assert api.get(f"/api/candidates/{hidden}", world["token"])[0] == 404
    assert api.get(f"/api/sources/{hidden}", world["token"])[0] == 404
    candidates = api.get("/api/candidates?numPerPage=500", world["token"])[1]["data"]["candidates"]
    assert hidden not in [c["id"] for c in candidates]


def test_an_independent_detection_at_the_same_position_is_saved_without_changing_the_object(api, db, world):
    """A broker of the outsider's group sees the same object in its own alert: the save and the candidate pass
    are recorded, but the object's stored fields stay the owner's."""
    from astroportal.models import Obj, Source

    hidden = unique("ZTF")
    with db() as s:
        owners = s.scalar(select(Source.group_id).where(Source.obj_id == world["hidden"]))
        s.add(Obj(id=hidden, ra=HIDDEN_RA, dec=HIDDEN_DEC, redshift=HIDDEN_Z, origin="secret survey"))
        s.flush()
        s.add(Source(obj_id=hidden, group_id=owners))
        s.commit()
    before = obj_row(db, hidden)

    # Another position: the id belongs to another object (nothing of it is told), and nothing is written.
    status, body = api.post("/api/sources", world["token"], json={
        "id": hidden, "ra": HIDDEN_RA + 1, "dec": HIDDEN_DEC, "redshift": 1.5, "group_ids": [world["group"]]})
    assert status == 409, body
    assert str(HIDDEN_RA) not in body["message"] and str(HIDDEN_Z) not in body["message"]
    assert api.get(f"/api/sources/{hidden}", world["token"])[0] == 404

    # 0.5 arcsec away: the same object.
    status, body = api.post("/api/candidates", world["token"], json={
        "id": hidden, "ra": HIDDEN_RA + 0.5 / 3600, "dec": HIDDEN_DEC, "redshift": 1.5,
        "filter_ids": [world["filter"]], "passed_at": "2026-03-02T00:00:00"})
    assert status == 200, body
    status, body = api.post("/api/sources", world["token"], json={
        "id": hidden, "ra": HIDDEN_RA, "dec": HIDDEN_DEC + 0.3 / 3600, "redshift": 1.5, "origin": "mine",
        "group_ids": [world["group"]]})
    assert status == 200, body
    assert obj_row(db, hidden) == before


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()


def list_requests_for(w: dict, obj_id: str) -> list[tuple[str, dict]]:
    """(path, item) of every write with a list form (the broker's batches), for `obj_id`."""
    return [
        ("/api/sources", {"id": obj_id, "group_ids": [w["group"]]}),
        ("/api/sources", {"id": obj_id, "group_ids": [w["group"]], "redshift": 3.0}),
        ("/api/candidates", {"id": obj_id, "filter_ids": [w["filter"]], "passed_at": "2026-02-01T00:00:00"}),
        ("/api/classification", {"obj_id": obj_id, "classification": "Kilonova", "taxonomy_id": 1}),
        ("/api/thumbnail", {"obj_id": obj_id, "ttype": "new", "data": PNG}),
    ]


def test_list_forms_answer_a_hidden_object_as_the_single_forms_do(api, db, world):
    """A batch naming a hidden object is refused exactly as the single form refuses that object, and as a batch
    naming an absent object; nothing is written."""
    hidden, absent = world["hidden"], unique("ZTF")
    before = (obj_row(db, hidden), records_of(db, hidden))
    differences = []
    for (path, item), (_, absent_item) in zip(list_requests_for(world, hidden), list_requests_for(world, absent)):
        single = api.post(path, world["token"], json=item)
        alone = api.post(path, world["token"], json=[item])
        absent_batch = api.post(path, world["token"], json=[absent_item])
        assert single[0] >= 400, f"{path} succeeded on a hidden object: {single}"
        assert alone[0] >= 400, f"the list form of {path} succeeded on a hidden object: {alone}"
        expected = (single[0], f"item 0 of the batch: {single[1]['message']}; nothing was written")
        if (alone[0], alone[1].get("message")) != expected:
            differences.append(f"{path} list: {alone[0]} {alone[1].get('message')!r} / single form {expected!r}")
        if (alone[0], alone[1].get("message", "").replace(hidden, "ID")) != (
                absent_batch[0], absent_batch[1].get("message", "").replace(absent, "ID")):
            differences.append(f"{path}: hidden {alone} / absent {absent_batch}")
        assert str(HIDDEN_RA) not in str(alone[1]) and str(HIDDEN_Z) not in str(alone[1])
    assert not differences, "\n".join(differences)
    assert (obj_row(db, hidden), records_of(db, hidden)) == before


def test_list_forms_record_an_independent_detection_without_changing_the_object(api, db, world):
    """The broker's batches follow the single forms: another position is a 409 for its item (and nothing of
    the batch is written); the same position records the save and the pass, and the object keeps its fields."""
    from astroportal.models import Obj, Source

    hidden, mine = unique("ZTF"), unique("ZTF")
    with db() as s:
        owners = s.scalar(select(Source.group_id).where(Source.obj_id == world["hidden"]))
        s.add(Obj(id=hidden, ra=HIDDEN_RA, dec=HIDDEN_DEC, redshift=HIDDEN_Z, origin="secret survey"))
        s.flush()
        s.add(Source(obj_id=hidden, group_id=owners))
        s.commit()
    before = (obj_row(db, hidden), records_of(db, hidden))
    own = {"id": mine, "ra": 10.0, "dec": 10.0, "group_ids": [world["group"]]}

    status, body = api.post("/api/sources", world["token"], json=[own, {
        "id": hidden, "ra": HIDDEN_RA + 1, "dec": HIDDEN_DEC, "redshift": 1.5, "group_ids": [world["group"]]}])
    assert status == 409 and body["message"].startswith("item 1 of the batch: the object id"), body
    assert str(HIDDEN_RA) not in body["message"] and str(HIDDEN_Z) not in body["message"]
    assert (obj_row(db, hidden), records_of(db, hidden)) == before and obj_row(db, mine) is None

    status, body = api.post("/api/candidates", world["token"], json=[{
        "id": hidden, "ra": HIDDEN_RA + 0.5 / 3600, "dec": HIDDEN_DEC, "redshift": 1.5,
        "filter_ids": [world["filter"]], "passed_at": "2026-03-02T00:00:00"}])
    assert status == 200, body
    status, body = api.post("/api/sources", world["token"], json=[own, {
        "id": hidden, "ra": HIDDEN_RA, "dec": HIDDEN_DEC + 0.3 / 3600, "redshift": 1.5, "origin": "mine",
        "alias": ["AT mine"], "group_ids": [world["group"]]}])
    assert status == 200, body
    assert obj_row(db, hidden) == before[0]
    after = records_of(db, hidden)
    assert (after["Candidate"], after["Source"]) == (before[1]["Candidate"] + 1, before[1]["Source"] + 1)


def test_list_forms_change_a_shared_object_only_as_the_single_form_may(api, db, world):
    """Scope OBJECT (may_edit_obj) on the list form: an object also in a group the writer does not administer
    keeps its fields, even empty ones, whichever form writes; one of the writer's own groups only is filled in."""
    from astroportal.models import Obj, Source

    shared, own = unique("ZTF"), unique("ZTF")
    with db() as s:
        owners = s.scalar(select(Source.group_id).where(Source.obj_id == world["hidden"]))
        s.add_all([Obj(id=shared, ra=20.0, dec=20.0), Obj(id=own, ra=21.0, dec=20.0)])
        s.flush()
        s.add_all([Source(obj_id=shared, group_id=owners), Source(obj_id=shared, group_id=world["group"]),
                   Source(obj_id=own, group_id=world["group"])])
        s.commit()
    items = [{"id": o, "redshift": 0.5, "origin": "broker", "group_ids": [world["group"]]} for o in (shared, own)]
    for body in (items[0], items):
        status, answer = api.post("/api/sources", world["token"], json=body)
        assert status == 200, answer
        assert obj_row(db, shared) == (20.0, 20.0, None, None, None)
    assert obj_row(db, own) == (21.0, 20.0, 0.5, "broker", None)


def test_pages_answer_a_hidden_object_like_an_absent_one(server, world):
    import requests

    browser = requests.Session()
    assert browser.get(f"{server.url}/debug_login", params={"username": world["outsider_name"]},
                       allow_redirects=False, timeout=30).status_code == 302
    hidden, absent = world["hidden"], unique("ZTF")
    page = browser.get(f"{server.url}/source/{hidden}", timeout=30)
    missing = browser.get(f"{server.url}/source/{absent}", timeout=30)
    assert page.status_code == missing.status_code == 404
    assert page.text.replace(hidden, "ID") == missing.text.replace(absent, "ID")
