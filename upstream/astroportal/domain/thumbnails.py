"""Thumbnails: images of an object (an alert's cutouts) stored as received, rendered to PNG when first viewed.

Ingestion only decodes and writes the bytes (a ZTF alert brings about 40 KB of gzipped FITS); the rendering
(zscale limits and an asinh stretch, as astronomers look at cutouts) happens on the first view and is kept
beside the original, so a broker's rate never pays for it.
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
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..errors import ApiError, not_found
from ..models import THUMBNAIL_TYPES, Thumbnail, User
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


def relative_path(obj_id: str, ttype: str, ext: str) -> str:
    """Where an object's thumbnail of a type lives under the thumbnails directory (spread over 256 folders)."""
    shard = hashlib.sha1(obj_id.encode()).hexdigest()[:2]
    return f"{shard}/{quote(obj_id, safe='')}_{ttype}.{ext}"


_MADE_DIRS: set[Path] = set()  # the shard folders known to exist: a batch of cutouts makes one system call less each


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
    return path.with_name(path.name + ".png")


def post_thumbnail(session: Session, user: User, data: dict, root: Path) -> int:
    """POST /api/thumbnail: store an object's image of type `ttype` (base64 `data`); returns the thumbnail's id.

    The object must be visible to the user. A second upload of the same type replaces the first (one image
    per object and type); the same bytes again change nothing.
    """
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
    get_visible_obj(session, user, obj_id)

    rel = relative_path(obj_id, ttype, ext)
    path = root / rel
    try:
        unchanged = path.stat().st_size == len(raw) and path.read_bytes() == raw
    except FileNotFoundError:
        unchanged = False
    if not unchanged:
        _write_atomically(path, raw)
        png_cache_path(path).unlink(missing_ok=True)
    values = {"file_path": rel, "file_format": EXTENSIONS[ext], "size": len(raw), "origin": origin}
    table = Thumbnail.__table__
    stmt = pg_insert(Thumbnail).values(obj_id=obj_id, type=ttype, uploader_id=user.id, **values)
    changed = (
        (table.c.file_path != stmt.excluded.file_path)
        | (table.c.size != stmt.excluded.size)
        | table.c.origin.is_distinct_from(stmt.excluded.origin)
    )
    if not unchanged:
        changed = None  # new bytes: always record the upload
    stmt = stmt.on_conflict_do_update(
        index_elements=["obj_id", "type"],
        set_={**values, "uploader_id": user.id, "modified": func.now()},
        where=changed,
    ).returning(Thumbnail.id)
    tid = session.execute(stmt).scalar()
    if tid is None:
        tid = session.scalar(select(Thumbnail.id).where(Thumbnail.obj_id == obj_id, Thumbnail.type == ttype))
    session.commit()
    return tid


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


def thumbnail_png(row: Thumbnail, root: Path) -> bytes:
    """The PNG to show: rendered from the stored file on first view and cached beside it."""
    path = root / row.file_path
    if row.file_format == "png":
        return path.read_bytes()
    if row.file_format == "jpeg":
        from PIL import Image

        out = io.BytesIO()
        Image.open(path).save(out, format="PNG")
        return out.getvalue()
    cache = png_cache_path(path)
    try:
        return cache.read_bytes()
    except FileNotFoundError:
        pass
    png = render_fits(path.read_bytes())
    _write_atomically(cache, png)
    return png
