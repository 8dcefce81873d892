"""Where a new upstream comes from: `SOURCE[@REF]` made into a directory holding the new upstream tree.

SOURCE is
  - a git repository (a local path or a URL) with `@REF` (a tag, branch or commit): the tree of that commit
    (`git archive`, so the repository's working tree and uncommitted changes do not matter); a URL without
    `@REF` means its HEAD;
  - a directory: its files as they are (`.git/` and caches left out);
  - a tarball (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz): its files; a single top folder (`astroportal-1.1/`)
    is stepped into.
In the tree found, the new upstream is the folder `upstream/` when it holds an UPSTREAM.yaml (a release of the
whole distribution, or of a repository that vendors it the same way), else the tree itself when UPSTREAM.yaml
is at its top (upstream's own repository). Anything else is refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import LauncherError

MARKER = "UPSTREAM.yaml"


@dataclass
class Fetched:
    """The new upstream tree (`root`) and what to record of where it came from (`origin`)."""

    root: Path
    origin: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)  # the new UPSTREAM.yaml


def split_spec(spec: str) -> tuple[str, str | None]:
    """SOURCE[@REF] -> (SOURCE, REF or None). An existing path keeps any '@' in its name; so does `git@host:`."""
    if os.path.exists(spec) or "@" not in spec:
        return spec, None
    source, ref = spec.rsplit("@", 1)
    if ref and (os.path.exists(source) or _is_url(source)):
        return source, ref
    return spec, None


def _is_url(source: str) -> bool:
    return "://" in source or (":" in source and not os.path.exists(source))


def fetch(spec: str, work: Path) -> Fetched:
    """Bring SOURCE[@REF] into `work` (an empty directory) and find the new upstream tree in it."""
    source, ref = split_spec(spec)
    local = Path(source).expanduser()
    if ref is not None or (not local.exists() and _is_url(source)):
        origin = _from_git(source, ref or "HEAD", work)
    elif local.is_file():
        origin = _from_tarball(local, work)
    elif local.is_dir():
        origin = {"kind": "directory", "source": str(local.resolve())}
        _copy_dir(local, work / "tree")
    else:
        raise LauncherError(f"update: {source}: no such file, directory or git URL (SOURCE is a git repository with "
                            "@REF, a directory or a tarball)", 2)
    root = _upstream_in(work / "tree", spec)
    meta = _read_meta(root, spec)
    return Fetched(root, origin, meta)


def _git(*args: str, cwd: Path | None = None) -> str:
    git = shutil.which("git")
    if git is None:
        raise LauncherError("update from a git repository needs git, which is not installed: apt-get install git", 2)
    res = subprocess.run([git, *args], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    if res.returncode != 0:
        raise LauncherError(f"update: git {' '.join(args[:2])} failed: {res.stderr.strip() or res.stdout.strip()}", 2)
    return res.stdout.strip()


def _from_git(source: str, ref: str, work: Path) -> dict:
    local = Path(source).expanduser()
    if local.exists():
        repo = local.resolve()
        try:
            _git("rev-parse", "--git-dir", cwd=repo)
        except LauncherError:
            raise LauncherError(f"update: {source} is not a git repository (a directory is taken as it is only "
                                "without @REF)", 2) from None
    else:
        repo = work / "clone.git"
        _git("clone", "--quiet", "--bare", source, str(repo))
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo)
    except LauncherError:
        raise LauncherError(f"update: {source} has no commit {ref!r} (a tag, branch or commit id)", 2) from None
    archive = work / "tree.tar"
    _git("archive", "--format=tar", "-o", str(archive), commit, cwd=repo)
    _extract(archive, work / "tree")
    archive.unlink()
    shutil.rmtree(work / "clone.git", ignore_errors=True)
    return {"kind": "git", "source": str(repo) if local.exists() else source, "ref": ref, "commit": commit}


def _from_tarball(path: Path, work: Path) -> dict:
    if not tarfile.is_tarfile(path):
        raise LauncherError(f"update: {path} is neither a directory nor a tarball (.tar, .tar.gz, .tgz, ...)", 2)
    _extract(path, work / "tree")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return {"kind": "tarball", "source": str(path.resolve()), "sha256": h.hexdigest()}


def _extract(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            # The "data" filter refuses absolute paths, `..`, links leading out, devices: an archive is input.
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise LauncherError(f"update: cannot unpack {archive.name}: {exc}", 2) from None


def _copy_dir(src: Path, dest: Path) -> None:
    ignore = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".pytest_cache")
    try:
        shutil.copytree(src, dest, symlinks=True, ignore=ignore)
    except (shutil.Error, OSError) as exc:
        raise LauncherError(f"update: cannot copy {src}: {exc}", 2) from None


def _upstream_in(tree: Path, spec: str) -> Path:
    root = tree
    while not (root / MARKER).is_file() and not (root / "upstream" / MARKER).is_file():
        entries = [e for e in root.iterdir() if e.name not in (".git", "pax_global_header")]
        if len(entries) != 1 or not entries[0].is_dir():
            raise LauncherError(f"update: {spec} holds no {MARKER}, neither at its top nor in upstream/: it is not "
                                "an upstream tree (upstream's repository, or a tree with upstream/ in it)", 2)
        root = entries[0]
    return root / "upstream" if (root / "upstream" / MARKER).is_file() else root


def _read_meta(root: Path, spec: str) -> dict:
    try:
        meta = yaml.safe_load((root / MARKER).read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LauncherError(f"update: {spec}: {MARKER} is not valid YAML: {exc}", 2) from None
    if not isinstance(meta, dict) or not meta.get("version"):
        raise LauncherError(f"update: {spec}: {MARKER} must be a mapping with at least `name` and `version`", 2)
    return meta
