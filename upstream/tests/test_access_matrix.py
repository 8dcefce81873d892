"""Every cell of the access matrix: each role against each mutating route, with the thing the route acts on
in the caller's group, in another group, and absent. The expected answer of each cell is derived from
astroportal/access_rules.py (the table the handlers read), so the test checks the table and the code agree.

- "mine": the caller's own group, of which the Group admin is the admin (their "Manage ..." ACLs count there);
  "member": a group every caller is a plain member of (nobody's "Manage ..." ACLs count there). Things are
  made by another user (the "author"), so that no cell is allowed through authorship.
- "other": a private group the caller is not in. A thing there is refused exactly as an absent one is (same
  status): the caller learns nothing of it. A write aimed at that group (a save, a filter) is refused (403).
- Every allowed cell must answer 2xx; every refused one 403, or 404/400 for an absent or hidden thing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from sqlalchemy import select

from astroportal import access_rules as ar
from astroportal.permissions import ROLES

ROLE_NAMES = ["Super admin", "Group admin", "Full user", "View only"]
PLACES = ["mine", "member", "other", "absent"]
MISSING = 999999999
HIERARCHY = {"class": "Transient", "subclasses": [{"class": "Kilonova"}, {"class": "SN"}]}


def tag() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class Call:
    url: str
    body: dict | list | None = None
    # The thing is hidden in "other": its refusal must be the absent thing's (404, or 400 for a body field).
    hidden: bool = True


class World:
    """Set-up straight in the database, so that each cell acts on a thing of its own."""

    def __init__(self, db, make_user, api, admin_token):
        from astroportal.models import Group, GroupUser, Stream, Taxonomy, taxonomy_groups

        self.db, self.api, self.admin = db, api, admin_token
        self.author, _ = make_user("Full user")
        self.actors: dict[str, tuple[int, str]] = {role: make_user(role) for role in ROLE_NAMES}
        with db() as s:
            self.stream = Stream(name=f"matrix-{tag()}")
            s.add(self.stream)
            other = Group(name=f"matrix-other-{tag()}", private=True)
            s.add(other)
            s.flush()
            s.add(GroupUser(group_id=other.id, user_id=self.author, admin=True))
            self.home: dict[str, int] = {}
            for role, (uid, _) in self.actors.items():
                g = Group(name=f"matrix-{role.replace(' ', '-')}-{tag()}", private=True)
                s.add(g)
                s.flush()
                s.add(GroupUser(group_id=g.id, user_id=uid, admin=(role == "Group admin")))
                s.add(GroupUser(group_id=g.id, user_id=self.author))
                self.home[role] = g.id
            self.other = other.id
            shared = Group(name=f"matrix-shared-{tag()}", private=True)
            s.add(shared)
            s.flush()
            s.add(GroupUser(group_id=shared.id, user_id=self.author, admin=True))
            for uid, _ in self.actors.values():
                s.add(GroupUser(group_id=shared.id, user_id=uid))
            self.shared = shared.id
            all_groups = [*self.home.values(), other.id, shared.id]
            s.execute(
                __import__("astroportal.models", fromlist=["group_streams"]).group_streams.insert(),
                [{"group_id": g, "stream_id": self.stream.id} for g in all_groups],
            )
            tax = Taxonomy(name=f"matrix-{tag()}", hierarchy=HIERARCHY, version="1")
            s.add(tax)
            s.flush()
            s.execute(taxonomy_groups.insert(), [{"taxonomy_id": tax.id, "group_id": g} for g in all_groups])
            self.taxonomy = tax.id
            self.stream_id = self.stream.id
            s.commit()
        self.telescope = self.new_telescope()

    # -- things, made by the author or the admin ------------------------------------------------------------
    def new_obj(self, group: int) -> str:
        from astroportal.models import Obj, Source

        oid = f"MTX{tag()}"
        with self.db() as s:
            s.add(Obj(id=oid, ra=150.0, dec=2.0, redshift=0.1))
            s.flush()
            s.add(Source(obj_id=oid, group_id=group, saved_by_id=self.author))
            s.commit()
        return oid

    def new_filter(self, group: int) -> int:
        from astroportal.models import Filter

        with self.db() as s:
            f = Filter(name="matrix", stream_id=self.stream_id, group_id=group)
            s.add(f)
            s.commit()
            return f.id

    def new_group(self, actor_role: str, place: str) -> int:
        """A group to delete: the caller is its admin ("mine", the Group admin only), a plain member ("member",
        and the others in "mine"), or not in it ("other")."""
        from astroportal.models import Group, GroupUser

        with self.db() as s:
            g = Group(name=f"matrix-del-{tag()}", private=True)
            s.add(g)
            s.flush()
            s.add(GroupUser(group_id=g.id, user_id=self.author, admin=True))
            if place != "other":
                admin = place == "mine" and actor_role == "Group admin"
                s.add(GroupUser(group_id=g.id, user_id=self.actors[actor_role][0], admin=admin))
            s.commit()
            return g.id

    def place_of(self, role: str, group: int) -> str:
        return "mine" if group == self.home[role] else "member" if group == self.shared else "other"

    def new_user(self, role: str | None = None) -> int:
        from astroportal.domain.accounts import create_user

        with self.db() as s:
            u = create_user(s, f"matrix-u-{tag()}", [role] if role else [])
            s.commit()
            return u.id

    def add_member(self, group: int, uid: int) -> None:
        from astroportal.models import GroupUser

        with self.db() as s:
            s.add(GroupUser(group_id=group, user_id=uid))
            s.commit()

    def new_stream(self, group: int | None = None) -> int:
        from astroportal.models import Stream, group_streams

        with self.db() as s:
            st = Stream(name=f"matrix-s-{tag()}")
            s.add(st)
            s.flush()
            if group is not None:
                s.execute(group_streams.insert().values(group_id=group, stream_id=st.id))
            s.commit()
            return st.id

    def new_telescope(self) -> int:
        status, body = self.api.post("/api/telescope", self.admin, json={
            "name": f"Matrix {tag()}", "nickname": "mtx", "lat": 20.0, "lon": -155.0, "elevation": 4000.0,
            "diameter": 2.0, "robotic": False, "fixed_location": True})
        assert status == 200, body
        return body["data"]["id"]

    def new_instrument(self) -> int:
        status, body = self.api.post("/api/instrument", self.admin, json={
            "name": f"MatrixCam {tag()}", "type": "imager", "band": "optical", "telescope_id": self.telescope,
            "filters": ["ztfg"]})
        assert status == 200, body
        return body["data"]["id"]

    def new_point(self, group: int) -> tuple[str, int]:
        from astroportal.domain.accounts import create_token

        oid = self.new_obj(group)
        with self.db() as s:
            from astroportal.models import User

            _, token = create_token(s, s.get(User, self.author), "matrix")
            s.commit()
        status, body = self.api.post("/api/photometry", token, json=self.point(oid, group))
        assert status == 200, body
        return oid, body["data"]["ids"][0]

    def point(self, oid: str, group: int) -> dict:
        return {"obj_id": oid, "mjd": 60000.5, "instrument_id": self.instrument, "filter": "ztfg", "mag": 19.0,
                "magerr": 0.1, "limiting_mag": 21.0, "magsys": "ab", "group_ids": [group]}

    def new_annotation(self, kind: str, group: int) -> tuple[str, int]:
        from astroportal.models import (Annotation, Classification, Comment, annotation_groups, classification_groups,
                                        comment_groups)

        oid = self.new_obj(group)
        with self.db() as s:
            if kind == "classification":
                row = Classification(obj_id=oid, taxonomy_id=self.taxonomy, classification="SN", author_id=self.author,
                                     author_name="author")
                link, col = classification_groups, "classification_id"
            elif kind == "annotation":
                row = Annotation(obj_id=oid, origin="matrix", data={"score": 0.5}, author_id=self.author,
                                 author_name="author")
                link, col = annotation_groups, "annotation_id"
            else:
                row = Comment(obj_id=oid, text="hello", author_id=self.author, author_name="author")
                link, col = comment_groups, "comment_id"
            s.add(row)
            s.flush()
            s.execute(link.insert().values({col: row.id, "group_id": group}))
            s.commit()
            return oid, row.id

    def new_taxonomy(self, group: int) -> int:
        from astroportal.models import Taxonomy, taxonomy_groups

        with self.db() as s:
            t = Taxonomy(name=f"matrix-t-{tag()}", hierarchy=HIERARCHY, version="1")
            s.add(t)
            s.flush()
            s.execute(taxonomy_groups.insert().values(taxonomy_id=t.id, group_id=group))
            s.commit()
            return t.id

    def new_listing(self, uid: int, group: int) -> int:
        from astroportal.models import Listing

        oid = self.new_obj(group)
        with self.db() as s:
            row = Listing(user_id=uid, obj_id=oid, list_name="favorites")
            s.add(row)
            s.commit()
            return row.id

    def new_subscription(self, uid: int) -> int:
        from astroportal.models import Subscription

        with self.db() as s:
            row = Subscription(user_id=uid, kind="cone", params={"ra": 10.0, "dec": 10.0, "radius": 1.0},
                               channels=["portal"], name="matrix")
            s.add(row)
            s.commit()
            return row.id

    def new_token(self, uid: int) -> int:
        from astroportal.domain.accounts import create_token
        from astroportal.models import User

        with self.db() as s:
            row, _ = create_token(s, s.get(User, uid), "matrix")
            s.commit()
            return row.id


# -- one call per route: (world, role, group or None for "absent") -> Call ---------------------------------------
def _cutout() -> str:
    import base64
    import gzip
    import io

    import numpy as np
    from astropy.io import fits

    buf = io.BytesIO()
    fits.PrimaryHDU(np.zeros((8, 8), dtype="float32")).writeto(buf)
    return base64.b64encode(gzip.compress(buf.getvalue())).decode()


def _obj(w, g):
    return w.new_obj(g) if g else f"MTX{tag()}"


def _grb_notice() -> str:
    """The sample Swift notice (an error circle) with a trigger of its own: each call is a new event."""
    from pathlib import Path
    import random

    text = (Path(__file__).parent / "data" / "gcn" / "SWIFT_1125809-092.xml").read_text()
    trig = str(random.randrange(10**7, 10**8))
    second = f"{random.randrange(60):02d}.{random.randrange(100):02d}"
    return text.replace('value="1125809"', f'value="{trig}"').replace("2022-09-30T11:11:52.12",
                                                                        f"2021-{random.randrange(1, 13):02d}-15T11:11:{second}")


def _oid_point(w, g):
    return w.new_point(g) if g else (None, MISSING)


CALLS = {
    ("POST", "/api/sources"): lambda w, r, g: Call("/api/sources", {"id": f"MTX{tag()}", "ra": 10.0, "dec": 1.0,
                                                                    "group_ids": [g or MISSING]}, hidden=False),
    ("PATCH", "/api/sources/{id}"): lambda w, r, g: Call(f"/api/sources/{_obj(w, g)}", {"redshift": 0.5}),
    ("DELETE", "/api/sources/{id}"): lambda w, r, g: Call(f"/api/sources/{_obj(w, g)}"),
    ("POST", "/api/source_groups"): lambda w, r, g: Call("/api/source_groups", {"objId": _obj(w, g),
                                                                                "unsaveGroupIds": [g or w.home[r]]}),
    ("POST", "/api/candidates"): lambda w, r, g: Call("/api/candidates", {
        "id": f"MTX{tag()}", "ra": 10.0, "dec": 1.0, "filter_ids": [w.new_filter(g) if g else MISSING],
        "passed_at": "2026-01-01T00:00:00"}, hidden=False),
    ("POST", "/api/listing"): lambda w, r, g: Call("/api/listing", {"obj_id": _obj(w, g), "list_name": "favorites"}),
    ("DELETE", "/api/listing/{id}"): lambda w, r, g: Call(
        f"/api/listing/{w.new_listing(w.actors[r][0] if g == w.home[r] else w.author, g) if g else MISSING}", hidden=False),
    ("POST", "/api/photometry"): lambda w, r, g: Call("/api/photometry", w.point(_obj(w, g), g or w.home[r])),
    ("PUT", "/api/photometry"): lambda w, r, g: Call("/api/photometry", w.point(_obj(w, g), g or w.home[r])),
    ("PATCH", "/api/photometry/{id}"): lambda w, r, g: Call(f"/api/photometry/{_oid_point(w, g)[1]}",
                                                            {"mag": 18.0, "magerr": 0.2}),
    ("DELETE", "/api/photometry/{id}"): lambda w, r, g: Call(f"/api/photometry/{_oid_point(w, g)[1]}"),
    ("POST", "/api/taxonomy"): lambda w, r, g: Call("/api/taxonomy", {"name": f"mtx-{tag()}", "hierarchy": HIERARCHY,
                                                                      "version": "1", "group_ids": [g or MISSING]},
                                                    hidden=False),
    ("DELETE", "/api/taxonomy/{id}"): lambda w, r, g: Call(f"/api/taxonomy/{w.new_taxonomy(g) if g else MISSING}"),
    ("POST", "/api/classification"): lambda w, r, g: Call("/api/classification", {
        "obj_id": _obj(w, g), "classification": "Kilonova", "taxonomy_id": w.taxonomy, "group_ids": [w.home[r]]}),
    ("PUT", "/api/classification/{id}"): lambda w, r, g: Call(
        f"/api/classification/{w.new_annotation('classification', g)[1] if g else MISSING}", {"probability": 0.5}),
    ("DELETE", "/api/classification/{id}"): lambda w, r, g: Call(
        f"/api/classification/{w.new_annotation('classification', g)[1] if g else MISSING}"),
    ("POST", "/api/sources/{id}/comments"): lambda w, r, g: Call(f"/api/sources/{_obj(w, g)}/comments",
                                                                 {"text": "hi", "group_ids": [w.home[r]]}),
    ("PUT", "/api/sources/{id}/comments/{id}"): lambda w, r, g: Call(
        "/api/sources/{}/comments/{}".format(*(w.new_annotation("comment", g) if g else (f"MTX{tag()}", MISSING))),
        {"text": "edited"}),
    ("DELETE", "/api/sources/{id}/comments/{id}"): lambda w, r, g: Call(
        "/api/sources/{}/comments/{}".format(*(w.new_annotation("comment", g) if g else (f"MTX{tag()}", MISSING)))),
    ("POST", "/api/sources/{id}/annotations"): lambda w, r, g: Call(f"/api/sources/{_obj(w, g)}/annotations", {
        "origin": "matrix", "data": {"score": 0.5}, "group_ids": [w.home[r]]}),
    ("PUT", "/api/sources/{id}/annotations/{id}"): lambda w, r, g: Call(
        "/api/sources/{}/annotations/{}".format(*(w.new_annotation("annotation", g) if g else (f"MTX{tag()}", MISSING))),
        {"data": {"score": 0.7}}),
    ("DELETE", "/api/sources/{id}/annotations/{id}"): lambda w, r, g: Call(
        "/api/sources/{}/annotations/{}".format(*(w.new_annotation("annotation", g) if g else (f"MTX{tag()}", MISSING)))),
    ("POST", "/api/annotations"): lambda w, r, g: Call("/api/annotations", [{
        "obj_id": _obj(w, g), "origin": "matrix", "data": {"score": 0.5}, "group_ids": [w.home[r]]}]),
    ("POST", "/api/telescope"): lambda w, r, g: Call("/api/telescope", {
        "name": f"MtxTel {tag()}", "nickname": "t", "lat": 1.0, "lon": 2.0, "elevation": 3.0, "diameter": 1.0,
        "robotic": False, "fixed_location": True}, hidden=False),
    ("PATCH", "/api/telescope/{id}"): lambda w, r, g: Call(f"/api/telescope/{w.new_telescope() if g else MISSING}",
                                                           {"nickname": "n"}, hidden=False),
    ("PUT", "/api/telescope/{id}"): lambda w, r, g: Call(f"/api/telescope/{w.new_telescope() if g else MISSING}", {
        "name": f"MtxTel {tag()}", "nickname": "t", "lat": 1.0, "lon": 2.0, "elevation": 3.0, "diameter": 1.0,
        "robotic": False, "fixed_location": True}, hidden=False),
    ("DELETE", "/api/telescope/{id}"): lambda w, r, g: Call(f"/api/telescope/{w.new_telescope() if g else MISSING}",
                                                            hidden=False),
    ("POST", "/api/instrument"): lambda w, r, g: Call("/api/instrument", {
        "name": f"MtxCam {tag()}", "type": "imager", "band": "optical", "telescope_id": w.telescope,
        "filters": ["ztfg"]}, hidden=False),
    ("PATCH", "/api/instrument/{id}"): lambda w, r, g: Call(f"/api/instrument/{w.new_instrument() if g else MISSING}",
                                                            {"band": "nir"}, hidden=False),
    ("PUT", "/api/instrument/{id}"): lambda w, r, g: Call(f"/api/instrument/{w.new_instrument() if g else MISSING}", {
        "name": f"MtxCam {tag()}", "type": "imager", "band": "optical", "telescope_id": w.telescope,
        "filters": ["ztfg"]}, hidden=False),
    ("DELETE", "/api/instrument/{id}"): lambda w, r, g: Call(f"/api/instrument/{w.new_instrument() if g else MISSING}",
                                                             hidden=False),
    ("POST", "/api/gcn_event"): lambda w, r, g: Call("/api/gcn_event", {"xml": _grb_notice()}, hidden=False),
    ("POST", "/api/groups"): lambda w, r, g: Call("/api/groups", {"name": f"matrix-new-{tag()}"}, hidden=False),
    ("PATCH", "/api/groups/{id}"): lambda w, r, g: Call(f"/api/groups/{g or MISSING}", {"nickname": f"n{tag()}"},
                                                        hidden=False),
    ("DELETE", "/api/groups/{id}"): lambda w, r, g: Call(
        f"/api/groups/{w.new_group(r, w.place_of(r, g)) if g else MISSING}", hidden=False),
    ("POST", "/api/groups/{id}/users"): lambda w, r, g: Call(f"/api/groups/{g or MISSING}/users",
                                                             {"userID": w.new_user()}, hidden=False),
    ("PATCH", "/api/groups/{id}/users/{id}"): lambda w, r, g: Call(f"/api/groups/{g or MISSING}/users/{w.author}",
                                                                   {"canSave": True}, hidden=False),
    ("DELETE", "/api/groups/{id}/users/{id}"): lambda w, r, g: Call(
        f"/api/groups/{g or MISSING}/users/{w.member_of(g) if g else MISSING}", hidden=False),
    ("POST", "/api/groups/{id}/streams"): lambda w, r, g: Call(f"/api/groups/{g or MISSING}/streams",
                                                               {"stream_id": w.new_stream()}, hidden=False),
    ("DELETE", "/api/groups/{id}/streams/{id}"): lambda w, r, g: Call(
        f"/api/groups/{g or MISSING}/streams/{w.new_stream(g) if g else MISSING}", hidden=False),
    ("POST", "/api/streams"): lambda w, r, g: Call("/api/streams", {"name": f"matrix-{tag()}"}, hidden=False),
    ("PATCH", "/api/streams/{id}"): lambda w, r, g: Call(f"/api/streams/{w.new_stream() if g else MISSING}",
                                                         {"name": f"matrix-{tag()}"}, hidden=False),
    ("DELETE", "/api/streams/{id}"): lambda w, r, g: Call(f"/api/streams/{w.new_stream() if g else MISSING}",
                                                          hidden=False),
    ("POST", "/api/filters"): lambda w, r, g: Call("/api/filters", {"name": "f", "stream_id": w.stream_id,
                                                                    "group_id": g or MISSING}, hidden=False),
    ("PATCH", "/api/filters/{id}"): lambda w, r, g: Call(f"/api/filters/{w.new_filter(g) if g else MISSING}",
                                                         {"name": "renamed"}),
    ("DELETE", "/api/filters/{id}"): lambda w, r, g: Call(f"/api/filters/{w.new_filter(g) if g else MISSING}"),
    ("POST", "/api/user"): lambda w, r, g: Call("/api/user", {"username": f"matrix-{tag()}"}, hidden=False),
    ("POST", "/api/user/{id}/roles"): lambda w, r, g: Call(f"/api/user/{w.new_user() if g else MISSING}/roles",
                                                           {"roleIds": ["View only"]}, hidden=False),
    ("DELETE", "/api/user/{id}/roles/{id}"): lambda w, r, g: Call(
        f"/api/user/{w.new_user('View only') if g else MISSING}/roles/{quote('View only')}", hidden=False),
    ("POST", "/api/internal/tokens"): lambda w, r, g: Call("/api/internal/tokens", {"name": "matrix"}, hidden=False),
    ("POST", "/api/thumbnail"): lambda w, r, g: Call("/api/thumbnail", {"obj_id": _obj(w, g), "ttype": "new",
                                                                        "data": _cutout()}),
    ("POST", "/api/subscriptions"): lambda w, r, g: Call(
        "/api/subscriptions", {"kind": "cone", "params": {"ra": 10.0, "dec": 10.0, "radius": 1.0}}, hidden=False),
    ("PATCH", "/api/subscriptions/{id}"): lambda w, r, g: Call(
        f"/api/subscriptions/{w.new_subscription(w.actors[r][0] if g == w.home[r] else w.author) if g else MISSING}",
        {"name": "renamed"}, hidden=False),
    ("DELETE", "/api/subscriptions/{id}"): lambda w, r, g: Call(
        f"/api/subscriptions/{w.new_subscription(w.actors[r][0] if g == w.home[r] else w.author) if g else MISSING}",
        hidden=False),
    ("POST", "/api/notifications/read"): lambda w, r, g: Call("/api/notifications/read", {}, hidden=False),
    ("POST", "/api/service_tokens"): lambda w, r, g: Call("/api/service_tokens",
                                                          {"name": f"bot-{tag()}", "acls": ["Comment"]}, hidden=False),
    ("DELETE", "/api/internal/tokens/{id}"): lambda w, r, g: Call(
        f"/api/internal/tokens/{w.new_token(w.actors[r][0] if g == w.home[r] else w.author) if g else MISSING}",
        hidden=False),
}


def _member_of(self, group: int) -> int:
    uid = self.new_user()
    self.add_member(group, uid)
    return uid


World.member_of = _member_of


# Routes that create a thing belonging to no group (or to the caller alone): there is no "other" or "absent".
PLACELESS = {
    ("POST", "/api/telescope"), ("POST", "/api/instrument"), ("POST", "/api/groups"), ("POST", "/api/streams"),
    ("POST", "/api/user"), ("POST", "/api/internal/tokens"), ("POST", "/api/service_tokens"),
    ("POST", "/api/subscriptions"), ("POST", "/api/notifications/read"), ("POST", "/api/gcn_event"),
}


def expected_allowed(rule: ar.Rule, role: str, place: str) -> bool:
    """Whether `role` may do `rule` to a thing in `place`, by the table's ACL and scope."""
    acls = set(ROLES[role])
    if not ar.holds(acls, rule.acl) or place == "absent":
        return False
    if rule.scope == ar.SELF:
        return place == "mine"
    if ar.SYSTEM_ADMIN in acls:
        return True
    group_admin = role == "Group admin"  # the only caller who administers their own group
    mine = place == "mine"  # in "member", nobody's "Manage ..." ACLs count
    return {
        ar.SITEWIDE: True,
        ar.MEMBER: place in ("mine", "member"),
        ar.SELF_OR_ADMIN: mine,
        ar.GROUP: mine and group_admin,
        ar.OWNER: mine and group_admin and ar.holds(acls, ar.MANAGE_SOURCES),
        ar.OBJECT: mine and group_admin and ar.holds(acls, ar.MANAGE_SOURCES),
        ar.TAXONOMY: mine and group_admin,
    }[rule.scope]


@pytest.fixture(scope="module")
def world(db, make_user, api, admin_token):
    w = World(db, make_user, api, admin_token)
    w.instrument = w.new_instrument()
    return w


def test_every_rule_has_a_matrix_call():
    assert sorted(CALLS) == sorted(r.key for r in ar.RULES)


def _send(api, method, call: Call, token):
    kwargs = {} if call.body is None else {"json": call.body}
    return api.request(method, call.url, token, **kwargs)


@pytest.mark.parametrize("rule", ar.RULES, ids=[f"{r.method} {r.path}" for r in ar.RULES])
def test_matrix_row(api, world, rule):
    failures = []
    for role in ROLE_NAMES:
        token = world.actors[role][1]
        answers = {}
        for place in (["mine"] if rule.key in PLACELESS else PLACES):
            group = {"mine": world.home[role], "member": world.shared, "other": world.other, "absent": None}[place]
            call = CALLS[rule.key](world, role, group)
            status, body = _send(api, rule.method, call, token)
            answers[place] = (status, call)
            message = body.get("message") if isinstance(body, dict) else str(body)[:120]
            allowed = expected_allowed(rule, role, place)
            if allowed and not 200 <= status < 300:
                failures.append(f"{role} / {place}: want 2xx, got {status} {message}")
            if not allowed:
                if not ar.holds(set(ROLES[role]), rule.acl):
                    if status != 403:
                        failures.append(f"{role} / {place}: lacks {rule.acl}, want 403, got {status} {message}")
                elif place == "absent":
                    if status not in (400, 404):
                        failures.append(f"{role} / absent: want 400 or 404, got {status} {message}")
                elif place == "other" and call.hidden:
                    pass  # compared with the absent answer below
                elif status not in (403, 404):
                    failures.append(f"{role} / {place}: want 403 (or 404), got {status} {message}")
                if status >= 500 or 200 <= status < 300:
                    failures.append(f"{role} / {place}: refused cell answered {status} {message}")
        if rule.key in PLACELESS:
            continue
        other_status, other_call = answers["other"]
        if other_call.hidden and not expected_allowed(rule, role, "other") and ar.holds(set(ROLES[role]), rule.acl):
            if other_status != answers["absent"][0]:
                failures.append(
                    f"{role}: another group's thing answered {other_status}, an absent one {answers['absent'][0]}"
                )
    assert not failures, f"{rule.method} {rule.path} ({rule.acl}, {rule.scope}):\n  " + "\n  ".join(failures)


# -- cells with more to them than a status ------------------------------------------------------------------------
def test_a_taxonomy_delete_never_takes_classifications_the_deleter_cannot_read(api, world, admin_token):
    """The Group admin administers the one group the taxonomy is shared with, but the author classified with it
    in another group: deleting it would silently delete those, so it is refused, without saying how many."""
    from astroportal.models import Classification, classification_groups

    tid = world.new_taxonomy(world.home["Group admin"])
    oid = world.new_obj(world.other)
    with world.db() as s:
        rows = [Classification(obj_id=oid, taxonomy_id=tid, classification="SN", author_id=world.author,
                               author_name="author") for _ in range(3)]
        s.add_all(rows)
        s.flush()
        s.execute(classification_groups.insert(), [{"classification_id": r.id, "group_id": world.other} for r in rows])
        s.commit()
    status, body = api.delete(f"/api/taxonomy/{tid}", world.actors["Group admin"][1])
    assert status == 409, body
    assert "cannot read" in body["message"] and "3" not in body["message"].replace(str(tid), "")
    with world.db() as s:
        assert len(s.scalars(select(Classification.id).where(Classification.taxonomy_id == tid)).all()) == 3
    # A system admin reads them all and may delete it.
    assert api.delete(f"/api/taxonomy/{tid}", admin_token)[0] == 200


def test_a_taxonomy_shared_sitewide_is_not_a_group_admins_to_delete(api, world, admin_token):
    from astroportal.models import Group
    from astroportal.permissions import SITEWIDE_GROUP

    with world.db() as s:
        sitewide = s.scalar(select(Group.id).where(Group.name == SITEWIDE_GROUP))
    tid = world.new_taxonomy(sitewide)
    status, body = api.delete(f"/api/taxonomy/{tid}", world.actors["Group admin"][1])
    assert status == 403 and "system admin" in body["message"]
    assert api.get(f"/api/taxonomy/{tid}", world.actors["Group admin"][1])[0] == 200


def test_bootstrap_takes_back_acls_a_role_no_longer_grants(db, server):
    """Databases made before Group admin lost "Manage telescopes" lose it at the next bootstrap."""
    from astroportal.bootstrap import provision
    from astroportal.models import ACL, Role

    with db() as s:
        role = s.get(Role, "Group admin")
        role.acls = role.acls + [s.get(ACL, "Manage telescopes")]
        s.commit()
    with db() as s:
        provision(s)
        s.commit()
    with db() as s:
        held = {a.id for a in s.get(Role, "Group admin").acls}
    assert "Manage telescopes" not in held and held == set(ROLES["Group admin"])
