"""`./run.sh update --from SOURCE[@REF] [--on-conflict merge|force|cancel] [--dry-run]`: take a new upstream.

1. fetch SOURCE into a temporary directory (upstream_source.py says what SOURCE may be);
2. compare the vendored upstream/ with it: added, changed, deleted and renamed files (a rename: an identical
   file, or a text file at least RENAME_SIMILARITY alike by difflib, under another path);
3. work out what that does to the overlay: a three-way merge (merge3.py) of every override whose upstream
   file changed (base: the recorded upstream file, provenance.find_base; ours: the override; theirs: the new
   upstream file), overrides to move after a rename, overrides of deleted files (they become additions),
   deletion markers whose files changed, moved or went, additions upstream now has too, new migrations;
4. print that summary (--dry-run stops here); on conflicts, ask (on a terminal) or take --on-conflict;
5. stage the new upstream/ and extensions/ (merged overrides, moved files, the manifest with the new bases)
   and swap them in through a journal (update_swap.py): an interruption leaves the tree before or after.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from . import diff as diffmod
from . import merge3, overlay, provenance, update_swap, upstream_source
from .errors import LauncherError, info
from .paths import Project

RENAME_SIMILARITY = 0.6
CHOICES = ("merge", "force", "cancel")
MIGRATIONS_DIR = "alembic/versions/"
LISTED = 200  # file changes listed one by one in the summary; more are counted


# --- comparing two upstream trees --------------------------------------------------------------------------

@dataclass
class TreeChanges:
    """What changed from the vendored upstream to the new one (UPSTREAM.yaml aside: it is the version)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    renamed: dict[str, tuple[str, float]] = field(default_factory=dict)  # old path -> (new path, similarity)

    def empty(self) -> bool:
        return not (self.added or self.changed or self.deleted or self.renamed)

    def new_paths(self) -> list[str]:
        return sorted([*self.added, *(new for new, _ in self.renamed.values())])


def read_tree(root: Path, layer: str) -> dict[str, bytes]:
    """Every file of a tree by relative path (as the build sees it: caches left out), UPSTREAM.yaml aside."""
    files = overlay.scan(root, layer).files
    return {rel: Path(src.path).read_bytes() for rel, src in files.items() if rel != upstream_source.MARKER}


def _lines(data: bytes) -> list[bytes] | None:
    return None if merge3.is_binary(data) else data.splitlines(keepends=True)


def compare_trees(old: dict[str, bytes], new: dict[str, bytes]) -> TreeChanges:
    """Added, changed, deleted and renamed files between two trees."""
    out = TreeChanges()
    out.changed = sorted(p for p in old.keys() & new.keys() if old[p] != new[p])
    deleted = sorted(old.keys() - new.keys())
    added = sorted(new.keys() - old.keys())
    taken: set[str] = set()
    by_hash: dict[str, list[str]] = {}
    for a in added:
        by_hash.setdefault(hashlib.sha256(new[a]).hexdigest(), []).append(a)
    for d in deleted:  # identical content under another path; the same file name first
        same = [a for a in by_hash.get(hashlib.sha256(old[d]).hexdigest(), []) if a not in taken]
        if same:
            best = min(same, key=lambda a: (a.rsplit("/", 1)[-1] != d.rsplit("/", 1)[-1], a))
            out.renamed[d] = (best, 1.0)
            taken.add(best)
    wide = len(deleted) * len(added) <= 2500  # beyond that, only files of the same name are compared
    for d in deleted:
        if d in out.renamed or (old_lines := _lines(old[d])) is None:
            continue
        best, score = None, RENAME_SIMILARITY
        for a in added:
            if a in taken or (not wide and a.rsplit("/", 1)[-1] != d.rsplit("/", 1)[-1]):
                continue
            new_lines = _lines(new[a])
            if new_lines is None:
                continue
            sm = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
            if sm.real_quick_ratio() < score or sm.quick_ratio() < score:
                continue
            ratio = sm.ratio()
            if ratio >= score and (best is None or ratio > score):
                best, score = a, ratio
        if best is not None:
            out.renamed[d] = (best, score)
            taken.add(best)
    out.deleted = [d for d in deleted if d not in out.renamed]
    out.added = [a for a in added if a not in taken]
    return out


# --- what the new upstream does to the overlay -------------------------------------------------------------

CONFLICTING = ("conflict", "no-base", "binary")


@dataclass
class OverrideMerge:
    """One override under an upstream change: where it lies, where it goes, and its merge."""

    path: str  # extensions/<path> today
    target: str  # extensions/<target> after the update (upstream renamed the file when it differs)
    outcome: str  # clean | conflict | no-base | binary | moved | blocked
    data: bytes | None = None  # the merged file (with markers for a conflict)
    theirs: bytes | None = None  # the new upstream file: the new base once merged
    conflicts: int = 0
    note: str = ""

    @property
    def conflicting(self) -> bool:
        return self.outcome in CONFLICTING


@dataclass
class MarkerNote:
    """A deletion marker whose upstream files changed, moved or went."""

    marker: str  # path in extensions/ (ending .delete)
    action: str  # stale | moved | removed
    note: str
    target: str | None = None  # the marker's new path when moved


@dataclass
class UpdatePlan:
    changes: TreeChanges
    merges: list[OverrideMerge] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)  # overrides of files upstream deleted: now additions
    markers: list[MarkerNote] = field(default_factory=list)
    overtaken: list[str] = field(default_factory=list)  # additions upstream now has too
    migrations: list[str] = field(default_factory=list)

    @property
    def conflicts(self) -> list[OverrideMerge]:
        return [m for m in self.merges if m.conflicting]


def _merge_one(project, entry: diffmod.DiffEntry, target: str, ours: bytes, old_upstream: bytes,
               theirs: bytes, old_version: str, new_version: str) -> OverrideMerge:
    out = OverrideMerge(entry.path, target, "clean", theirs=theirs)
    if entry.base_blob:
        base = provenance.find_base(entry.base_blob, project)
        if base is None:
            out.outcome = "no-base"
            out.note = (f"its recorded base (blob {entry.base_blob}) is in neither extensions/{overlay.BASES_DIR}/, "
                        "upstream/ nor git history: no common ancestor to merge from")
            out.data = merge3.whole_file_conflict(ours, theirs, (f"extensions/{entry.path} (ours)",
                                                                 f"upstream {new_version} {target} (theirs)"))
            out.conflicts = 1
            return out
    else:
        base = old_upstream  # no recorded base yet: made from today's vendored file, as the build would record
        out.note = "no recorded base: merged from today's vendored file"
    if any(merge3.is_binary(d) for d in (base, ours, theirs)):
        if ours == theirs or theirs == base:
            out.data = ours
            return out
        out.outcome, out.data, out.conflicts = "binary", ours, 1
        out.note = "a binary file changed on both sides: no line merge; kept as it is"
        return out
    merged = merge3.merge(base, ours, theirs, (f"extensions/{entry.path} (ours)", f"upstream {old_version} (base)",
                                                f"upstream {new_version} {target} (theirs)"))
    out.data, out.conflicts = merged.data, merged.conflicts
    if merged.conflicts:
        out.outcome = "conflict"
    return out


def plan_update(project, old: dict[str, bytes], new: dict[str, bytes], changes: TreeChanges,
                old_version: str, new_version: str) -> UpdatePlan:
    """Everything the update does to extensions/, decided before anything is written."""
    plan = UpdatePlan(changes)
    report = diffmod.compare(project)
    ours_paths = {e.path for e in report.of_kind(overlay.OVERRIDE, overlay.ADDED)}
    for e in report.of_kind(overlay.OVERRIDE):
        ours = (project.extensions / e.path).read_bytes()
        if e.path in changes.changed:
            plan.merges.append(_merge_one(project, e, e.path, ours, old[e.path], new[e.path], old_version, new_version))
        elif e.path in changes.renamed:
            target, similarity = changes.renamed[e.path]
            if target in ours_paths:
                plan.merges.append(OverrideMerge(e.path, e.path, "blocked", note=(
                    f"upstream renamed it to {target}, where extensions/ has a file already: left in place (now an "
                    f"addition); move or merge it by hand")))
            elif similarity == 1.0:
                plan.merges.append(OverrideMerge(e.path, target, "moved", data=ours, theirs=new[target],
                                                 note=f"upstream renamed it to {target}"))
            else:
                m = _merge_one(project, e, target, ours, old[e.path], new[target], old_version, new_version)
                m.note = (f"upstream renamed it to {target} ({similarity:.0%} alike) and changed it; "
                          + m.note).rstrip("; ")
                plan.merges.append(m)
        elif e.path in changes.deleted:
            plan.orphaned.append(e.path)
    markers: dict[str, list[str]] = {}
    for e in report.of_kind(overlay.DELETED):
        markers.setdefault(e.ours.removeprefix("extensions/"), []).append(e.path)
    for marker, removed in sorted(markers.items()):
        plan.markers += _marker_notes(marker, removed, new, changes)
    plan.overtaken = sorted(p for p in ours_paths if p in changes.new_paths()
                            and p not in {m.target for m in plan.merges})
    plan.migrations = [p for p in changes.new_paths() if p.startswith(MIGRATIONS_DIR) and p.endswith(".py")]
    return plan


def _marker_notes(marker: str, removed: list[str], new: dict[str, bytes], changes: TreeChanges) -> list[MarkerNote]:
    victim = marker[: -len(overlay.DELETE_SUFFIX)]
    single = removed == [victim]
    if single:
        if victim in changes.changed:
            return [MarkerNote(marker, "stale", f"upstream changed {victim}: the marker removes its new version too")]
        if victim in changes.renamed:
            target = changes.renamed[victim][0]
            return [MarkerNote(marker, "moved", f"upstream renamed {victim} to {target}: the marker follows it",
                               target + overlay.DELETE_SUFFIX)]
        if victim in changes.deleted:
            return [MarkerNote(marker, "removed", f"upstream deleted {victim}: the marker is no longer needed")]
        return []
    left = [p for p in new if p.startswith(victim + "/")]
    if not left:
        return [MarkerNote(marker, "removed", f"upstream has nothing under {victim}/ any more: the marker is no "
                                              "longer needed")]
    what = [f"changed {p}" for p in removed if p in changes.changed]
    what += [f"removed {p}" for p in removed if p in changes.deleted or p in changes.renamed]
    what += [f"added {p}" for p in changes.new_paths() if p.startswith(victim + "/")]
    if what:
        return [MarkerNote(marker, "stale", f"upstream {', '.join(what)} under {victim}/: the marker removes all of "
                                            "it")]
    return []


def _migration_note(path: str, data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    rev = re.search(r"^revision\s*=\s*['\"]([^'\"]+)", text, re.M)
    down = re.search(r"^down_revision\s*=\s*(.+)$", text, re.M)
    parts = [f"revision {rev.group(1)}" if rev else "no revision id found"]
    if down:
        parts.append(f"revises {down.group(1).strip()}")
    return f"{path} ({', '.join(parts)})"


# --- the summary -------------------------------------------------------------------------------------------

def render(plan: UpdatePlan, header: str, new: dict[str, bytes]) -> str:
    c = plan.changes
    out = [header,
           f"upstream: {len(c.added)} added, {len(c.changed)} changed, {len(c.deleted)} deleted, "
           f"{len(c.renamed)} renamed"]
    rows = ([f"  A  {p}" for p in c.added] + [f"  M  {p}" for p in c.changed] + [f"  D  {p}" for p in c.deleted]
            + [f"  R  {o} -> {n} ({'identical' if s == 1.0 else f'{s:.0%} alike'})" for o, (n, s) in c.renamed.items()])
    out += rows[:LISTED]
    if len(rows) > LISTED:
        out.append(f"  ... and {len(rows) - LISTED} more")
    notes = []
    for m in plan.merges:
        where = f"extensions/{m.path}" + (f" -> extensions/{m.target}" if m.target != m.path else "")
        extra = f" ({m.note})" if m.note else ""
        if m.outcome == "clean" and m.data == m.theirs:
            notes.append(f"  merged    {where}: now the same as upstream's new file (the override could go){extra}")
        elif m.outcome == "clean":
            notes.append(f"  merged    {where}: upstream's change and the override's both kept{extra}")
        elif m.outcome == "moved":
            notes.append(f"  moved     {where}{extra}")
        elif m.outcome == "conflict":
            notes.append(f"  CONFLICT  {where}: {m.conflicts} conflicting part(s){extra}")
        elif m.outcome in ("no-base", "binary"):
            notes.append(f"  CONFLICT  {where}: {m.note}")
        else:
            notes.append(f"  attention {where}: {m.note}")
    for p in plan.orphaned:
        notes.append(f"  attention extensions/{p}: upstream deleted {p}; the override stays, as an addition")
    for n in plan.markers:
        notes.append(f"  marker    extensions/{n.marker}: {n.note}")
    for p in plan.overtaken:
        notes.append(f"  attention extensions/{p}: upstream now has {p} too; ours hides it (review with ./run.sh diff "
                     f"{p})")
    out.append("overlay: " + (f"{len(plan.merges)} override(s) under upstream's changes, {len(plan.conflicts)} "
                              "conflicting" if notes else "untouched by these changes"))
    out += notes
    if plan.migrations:
        out.append(f"upstream migrations added ({len(plan.migrations)}; ./run.sh migrate applies them):")
        out += [f"  {_migration_note(p, new[p])}" for p in plan.migrations]
    return "\n".join(out) + "\n"


# --- choosing ----------------------------------------------------------------------------------------------

def choose(on_conflict: str | None, plan: UpdatePlan) -> str | None:
    """--on-conflict, else the answer on a terminal, else None (no one to ask)."""
    if on_conflict:
        return on_conflict
    if not sys.stdin.isatty():
        return None
    print("the overlay conflicts with the new upstream. merge: write the merges with conflict markers to resolve; "
          "force: take upstream, keep the conflicting overrides as they are (stale); cancel: change nothing")
    while True:
        try:
            answer = input("merge, force or cancel? [m/f/c] ").strip().lower()
        except EOFError:
            return "cancel"
        for choice in CHOICES:
            if answer and choice.startswith(answer):
                return choice


# --- applying ----------------------------------------------------------------------------------------------

def _remove_empty_parents(path: Path, stop: Path) -> None:
    parent = path.parent
    while parent != stop:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def _new_base_entry(data: bytes, version: str, old: dict | None) -> dict:
    entry = {"upstream_sha256": hashlib.sha256(data).hexdigest(), "upstream_blob": provenance.blob_id(data),
             "upstream_version": version}
    if old and old.get("was_addition"):
        entry["was_addition"] = True
    return entry


def stage(project, fetched: upstream_source.Fetched, new: dict[str, bytes], plan: UpdatePlan, choice: str | None,
          new_version: str, old_version: str) -> tuple[Path, list[str]]:
    """Write the new upstream/ and extensions/ under .update-stage/new/; return it and the overrides left stale."""
    root = update_swap.fresh_stage(project.root) / "new"
    staged = Project(root)
    scan = overlay.scan(fetched.root, "new upstream").files
    for rel, data in new.items():
        dest = staged.upstream / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        dest.chmod(scan[rel].mode)
    meta = dict(fetched.meta)
    meta["previous_version"] = old_version
    meta["source"] = {**fetched.origin, "updated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    (staged.upstream / upstream_source.MARKER).write_text(yaml.safe_dump(meta, sort_keys=False, width=200))

    shutil.copytree(project.extensions, staged.extensions, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    ext = staged.extensions
    manifest = provenance.load(project)
    overrides, deletions = manifest["overrides"], manifest["deletions"]
    stale: list[str] = []
    for m in plan.merges:
        if m.outcome == "blocked":
            continue
        old_entry = overrides.pop(m.path, None)
        if m.target != m.path:
            (ext / m.target).parent.mkdir(parents=True, exist_ok=True)
            (ext / m.path).rename(ext / m.target)
            _remove_empty_parents(ext / m.path, ext)
        if m.outcome == "moved" or (m.conflicting and choice == "force") or m.outcome == "binary":
            if old_entry is not None:
                overrides[m.target] = old_entry
            if m.outcome != "moved":
                stale.append(m.target)
            continue
        (ext / m.target).write_bytes(m.data)
        overrides[m.target] = _new_base_entry(m.theirs, new_version, old_entry)
        provenance.store_base(staged, m.theirs)
    for p in plan.orphaned:
        overrides.pop(p, None)
        if p not in manifest["additions"]:
            manifest["additions"] = sorted([*manifest["additions"], p])
    for n in plan.markers:
        victim = n.marker[: -len(overlay.DELETE_SUFFIX)]
        if n.action == "removed":
            (ext / n.marker).unlink()
            _remove_empty_parents(ext / n.marker, ext)
            deletions.pop(victim, None)
        elif n.action == "moved":
            target = n.target[: -len(overlay.DELETE_SUFFIX)]
            (ext / n.target).parent.mkdir(parents=True, exist_ok=True)
            (ext / n.marker).rename(ext / n.target)
            _remove_empty_parents(ext / n.marker, ext)
            old_entry = deletions.pop(victim, None)
            blob = ((old_entry or {}).get("upstream_blobs") or {}).get(victim)
            base = provenance.find_base(blob, project) if blob else None
            if base is not None:  # keep the recorded base, under the file's new name (stale if it changed)
                deletions[target] = {"upstream_sha256": provenance._deletion_sha(
                    [(target, hashlib.sha256(base).hexdigest())]), "upstream_blobs": {target: blob},
                    "upstream_version": old_entry.get("upstream_version", old_version)}
    provenance.save(staged, {"overrides": dict(sorted(overrides.items())), "deletions": dict(sorted(deletions.items())),
                             "additions": manifest["additions"]})
    return root, stale


def _describe(origin: dict) -> str:
    text = f"{origin['kind']} {origin['source']}"
    if origin.get("ref"):
        text += f"@{origin['ref']} (commit {origin['commit'][:12]})"
    return text


def update(project, spec: str, on_conflict: str | None = None, dry_run: bool = False) -> int:
    """Run one update of upstream/ from SOURCE[@REF]; return the exit status (see the module's docstring)."""
    with update_swap.locked(project.root):
        if note := update_swap.recover(project.root, held=True):
            info(f"update: {note}")
        with tempfile.TemporaryDirectory(prefix="astroportal-update-") as work:
            fetched = upstream_source.fetch(spec, Path(work))
            old_meta = yaml.safe_load((project.upstream / upstream_source.MARKER).read_text()) \
                if (project.upstream / upstream_source.MARKER).is_file() else {}
            old_name, new_name = (old_meta or {}).get("name"), fetched.meta.get("name")
            if old_name and new_name and old_name != new_name:
                raise LauncherError(f"update: {spec} is {new_name!r}, not {old_name!r} (upstream/"
                                    f"{upstream_source.MARKER}): refusing to vendor another project", 2)
            old_version, new_version = provenance.upstream_version(project), str(fetched.meta["version"])
            old, new = read_tree(project.upstream, "upstream"), read_tree(fetched.root, "new upstream")
            changes = compare_trees(old, new)
            header = f"update: {new_name or old_name or 'upstream'} {old_version} -> {new_version} " \
                     f"from {_describe(fetched.origin)}"
            if changes.empty():
                print(f"{header}\nupstream/ holds this tree already: nothing to update")
                return 0
            plan = plan_update(project, old, new, changes, old_version, new_version)
            sys.stdout.write(render(plan, header, new))
            sys.stdout.flush()
            if dry_run:
                print("dry run: nothing was changed")
                return 0
            for name in ("upstream", "extensions"):
                path = getattr(project, name)
                if path.is_symlink() or not path.is_dir():
                    raise LauncherError(f"update: {path} must be a directory of this project (not a link): the "
                                        "update replaces it", 2)
            choice = None
            if plan.conflicts:
                choice = choose(on_conflict, plan)
                if choice is None:
                    raise LauncherError(f"{len(plan.conflicts)} override(s) conflict with the new upstream and there "
                                        "is no terminal to ask: run again with --on-conflict merge|force|cancel "
                                        "(see ./run.sh update --help); nothing was changed", 2)
                if choice == "cancel":
                    print("update cancelled: nothing was changed")
                    return 1
            try:
                _, stale = stage(project, fetched, new, plan, choice, new_version, old_version)
                update_swap.pause("staged")
            except BaseException as exc:
                shutil.rmtree(project.root / update_swap.STAGE, ignore_errors=True)
                if isinstance(exc, OSError):
                    raise LauncherError(f"update: could not stage the new tree ({exc}; a full disk?): nothing was "
                                        "changed", 1) from None
                raise
        try:
            update_swap.commit(project.root, ["upstream", "extensions"], f"upstream {old_version} -> {new_version}")
        except OSError as exc:
            if (project.root / update_swap.JOURNAL).exists():
                raise LauncherError(f"update: interrupted while swapping the trees ({exc}); the next ./run.sh update "
                                    "or build finishes it", 1) from None
            shutil.rmtree(project.root / update_swap.STAGE, ignore_errors=True)
            raise LauncherError(f"update: could not write the journal ({exc}; a full disk?): nothing was changed",
                                1) from None
    return _report(plan, choice, stale, new_version)


def _report(plan: UpdatePlan, choice: str | None, stale: list[str], new_version: str) -> int:
    print(f"upstream/ is now {new_version}; extensions/PROVENANCE.yaml records the new bases")
    marked = [m for m in plan.conflicts if m.outcome != "binary" and choice == "merge"]
    if stale:
        print("kept as they are, stale (upstream changed under them): review with ./run.sh diff PATH, then "
              "./run.sh build --accept-upstream PATH:")
        print("\n".join(f"  extensions/{p}" for p in stale))
    if marked:
        print("overrides written with conflict markers (resolve each, then ./run.sh build; until then the build "
              "refuses them):")
        for m in marked:
            lines = merge3.conflict_lines(m.data)
            print(f"  extensions/{m.target}: line(s) {', '.join(map(str, lines))}")
        return 1
    print("next: ./run.sh build (then ./run.sh migrate or restart)")
    return 0
