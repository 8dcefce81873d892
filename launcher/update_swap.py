"""Replacing upstream/ and extensions/ all at once, so that an interrupted update leaves before or after.

An update stages the new trees in `.update-stage/new/` (inside the project root: the same filesystem, so a
rename moves a tree in one step), then writes the journal `.update-journal.json` (atomically: the moment
the update is decided), then for each tree renames the old one to `.update-stage/old/NAME` and the new one
into place. Killed before the journal exists: the stage is thrown away (the tree is as before). Killed
after: the next `update` or `build` finds the journal and finishes the renames (the tree is as after).
Every step of that finishing is a rename that can be redone from any point.
An flock on the project root directory itself keeps two updates, or an update and a build's recovery,
apart (a lock on the directory leaves no file behind: a cancelled update changes nothing, byte for byte).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from .errors import LauncherError, info

STAGE = ".update-stage"
JOURNAL = ".update-journal.json"
PAUSE_ENV = "PORTAL_UPDATE_PAUSE_AT"  # tests: "staged" (before the journal) or "swapping" (half-swapped)


@contextmanager
def locked(root: Path, wait: bool = False):
    """Hold the project's update lock for the block."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LauncherError("an update of this project is running; try again when it ends") from None
        yield
    finally:
        os.close(fd)


def pause(point: str) -> None:
    """For the tests of interruption: stop here (until killed) when PORTAL_UPDATE_PAUSE_AT names `point`."""
    if os.environ.get(PAUSE_ENV) == point:
        info(f"update: paused at {point} ({PAUSE_ENV})")
        while True:
            time.sleep(1)


def fresh_stage(root: Path) -> Path:
    """An empty `.update-stage/` with `new/` and `old/` (whatever an earlier, uncommitted attempt left removed)."""
    stage = root / STAGE
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "new").mkdir(parents=True)
    (stage / "old").mkdir()
    return stage


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(root: Path, names: list[str], summary: str) -> None:
    """Swap each staged tree `.update-stage/new/NAME` with root/NAME, through the journal."""
    stage = root / STAGE
    for name in names:
        _sync_tree(stage / "new" / name)
    journal = root / JOURNAL
    tmp = root / (JOURNAL + ".tmp")
    # Ctrl-C between the journal and the last rename would only be finished by the next run: ignore it here.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with open(tmp, "w") as fh:
            json.dump({"names": names, "summary": summary}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, journal)
        _fsync_dir(root)
        _finish(root, names, pause_at="swapping")
    finally:
        signal.signal(signal.SIGINT, previous)


def _sync_tree(tree: Path) -> None:
    """fsync every file of a staged tree, so that the renames after the journal never expose empty files."""
    for dirpath, _, names in os.walk(tree):
        for n in names:
            p = os.path.join(dirpath, n)
            if os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _finish(root: Path, names: list[str], pause_at: str | None = None) -> None:
    stage = root / STAGE
    for i, name in enumerate(names):
        new, old, live = stage / "new" / name, stage / "old" / name, root / name
        if not new.exists() and not new.is_symlink():
            continue  # this one is in place already
        if (live.exists() or live.is_symlink()) and not old.exists():
            os.rename(live, old)
        if i == 0 and pause_at:
            pause(pause_at)
        os.rename(new, live)
    _fsync_dir(root)
    (root / JOURNAL).unlink()
    _fsync_dir(root)
    shutil.rmtree(stage, ignore_errors=True)


def recover(root: Path, held: bool = False) -> str | None:
    """Finish an update a kill interrupted after its journal, or drop one interrupted before; say what was done.

    `held`: the caller holds the update lock already.
    """
    journal = root / JOURNAL
    stage = root / STAGE
    if not journal.exists() and not stage.exists():
        return None
    with (nullcontext() if held else locked(root)):
        if journal.exists():
            try:
                data = json.loads(journal.read_text())
                names = list(data["names"])
            except (ValueError, KeyError, TypeError):
                raise LauncherError(f"{journal} is damaged: compare {stage}/new and {stage}/old with the project by "
                                    "hand, then remove both") from None
            _finish(root, names)
            return f"finished an interrupted update: {data.get('summary', '')}".rstrip(": ")
        if stage.exists():
            finished = (stage / "old").is_dir() and any((stage / "old").iterdir())
            shutil.rmtree(stage)
            (root / (JOURNAL + ".tmp")).unlink(missing_ok=True)
            if finished:  # killed while clearing away the old trees of an update that had finished
                return "removed the previous trees a finished update had kept aside"
            return "removed what an interrupted update had staged (it had changed nothing yet)"
    return None
