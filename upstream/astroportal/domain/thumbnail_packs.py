"""Pack files: the images of one upload request written one after another into one new file.

Creating a file costs far more than writing 13 KB into an open one (a batch of 600 cutouts spent most of its
storage time creating 600 files), so a request writes a single pack and each thumbnail row records its range
(`file_path`, `byte_offset`, `size`). A pack is never changed after it is written: a replaced image's bytes stay
where they are until no row references the pack any more and `collect_garbage` deletes it.

Crash safety: a pack gets a fresh random name and is created with O_EXCL, written whole and closed before the
transaction that records its rows commits. A crash or a failed transaction leaves at worst a pack no row
references: garbage for `collect_garbage`, never a row pointing at bytes that were not written.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Thumbnail

PACKS_DIR = "packs"  # under the thumbnails directory: packs/<UTC hour>/<random>.pack
CACHE_DIR = "cache"  # PNG renderings: cache/<shard>/<id>-<sha256 prefix>.png
_IOV_CHUNK = 512  # below every system's IOV_MAX (1024 on Linux)
_MADE_DIRS: set[Path] = set()  # folders known to exist, so a request makes no mkdir call


def _folder(path: Path) -> None:
    if path.parent not in _MADE_DIRS:
        path.parent.mkdir(parents=True, exist_ok=True)
        _MADE_DIRS.add(path.parent)


def _writev_all(fd: int, blobs: list[bytes]) -> None:
    pending = [memoryview(b) for b in blobs if b]
    while pending:
        chunk = pending[:_IOV_CHUNK]
        written = os.writev(fd, chunk)
        # A regular file takes everything unless the disk is full; a short write resumes where it stopped.
        while pending and written >= len(pending[0]):
            written -= len(pending.pop(0))
        if written:
            pending[0] = pending[0][written:]


def write_pack(root: Path, blobs: list[bytes]) -> tuple[str, list[int]]:
    """Write `blobs` one after another into a new pack under `root`; its path relative to `root` and the offsets.

    The file is complete (in the kernel's hands) when this returns; nothing is fsynced, as no image file was before.
    """
    rel = f"{PACKS_DIR}/{time.strftime('%Y%m%d%H', time.gmtime())}/{secrets.token_hex(12)}.pack"
    path = root / rel
    _folder(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:  # the folder was removed meanwhile (an empty hour folder, by the collector): again
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o644)
    offsets, at = [], 0
    for blob in blobs:
        offsets.append(at)
        at += len(blob)
    try:
        _writev_all(fd, blobs)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return rel, offsets


def discard(root: Path, rel: str) -> None:
    """Delete a pack whose transaction failed before committing (no row can reference it)."""
    (root / rel).unlink(missing_ok=True)


def read_range(root: Path, rel: str, offset: int, length: int) -> bytes:
    """The `length` bytes at `offset` of the pack `rel`; FileNotFoundError if it is gone, ValueError if short."""
    fd = os.open(root / rel, os.O_RDONLY)
    try:
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(data) != length:
        raise ValueError(f"its pack {rel} holds {len(data)} of its {length} bytes (truncated on disk)")
    return data


def cache_path(root: Path, thumbnail_id: int, sha256: str) -> Path:
    """Where the PNG rendering of a packed thumbnail is cached: named by its id and content, so a replaced image
    gets a new name and never shows an old rendering."""
    return root / CACHE_DIR / f"{thumbnail_id % 256:02x}" / f"{thumbnail_id}-{sha256[:16]}.png"


def collect_garbage(session: Session, root: Path, min_age: float = 3600.0, dry_run: bool = False) -> dict:
    """Delete the pack files and cached PNGs no thumbnail row references any more; report what was done.

    Files younger than `min_age` seconds are left alone: a pack being written by a request in flight has no row
    yet. Answers counts and bytes: packs deleted (or that would be, with `dry_run`) and their bytes, packs still
    referenced with the bytes in them no row uses (replaced or deleted images: reclaimable only by rewriting
    them), young unreferenced packs kept, stale PNGs deleted.
    """
    now = time.time()
    # The files are listed before the rows are read: a pack written after the listing is not considered at all.
    packs = [(p, p.stat()) for p in sorted((root / PACKS_DIR).glob("*/*.pack"))]
    caches = [(p, p.stat()) for p in sorted((root / CACHE_DIR).glob("*/*.png"))]
    live = dict(session.execute(
        select(Thumbnail.file_path, func.sum(Thumbnail.size))
        .where(Thumbnail.byte_offset.is_not(None)).group_by(Thumbnail.file_path)).all())
    current = {f"{tid}-{sha[:16]}.png" for tid, sha in session.execute(
        select(Thumbnail.id, Thumbnail.sha256).where(Thumbnail.sha256.is_not(None)))}
    answer = {"packs_deleted": 0, "bytes_freed": 0, "packs_live": 0, "bytes_live": 0, "bytes_reclaimable": 0,
              "packs_too_young": 0, "cached_pngs_deleted": 0, "dry_run": dry_run}
    for path, st in packs:
        rel = path.relative_to(root).as_posix()
        if rel in live:
            answer["packs_live"] += 1
            answer["bytes_live"] += int(live[rel])
            answer["bytes_reclaimable"] += max(0, st.st_size - int(live[rel]))
        elif now - st.st_mtime < min_age:
            answer["packs_too_young"] += 1
        else:
            answer["packs_deleted"] += 1
            answer["bytes_freed"] += st.st_size
            if not dry_run:
                path.unlink(missing_ok=True)
    for path, st in caches:
        if path.name not in current and now - st.st_mtime >= min_age:
            answer["cached_pngs_deleted"] += 1
            if not dry_run:
                path.unlink(missing_ok=True)
    if not dry_run:  # empty hour folders of the past (the current hour's is being written into)
        this_hour = time.strftime("%Y%m%d%H", time.gmtime())
        for folder in (root / PACKS_DIR).glob("*"):
            if folder.name != this_hour:
                try:
                    folder.rmdir()
                    _MADE_DIRS.discard(folder)
                except OSError:
                    pass
    return answer
