"""Thumbnails in pack files: one file per upload request whatever the batch size, bytes served as received,
replacement, rendering from a pack, images stored alone before packs, and the garbage collector."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import time
from pathlib import Path

import pytest
import requests

from conftest import portal, unique
from test_batch_and_thumbnails import fits_gz
from test_sources import new_group


@pytest.fixture(scope="module")
def uploader(make_user, db):
    uid, token = make_user("Full user")
    return {"id": uid, "token": token, "group": new_group(db, uid)}


@pytest.fixture(scope="module")
def root(cfg) -> Path:
    return cfg.var_dir / "thumbnails"


def packs(root: Path) -> set[Path]:
    return set((root / "packs").glob("*/*.pack"))


def new_objects(api, who, n: int) -> list[str]:
    ids = [unique() for _ in range(n)]
    status, answer = api.post("/api/sources", who["token"], json=[
        {"id": i, "ra": 10.0, "dec": 1.0, "group_ids": [who["group"]]} for i in ids])
    assert status == 200, answer
    return ids


def item(obj_id: str, ttype: str, raw: bytes, origin: str | None = "ZTF") -> dict:
    return {"obj_id": obj_id, "ttype": ttype, "data": base64.b64encode(raw).decode(), "origin": origin}


def rows_of(db, obj_ids: list[str]) -> dict:
    from astroportal.models import Thumbnail

    with db() as s:
        rows = s.query(Thumbnail).filter(Thumbnail.obj_id.in_(obj_ids)).all()
        s.expunge_all()
    return {(r.obj_id, r.type): r for r in rows}


def png_of(server, who, tid: int) -> requests.Response:
    return requests.get(f"{server.url}/thumbnails/{tid}.png", headers={"Authorization": f"token {who['token']}"},
                        timeout=60)


def test_a_batch_is_one_pack_and_each_row_reads_back_what_was_posted(api, db, uploader, root):
    from astroportal.domain.thumbnails import stored_bytes

    objs = new_objects(api, uploader, 40)
    raws = {(o, t): fits_gz(n) for n, (o, t) in enumerate((o, t) for o in objs for t in ("new", "ref", "sub"))}
    before = packs(root)
    status, answer = api.post("/api/thumbnail", uploader["token"], json=[item(o, t, r) for (o, t), r in raws.items()])
    assert status == 200, answer
    made = packs(root) - before
    assert len(made) == 1  # 120 cutouts, one new file
    rows = rows_of(db, objs)
    assert len(rows) == 120
    assert {r.file_path for r in rows.values()} == {made.pop().relative_to(root).as_posix()}
    for key, raw in raws.items():
        assert stored_bytes(rows[key], root) == raw  # download equals upload, byte for byte
        assert rows[key].sha256 == hashlib.sha256(raw).hexdigest()

    # the same batch again: no new file, no row touched
    assert api.post("/api/thumbnail", uploader["token"], json=[item(o, t, r) for (o, t), r in raws.items()])[0] == 200
    assert len(packs(root) - before) == 1
    assert {k: r.modified for k, r in rows_of(db, objs).items()} == {k: r.modified for k, r in rows.items()}


def test_replacing_an_image_shows_the_new_one_and_an_origin_change_writes_no_bytes(api, db, uploader, root, server):
    from astroportal.domain.thumbnails import render_fits, stored_bytes

    (obj,) = new_objects(api, uploader, 1)
    first, second = fits_gz(11), fits_gz(12)
    status, answer = api.post("/api/thumbnail", uploader["token"], json=[item(obj, "new", first)])
    assert status == 200, answer
    tid = answer["data"]["ids"][0]
    shown = png_of(server, uploader, tid)
    assert shown.status_code == 200 and shown.headers["Content-Type"] == "image/png"
    assert shown.content == render_fits(first)  # rendered from its range of the pack

    status, one = api.post("/api/thumbnail", uploader["token"], json=item(obj, "new", second))
    assert status == 200 and one["data"]["id"] == tid  # one thumbnail per object and type: replaced
    row = rows_of(db, [obj])[(obj, "new")]
    assert stored_bytes(row, root) == second
    again = png_of(server, uploader, tid)
    assert again.status_code == 200 and again.content == render_fits(second) != shown.content  # no stale PNG

    before = packs(root)
    assert api.post("/api/thumbnail", uploader["token"], json=item(obj, "new", second, origin="Fink"))[0] == 200
    assert packs(root) == before
    changed = rows_of(db, [obj])[(obj, "new")]
    assert changed.origin == "Fink" and (changed.file_path, changed.byte_offset) == (row.file_path, row.byte_offset)


def test_png_and_jpeg_are_served_as_png(api, uploader, server):
    from PIL import Image

    (obj,) = new_objects(api, uploader, 1)
    images = {}
    for fmt, ttype in (("PNG", "sdss"), ("JPEG", "ps1")):
        out = io.BytesIO()
        Image.new("RGB", (16, 16), (200, 30, 30)).save(out, format=fmt)
        images[ttype] = out.getvalue()
    status, answer = api.post("/api/thumbnail", uploader["token"], json=[item(obj, t, r) for t, r in images.items()])
    assert status == 200, answer
    png, jpeg = (png_of(server, uploader, tid) for tid in answer["data"]["ids"])
    assert png.headers["Content-Type"] == jpeg.headers["Content-Type"] == "image/png"
    assert png.content == images["sdss"]
    assert jpeg.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(jpeg.content)).size == (16, 16)


def test_a_refused_batch_writes_no_row_and_no_pack(api, db, uploader, root):
    objs = new_objects(api, uploader, 3)
    body = [item(o, "new", fits_gz(n)) for n, o in enumerate(objs)]
    body[2]["data"] = base64.b64encode(b"not an image at all").decode()
    before = packs(root)
    status, answer = api.post("/api/thumbnail", uploader["token"], json=body)
    assert status == 400 and "item 2" in answer["message"] and "PNG" in answer["message"]
    assert rows_of(db, objs) == {}
    assert packs(root) == before


def test_a_transaction_failing_after_the_pack_is_written_leaves_no_pack(db, uploader, root):
    from sqlalchemy.exc import IntegrityError

    from astroportal.domain.thumbnails import store_images
    from astroportal.models import User

    before = packs(root)
    with db() as s:
        user = s.get(User, uploader["id"])
        # an object that does not exist: the insert fails on its foreign key, after the pack was written
        with pytest.raises(IntegrityError):
            store_images(s, user, {(unique(), "new"): (fits_gz(3), "fits.gz", None)}, root)
    assert packs(root) == before


def test_an_image_stored_alone_before_packs_still_shows_and_moves_into_a_pack_when_replaced(
        api, db, uploader, root, server):
    from astroportal.domain.thumbnails import render_fits, stored_bytes
    from astroportal.models import Thumbnail

    (obj,) = new_objects(api, uploader, 1)
    old = fits_gz(21)
    rel = f"ab/{obj}_new.fits.gz"  # the layout of the files written before 0012
    (root / "ab").mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(old)
    with db() as s:
        row = Thumbnail(obj_id=obj, type="new", file_path=rel, file_format="fits", size=len(old), origin="ZTF")
        s.add(row)
        s.commit()
        tid = row.id
    shown = png_of(server, uploader, tid)
    assert shown.status_code == 200 and shown.content == render_fits(old)
    assert (root / (rel + ".png")).exists()  # its rendering cached beside it, as before

    modified = rows_of(db, [obj])[(obj, "new")].modified
    assert api.post("/api/thumbnail", uploader["token"], json=[item(obj, "new", old)])[0] == 200
    assert rows_of(db, [obj])[(obj, "new")].modified == modified  # the same bytes: nothing changes

    new = fits_gz(22)
    assert api.post("/api/thumbnail", uploader["token"], json=[item(obj, "new", new)])[0] == 200
    row = rows_of(db, [obj])[(obj, "new")]
    assert row.id == tid and row.byte_offset is not None and stored_bytes(row, root) == new
    assert not (root / rel).exists() and not (root / (rel + ".png")).exists()
    assert png_of(server, uploader, tid).content == render_fits(new)


def test_gc_deletes_unreferenced_packs_and_stale_pngs_and_keeps_the_rest(api, db, uploader, root, server, config_path):
    objs = new_objects(api, uploader, 2)
    a, b = fits_gz(31), fits_gz(32)
    before = packs(root)
    status, answer = api.post("/api/thumbnail", uploader["token"], json=[item(objs[0], "new", a),
                                                                         item(objs[1], "new", b)])
    assert status == 200, answer
    (shared,) = packs(root) - before
    tid = answer["data"]["ids"][0]
    assert png_of(server, uploader, tid).status_code == 200
    (stale_png,) = (root / "cache").glob(f"*/{tid}-*.png")
    # replacing the first image leaves its bytes in the shared pack (still read for the second one) as garbage
    assert api.post("/api/thumbnail", uploader["token"], json=[item(objs[0], "new", fits_gz(33))])[0] == 200
    (later,) = packs(root) - before - {shared}
    # replaced once more: nothing references `later` any more
    assert api.post("/api/thumbnail", uploader["token"], json=[item(objs[0], "new", fits_gz(34))])[0] == 200
    young = root / "packs" / "2000010100" / "stray.pack"  # a pack whose request is still in flight
    young.parent.mkdir(parents=True, exist_ok=True)
    young.write_bytes(b"x" * 100)
    later_size = later.stat().st_size
    old_time = time.time() - 7200
    for path in (shared, later, stale_png):
        os.utime(path, (old_time, old_time))

    dry = portal("thumbnails_gc", "--json", "--dry-run", "--min-age", "3600", config=config_path)
    assert json.loads(dry.stdout)["packs_deleted"] >= 1 and later.exists() and stale_png.exists()

    done = json.loads(portal("thumbnails_gc", "--json", "--min-age", "3600", config=config_path).stdout)
    assert not later.exists() and not stale_png.exists()  # nothing points at them any more
    assert shared.exists() and young.exists()  # still referenced; too young to judge
    assert done["packs_deleted"] >= 1 and done["bytes_freed"] >= later_size
    assert done["bytes_reclaimable"] >= len(a) and done["packs_too_young"] >= 1
    # what is referenced still reads back whole
    from astroportal.domain.thumbnails import stored_bytes

    assert stored_bytes(rows_of(db, objs)[(objs[1], "new")], root) == b
    young.unlink()
    young.parent.rmdir()

    text = portal("thumbnails_gc", "--help", config=config_path).stdout
    assert "--min-age" in text and "--dry-run" in text


def test_ids_and_origins_with_array_syntax_are_stored_as_sent(api, db, uploader, root):
    # The rows go to the database as one array literal per column: quotes, backslashes, commas, braces, NULL-like
    # words and no origin at all must come back unchanged, each in its own row, answered in the batch's order.
    from astroportal.domain.thumbnails import stored_bytes

    objs = [unique() + suffix for suffix in ('-"q"', "-b\\s", "-a,b", "-{x}", "-NULL", "-é ü")]
    status, answer = api.post("/api/sources", uploader["token"], json=[
        {"id": o, "ra": 10.0, "dec": 1.0, "group_ids": [uploader["group"]]} for o in objs])
    assert status == 200, answer
    origins = ['o"r', "o\\r", "o,r", "{o}", "NULL", None]
    body = [item(o, "new", fits_gz(n), origin) for n, (o, origin) in enumerate(zip(objs, origins))]
    status, answer = api.post("/api/thumbnail", uploader["token"], json=body)
    assert status == 200, answer
    rows = rows_of(db, objs)
    assert answer["data"]["ids"] == [rows[(o, "new")].id for o in objs]
    for n, (o, origin) in enumerate(zip(objs, origins)):
        assert rows[(o, "new")].origin == origin
        assert stored_bytes(rows[(o, "new")], root) == fits_gz(n)


def test_base64_is_refused_or_accepted_exactly_as_before(api, db, uploader, root):
    # The decoder's rules, as base64.b64decode(validate=True) has them: line breaks (as MIME encoders write every
    # 76 characters), blanks, the URL-safe alphabet and missing padding are refused; padding after a complete
    # group is tolerated (and the bytes stored are the image's).
    raw = fits_gz(7)
    while len(raw) % 3:  # an encoding without padding, so that an "=" after it follows a complete group
        raw += b"\x00"
    good = base64.b64encode(raw).decode()
    padded_short = base64.b64encode(raw[:-1]).decode()
    refused = {
        "line breaks": base64.encodebytes(raw).decode(),
        "a blank": good[:40] + " " + good[40:],
        "URL-safe alphabet": base64.urlsafe_b64encode(b"\xfb\xff" + raw).decode(),
        "missing padding": padded_short.rstrip("="),
        "padding inside": good[:40] + "=" + good[40:],
        "a non-ASCII letter": good[:40] + "é" + good[41:],
    }
    for what, data in refused.items():
        objs = new_objects(api, uploader, 2)
        before = packs(root)
        body = [item(objs[0], "new", fits_gz(1)), {**item(objs[1], "new", raw), "data": data}]
        status, answer = api.post("/api/thumbnail", uploader["token"], json=body)
        assert status == 400, (what, answer)
        assert "item 1" in answer["message"] and "not valid base64" in answer["message"], (what, answer)
        assert rows_of(db, objs) == {} and packs(root) == before, what
        status, answer = api.post("/api/thumbnail", uploader["token"], json={**body[1]})
        assert status == 400 and "not valid base64" in answer["message"], (what, answer)

    objs = new_objects(api, uploader, 2)
    status, answer = api.post("/api/thumbnail", uploader["token"], json=[
        {**item(objs[0], "new", raw), "data": good + "="}, {**item(objs[1], "ref", raw), "data": good + "=="}])
    assert status == 200, answer
    rows = rows_of(db, objs)
    for key in ((objs[0], "new"), (objs[1], "ref")):
        assert rows[key].size == len(raw) and rows[key].sha256 == hashlib.sha256(raw).hexdigest()
