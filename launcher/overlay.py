"""Assemble patched/ from upstream/, the overlay extensions/, the distribution's services/ and the config.

Rules (documented in extensions/README.md):
  - extensions/P replaces upstream/P when upstream has P ("override"), and adds P otherwise ("added");
  - an empty-or-commented file extensions/P.delete removes upstream's file P, or every upstream file under
    the directory P ("deleted"); a marker for a path upstream does not have is an error;
  - services/NAME/... lands at services/NAME/... beside upstream's services (a clash is an error: override
    an upstream service in extensions/services/NAME/ instead);
  - patched/config.yaml is generated from the layered configuration (mode 0600);
  - extensions/README.md and extensions/PROVENANCE.yaml document the overlay and extensions/.bases/ keeps
    the upstream bases of overrides (see provenance.py): none of them is copied; nor are services/README.md,
    __pycache__/, *.pyc, .git/ and .pytest_cache/ anywhere;
  - a symlink is followed when it stays inside its own tree, refused when it leads out of it.

compose() returns the plan as a `Plan` of `PlanEntry`s, one per path, each of a `Kind`.
The build is incremental (unchanged files keep their inode and mtime), atomic (a new tree is assembled
beside patched/ and swapped in with one rename; a failure leaves the previous build in place) and removes
files that no longer come from anywhere. State for the next build is kept in patched/.build-state.json
(what the no-op check reads) and patched/.build-targets.json (each file's origin and hash).
PORTAL_BUILD_FAIL_AFTER=N makes a build fail after writing N files: the tests use it to show atomicity.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from .errors import LauncherError
from .files import write_private

IGNORED_DIRS = frozenset({"__pycache__", ".git", ".pytest_cache", ".mypy_cache"})
IGNORED_SUFFIXES = (".pyc", ".pyo")
DELETE_SUFFIX = ".delete"
BASES_DIR = ".bases"  # extensions/.bases/<git blob id>: the upstream bases of overrides and deletions
EXTENSION_META = frozenset({"README.md", "PROVENANCE.yaml", BASES_DIR})
GENERATED_CONFIG = "config.yaml"
STATE_NAME = ".build-state.json"  # what the no-op check reads
TARGETS_NAME = ".build-targets.json"  # each file's origin and hash, read only when something changed
STATE_FILES = frozenset({STATE_NAME, TARGETS_NAME})
STATE_FORMAT = 3
# A file modified this close to the moment it was looked at may change again within the same timestamp
# tick without its mtime moving; such entries are re-checked by content on the next build.
RACY_NS = 2_000_000_000

class Kind(str, Enum):
    """Where a path of the plan comes from (the values are the words of the build summary and its state)."""

    UPSTREAM = "upstream"  # upstream's file as it is
    OVERRIDE = "override"  # extensions/P replaces upstream's P
    ADD = "added"  # extensions/P, where upstream has no P
    DELETE = "deleted"  # upstream's P, removed by a marker extensions/...delete
    SERVICE = "service"  # services/NAME/..., the distribution's services
    GENERATED = "generated"  # patched/config.yaml, from the layered configuration


UPSTREAM, OVERRIDE, ADDED, DELETED, SERVICE, GENERATED = (
    Kind.UPSTREAM, Kind.OVERRIDE, Kind.ADD, Kind.DELETE, Kind.SERVICE, Kind.GENERATED)
BUILT_KINDS = (UPSTREAM, OVERRIDE, ADDED, SERVICE, GENERATED)  # the kinds that put a file into patched/


@dataclass
class Source:
    """A file a layer offers: where to read it, and its stat at scan time."""

    layer: str
    rel: str
    path: str
    size: int
    mtime_ns: int
    mode: int


@dataclass
class Scan:
    """Every file of a layer, and the directories looked at (to notice additions and removals later)."""

    files: dict[str, Source] = field(default_factory=dict)
    dirs: dict[str, int] = field(default_factory=dict)


@dataclass
class PlanEntry:
    """One path of the plan.

    `source` is the file that lands in patched/ (None for a deletion and for the generated config, whose
    bytes are `content`); `upstream` is upstream's file at that path when an override replaces it or a
    deletion removes it; `marker` is the deletion marker's path in extensions/.
    """

    path: str
    kind: Kind
    source: Source | None = None
    upstream: Source | None = None
    marker: str | None = None
    content: bytes | None = None


@dataclass
class ProvenanceInputs:
    """What provenance compares: each override's and each deletion's upstream files, and the additions.

    Kept in the build state as JSON, so that a no-op build checks provenance without composing a plan.
    """

    overrides: dict[str, str] = field(default_factory=dict)  # path -> upstream's file it replaces
    deletions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # victim -> [(path, file)]
    additions: list[str] = field(default_factory=list)  # paths extensions/ adds (upstream has none)

    def to_json(self) -> dict:
        return {"overrides": self.overrides, "additions": self.additions,
                "deletions": {v: [list(p) for p in files] for v, files in self.deletions.items()}}

    @classmethod
    def from_json(cls, data: dict) -> ProvenanceInputs:
        return cls(dict(data["overrides"]), {v: [tuple(p) for p in files] for v, files in data["deletions"].items()},
                   list(data["additions"]))


@dataclass
class Plan:
    """What patched/ should hold: one entry per path (deletions included), and what the no-op check watches."""

    entries: list[PlanEntry]
    watch_dirs: dict[str, int] = field(default_factory=dict)
    watch_files: dict[str, tuple[int, int]] = field(default_factory=dict)
    targets: dict[str, PlanEntry] = field(init=False, repr=False)  # the entries that put a file into patched/

    def __post_init__(self) -> None:
        self.entries.sort(key=lambda e: e.path)
        self.targets = {e.path: e for e in self.entries if e.kind != DELETED}

    def of_kind(self, *kinds: Kind) -> list[PlanEntry]:
        return [e for e in self.entries if e.kind in kinds]

    def by_kind(self, kind: Kind) -> list[str]:
        return [e.path for e in self.of_kind(kind)]

    def deletions(self) -> dict[str, list[PlanEntry]]:
        """Each deletion marker (its path in extensions/) and the entries of the upstream files it removes."""
        out: dict[str, list[PlanEntry]] = {}
        for e in self.of_kind(DELETED):
            out.setdefault(e.marker, []).append(e)
        return dict(sorted(out.items()))

    def provenance_inputs(self) -> ProvenanceInputs:
        return ProvenanceInputs(
            overrides={e.path: e.upstream.path for e in self.of_kind(OVERRIDE)},
            deletions={m[: -len(DELETE_SUFFIX)]: [(e.path, e.upstream.path) for e in removed]
                       for m, removed in self.deletions().items()},
            additions=self.by_kind(ADDED),
        )


@dataclass
class BuildResult:
    counts: dict[str, int]
    written: list[str]
    unchanged: int
    stale: list[str]
    swapped: bool
    seconds: float = 0.0
    fast: bool = False

    def summary(self, dest: str = "patched/") -> str:
        c = {k: self.counts.get(k.value, 0) for k in (*BUILT_KINDS, DELETED)}
        added = c[ADDED] + c[SERVICE] + c[GENERATED]
        text = (
            f"build: {c[UPSTREAM]} from upstream, {c[OVERRIDE]} overridden, {added} added "
            f"({c[ADDED]} from extensions, {c[SERVICE]} from services, {c[GENERATED]} generated), "
            f"{c[DELETED]} deleted; {len(self.written)} written, {self.unchanged} unchanged, "
            f"{len(self.stale)} stale removed -> {dest} in {self.seconds:.2f} s"
        )
        if not self.written and not self.stale:
            text += " (nothing changed)"
        return text


# --- scanning ------------------------------------------------------------------------------------------

def _ignored(name: str, is_dir: bool) -> bool:
    return name in IGNORED_DIRS if is_dir else name.endswith(IGNORED_SUFFIXES)


def _racy(mtime_ns: int, now_ns: int) -> bool:
    return mtime_ns >= now_ns - RACY_NS


def scan(root: Path, layer: str, skip_top: frozenset = frozenset(), dirs_only_top: bool = False) -> Scan:
    """Every regular file under `root` by relative path; symlinks must stay inside `root`.

    `skip_top` names top-level entries to leave out; `dirs_only_top` keeps only top-level directories.
    """
    out = Scan()
    if not root.exists():
        return out
    real_root = os.path.realpath(root)
    now = time.time_ns()
    stack = [(real_root, "")]
    seen = {real_root}
    while stack:
        dirpath, prefix = stack.pop()
        st = os.stat(dirpath)
        out.dirs[dirpath] = -1 if _racy(st.st_mtime_ns, now) else st.st_mtime_ns
        with os.scandir(dirpath) as it:
            entries = list(it)
        for entry in entries:
            name, rel = entry.name, prefix + entry.name
            if not prefix and name in skip_top:
                continue
            path = entry.path
            if entry.is_symlink():
                target = os.path.realpath(path)
                if target != real_root and not target.startswith(real_root + os.sep):
                    raise LauncherError(
                        f"{layer}/{rel}: a symlink that leads out of {layer}/ (to {target}); refused", 2)
                if not os.path.exists(target):
                    raise LauncherError(f"{layer}/{rel}: a symlink to a missing file ({target})", 2)
                path = target
                is_dir = os.path.isdir(target)
            else:
                is_dir = entry.is_dir(follow_symlinks=False)
            if _ignored(name, is_dir):
                continue
            if is_dir:
                if path not in seen:
                    seen.add(path)
                    stack.append((path, rel + "/"))
                continue
            if not prefix and dirs_only_top:
                continue
            fst = os.stat(path)
            if not _is_regular(fst.st_mode):
                raise LauncherError(f"{layer}/{rel}: not a regular file; refused", 2)
            mtime = -1 if _racy(fst.st_mtime_ns, now) else fst.st_mtime_ns
            out.files[rel] = Source(layer, rel, path, fst.st_size, mtime, fst.st_mode & 0o777)
    return out


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


# --- the plan ------------------------------------------------------------------------------------------

def compose(project, config_bytes: bytes | None) -> Plan:
    """Lay the layers over each other and check the result; raises LauncherError on bad input."""
    up = scan(project.upstream, "upstream")
    if not up.files:
        raise LauncherError(f"{project.upstream} holds no files: nothing to build from", 2)
    ext = scan(project.extensions, "extensions", skip_top=EXTENSION_META)
    svc = scan(project.services, "services", dirs_only_top=True)

    targets: dict[str, PlanEntry] = {rel: PlanEntry(rel, UPSTREAM, src) for rel, src in up.files.items()}
    markers = {rel: src for rel, src in ext.files.items() if rel.endswith(DELETE_SUFFIX)}
    deleted: list[PlanEntry] = []
    errors: list[str] = []

    for rel in sorted(markers):
        victim = rel[: -len(DELETE_SUFFIX)]
        if victim in ext.files:
            errors.append(f"extensions/{rel}: extensions/{victim} both overrides and deletes {victim}")
            continue
        if victim in up.files:
            removed = [up.files[victim]]
        else:
            removed = [s for r, s in sorted(up.files.items()) if r.startswith(victim + "/")]
        if not removed:
            errors.append(f"extensions/{rel}: deletion marker for {victim}, which upstream does not have")
            continue
        for src in removed:
            targets.pop(src.rel, None)
            deleted.append(PlanEntry(src.rel, DELETED, upstream=src, marker=rel))

    for rel, src in sorted(ext.files.items()):
        if rel in markers:
            continue
        if rel in up.files:
            targets[rel] = PlanEntry(rel, OVERRIDE, src, upstream=up.files[rel])
        else:
            targets[rel] = PlanEntry(rel, ADDED, src)

    for rel, src in sorted(svc.files.items()):
        dest = "services/" + rel
        if dest in targets:
            where = "extensions" if targets[dest].kind in (OVERRIDE, ADDED) else "upstream"
            errors.append(f"services/{rel}: {where} already has {dest} (override an upstream service in "
                          f"extensions/{dest})")
            continue
        targets[dest] = PlanEntry(dest, SERVICE, Source("services", dest, src.path, src.size, src.mtime_ns, src.mode))

    if config_bytes is not None:
        if GENERATED_CONFIG in targets:
            errors.append(f"{targets[GENERATED_CONFIG].source.layer}/{GENERATED_CONFIG}: this path is the "
                          "generated configuration; it cannot come from a layer")
        targets[GENERATED_CONFIG] = PlanEntry(GENERATED_CONFIG, GENERATED, content=config_bytes)
    for name in sorted(STATE_FILES & set(targets)):
        errors.append(f"{name}: reserved for the build's own state")

    dirs = {rel.rsplit("/", 1)[0] for rel in targets if "/" in rel}
    parents = set()
    for d in dirs:
        parts = d.split("/")
        parents.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    for rel in sorted(set(targets) & parents):
        errors.append(f"{rel}: a file in one layer where another has a directory")

    if errors:
        raise LauncherError("the overlay cannot be built:\n  " + "\n  ".join(errors), 2)

    watch_dirs = {**up.dirs, **ext.dirs, **svc.dirs}
    watch_files = {}
    for s in (*up.files.values(), *ext.files.values(), *svc.files.values()):
        watch_files[s.path] = (s.size, s.mtime_ns)
    return Plan([*targets.values(), *deleted], watch_dirs, watch_files)


# --- state ---------------------------------------------------------------------------------------------

def _layer_roots(project) -> dict[str, str]:
    return {name: os.path.realpath(getattr(project, name)) for name in ("upstream", "extensions", "services")}


def load_state(patched: Path) -> dict | None:
    try:
        state = json.loads((patched / STATE_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state if state.get("format") == STATE_FORMAT else None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _dest_listing(patched: Path, rel_dir: str) -> list[str]:
    d = patched / rel_dir if rel_dir else patched
    names = []
    with os.scandir(d) as it:
        for e in it:
            is_dir = e.is_dir(follow_symlinks=False)
            if _ignored(e.name, is_dir) or (not rel_dir and e.name in STATE_FILES):
                continue
            names.append(e.name)
    return sorted(names)


def _expected_listing(targets) -> dict[str, list[str]]:
    """For each directory of the tree, the names it should hold (files and subdirectories)."""
    listing: dict[str, set[str]] = {"": set()}
    for rel in targets:
        parts = rel.split("/")
        for i in range(len(parts)):
            parent = "/".join(parts[:i])
            listing.setdefault(parent, set()).add(parts[i])
    return {d: sorted(names) for d, names in listing.items()}


def unchanged_since(state: dict | None, project, patched: Path, config_bytes: bytes) -> bool:
    """The no-op check: nothing a build reads has changed and patched/ holds nothing extra.

    Stats only the watched directories and files (one stat each) and patched/'s directories: a no-op
    build costs a small fraction of a copy.
    """
    if not state or state.get("roots") != _layer_roots(project) or state.get("config_sha") != _sha(config_bytes):
        return False
    os_stat = os.stat  # a local name: this loop is the no-op build's whole cost
    try:
        for path, mtime in state["watch_dirs"].items():
            if mtime < 0 or os_stat(path).st_mtime_ns != mtime:
                return False
        for path, (size, mtime) in state["watch_files"].items():
            st = os_stat(path)
            if mtime < 0 or st.st_mtime_ns != mtime or st.st_size != size:
                return False
        for rel_dir, (mtime, names) in state["dest_dirs"].items():
            d = patched / rel_dir if rel_dir else patched
            # The top directory changes with every state write: always compare its listing.
            if rel_dir and os_stat(d).st_mtime_ns == mtime:
                continue
            if _dest_listing(patched, rel_dir) != names:
                return False
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


# --- building ------------------------------------------------------------------------------------------

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _copy(src: str, dst: str, mode: int, umask: int) -> str:
    """Copy a file, hashing it on the way; the mode is the source's."""
    h = hashlib.sha256()
    with open(src, "rb") as fi:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fo:
            while chunk := fi.read(1 << 20):
                h.update(chunk)
                fo.write(chunk)
    if mode & umask:
        os.chmod(dst, mode)
    return h.hexdigest()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


class _FailureForTests(Exception):
    pass


def build(project, config_bytes: bytes, lock_dir: Path, force: bool = False,
          stage: Path | None = None) -> tuple[BuildResult, ProvenanceInputs]:
    """Bring patched/ up to date; return what was done and the provenance inputs of the build.

    With `stage` (a directory beside patched/), the complete new tree is left there instead of being swapped
    in: `deploy` checks and migrates with it before it swaps (patched/ is not touched).
    """
    t0 = time.perf_counter()
    patched = project.patched
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "build.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LauncherError("another build of this project is running; try again when it ends") from None
        state = None if force or stage else load_state(patched)
        if state and not force and unchanged_since(state, project, patched, config_bytes):
            counts = dict(state["counts"])
            result = BuildResult(counts, [], sum(v for k, v in counts.items() if k != "deleted"), [], False,
                                 time.perf_counter() - t0, fast=True)
            return result, ProvenanceInputs.from_json(state["provenance"])
        plan = compose(project, config_bytes)
        result = _apply(project, plan, state, config_bytes, stage)
        result.seconds = time.perf_counter() - t0
        return result, plan.provenance_inputs()


def _apply(project, plan: Plan, state: dict | None, config_bytes: bytes, stage: Path | None = None) -> BuildResult:
    patched = project.patched
    new = patched.with_name(patched.name + ".new")
    prev = patched.with_name(patched.name + ".prev")
    old_targets = _load_targets(patched) if state else {}
    old_watch = (state or {}).get("watch_files", {})
    have_tree = patched.is_dir()

    shas: dict[str, str | None] = {}
    to_write: list[str] = []
    for rel, t in plan.targets.items():
        old = old_targets.get(rel) if have_tree else None
        if t.kind == GENERATED:
            sha = _sha(t.content)
        elif old is None:
            sha = None  # written anyway: hashed while copying
        elif old[1] == t.source.path and t.source.mtime_ns >= 0 and \
                tuple(old_watch.get(t.source.path, ())) == (t.source.size, t.source.mtime_ns):
            sha = old[2]
        else:
            sha = file_sha(t.source.path)
        shas[rel] = sha
        if not (old and sha is not None and old[2] == sha and os.path.isfile(patched / rel)):
            to_write.append(rel)

    stale = []
    if have_tree:
        for dirpath, dirnames, filenames in os.walk(patched):
            dirnames[:] = [d for d in dirnames if d not in IGNORED_DIRS]
            rel_dir = os.path.relpath(dirpath, patched)
            for name in filenames:
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if rel in STATE_FILES or name.endswith(IGNORED_SUFFIXES):
                    continue
                if rel not in plan.targets:
                    stale.append(rel)
    stale.sort()

    counts = {k.value: 0 for k in (*BUILT_KINDS, DELETED)}
    for e in plan.entries:
        counts[e.kind.value] += 1

    new_state = {
        "format": STATE_FORMAT,
        "roots": _layer_roots(project),
        "config_sha": _sha(config_bytes),
        "counts": counts,
        "watch_dirs": plan.watch_dirs,
        "watch_files": {k: list(v) for k, v in plan.watch_files.items()},
        "targets": {rel: [t.kind.value, t.source.path if t.source else None, shas[rel]]
                    for rel, t in plan.targets.items()},
        "provenance": plan.provenance_inputs().to_json(),
    }
    expected = _expected_listing(plan.targets)

    if not to_write and not stale and have_tree and stage is None:
        # Content is current; only what the next build compares against moved (e.g. a touched file).
        new_state["dest_dirs"] = _dest_dirs(patched, expected)
        _write_state(patched, new_state)
        return BuildResult(counts, [], len(plan.targets), [], False)

    if new.exists():
        shutil.rmtree(new)
    fail_after = int(os.environ.get("PORTAL_BUILD_FAIL_AFTER", "-1"))
    umask = _umask()
    try:
        new.mkdir()
        os.chmod(new, 0o755)
        made = {""}
        written = 0
        write_set = set(to_write)
        for rel in sorted(plan.targets):
            t = plan.targets[rel]
            parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
            if parent not in made:
                os.makedirs(new / parent, exist_ok=True)
                made.add(parent)
            dst = new / rel
            if rel not in write_set:
                try:
                    os.link(patched / rel, dst)
                    continue
                except OSError:
                    pass  # another filesystem or no hard links: copy instead
            if written == fail_after:
                raise _FailureForTests(f"PORTAL_BUILD_FAIL_AFTER={fail_after}: failing on purpose at {rel}")
            if t.kind == GENERATED:
                write_private(dst, t.content)
            else:
                shas[rel] = _copy(t.source.path, str(dst), t.source.mode, umask)
                new_state["targets"][rel][2] = shas[rel]
            written += 1
        new_state["dest_dirs"] = _dest_dirs(new, expected)
        _write_state(new, new_state)
    except BaseException as exc:
        shutil.rmtree(new, ignore_errors=True)
        if isinstance(exc, (OSError, _FailureForTests)):
            kept = "the previous build in patched/ is unchanged" if have_tree else "no build was made"
            raise LauncherError(f"build failed: {exc}; {kept}") from None
        raise

    if stage is not None:
        if stage.exists():
            shutil.rmtree(stage)
        os.rename(new, stage)
        return BuildResult(counts, sorted(to_write), len(plan.targets) - len(to_write), stale, False)
    if have_tree:
        if prev.exists():
            shutil.rmtree(prev)
        if _exchange(new, patched):
            os.rename(new, prev)
        else:
            os.rename(patched, prev)
            os.rename(new, patched)
    else:
        os.rename(new, patched)
    return BuildResult(counts, sorted(to_write), len(plan.targets) - len(to_write), stale, True)


def _dest_dirs(tree: Path, expected: dict[str, list[str]]) -> dict[str, list]:
    return {d: [os.stat(tree / d if d else tree).st_mtime_ns, names] for d, names in expected.items()}


def _load_targets(patched: Path) -> dict:
    try:
        return json.loads((patched / TARGETS_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write_state(tree: Path, state: dict) -> None:
    """Write the targets first and the state last: a state file always has its targets beside it."""
    state = dict(state)
    targets = state.pop("targets")
    for name, data in ((TARGETS_NAME, targets), (STATE_NAME, state)):
        tmp = tree / (name + ".tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, tree / name)
