"""extensions/PROVENANCE.yaml: for each override (and deletion), the upstream file it was made from.

An override is a copy of an upstream file, changed. When upstream later changes that file, the override
silently drops upstream's change unless someone looks: the manifest records the SHA-256 of the upstream
file each override was made from, and every build compares it with upstream's file of today.

  overrides:
    astroportal/templates/base.html: {upstream_sha256: 3f5a..., upstream_version: 1.0.0}
  deletions:
    astroportal/static/old.js: {upstream_sha256: 9c1e..., upstream_version: 1.0.0}

A new override is recorded as made from the upstream file present when the build first sees it. After
reviewing a warning (`./run.sh diff PATH`), `./run.sh build --accept-upstream PATH` records today's file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import yaml

from .config import parse_yaml
from .errors import LauncherError
from .overlay import file_sha

MANIFEST = "PROVENANCE.yaml"
HEADER = """\
# Provenance of the overlay (see extensions/README.md): for each file of upstream/ that extensions/
# overrides or deletes, the SHA-256 of the upstream file it was made from. Maintained by ./run.sh build,
# which warns when upstream has changed under an override; review with ./run.sh diff PATH and record
# the new base with ./run.sh build --accept-upstream PATH.
"""


@dataclass
class Stale:
    kind: str  # "override" or "deletion"
    path: str
    recorded: str
    current: str


@dataclass
class Report:
    stale: list[Stale] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def upstream_version(project) -> str:
    try:
        data = yaml.safe_load((project.upstream / "UPSTREAM.yaml").read_text()) or {}
    except (FileNotFoundError, yaml.YAMLError):
        return "unknown"
    return str(data.get("version", "unknown"))


def load(project) -> dict:
    path = project.extensions / MANIFEST
    if not path.exists():
        return {"overrides": {}, "deletions": {}}
    data = parse_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
    if not isinstance(data, dict):
        raise LauncherError(f"{path}: expected a mapping with `overrides` and `deletions`", 2)
    for key in ("overrides", "deletions"):
        section = data.get(key) or {}
        if not isinstance(section, dict) or any(
            not isinstance(v, dict) or "upstream_sha256" not in v for v in section.values()
        ):
            raise LauncherError(f"{path}: `{key}` must map paths to {{upstream_sha256: ..., upstream_version: ...}}", 2)
        data[key] = section
    return data


def _deletion_sha(paths: list[tuple[str, str]]) -> str:
    """One hash for everything a marker removes: each upstream file's path and content hash."""
    h = hashlib.sha256()
    for rel, path in sorted(paths):
        h.update(f"{rel}\0{file_sha(path)}\n".encode())
    return h.hexdigest()


def current_hashes(inputs: dict) -> tuple[dict[str, str], dict[str, str]]:
    """Today's upstream hash under each override and each deletion (inputs: Plan.provenance_inputs())."""
    overrides = {rel: file_sha(path) for rel, path in inputs["overrides"].items()}
    deletions = {victim: _deletion_sha([tuple(p) for p in files]) for victim, files in inputs["deletions"].items()}
    return overrides, deletions


def check(project, inputs: dict, accept: list[str] | None = None) -> Report:
    """Compare the manifest with upstream; record new entries, drop gone ones, accept the named ones.

    `accept`: None accepts nothing, [] accepts every stale entry, else the listed paths (or directories).
    The manifest is rewritten only when something in it changes.
    """
    manifest = load(project)
    version = upstream_version(project)
    now_over, now_del = current_hashes(inputs)
    report = Report()
    if accept:
        known = set(now_over) | set(now_del)
        unknown = [p for p in accept if not any(k == p or k.startswith(p.rstrip("/") + "/") for k in known)]
        if unknown:
            raise LauncherError(f"--accept-upstream: not an override or deletion: {', '.join(unknown)}", 2)

    def wanted(path: str) -> bool:
        if accept is None:
            return False
        return not accept or any(path == p or path.startswith(p.rstrip("/") + "/") for p in accept)

    new_manifest: dict = {}
    for kind, now, old in (("override", now_over, manifest["overrides"]), ("deletion", now_del, manifest["deletions"])):
        section = {}
        for path, sha in sorted(now.items()):
            entry = old.get(path)
            if entry is None:
                section[path] = {"upstream_sha256": sha, "upstream_version": version}
                report.recorded.append(path)
            elif entry["upstream_sha256"] != sha and wanted(path):
                section[path] = {"upstream_sha256": sha, "upstream_version": version}
                report.accepted.append(path)
            else:
                section[path] = dict(entry)
                if entry["upstream_sha256"] != sha:
                    report.stale.append(Stale(kind, path, entry["upstream_sha256"], sha))
        report.dropped += sorted(set(old) - set(now))
        new_manifest["overrides" if kind == "override" else "deletions"] = section
    if report.recorded or report.accepted or report.dropped:
        save(project, new_manifest)
    return report


def save(project, manifest: dict) -> None:
    path = project.extensions / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False, width=200)
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text(HEADER + body, encoding="utf-8")
    tmp.replace(path)
