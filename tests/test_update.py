"""`./run.sh update --from SOURCE[@REF]`: a new upstream from a real git repository, a directory or a tarball,
three-way merges of the overrides, the three choices on conflict, renames and deletions, new migrations, and
an update killed half-way."""

import hashlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import pytest
import yaml

from conftest import CODE_ROOT, PYTHON, clean_env

sys.path.insert(0, str(CODE_ROOT))

from launcher.provenance import blob_id  # noqa: E402

pytestmark = pytest.mark.skipif(not shutil.which("git"), reason="git is not installed (apt-get install git)")

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main",
       "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]
PAGE = "".join(f"line {i}\n" for i in range(1, 13))  # upstream's page: far-apart lines to change on each side


def git(repo, *args):
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def project(tree):
    """The synthetic tree with a 12-line upstream page and a longer core.py, built once (bases recorded)."""
    tree.write("upstream/pkg/page.html", PAGE)
    tree.write("upstream/pkg/core.py", "".join(f"def f{i}():\n    return {i}\n\n" for i in range(8)))
    return tree


@pytest.fixture
def repo(project, tmp_path):
    """Upstream's own git repository, its first commit (tag v1.0.0) being the vendored tree."""
    r = tmp_path / "upstream-repo"
    shutil.copytree(project.root / "upstream", r)
    git(r, "init", "-q")
    git(r, "add", "-A")
    git(r, "commit", "-qm", "1.0.0")
    git(r, "tag", "v1.0.0")
    return r


def release(repo, version, files=None, renames=None) -> str:
    """Commit a new upstream version in `repo` (files: path -> text, None deletes); return SOURCE@REF."""
    for old, new in (renames or {}).items():
        (repo / new).parent.mkdir(parents=True, exist_ok=True)
        git(repo, "mv", old, new)
    for rel, text in (files or {}).items():
        p = repo / rel
        if text is None:
            p.unlink()
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
    (repo / "UPSTREAM.yaml").write_text(f"name: astroportal\nversion: {version}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", version)
    git(repo, "tag", f"v{version}")
    return f"{repo}@v{version}"


def snapshot(root) -> str:
    """One hash of every file under `root`: its path, mode and bytes (and of every directory)."""
    h = hashlib.sha256()
    for dirpath, dirnames, names in sorted(os.walk(root)):
        dirnames.sort()
        h.update(f"D {os.path.relpath(dirpath, root)}\n".encode())
        for n in sorted(names):
            p = os.path.join(dirpath, n)
            h.update(f"F {os.path.relpath(p, root)} {os.stat(p).st_mode:o}\n".encode())
            h.update(open(p, "rb").read())
    return h.hexdigest()


def manifest(tree) -> dict:
    return yaml.safe_load((tree.root / "extensions/PROVENANCE.yaml").read_text())


def changed(text: str, line: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[line - 1] = new + "\n"
    return "".join(lines)


def test_update_without_overlap_and_its_dry_run(project, repo):
    project.write("extensions/pkg/page.html", changed(PAGE, 2, "line 2 (ours)"))
    project.build()
    source = release(repo, "1.1.0", {"pkg/__init__.py": "VERSION = 2\n", "pkg/new.py": "NEW = 1\n",
                                     "pkg/static/vendor/a.js": None})
    before = snapshot(project.root)
    res = project.run("update", "--from", source, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "astroportal 1.0.0 -> 1.1.0" in res.stdout and "1 added, 1 changed, 1 deleted, 0 renamed" in res.stdout
    assert "  A  pkg/new.py" in res.stdout and "  M  pkg/__init__.py" in res.stdout
    assert "  D  pkg/static/vendor/a.js" in res.stdout and "dry run: nothing was changed" in res.stdout
    assert snapshot(project.root) == before

    res = project.run("update", "--from", source)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "overlay: untouched" in res.stdout
    up = project.root / "upstream"
    assert (up / "pkg/__init__.py").read_text() == "VERSION = 2\n" and (up / "pkg/new.py").exists()
    assert not (up / "pkg/static/vendor/a.js").exists()
    assert (project.root / "extensions/pkg/page.html").read_text() == changed(PAGE, 2, "line 2 (ours)")
    meta = yaml.safe_load((up / "UPSTREAM.yaml").read_text())
    assert meta["version"] == "1.1.0" and meta["previous_version"] == "1.0.0"
    assert meta["source"]["kind"] == "git" and meta["source"]["ref"] == "v1.1.0"
    assert meta["source"]["commit"] == git(repo, "rev-parse", "v1.1.0")
    res = project.build()
    assert "warning" not in res.stderr
    assert (project.patched / "pkg/new.py").exists()
    # the same tree again: nothing to do
    res = project.run("update", "--from", source)
    assert res.returncode == 0 and "nothing to update" in res.stdout
    assert not (project.root / ".update-stage").exists() and not (project.root / ".update-journal.json").exists()


def test_a_clean_three_way_merge_keeps_both_changes(project, repo):
    ours = changed(PAGE, 2, "line 2 (ours)")
    project.write("extensions/pkg/page.html", ours)
    project.build()
    theirs = changed(PAGE, 10, "line 10 (upstream 1.1)")
    res = project.run("update", "--from", release(repo, "1.1.0", {"pkg/page.html": theirs}))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "merged    extensions/pkg/page.html" in res.stdout
    merged = (project.root / "extensions/pkg/page.html").read_text()
    assert "line 2 (ours)\n" in merged and "line 10 (upstream 1.1)\n" in merged and "<<<<<<<" not in merged
    entry = manifest(project)["overrides"]["pkg/page.html"]
    assert entry["upstream_blob"] == blob_id(theirs.encode()) and entry["upstream_version"] == "1.1.0"
    assert (project.root / "extensions/.bases" / entry["upstream_blob"]).read_text() == theirs
    res = project.build()
    assert "warning" not in res.stderr  # the override is made from today's upstream file again
    assert (project.patched / "pkg/page.html").read_text() == merged


@pytest.fixture
def conflicting(project, repo):
    """An override and upstream 1.1.0 changing the same line of the page; returns SOURCE@REF."""
    project.write("extensions/pkg/page.html", changed(PAGE, 5, "line 5 (ours)"))
    project.build()
    return release(repo, "1.1.0", {"pkg/page.html": changed(PAGE, 5, "line 5 (theirs)"), "pkg/new.py": "N = 1\n"})


def test_conflict_merge_writes_markers_and_the_build_refuses_them(project, conflicting):
    res = project.run("update", "--from", conflicting, "--on-conflict", "merge")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "CONFLICT  extensions/pkg/page.html: 1 conflicting part(s)" in res.stdout
    assert "overrides written with conflict markers" in res.stdout
    assert "extensions/pkg/page.html: line(s) 5" in res.stdout
    text = (project.root / "extensions/pkg/page.html").read_text()
    assert "<<<<<<< extensions/pkg/page.html (ours)\nline 5 (ours)\n=======\nline 5 (theirs)\n>>>>>>> " in text
    assert (project.root / "upstream/pkg/new.py").exists()
    res = project.run("build")
    assert res.returncode != 0
    assert "extensions/pkg/page.html:5: conflict markers" in res.stderr
    # resolved by hand: the build takes it, with the new upstream file as its base
    (project.root / "extensions/pkg/page.html").write_text(changed(PAGE, 5, "line 5 (both)"))
    res = project.build()
    assert "warning" not in res.stderr
    assert (project.patched / "pkg/page.html").read_text() == changed(PAGE, 5, "line 5 (both)")


def test_conflict_force_keeps_the_override_and_names_it_stale(project, conflicting):
    res = project.run("update", "--from", conflicting, "--on-conflict", "force")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "kept as they are, stale" in res.stdout and "  extensions/pkg/page.html" in res.stdout
    assert (project.root / "extensions/pkg/page.html").read_text() == changed(PAGE, 5, "line 5 (ours)")
    assert (project.root / "upstream/pkg/page.html").read_text() == changed(PAGE, 5, "line 5 (theirs)")
    res = project.build()
    assert "upstream changed under 1 file(s)" in res.stderr and "pkg/page.html" in res.stderr


def test_conflict_cancel_changes_nothing(project, conflicting):
    before = snapshot(project.root)
    res = project.run("update", "--from", conflicting, "--on-conflict", "cancel")
    assert res.returncode == 1 and "update cancelled: nothing was changed" in res.stdout
    assert snapshot(project.root) == before


def test_conflict_without_terminal_or_flag_is_refused(project, conflicting):
    before = snapshot(project.root)
    res = project.run("update", "--from", conflicting)
    assert res.returncode == 2
    assert "no terminal to ask" in res.stderr and "--on-conflict merge|force|cancel" in res.stderr
    assert snapshot(project.root) == before


def test_conflict_asked_on_a_terminal(project, conflicting):
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: the launcher on the pty
        os.chdir(project.root)
        os.execve(PYTHON, [PYTHON, str(CODE_ROOT / "launcher"), "update", "--from", conflicting],
                  clean_env(PORTAL_ROOT=str(project.root)))
    out = b""
    deadline = time.time() + 60
    while b"[m/f/c]" not in out and time.time() < deadline:
        if select.select([fd], [], [], 1)[0]:
            out += os.read(fd, 4096)
    assert b"[m/f/c]" in out, out
    os.write(fd, b"c\n")
    while time.time() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1 and b"update cancelled" in out
    assert (project.root / "upstream/UPSTREAM.yaml").read_text().endswith("version: 1.0.0\n")


def test_upstream_rename_and_deletion_under_overrides_and_a_marker(project, repo):
    core = (project.root / "upstream/pkg/core.py").read_text()
    project.write("extensions/pkg/core.py", changed(core, 2, "    return 'kilonova'"))
    project.write("extensions/pkg/static/old.js", "console.log('ours')\n")
    project.write("extensions/pkg/static/vendor/b.js.delete", "# not needed\n")
    project.write("extensions/pkg/templates/base.html.delete", "# our pages have their own layout\n")
    project.build()
    source = release(repo, "2.0.0", renames={"pkg/core.py": "pkg/engine.py",
                                             "pkg/templates/base.html": "pkg/templates/layout.html"},
                     files={"pkg/engine.py": changed(core, 20, "    return 'upstream 2'"), "pkg/static/old.js": None,
                            "pkg/static/vendor/b.js": "b2\n"})
    res = project.run("update", "--from", source)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "  R  pkg/core.py -> pkg/engine.py" in res.stdout
    assert "merged    extensions/pkg/core.py -> extensions/pkg/engine.py" in res.stdout
    assert "upstream deleted pkg/static/old.js; the override stays, as an addition" in res.stdout
    assert "marker    extensions/pkg/static/vendor/b.js.delete: upstream changed pkg/static/vendor/b.js" in res.stdout
    assert "upstream renamed pkg/templates/base.html to pkg/templates/layout.html: the marker follows it" in res.stdout
    ext = project.root / "extensions"
    assert not (ext / "pkg/templates/base.html.delete").exists()
    assert (ext / "pkg/templates/layout.html.delete").read_text() == "# our pages have their own layout\n"
    assert not (ext / "pkg/core.py").exists()
    engine = (ext / "pkg/engine.py").read_text()
    assert "return 'kilonova'" in engine and "return 'upstream 2'" in engine
    m = manifest(project)
    assert "pkg/core.py" not in m["overrides"] and "pkg/static/old.js" not in m["overrides"]
    assert m["overrides"]["pkg/engine.py"]["upstream_version"] == "2.0.0"
    assert "pkg/static/old.js" in m["additions"]
    res = project.build()
    assert "1 overridden" in res.stderr and "upstream changed under 1 file(s)" in res.stderr  # the marker
    assert (project.patched / "pkg/static/old.js").read_text() == "console.log('ours')\n"
    assert not (project.patched / "pkg/static/vendor/b.js").exists()
    assert not (project.patched / "pkg/templates/layout.html").exists()


def test_a_base_found_nowhere_is_a_conflict(project, repo):
    project.write("extensions/pkg/page.html", changed(PAGE, 2, "line 2 (ours)"))
    project.build()
    # the recorded base is lost: no kept copy, vendored upstream edited since, no git history
    shutil.rmtree(project.root / "extensions/.bases")
    project.write("upstream/pkg/page.html", changed(PAGE, 7, "line 7 (edited in place)"))
    source = release(repo, "1.1.0", {"pkg/page.html": changed(PAGE, 10, "line 10 (theirs)")})
    res = project.run("update", "--from", source, "--on-conflict", "merge")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "CONFLICT  extensions/pkg/page.html: its recorded base (blob" in res.stdout
    assert "is in neither extensions/.bases/, upstream/ nor git history" in res.stdout
    text = (project.root / "extensions/pkg/page.html").read_text()
    assert text.startswith("<<<<<<< extensions/pkg/page.html (ours)\nline 1\nline 2 (ours)\n")
    assert "=======\nline 1\nline 2\n" in text
    assert "line 10 (theirs)\nline 11\nline 12\n>>>>>>> upstream 1.1.0 pkg/page.html (theirs)\n" in text
    res = project.run("build")
    assert res.returncode != 0 and "extensions/pkg/page.html:1: conflict markers" in res.stderr


def test_a_new_upstream_migration_is_reported(project, repo):
    project.build()
    mig = ('"""add a column"""\nrevision = "0002"\ndown_revision = "0001"\n\n\ndef upgrade():\n    pass\n')
    res = project.run("update", "--from", release(repo, "1.1.0", {"alembic/versions/0002_add.py": mig}))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "upstream migrations added (1; ./run.sh migrate applies them):" in res.stdout
    assert 'alembic/versions/0002_add.py (revision 0002, revises "0001")' in res.stdout


def test_tarball_and_directory_sources(project, tmp_path):
    project.build()
    # a release tarball with a top folder, holding upstream's root
    top = tmp_path / "astroportal-1.1.0"
    shutil.copytree(project.root / "upstream", top)
    (top / "UPSTREAM.yaml").write_text("name: astroportal\nversion: 1.1.0\n")
    (top / "pkg/tar.py").write_text("T = 1\n")
    tarball = tmp_path / "astroportal-1.1.0.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(top, arcname=top.name)
    res = project.run("update", "--from", str(tarball))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "from tarball" in res.stdout and (project.root / "upstream/pkg/tar.py").read_text() == "T = 1\n"
    meta = yaml.safe_load((project.root / "upstream/UPSTREAM.yaml").read_text())
    assert meta["source"]["sha256"] == hashlib.sha256(tarball.read_bytes()).hexdigest()
    # a directory with upstream/ in it (e.g. another checkout of the distribution)
    other = tmp_path / "other-checkout"
    shutil.copytree(top, other / "upstream")
    (other / "upstream/UPSTREAM.yaml").write_text("name: astroportal\nversion: 1.2.0\n")
    (other / "upstream/pkg/dir.py").write_text("D = 1\n")
    (other / "README.md").write_text("not upstream's\n")
    res = project.run("update", "--from", str(other))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1.1.0 -> 1.2.0" in res.stdout and "  A  pkg/dir.py" in res.stdout
    assert not (project.root / "upstream/README.md").exists()
    # and something that is no upstream at all
    (tmp_path / "empty").mkdir()
    res = project.run("update", "--from", str(tmp_path / "empty"))
    assert res.returncode == 2 and "holds no UPSTREAM.yaml" in res.stderr


def _start_paused(project, source, point, sig=signal.SIGKILL):
    proc = subprocess.Popen([PYTHON, str(CODE_ROOT / "launcher"), "update", "--from", source, "--on-conflict",
                             "merge"], cwd=project.root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=clean_env(PORTAL_ROOT=str(project.root),
                                                                  PORTAL_UPDATE_PAUSE_AT=point))
    err = b""
    deadline = time.time() + 60
    while b"paused at" not in err and time.time() < deadline and proc.poll() is None:
        if select.select([proc.stderr], [], [], 1)[0]:
            err += os.read(proc.stderr.fileno(), 4096)
    assert b"paused at " + point.encode() in err, err
    proc.send_signal(sig)
    proc.wait(30)
    err += proc.stderr.read()
    proc.stderr.close()
    return proc.returncode, err.decode()


def test_update_killed_before_the_swap_leaves_the_tree_as_before(project, repo):
    project.write("extensions/pkg/page.html", changed(PAGE, 2, "line 2 (ours)"))
    project.build()
    source = release(repo, "1.1.0", {"pkg/page.html": changed(PAGE, 10, "line 10 (theirs)")})
    layers = {n: snapshot(project.root / n) for n in ("upstream", "extensions")}
    _start_paused(project, source, "staged")
    assert (project.root / ".update-stage").exists()
    assert {n: snapshot(project.root / n) for n in layers} == layers
    res = project.build()  # the next command drops the staged update
    assert "removed what an interrupted update had staged" in res.stderr
    assert not (project.root / ".update-stage").exists()
    assert {n: snapshot(project.root / n) for n in layers} == layers


def test_ctrl_c_while_staging_changes_nothing(project, repo):
    project.write("extensions/pkg/page.html", changed(PAGE, 2, "line 2 (ours)"))
    project.build()
    before = snapshot(project.root)
    source = release(repo, "1.1.0", {"pkg/page.html": changed(PAGE, 10, "line 10 (theirs)")})
    status, err = _start_paused(project, source, "staged", signal.SIGINT)
    assert status == 130 and "interrupted" in err
    assert snapshot(project.root) == before  # the stage is gone too


def test_update_killed_half_way_through_the_swap_is_finished_by_the_next_run(project, repo, tmp_path):
    project.write("extensions/pkg/page.html", changed(PAGE, 2, "line 2 (ours)"))
    project.build()
    source = release(repo, "1.1.0", {"pkg/page.html": changed(PAGE, 10, "line 10 (theirs)")})
    # the state a whole update reaches, in a copy of the project
    reference = tmp_path / "reference"
    shutil.copytree(project.root, reference, symlinks=True)
    res = subprocess.run([PYTHON, str(CODE_ROOT / "launcher"), "update", "--from", source], cwd=reference,
                         env=clean_env(PORTAL_ROOT=str(reference)), capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout + res.stderr

    _start_paused(project, source, "swapping")
    assert (project.root / ".update-journal.json").exists()
    assert not (project.root / "upstream").exists()  # half-way: the old tree moved out, the new one not in yet
    res = project.run("update", "--from", source)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "finished an interrupted update" in res.stderr and "nothing to update" in res.stdout
    assert not (project.root / ".update-stage").exists() and not (project.root / ".update-journal.json").exists()
    assert snapshot(project.root / "extensions") == snapshot(reference / "extensions")
    # the same upstream tree (UPSTREAM.yaml aside: its source records a time)
    for rel in ("pkg/page.html", "pkg/core.py"):
        assert (project.root / "upstream" / rel).read_bytes() == (reference / "upstream" / rel).read_bytes()
    assert "version: 1.1.0" in (project.root / "upstream/UPSTREAM.yaml").read_text()
    assert "line 10 (theirs)" in (project.root / "extensions/pkg/page.html").read_text()
