"""`./run.sh diff [PATH] [--stat]`: each override against the upstream file it replaces, plus additions
and deletions (the distribution's services count as additions; the generated config.yaml does not)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from . import overlay
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


def diff(project, path: str | None = None, stat: bool = False) -> str:
    """The text `./run.sh diff` prints."""
    want = normalize(project, path)
    plan = overlay.compose(project, None)
    overrides = [r for r in plan.by_kind(overlay.OVERRIDE) if _under(r, want)]
    added = [r for r in plan.by_kind(overlay.ADDED) + plan.by_kind(overlay.SERVICE) if _under(r, want)]
    deleted = []
    for marker, removed in sorted(plan.deletions.items()):
        for src in removed:
            if _under(src.rel, want) or _under(marker[: -len(overlay.DELETE_SUFFIX)], want):
                deleted.append((src.rel, marker))
    if not (overrides or added or deleted):
        if want:
            raise LauncherError(f"diff: nothing in the overlay at {want} (no override, addition or deletion)", 1)
        return "the overlay changes nothing: patched/ is upstream as it is\n"

    out: list[str] = []
    stats: list[tuple[str, int, int]] = []
    for rel in overrides:
        old, new = _read_lines(plan.upstream_paths[rel]), _read_lines(plan.targets[rel].source.path)
        if old is None or new is None:
            stats.append((rel, -1, -1))
            out.append(f"Binary files upstream/{rel} and extensions/{rel} differ\n")
            continue
        lines = list(difflib.unified_diff(old, new, f"upstream/{rel}", f"extensions/{rel}"))
        plus = sum(1 for l in lines if l.startswith("+") and not l.startswith("+++"))
        minus = sum(1 for l in lines if l.startswith("-") and not l.startswith("---"))
        stats.append((rel, plus, minus))
        for line in lines:
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
        if not lines:
            out.append(f"(extensions/{rel} is identical to upstream/{rel})\n")

    if stat:
        width = max(len(r) for r, _, _ in stats) if stats else 0
        text = [f" {r.ljust(width)} | " + ("binary" if p < 0 else f"+{p} -{m}") + "\n" for r, p, m in stats]
    else:
        text = out
    for rel in added:
        where = "services/" + rel[len("services/"):] if plan.targets[rel].kind == overlay.SERVICE else f"extensions/{rel}"
        text.append(f"added: {rel} (from {where})\n")
    for rel, marker in deleted:
        reason = Path(plan.markers[marker].path).read_text(errors="replace").strip().splitlines()
        why = f": {reason[0].lstrip('# ')}" if reason else ""
        text.append(f"deleted: {rel} (by extensions/{marker}{why})\n")
    text.append(f"{len(overrides)} overridden, {len(added)} added, {len(deleted)} deleted\n")
    return "".join(text)
