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

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..errors import ApiError, not_found
from ..models import THUMBNAIL_TYPES, Thumbnail, User
from . import thumbnail_packs
from .access import get_visible_obj
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


def _check_item(data: dict) -> tuple[str, str, bytes, str, str | None]:
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
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "`data` is not valid base64") from None
    ext = sniff(raw)
    origin = data.get("origin")
    if origin is not None and not isinstance(origin, str):
        raise ApiError(400, f"`origin` must be a string, got {origin!r:.40}")
    return obj_id, ttype, raw, ext, origin


def post_thumbnail(session: Session, user: User, data: dict, root: Path) -> int:
    """POST /api/thumbnail: store an object's image of type `ttype` (base64 `data`); returns the thumbnail's id.

    The object must be visible to the user. A second upload of the same type replaces the first (one image
    per object and type); the same bytes again change nothing.
    """
    obj_id, ttype, raw, ext, origin = _check_item(data)
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
        known = {(o, t): rest for o, t, *rest in session.execute(
            select(Thumbnail.obj_id, Thumbnail.type, Thumbnail.id, Thumbnail.file_path, Thumbnail.byte_offset,
                   Thumbnail.size, Thumbnail.sha256, Thumbnail.origin)
            .where(tuple_(Thumbnail.obj_id, Thumbnail.type).in_(sorted(images))))}
        ids = {k: v[0] for k, v in known.items()}
        rows, fresh, relabel = [], [], []
        for (obj_id, ttype), (raw, ext, origin) in images.items():
            digest = hashlib.sha256(raw).hexdigest()
            row = {"obj_id": obj_id, "type": ttype, "file_format": EXTENSIONS[ext], "size": len(raw),
                   "origin": origin, "uploader_id": user.id, "sha256": digest}
            old = known.get((obj_id, ttype))
            if old and _same_bytes(root, old[1], old[2], old[3], old[4], raw, digest):
                if old[5] != origin:  # the same image with another origin: only the row's origin changes
                    relabel.append({"tid": old[0], "sha": old[4], "origin": origin, "uploader": user.id})
                continue
            if old and old[2] is None:
                alone_replaced.append(root / old[1])
            rows.append(row)
            fresh.append((row, raw))
        if fresh:
            pack, offsets = thumbnail_packs.write_pack(root, [raw for _, raw in fresh])
            for (row, _), offset in zip(fresh, offsets, strict=True):
                row["file_path"], row["byte_offset"] = pack, offset
        if rows:
            # One statement compiled once and sent with the rows as parameters (SQLAlchemy's insertmanyvalues):
            # `.values(rows)` compiled a bind parameter per cell, a third of the time of a batch of cutouts.
            table = Thumbnail.__table__
            stmt = pg_insert(table)
            ex = stmt.excluded
            stmt = stmt.on_conflict_do_update(
                index_elements=["obj_id", "type"],
                set_={"file_path": ex.file_path, "byte_offset": ex.byte_offset, "file_format": ex.file_format,
                      "size": ex.size, "sha256": ex.sha256, "origin": ex.origin, "uploader_id": ex.uploader_id,
                      "modified": func.now()},
            ).returning(table.c.id, table.c.obj_id, table.c.type)
            ids.update({(o, t): tid for tid, o, t in session.connection().execute(stmt, rows)})
        if relabel:
            # Guarded by the image's hash: an upload that replaced the image meanwhile is not pointed back at
            # the bytes it replaced (which may be collected as garbage once no row refers to them).
            session.connection().execute(_RELABEL, relabel)
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
