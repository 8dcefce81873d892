"""`./run.sh diff [PATH] [--stat]`: each override against the upstream file it replaces, plus additions
and deletions (the distribution's services count as additions; the generated config.yaml does not).

compare() returns a DiffReport (one DiffEntry per file, with the recorded base of each override and
deletion): the CLI prints its render() (diff()), an update reads its entries."""

from __future__ import annotations

import difflib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import overlay, provenance
from .errors import LauncherError

PREFIXES = ("extensions/", "upstream/", "patched/", "services/")


def normalize(project, path: str | None) -> str:
    """A PATH argument as a path inside the tree; refuse one that leads out of it."""
    if not path or path in (".", "./"):
        return ""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(project.root)
        except ValueError:
            raise LauncherError(f"diff: {path} is outside the project", 2) from None
    rel = os.path.normpath(str(p)).replace(os.sep, "/")
    if rel == ".." or rel.startswith("../") or rel.startswith("/"):
        raise LauncherError(f"diff: {path} leads out of the tree", 2)
    for prefix in PREFIXES:
        if rel.startswith(prefix) and prefix != "services/":
            rel = rel[len(prefix):]
            break
    if rel.endswith(overlay.DELETE_SUFFIX):
        rel = rel[: -len(overlay.DELETE_SUFFIX)]
    return "" if rel == "." else rel


def _under(rel: str, want: str) -> bool:
    return not want or rel == want or rel.startswith(want + "/")


def _read_lines(path: str) -> list[str] | None:
    data = Path(path).read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


@dataclass
class DiffEntry:
    """One path the overlay changes: an override (with its unified diff), an addition or a deletion."""

    path: str  # the path in the tree (as in patched/)
    kind: overlay.Kind  # OVERRIDE, ADD, SERVICE or DELETE
    ours: str | None  # where the distribution's file comes from (extensions/P, services/...); the marker for a deletion
    upstream: str | None = None  # upstream/P for an override or a deletion
    lines: list[str] = field(default_factory=list)  # the unified diff's lines (overrides; empty when identical)
    added: int = 0
    removed: int = 0
    binary: bool = False
    reason: str | None = None  # a deletion marker's first line
    base_blob: str | None = None  # the recorded base's git blob id (PROVENANCE.yaml), for a three-way merge
    base_is_current: bool | None = None  # upstream's file is still the recorded base (None: nothing recorded)
    was_addition: bool = False  # an addition until upstream added a file at the same path


@dataclass
class DiffReport:
    """What `./run.sh diff` found, per file; render() is the text it prints."""

    entries: list[DiffEntry]
    path: str = ""  # the PATH asked about ("" for the whole tree)

    def of_kind(self, *kinds: overlay.Kind) -> list[DiffEntry]:
        return [e for e in self.entries if e.kind in kinds]

    def render(self, stat: bool = False) -> str:
        if not self.entries:
            return "the overlay changes nothing: patched/ is upstream as it is\n"
        overrides = self.of_kind(overlay.OVERRIDE)
        added = self.of_kind(overlay.ADDED, overlay.SERVICE)
        deleted = self.of_kind(overlay.DELETED)
        text: list[str] = []
        if stat:
            width = max((len(e.path) for e in overrides), default=0)
            for e in overrides:
                counts = "binary" if e.binary else f"+{e.added} -{e.removed}"
                text.append(f" {e.path.ljust(width)} | {counts}{_base_note(e, short=True)}\n")
        else:
            for e in overrides:
                if e.binary:
                    text.append(f"Binary files {e.upstream} and {e.ours} differ\n")
                elif not e.lines:
                    text.append(f"({e.ours} is identical to {e.upstream})\n")
                for line in e.lines:
                    text.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
                if note := _base_note(e, short=False):
                    text.append(note + "\n")
        for e in added:
            text.append(f"added: {e.path} (from {e.ours})\n")
        for e in deleted:
            why = f": {e.reason}" if e.reason else ""
            text.append(f"deleted: {e.path} (by {e.ours}{why})\n")
        text.append(f"{len(overrides)} overridden, {len(added)} added, {len(deleted)} deleted\n")
        return "".join(text)


def _base_note(e: DiffEntry, short: bool) -> str:
    if e.was_addition:
        if short:
            return " (was an addition: upstream added this file since)"
        return (f"({e.ours} was an addition; upstream has added its own {e.upstream} since, which it hides: keep "
                f"ours, port upstream's, or delete {e.ours}; then ./run.sh build --accept-upstream {e.path})")
    if e.base_is_current is not False:
        return ""
    if short:
        return " (upstream changed since the recorded base)"
    return (f"(upstream/{e.path} has changed since the override was made from it (base {e.base_blob or 'unknown'}): "
            f"port what is needed, then ./run.sh build --accept-upstream {e.path})")


def _recorded_bases(project) -> dict:
    try:
        return provenance.load(project)
    except LauncherError:
        return {"overrides": {}, "deletions": {}}  # the build reports a broken manifest; diff still shows


def diff(project, path: str | None = None, stat: bool = False) -> str:
    """The text `./run.sh diff [PATH] [--stat]` prints: compare(project, path).render(stat)."""
    return compare(project, path).render(stat)


def compare(project, path: str | None = None) -> DiffReport:
    """Compare the overlay with upstream (everything, or what lies at PATH), file by file."""
    want = normalize(project, path)
    plan = overlay.compose(project, None)
    manifest = _recorded_bases(project)
    entries: list[DiffEntry] = []
    for e in plan.of_kind(overlay.OVERRIDE):
        if _under(e.path, want):
            entries.append(_override(e, manifest["overrides"].get(e.path)))
    for e in plan.of_kind(overlay.ADDED, overlay.SERVICE):
        if _under(e.path, want):
            ours = e.path if e.kind == overlay.SERVICE else f"extensions/{e.path}"
            entries.append(DiffEntry(e.path, e.kind, ours))
    for marker, removed in plan.deletions().items():
        victim = marker[: -len(overlay.DELETE_SUFFIX)]
        lines = (project.extensions / marker).read_text(errors="replace").strip().splitlines()
        reason = lines[0].lstrip("# ") if lines else None
        recorded = (manifest["deletions"].get(victim) or {}).get("upstream_blobs") or {}
        for e in removed:
            if _under(e.path, want) or _under(victim, want):
                entries.append(DiffEntry(e.path, e.kind, f"extensions/{marker}", f"upstream/{e.path}", reason=reason,
                                         base_blob=recorded.get(e.path)))
    if not entries and want:
        raise LauncherError(f"diff: nothing in the overlay at {want} (no override, addition or deletion)", 1)
    return DiffReport(entries, want)


def _override(e: overlay.PlanEntry, recorded: dict | None) -> DiffEntry:
    rel = e.path
    out = DiffEntry(rel, e.kind, f"extensions/{rel}", f"upstream/{rel}")
    upstream_bytes = Path(e.upstream.path).read_bytes()
    if recorded:
        out.base_blob = recorded.get("upstream_blob")
        out.was_addition = bool(recorded.get("was_addition"))
        out.base_is_current = recorded["upstream_sha256"] == hashlib.sha256(upstream_bytes).hexdigest()
    old, new = _read_lines(e.upstream.path), _read_lines(e.source.path)
    if old is None or new is None:
        out.binary = True
        return out
    out.lines = list(difflib.unified_diff(old, new, out.upstream, out.ours))
    out.added = sum(1 for line in out.lines if line.startswith("+") and not line.startswith("+++"))
    out.removed = sum(1 for line in out.lines if line.startswith("-") and not line.startswith("---"))
    return out
