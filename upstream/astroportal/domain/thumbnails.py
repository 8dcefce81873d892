"""Thumbnails: images of an object (an alert's cutouts) stored as received, rendered to PNG when first viewed.

Ingestion only decodes and writes the bytes (a ZTF alert brings about 40 KB of gzipped FITS), all the images of
a request into one pack file (thumbnail_packs); the rendering (zscale limits and an asinh stretch, as astronomers
look at cutouts) happens on the first view and is cached, so a broker's rate never pays for it.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import os
import tempfile
from pathlib import Path

import pybase64
from sqlalchemy import String, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from ..array_params import array_literal
from ..errors import ApiError, not_found
from ..models import THUMBNAIL_TYPES, Obj, Thumbnail, User
from . import thumbnail_packs
from .access import accessible_group_ids, get_visible_obj, obj_visible_clause
from .sources import check_obj_id

FIELDS = {"obj_id", "data", "ttype", "origin"}
# The order the source page shows an alert's three cutouts in.
DISPLAY_ORDER = {t: i for i, t in enumerate(THUMBNAIL_TYPES)}
TYPE_LABELS = {"new": "Science", "ref": "Reference", "sub": "Difference"}
EXTENSIONS = {"fits.gz": "fits", "fits": "fits", "png": "png", "jpg": "jpeg"}
RENDER_SIZE = 240  # pixels a side of the PNG shown on the page


def sniff(raw: bytes) -> str:
    """The stored file's extension from its first bytes: fits.gz, fits, png or jpg; 400 otherwise."""
    if raw[:2] == b"\x1f\x8b":
        return "fits.gz"
    if raw[:6] == b"SIMPLE":
        return "fits"
    if raw[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if raw[:3] == b"\xff\xd8\xff":
        return "jpg"
    raise ApiError(400, "`data` is not a PNG, JPEG or (gzipped) FITS image once base64-decoded")


_MADE_DIRS: set[Path] = set()  # the cache folders known to exist: a rendering makes one system call less


def _write_atomically(path: Path, raw: bytes) -> None:
    if path.parent not in _MADE_DIRS:
        path.parent.mkdir(parents=True, exist_ok=True)
        _MADE_DIRS.add(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    except FileNotFoundError:  # the folder was removed meanwhile (say, by hand): make it again
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def png_cache_path(path: Path) -> Path:
    """Where the PNG of an image stored alone in its file (uploaded before packs) is cached: beside it."""
    return path.with_name(path.name + ".png")


def decode_base64(encoded: str) -> bytes:
    """The bytes of base64 text exactly as `base64.b64decode(encoded, validate=True)` gives them; 400 when it
    refuses them (a character outside the alphabet, a newline or blank included, or wrong padding).

    pybase64 decodes and validates in SIMD code, some 25 times faster than the standard library (whose
    validation is a regex over the whole text, its decoding a byte-at-a-time loop): a batch of 300 cutouts is 4 MB
    of base64. What pybase64 accepts decodes to the same bytes; it refuses a little more (padding after a
    complete group, as "AAAA="), so any text it refuses is decided by the standard library, as before.
    """
    try:
        return pybase64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "`data` is not valid base64") from None


def check_item(data: dict) -> tuple[str, str, bytes, str, str | None]:
    """One upload's fields checked and its image decoded: (obj_id, type, bytes, extension, origin); 400 naming
    the first bad field. The object's visibility is the caller's to check."""
    extra = sorted(set(data) - FIELDS)
    if extra:
        raise ApiError(400, f"unknown field(s) {extra}; accepted fields: {sorted(FIELDS)}")
    obj_id = check_obj_id(data.get("obj_id"), "obj_id")
    ttype = data.get("ttype")
    if ttype not in THUMBNAIL_TYPES:
        raise ApiError(400, f"`ttype` must be one of {list(THUMBNAIL_TYPES)}, got {ttype!r:.40}")
    encoded = data.get("data")
    if not isinstance(encoded, str) or not encoded:
        raise ApiError(400, "missing required field `data` (the image, base64-encoded)")
    raw = decode_base64(encoded)
    ext = sniff(raw)
    origin = data.get("origin")
    if origin is not None and not isinstance(origin, str):
        raise ApiError(400, f"`origin` must be a string, got {origin!r:.40}")
    return obj_id, ttype, raw, ext, origin


# Built once, the object ids sent as one array: a tuple IN rendered a bind parameter per object on every batch.
_OBJS_AMONG = select(Obj.id).where(Obj.id == any_(bindparam("obj_ids", type_=ARRAY(String))))
_VISIBLE_OBJS_AMONG = _OBJS_AMONG.where(obj_visible_clause(None, bindparam("group_ids", expanding=True)))


def visible_obj_ids(session: Session, user: User, obj_ids: set[str]) -> set[str]:
    """Those of `obj_ids` naming an object that `user` may read (one query for a batch's objects)."""
    named = sorted(o for o in obj_ids if "\x00" not in o)  # PostgreSQL text cannot hold NUL: no id has one
    groups = accessible_group_ids(session, user)
    if groups is None:
        return set(session.scalars(_OBJS_AMONG, {"obj_ids": named}))
    return set(session.scalars(_VISIBLE_OBJS_AMONG, {"obj_ids": named, "group_ids": sorted(groups)}))


def post_thumbnail(session: Session, user: User, data: dict, root: Path) -> int:
    """POST /api/thumbnail: store an object's image of type `ttype` (base64 `data`); returns the thumbnail's id.

    The object must be visible to the user. A second upload of the same type replaces the first (one image
    per object and type); the same bytes again change nothing.
    """
    obj_id, ttype, raw, ext, origin = check_item(data)
    get_visible_obj(session, user, obj_id)
    return store_images(session, user, {(obj_id, ttype): (raw, ext, origin)}, root)[(obj_id, ttype)]


def _same_bytes(root: Path, old_path: str, old_offset: int | None, old_size: int, old_sha: str | None,
                raw: bytes, digest: str) -> bool:
    if old_size != len(raw):
        return False
    if old_sha is not None:
        return old_sha == digest
    if old_offset is not None:
        return False
    try:  # an image stored alone before packs: compare its bytes
        return (root / old_path).read_bytes() == raw
    except OSError:
        return False


# The batch's statements are constant SQL receiving each column as one array (see array_params): compiled once per
# process, a handful of parameters whatever the batch size, rows inserted in the batch's order. (A tuple IN and
# SQLAlchemy's insertmanyvalues rendered and bound a parameter per cell: most of the database side of a batch.)
_STORED_SQL = text("""
SELECT t.obj_id, t.type, t.id, t.file_path, t.byte_offset, t.size, t.sha256, t.origin
FROM thumbnails t
JOIN unnest(CAST(:obj_id AS text[]), CAST(:type AS text[])) AS k(k_obj_id, k_type)
  ON t.obj_id = k.k_obj_id AND t.type = k.k_type
""")
_INSERT_COLUMNS = ("obj_id", "type", "byte_offset", "file_format", "size", "sha256", "origin")
_INSERT_SQL = text("""
INSERT INTO thumbnails (obj_id, type, file_path, byte_offset, file_format, size, sha256, origin, uploader_id)
SELECT r.t_obj_id, r.t_type, :file_path, r.t_offset, r.t_format, r.t_size, r.t_sha256, r.t_origin, :uploader_id
FROM unnest(CAST(:obj_id AS text[]), CAST(:type AS text[]), CAST(:byte_offset AS bigint[]),
            CAST(:file_format AS text[]), CAST(:size AS bigint[]), CAST(:sha256 AS text[]), CAST(:origin AS text[]))
     WITH ORDINALITY AS r(t_obj_id, t_type, t_offset, t_format, t_size, t_sha256, t_origin, n)
ORDER BY r.n
ON CONFLICT (obj_id, type) DO UPDATE SET file_path = excluded.file_path, byte_offset = excluded.byte_offset,
    file_format = excluded.file_format, size = excluded.size, sha256 = excluded.sha256, origin = excluded.origin,
    uploader_id = excluded.uploader_id, modified = now()
RETURNING id, obj_id, type
""")
_RELABEL = text("UPDATE thumbnails SET origin = :origin, uploader_id = :uploader, modified = now() "
                "WHERE id = :tid AND sha256 IS NOT DISTINCT FROM :sha")


def store_images(session: Session, user: User, images: dict[tuple[str, str], tuple[bytes, str, str | None]],
                 root: Path) -> dict[tuple[str, str], int]:
    """Store checked images {(obj_id, type): (bytes, extension, origin)} of visible objects, and commit.

    The new images go into one pack file (thumbnail_packs), written whole before the rows that point at it are
    committed; an image identical to the stored one (same SHA-256) writes nothing, and only its row changes if
    its origin did. Answers the thumbnails' ids by (obj_id, type). On an error nothing is committed and the pack
    written for it is deleted.
    """
    pack = None
    committing = False
    alone_replaced = []  # images stored alone before packs, replaced now: their files go after the commit
    try:
        connection = session.connection()
        keys = list(images)
        known = {(o, t): rest for o, t, *rest in connection.execute(
            _STORED_SQL, {"obj_id": array_literal([k[0] for k in keys]), "type": array_literal([k[1] for k in keys])})}
        ids = {k: v[0] for k, v in known.items()}
        rows, blobs, relabel = [], [], []
        for (obj_id, ttype), (raw, ext, origin) in images.items():
            digest = hashlib.sha256(raw).hexdigest()
            row = {"obj_id": obj_id, "type": ttype, "file_format": EXTENSIONS[ext], "size": len(raw),
                   "origin": origin, "sha256": digest}
            old = known.get((obj_id, ttype))
            if old and _same_bytes(root, old[1], old[2], old[3], old[4], raw, digest):
                if old[5] != origin:  # the same image with another origin: only the row's origin changes
                    relabel.append({"tid": old[0], "sha": old[4], "origin": origin, "uploader": user.id})
                continue
            if old and old[2] is None:
                alone_replaced.append(root / old[1])
            rows.append(row)
            blobs.append(raw)
        if rows:
            pack, offsets = thumbnail_packs.write_pack(root, blobs)
            for row, offset in zip(rows, offsets, strict=True):
                row["byte_offset"] = offset
            params = {"file_path": pack, "uploader_id": user.id}
            for column in _INSERT_COLUMNS:
                params[column] = array_literal([row[column] for row in rows])
            ids.update({(o, t): tid for tid, o, t in connection.execute(_INSERT_SQL, params)})
        if relabel:
            # Guarded by the image's hash: an upload that replaced the image meanwhile is not pointed back at
            # the bytes it replaced (which may be collected as garbage once no row refers to them).
            connection.execute(_RELABEL, relabel)
        committing = True
        session.commit()
    except BaseException:
        session.rollback()
        if pack is not None and not committing:
            thumbnail_packs.discard(root, pack)
        # A failed commit may yet have committed (the answer lost on the way): its pack is kept, and, if no row
        # references it, collected as garbage later.
        raise
    for path in alone_replaced:  # no row points at them any more
        path.unlink(missing_ok=True)
        png_cache_path(path).unlink(missing_ok=True)
    return ids


def thumbnails_for_obj(session: Session, obj_id: str) -> list[dict]:
    """The object's thumbnails in display order (new, ref, sub, then survey images); the caller checked access."""
    rows = session.scalars(select(Thumbnail).where(Thumbnail.obj_id == obj_id)).all()
    rows = sorted(rows, key=lambda t: DISPLAY_ORDER.get(t.type, 99))
    return [
        {"id": t.id, "type": t.type, "label": TYPE_LABELS.get(t.type, t.type), "origin": t.origin,
         "public_url": f"/thumbnails/{t.id}.png", "modified": t.modified}
        for t in rows
    ]


def visible_thumbnail(session: Session, user: User, thumbnail_id: int) -> Thumbnail:
    """The thumbnail if its object is visible to the user; 404 otherwise."""
    row = session.get(Thumbnail, thumbnail_id)
    if row is None:
        raise not_found(f"thumbnail {thumbnail_id}")
    try:
        get_visible_obj(session, user, row.obj_id)
    except ApiError:
        raise not_found(f"thumbnail {thumbnail_id}") from None
    return row


def render_fits(raw: bytes) -> bytes:
    """A PNG of a (gzipped) FITS image: zscale limits, asinh stretch, north up (FITS rows run bottom to top)."""
    import numpy as np
    from astropy.io import fits
    from astropy.visualization import AsinhStretch, ZScaleInterval
    from PIL import Image

    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    with fits.open(io.BytesIO(raw)) as hdul:
        image = next((h.data for h in hdul if h.data is not None and getattr(h.data, "ndim", 0) == 2), None)
        if image is None:
            raise ValueError("the FITS file holds no 2-D image")
        image = np.asarray(image, dtype=float)
    finite = np.isfinite(image)
    if not finite.any():
        scaled = np.zeros_like(image)
    else:
        fill = np.nanmedian(image[finite])
        image = np.where(finite, image, fill)
        lo, hi = ZScaleInterval().get_limits(image)
        if hi <= lo:
            hi = lo + 1.0
        scaled = AsinhStretch(a=0.1)(np.clip((image - lo) / (hi - lo), 0, 1))
    pixels = (np.flipud(scaled) * 255).round().astype("uint8")
    img = Image.fromarray(pixels, mode="L").resize((RENDER_SIZE, RENDER_SIZE), Image.Resampling.NEAREST)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def stored_bytes(row: Thumbnail, root: Path) -> bytes:
    """The thumbnail's bytes exactly as uploaded: its range of a pack, or its own file (rows from before packs)."""
    if row.byte_offset is None:
        return (root / row.file_path).read_bytes()
    return thumbnail_packs.read_range(root, row.file_path, row.byte_offset, row.size)


def _png_cache(row: Thumbnail, root: Path) -> Path:
    if row.sha256 is None:
        return png_cache_path(root / row.file_path)
    return thumbnail_packs.cache_path(root, row.id, row.sha256)


def thumbnail_png(row: Thumbnail, root: Path) -> bytes:
    """The PNG to show: a PNG as stored; a JPEG converted; a FITS rendered on first view, then cached."""
    if row.file_format == "png":
        return stored_bytes(row, root)
    if row.file_format == "jpeg":
        from PIL import Image

        out = io.BytesIO()
        Image.open(io.BytesIO(stored_bytes(row, root))).save(out, format="PNG")
        return out.getvalue()
    cache = _png_cache(row, root)
    try:
        return cache.read_bytes()
    except FileNotFoundError:
        pass
    png = render_fits(stored_bytes(row, root))
    _write_atomically(cache, png)
    return png
