"""Three-way merges of one file (`git merge-file`), and finding the conflict markers a merge leaves.

`git merge-file` is used rather than a diff3 of our own: it is git's own merge of one file (the same
result as a `git merge`), needs no repository, and git is on every machine this runs on (.ci/run installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import LauncherError

# The lines a merge writes around a conflict: `<<<<<<< ours`, `|||||||` (diff3 style), `=======`, `>>>>>>>`.
OPENING = re.compile(rb"^<{7}(?: |$)")
CLOSING = re.compile(rb"^>{7}(?: |$)")


@dataclass
class Merged:
    """The merged bytes and the number of conflicting hunks in them (each between markers)."""

    data: bytes
    conflicts: int


def is_binary(data: bytes) -> bool:
    """A file a line merge cannot handle (git's own test: a NUL byte near the start)."""
    return b"\0" in data[:8000]


def merge(base: bytes, ours: bytes, theirs: bytes, labels: tuple[str, str, str]) -> Merged:
    """Merge `ours` and `theirs`, both made from `base`; `labels` name (ours, base, theirs) in the markers."""
    if ours == theirs or theirs == base:
        return Merged(ours, 0)
    if ours == base:
        return Merged(theirs, 0)
    git = shutil.which("git")
    if git is None:
        raise LauncherError("a three-way merge needs git, which is not installed: apt-get install git", 2)
    with tempfile.TemporaryDirectory(prefix="merge3-") as tmp:
        paths = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            p = Path(tmp) / name
            p.write_bytes(data)
            paths.append(str(p))
        res = subprocess.run([git, "merge-file", "-p", "-L", labels[0], "-L", labels[1], "-L", labels[2], *paths],
                             capture_output=True)
    # merge-file exits with the number of conflicts (capped at 127); a negative status (255) is an error.
    if res.returncode < 0 or res.returncode > 127:
        raise LauncherError(f"git merge-file failed on {labels[0]}: {res.stderr.decode(errors='replace').strip()}")
    return Merged(res.stdout, res.returncode)


def whole_file_conflict(ours: bytes, theirs: bytes, labels: tuple[str, str]) -> bytes:
    """One conflict spanning the whole file: what a merge without a common ancestor can offer."""
    def ended(data: bytes) -> bytes:
        return data if not data or data.endswith(b"\n") else data + b"\n"
    return (b"<<<<<<< " + labels[0].encode() + b"\n" + ended(ours) + b"=======\n" + ended(theirs)
            + b">>>>>>> " + labels[1].encode() + b"\n")


def conflict_lines(data: bytes) -> list[int]:
    """The 1-based line numbers of conflict openings (`<<<<<<< `) that a closing (`>>>>>>> `) follows."""
    found, opened = [], None
    for number, line in enumerate(data.splitlines(), 1):
        if OPENING.match(line):
            opened = number
        elif CLOSING.match(line) and opened is not None:
            found.append(opened)
            opened = None
    return found


def refuse_conflicted(root: Path, paths: list[str]) -> None:
    """LauncherError naming each file of `paths` (relative to `root`) that still holds conflict markers."""
    bad = []
    for rel in sorted(paths):
        try:
            data = (root / rel).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        if is_binary(data):
            continue
        lines = conflict_lines(data)
        if lines:
            bad.append(f"  {root.name}/{rel}:{lines[0]}: conflict markers ({len(lines)} conflict(s), lines "
                       f"{', '.join(map(str, lines))})")
    if bad:
        raise LauncherError("these overrides still hold the conflict markers of an update's merge:\n" + "\n".join(bad)
                            + "\nresolve each conflict (keep what both sides need, remove the <<<<<<< ======= >>>>>>> "
                              "lines), then build again", 2)
