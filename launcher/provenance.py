"""extensions/PROVENANCE.yaml: for each override (and deletion), the upstream file it was made from.

An override is a copy of an upstream file, changed. When upstream later changes that file, the override
silently drops upstream's change unless someone looks: the manifest records the upstream file each override
was made from (its base), and every build compares it with upstream's file of today.

  overrides:
    astroportal/templates/base.html:
      upstream_sha256: 3f5a...          # SHA-256 of the base's bytes
      upstream_blob: 8ab686ea...        # its git blob id (`git hash-object`): the key of the base's bytes
      upstream_version: 1.0.0
  deletions:
    astroportal/static/old.js:
      upstream_sha256: 9c1e...          # of every removed file's path and SHA-256
      upstream_blobs: {astroportal/static/old.js: 1d2e...}
      upstream_version: 1.0.0
  additions: [astroportal/auth/iam.py]  # files extensions/ adds: upstream has no such file (yet)

A three-way merge of an override (`./run.sh update`) needs the base's bytes, not only its hash: they are
kept under extensions/.bases/<blob id> (see extensions/README.md for why a copy and not git history), and
find_base(blob_id) returns them.

A new override is recorded as made from the upstream file present when the build first sees it. An addition
that upstream later adds too becomes an override of upstream's new file: it is recorded with that file as
its base and `was_addition: true`, and every build warns until it is reviewed. After reviewing a warning
(`./run.sh diff PATH`), `./run.sh build --accept-upstream PATH` records today's file as the base.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .config import parse_yaml
from .errors import LauncherError
from .overlay import BASES_DIR, ProvenanceInputs

MANIFEST = "PROVENANCE.yaml"
HEADER = """\
# Provenance of the overlay (see extensions/README.md): for each file of upstream/ that extensions/
# overrides or deletes, the upstream file it was made from (SHA-256 and git blob id; its bytes are kept in
# extensions/.bases/<blob id>), and the files extensions/ adds. Maintained by ./run.sh build, which warns
# when upstream has changed under an override; review with ./run.sh diff PATH and record the new base
# with ./run.sh build --accept-upstream PATH.
"""
BLOB_ID = re.compile(r"[0-9a-f]{40}")


@dataclass
class Stale:
    """An override or deletion whose upstream file changed since its base was recorded."""

    kind: str  # "override" or "deletion"
    path: str
    recorded: str  # SHA-256 of the recorded base
    current: str  # SHA-256 of upstream's file today
    recorded_blob: str | None = None  # the base's blob id (find_base), None in a manifest from before blob ids
    current_blobs: dict[str, str] = field(default_factory=dict)  # upstream's files today, by path


@dataclass
class Report:
    stale: list[Stale] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    overtaken: list[str] = field(default_factory=list)  # additions that upstream now has too (was_addition)
    newly_overtaken: list[str] = field(default_factory=list)  # ... found by this build
    unrecoverable: list[str] = field(default_factory=list)  # entries whose base's bytes are nowhere


def blob_id(data: bytes) -> str:
    """The git blob id of `data` (what `git hash-object` prints): SHA-1 of "blob <len>\\0" + data."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def _read(path: str) -> tuple[str, str, bytes]:
    data = Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest(), blob_id(data), data


def upstream_version(project) -> str:
    try:
        data = yaml.safe_load((project.upstream / "UPSTREAM.yaml").read_text()) or {}
    except (FileNotFoundError, yaml.YAMLError):
        return "unknown"
    return str(data.get("version", "unknown"))


def load(project) -> dict:
    """The manifest as {"overrides": {...}, "deletions": {...}, "additions": [...]}; LauncherError if malformed."""
    path = project.extensions / MANIFEST
    if not path.exists():
        return {"overrides": {}, "deletions": {}, "additions": []}
    data = parse_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
    if not isinstance(data, dict):
        raise LauncherError(f"{path}: expected a mapping with `overrides`, `deletions` and `additions`", 2)
    for key in ("overrides", "deletions"):
        section = data.get(key) or {}
        if not isinstance(section, dict) or any(
            not isinstance(v, dict) or "upstream_sha256" not in v for v in section.values()
        ):
            raise LauncherError(f"{path}: `{key}` must map paths to {{upstream_sha256: ..., upstream_blob: ..., "
                                "upstream_version: ...}}", 2)
        data[key] = section
    additions = data.get("additions") or []
    if not isinstance(additions, list) or not all(isinstance(a, str) for a in additions):
        raise LauncherError(f"{path}: `additions` must be a list of paths", 2)
    data["additions"] = additions
    return data


# --- the bases' bytes ------------------------------------------------------------------------------------

def bases_dir(project) -> Path:
    return project.extensions / BASES_DIR


def store_base(project, data: bytes) -> str:
    """Keep `data` as a base (extensions/.bases/<blob id>, written once); return its blob id."""
    blob = blob_id(data)
    path = bases_dir(project) / blob
    if not path.is_file() or blob_id(path.read_bytes()) != blob:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{blob}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return blob


def find_base(blob_id_: str, project=None) -> bytes | None:
    """The bytes of the upstream base whose git blob id is `blob_id_`, or None when they are nowhere.

    Looks in extensions/.bases/ (where the build keeps every recorded base), then at upstream's file of
    today (a base upstream has not changed since), then in the git repository holding extensions/ (a base
    recorded before the copies were kept). Whatever is found is checked against the id.
    """
    from .paths import Project

    project = project or Project.from_env()
    blob = blob_id_.strip().lower()
    if not BLOB_ID.fullmatch(blob):
        return None
    candidates = [bases_dir(project) / blob]
    try:
        manifest = load(project)
    except LauncherError:
        manifest = {"overrides": {}, "deletions": {}}
    for path, entry in manifest["overrides"].items():
        if entry.get("upstream_blob") == blob:
            candidates.append(project.upstream / path)
    for entry in manifest["deletions"].values():
        candidates += [project.upstream / p for p, b in (entry.get("upstream_blobs") or {}).items() if b == blob]
    for path in candidates:
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        if blob_id(data) == blob:
            return data
    return _from_git(project, blob)


def _from_git(project, blob: str) -> bytes | None:
    """The blob from the git repository that holds extensions/ (None without git, a repo, or the object)."""
    where = os.path.realpath(project.extensions if project.extensions.exists() else project.root)
    try:
        res = subprocess.run(["git", "cat-file", "blob", blob], cwd=where, capture_output=True, timeout=30)
    except (FileNotFoundError, NotADirectoryError, subprocess.TimeoutExpired):
        return None
    if res.returncode != 0 or blob_id(res.stdout) != blob:
        return None
    return res.stdout


def _keep_recoverable(project, blob: str | None, today: dict[str, bytes]) -> bool:
    """Make sure extensions/.bases/ holds `blob` (from today's upstream or git when it is missing)."""
    if blob is None:
        return False
    if (bases_dir(project) / blob).is_file():
        return True
    data = next((d for d in today.values() if blob_id(d) == blob), None)
    if data is None:
        data = _from_git(project, blob)
    if data is None:
        return False
    store_base(project, data)
    return True


# --- the check every build makes -------------------------------------------------------------------------

def _deletion_sha(hashes: list[tuple[str, str]]) -> str:
    """One hash for everything a marker removes: each upstream file's path and content hash."""
    h = hashlib.sha256()
    for rel, sha in sorted(hashes):
        h.update(f"{rel}\0{sha}\n".encode())
    return h.hexdigest()


def check(project, inputs: ProvenanceInputs, accept: list[str] | None = None) -> Report:
    """Compare the manifest with upstream; record new entries, drop gone ones, accept the named ones.

    `accept`: None accepts nothing, [] accepts every stale or overtaken entry, else the listed paths (or
    directories). The manifest is rewritten only when something in it changes; every recorded base is kept
    under extensions/.bases/.
    """
    manifest = load(project)
    version = upstream_version(project)
    report = Report()
    # Today's upstream under each override and deletion: (sha256, {path: blob}, {path: bytes}).
    now: dict[str, dict[str, tuple[str, dict[str, str], dict[str, bytes]]]] = {"override": {}, "deletion": {}}
    for rel, path in inputs.overrides.items():
        sha, blob, data = _read(path)
        now["override"][rel] = (sha, {rel: blob}, {rel: data})
    for victim, files in inputs.deletions.items():
        read = {rel: _read(path) for rel, path in files}
        now["deletion"][victim] = (_deletion_sha([(rel, r[0]) for rel, r in read.items()]),
                                   {rel: r[1] for rel, r in read.items()}, {rel: r[2] for rel, r in read.items()})
    if accept:
        known = set(now["override"]) | set(now["deletion"])
        unknown = [p for p in accept if not any(k == p or k.startswith(p.rstrip("/") + "/") for k in known)]
        if unknown:
            raise LauncherError(f"--accept-upstream: not an override or deletion: {', '.join(unknown)}", 2)

    def wanted(path: str) -> bool:
        if accept is None:
            return False
        return not accept or any(path == p or path.startswith(p.rstrip("/") + "/") for p in accept)

    def fresh(kind: str, sha: str, blobs: dict[str, str], data: dict[str, bytes]) -> dict:
        for d in data.values():
            store_base(project, d)
        if kind == "override":
            return {"upstream_sha256": sha, "upstream_blob": next(iter(blobs.values())), "upstream_version": version}
        return {"upstream_sha256": sha, "upstream_blobs": dict(sorted(blobs.items())), "upstream_version": version}

    old_additions = set(manifest["additions"])
    new_manifest: dict = {}
    for kind, key in (("override", "overrides"), ("deletion", "deletions")):
        old, section = manifest[key], {}
        for path, (sha, blobs, data) in sorted(now[kind].items()):
            entry = old.get(path)
            if entry is None:
                section[path] = fresh(kind, sha, blobs, data)
                if kind == "override" and path in old_additions:
                    # Upstream added a file where extensions/ had added one: ours now hides theirs.
                    section[path]["was_addition"] = True
                    report.newly_overtaken.append(path)
                else:
                    report.recorded.append(path)
            elif (entry["upstream_sha256"] != sha or entry.get("was_addition")) and wanted(path):
                section[path] = fresh(kind, sha, blobs, data)
                report.accepted.append(path)
            else:
                entry = section[path] = dict(entry)
                if entry["upstream_sha256"] == sha and not _blobs_of(entry):
                    # A manifest from before blob ids, still at its base: add the id (and keep the bytes).
                    section[path] = entry = {**fresh(kind, sha, blobs, data), **{k: v for k, v in entry.items()
                                                                              if k == "was_addition"}}
                if entry["upstream_sha256"] != sha:
                    report.stale.append(Stale(kind, path, entry["upstream_sha256"], sha,
                                              entry.get("upstream_blob"), dict(blobs)))
            entry = section[path]
            recorded = _blobs_of(entry)
            if not recorded or not all(_keep_recoverable(project, b, data) for b in recorded):
                report.unrecoverable.append(path)
            if entry.get("was_addition"):
                report.overtaken.append(path)
        report.dropped += sorted(set(old) - set(now[kind]))
        new_manifest[key] = section
    new_manifest["additions"] = sorted(inputs.additions)
    if new_manifest != {k: manifest[k] for k in ("overrides", "deletions", "additions")}:
        save(project, new_manifest)
    _prune_bases(project, new_manifest)
    return report


def _blobs_of(entry: dict) -> list[str]:
    if "upstream_blob" in entry:
        return [entry["upstream_blob"]]
    return list((entry.get("upstream_blobs") or {}).values())


def _prune_bases(project, manifest: dict) -> None:
    """Remove the kept bases no entry records any more (an accepted or dropped entry's old base)."""
    d = bases_dir(project)
    if not d.is_dir():
        return
    wanted = {b for key in ("overrides", "deletions") for e in manifest[key].values() for b in _blobs_of(e)}
    for p in d.iterdir():
        if p.name not in wanted and not p.name.startswith("."):  # a dot name: another build's temporary file
            p.unlink(missing_ok=True)
    if not wanted:
        try:
            d.rmdir()
        except OSError:
            pass  # not empty: something else lives there


def save(project, manifest: dict) -> None:
    path = project.extensions / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False, width=200)
    tmp = path.with_name(f"{MANIFEST}.{os.getpid()}.tmp")
    tmp.write_text(HEADER + body, encoding="utf-8")
    tmp.replace(path)
