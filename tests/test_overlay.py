"""The overlay build: each rule, incrementality, atomicity, stale files, provenance, bad input."""

import hashlib
import os
import shutil
import stat
import subprocess
import sys

import pytest
import yaml

from conftest import CODE_ROOT

sys.path.insert(0, str(CODE_ROOT))

from launcher import overlay, provenance  # noqa: E402
from launcher.paths import Project  # noqa: E402


def test_upstream_alone_is_copied_with_generated_config(tree):
    res = tree.build()
    files = tree.files()
    assert {"pkg/core.py", "pkg/templates/base.html", "services/app/supervisor.conf", "config.yaml"} <= files
    assert (tree.patched / "pkg/core.py").read_text() == "def answer():\n    return 42\n"
    mode = stat.S_IMODE(os.stat(tree.patched / "config.yaml").st_mode)
    assert mode == 0o600
    assert ("9 from upstream, 0 overridden, 1 added (0 from extensions, 0 from services, 1 generated), "
            "0 deleted") in res.stderr


def test_override_add_delete_and_summary(tree):
    tree.write("extensions/pkg/templates/base.html", "<html>\n<title>Kilonova portal</title>\n</html>\n")
    tree.write("extensions/pkg/kilonova.py", "KN = True\n")
    tree.write("extensions/pkg/static/old.js.delete", "# replaced by the new plotting code\n")
    tree.write("extensions/pkg/static/vendor.delete")
    res = tree.build()
    files = tree.files()
    assert (tree.patched / "pkg/templates/base.html").read_text().count("Kilonova portal") == 1
    assert (tree.patched / "pkg/kilonova.py").read_text() == "KN = True\n"
    assert "pkg/static/old.js" not in files and "pkg/static/old.js.delete" not in files
    assert not any(f.startswith("pkg/static/vendor/") for f in files)
    assert "1 overridden" in res.stderr and "3 deleted" in res.stderr and "1 from extensions" in res.stderr
    # the overlay's own documents are not part of the build
    tree.write("extensions/README.md", "docs")
    tree.build()
    assert "README.md" not in tree.files()


def test_distribution_services_join_upstream_services(tree):
    tree.write("services/broker/supervisor.conf", "[program:broker]\ncommand={python} -m broker\n")
    tree.write("services/broker/broker.py", "print('hi')\n")
    tree.write("services/README.md", "how services are declared")
    res = tree.build()
    files = tree.files()
    assert {"services/broker/supervisor.conf", "services/broker/broker.py", "services/app/supervisor.conf"} <= files
    assert "services/README.md" not in files
    assert "2 from services" in res.stderr


def test_service_clashing_with_upstream_is_refused(tree):
    tree.build()
    before = (tree.patched / "services/app/supervisor.conf").read_text()
    tree.write("services/app/supervisor.conf", "[program:app]\ncommand=other\n")
    res = tree.run("build")
    assert res.returncode != 0
    assert "services/app/supervisor.conf" in res.stderr and "extensions/services/app" in res.stderr
    assert (tree.patched / "services/app/supervisor.conf").read_text() == before


def test_stale_files_are_removed(tree):
    extra = tree.write("extensions/pkg/extra.py", "x = 1\n")
    tree.build()
    assert "pkg/extra.py" in tree.files()
    extra.unlink()
    (tree.root / "upstream/pkg/static/vendor/b.js").unlink()
    (tree.patched / "pkg/leftover.txt").write_text("nobody made me")
    res = tree.build()
    files = tree.files()
    assert "pkg/extra.py" not in files and "pkg/static/vendor/b.js" not in files and "pkg/leftover.txt" not in files
    assert "3 stale removed" in res.stderr


def test_pycache_in_the_build_is_not_stale(tree):
    tree.build()
    (tree.patched / "pkg/__pycache__").mkdir()
    (tree.patched / "pkg/__pycache__/core.cpython-311.pyc").write_bytes(b"\0")
    res = tree.build()
    assert "nothing changed" in res.stderr


def test_incremental_build_rewrites_only_what_changed(tree):
    tree.build()
    core, base = tree.patched / "pkg/core.py", tree.patched / "pkg/templates/base.html"
    core_before, base_before = os.stat(core), os.stat(base)
    res = tree.build()
    assert "0 written" in res.stderr and "nothing changed" in res.stderr
    tree.write("upstream/pkg/templates/base.html", "<html>changed</html>\n")
    res = tree.build()
    assert "1 written" in res.stderr
    core_after, base_after = os.stat(tree.patched / "pkg/core.py"), os.stat(tree.patched / "pkg/templates/base.html")
    assert (core_after.st_ino, core_after.st_mtime_ns) == (core_before.st_ino, core_before.st_mtime_ns)
    assert base_after.st_ino != base_before.st_ino
    assert (tree.patched / "pkg/templates/base.html").read_text() == "<html>changed</html>\n"
    # the previous build is kept beside the new one
    assert (tree.root / "patched.prev/pkg/templates/base.html").read_text().startswith("<html>\n<title>")


def test_touched_but_identical_file_is_not_rewritten(tree):
    tree.build()
    before = os.stat(tree.patched / "pkg/core.py")
    os.utime(tree.root / "upstream/pkg/core.py", ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    res = tree.build()
    assert "0 written" in res.stderr
    assert os.stat(tree.patched / "pkg/core.py").st_ino == before.st_ino


def test_config_change_rewrites_only_config(tree):
    tree.build()
    res = tree.run("build", env={"PORTAL__SERVER__PORT": "5099"})
    assert res.returncode == 0 and "1 written" in res.stderr
    assert yaml.safe_load((tree.patched / "config.yaml").read_text())["server"]["port"] == 5099


def test_force_rewrites_everything(tree):
    tree.build()
    res = tree.build("--force")
    assert "0 unchanged" in res.stderr


def test_failed_build_leaves_previous_build_in_place(tree):
    tree.build()
    snapshot = {f: (tree.patched / f).read_bytes() for f in tree.files()}
    tree.write("upstream/pkg/core.py", "def answer():\n    return 43\n")
    tree.write("extensions/pkg/new.py", "new = 1\n")
    res = tree.run("build", env={"PORTAL_BUILD_FAIL_AFTER": "1"})
    assert res.returncode != 0
    assert "build failed" in res.stderr and "previous build in patched/ is unchanged" in res.stderr
    assert {f: (tree.patched / f).read_bytes() for f in tree.files()} == snapshot
    assert not (tree.root / "patched.new").exists()
    res = tree.build()
    assert (tree.patched / "pkg/core.py").read_text().endswith("43\n") and "pkg/new.py" in tree.files()


def test_first_build_failure_leaves_no_tree(tree):
    res = tree.run("build", env={"PORTAL_BUILD_FAIL_AFTER": "2"})
    assert res.returncode != 0 and "no build was made" in res.stderr
    assert not tree.patched.exists() and not (tree.root / "patched.new").exists()


def test_deletion_marker_for_missing_upstream_file_is_refused(tree):
    tree.build()
    snapshot = tree.files()
    tree.write("extensions/pkg/nothere.py.delete")
    tree.write("extensions/pkg/kilonova.py", "KN = True\n")
    res = tree.run("build")
    assert res.returncode == 2
    assert "extensions/pkg/nothere.py.delete" in res.stderr and "upstream does not have" in res.stderr
    assert tree.files() == snapshot


def test_override_and_delete_of_the_same_file_is_refused(tree):
    tree.write("extensions/pkg/core.py", "x\n")
    tree.write("extensions/pkg/core.py.delete")
    res = tree.run("build")
    assert res.returncode == 2 and "both overrides and deletes" in res.stderr


def test_file_where_upstream_has_a_directory_is_refused(tree):
    tree.write("extensions/pkg/static", "not a directory\n")
    res = tree.run("build")
    assert res.returncode == 2 and "pkg/static" in res.stderr and "directory" in res.stderr


def test_symlink_out_of_extensions_is_refused(tree, tmp_path):
    tree.build()
    secret = tmp_path / "outside.txt"
    secret.write_text("outside")
    os.symlink(secret, tree.root / "extensions/escape.txt")
    os.symlink("../../", tree.root / "extensions/up")
    res = tree.run("build")
    assert res.returncode == 2 and "leads out of extensions/" in res.stderr
    assert "escape.txt" not in tree.files()


def test_symlink_inside_extensions_is_followed(tree):
    tree.write("extensions/shared/snippet.html", "<b>shared</b>\n")
    os.makedirs(tree.root / "extensions/pkg/templates", exist_ok=True)
    os.symlink("../../shared/snippet.html", tree.root / "extensions/pkg/templates/snippet.html")
    tree.build()
    assert (tree.patched / "pkg/templates/snippet.html").read_text() == "<b>shared</b>\n"
    assert not (tree.patched / "pkg/templates/snippet.html").is_symlink()


def test_provenance_records_overrides_and_warns_when_upstream_moves(tree):
    tree.write("extensions/pkg/core.py", "def answer():\n    return 'kilonova'\n")
    tree.write("extensions/pkg/static/old.js.delete")
    res = tree.build()
    manifest = yaml.safe_load((tree.root / "extensions/PROVENANCE.yaml").read_text())
    assert set(manifest["overrides"]) == {"pkg/core.py"}
    assert set(manifest["deletions"]) == {"pkg/static/old.js"}
    assert manifest["overrides"]["pkg/core.py"]["upstream_version"] == "1.0.0"
    assert "warning" not in res.stderr
    assert "PROVENANCE.yaml" not in tree.files()

    tree.write("upstream/pkg/core.py", "def answer():\n    return 43\n")
    res = tree.build()
    assert "warning: upstream changed under 1 file" in res.stderr and "pkg/core.py" in res.stderr
    # it keeps warning on every build, including a no-op one, until accepted
    res = tree.build()
    assert "pkg/core.py" in res.stderr and "nothing changed" in res.stderr
    res = tree.build("--accept-upstream", "pkg/core.py")
    assert "accepted" in res.stderr
    res = tree.build()
    assert "warning" not in res.stderr


def test_accept_upstream_of_an_unknown_path_is_refused(tree):
    tree.write("extensions/pkg/core.py", "x\n")
    tree.build()
    res = tree.run("build", "--accept-upstream", "pkg/nothing.py")
    assert res.returncode == 2 and "not an override" in res.stderr


def test_provenance_drops_entries_no_longer_overridden(tree):
    ext = tree.write("extensions/pkg/core.py", "x\n")
    tree.build()
    ext.unlink()
    res = tree.build()
    assert "dropped pkg/core.py" in res.stderr
    assert not yaml.safe_load((tree.root / "extensions/PROVENANCE.yaml").read_text())["overrides"]


def test_broken_provenance_manifest_stops_the_build(tree):
    tree.build()
    tree.write("extensions/pkg/core.py", "x\n")
    tree.write("extensions/PROVENANCE.yaml", "overrides: [unclosed\n")
    res = tree.run("build")
    assert res.returncode == 2 and "PROVENANCE.yaml:" in res.stderr
    assert (tree.patched / "pkg/core.py").read_text().startswith("def answer")


def test_real_tree_builds(real_build):
    assert (real_build / "astroportal" / "__main__.py").exists()
    assert (real_build / "services" / "app" / "supervisor.conf").exists()
    cfg = yaml.safe_load((real_build / "config.yaml").read_text())
    assert cfg["paths"]["var"].startswith("/") and cfg["database"]["url"].startswith("postgresql://")
    assert "alembic/versions_distribution" in cfg["database"]["migration_locations"]


def test_patched_build_serves(patched_portal):
    import requests

    r = requests.get(patched_portal.url + "/api/sysinfo",
                     headers={"Authorization": f"token {patched_portal.admin_token}"}, timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "success"


# -- provenance that a three-way merge can use -------------------------------------------------------------
def git_blob(data: bytes) -> str:
    """`git hash-object`, computed here independently of the launcher."""
    return hashlib.sha1(b"blob " + str(len(data)).encode() + b"\0" + data).hexdigest()


def manifest_of(tree) -> dict:
    return yaml.safe_load((tree.root / "extensions/PROVENANCE.yaml").read_text())


def test_provenance_records_blob_ids_and_keeps_each_base(tree):
    core = (tree.root / "upstream/pkg/core.py").read_bytes()
    vendor = {p: (tree.root / "upstream" / p).read_bytes()
              for p in ("pkg/static/vendor/a.js", "pkg/static/vendor/b.js")}
    tree.write("extensions/pkg/core.py", "def answer():\n    return 'kilonova'\n")
    tree.write("extensions/pkg/static/vendor.delete")
    tree.build()
    m = manifest_of(tree)
    assert m["overrides"]["pkg/core.py"]["upstream_blob"] == git_blob(core)
    assert m["overrides"]["pkg/core.py"]["upstream_sha256"] == hashlib.sha256(core).hexdigest()
    assert m["deletions"]["pkg/static/vendor"]["upstream_blobs"] == {p: git_blob(d) for p, d in vendor.items()}
    bases = tree.root / "extensions/.bases"
    assert {p.name: p.read_bytes() for p in bases.iterdir()} == {git_blob(d): d for d in [core, *vendor.values()]}
    # the kept bases are the overlay's records, not part of the build
    assert not any(".bases" in f for f in tree.files())
    if shutil.which("git"):
        out = subprocess.run(["git", "hash-object", str(tree.root / "upstream/pkg/core.py")],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == m["overrides"]["pkg/core.py"]["upstream_blob"]


def test_find_base_returns_the_base_after_upstream_moved_on(tree):
    original = (tree.root / "upstream/pkg/core.py").read_bytes()
    tree.write("extensions/pkg/core.py", "def answer():\n    return 'kilonova'\n")
    tree.build()
    blob = manifest_of(tree)["overrides"]["pkg/core.py"]["upstream_blob"]
    tree.write("upstream/pkg/core.py", "def answer():\n    return 43\n")
    res = tree.build()
    assert "warning: upstream changed under 1 file" in res.stderr
    project = Project(tree.root)
    assert provenance.find_base(blob, project) == original  # the common ancestor of a later merge
    assert provenance.find_base(git_blob(b"never recorded\n"), project) is None
    assert provenance.find_base("not-a-blob-id", project) is None
    # a kept copy that does not hash to its name is not the base
    (tree.root / "extensions/.bases" / blob).write_bytes(b"damaged\n")
    assert provenance.find_base(blob, project) is None
    (tree.root / "extensions/.bases" / blob).unlink()
    res = tree.build()
    assert "warning: the upstream base of pkg/core.py is in neither extensions/.bases/ nor git history" in res.stderr


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
def test_a_base_missing_from_the_copies_is_found_in_git_history_and_kept_again(tree):
    original = (tree.root / "upstream/pkg/core.py").read_bytes()
    tree.write("extensions/pkg/core.py", "def answer():\n    return 'kilonova'\n")
    tree.build()
    blob = manifest_of(tree)["overrides"]["pkg/core.py"]["upstream_blob"]
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q", str(tree.root)], check=True)
    subprocess.run([*git, "add", "upstream"], cwd=tree.root, check=True)
    subprocess.run([*git, "commit", "-qm", "vendor upstream"], cwd=tree.root, check=True)
    tree.write("upstream/pkg/core.py", "def answer():\n    return 43\n")
    shutil.rmtree(tree.root / "extensions/.bases")
    assert provenance.find_base(blob, Project(tree.root)) == original
    res = tree.build()
    assert "base of pkg/core.py is in neither" not in res.stderr
    assert (tree.root / "extensions/.bases" / blob).read_bytes() == original


def test_accepting_upstream_moves_the_base_and_forgets_the_old_one(tree):
    tree.write("extensions/pkg/core.py", "x\n")
    tree.build()
    old = manifest_of(tree)["overrides"]["pkg/core.py"]["upstream_blob"]
    tree.write("upstream/pkg/core.py", "def answer():\n    return 43\n")
    tree.build("--accept-upstream", "pkg/core.py")
    new = manifest_of(tree)["overrides"]["pkg/core.py"]["upstream_blob"]
    assert new == git_blob(b"def answer():\n    return 43\n") != old
    assert [p.name for p in (tree.root / "extensions/.bases").iterdir()] == [new]


def test_a_manifest_from_before_blob_ids_gets_them(tree):
    core = (tree.root / "upstream/pkg/core.py").read_bytes()
    tree.write("extensions/pkg/core.py", "x\n")
    tree.write("extensions/PROVENANCE.yaml", yaml.safe_dump({"overrides": {"pkg/core.py": {
        "upstream_sha256": hashlib.sha256(core).hexdigest(), "upstream_version": "0.9"}}, "deletions": {}}))
    res = tree.build()
    assert "warning" not in res.stderr
    assert manifest_of(tree)["overrides"]["pkg/core.py"]["upstream_blob"] == git_blob(core)
    assert provenance.find_base(git_blob(core), Project(tree.root)) == core


def test_an_addition_that_upstream_adds_too_becomes_an_override_with_a_warning(tree):
    tree.write("extensions/pkg/kilonova.py", "KN = True\n")
    res = tree.build()
    assert "warning" not in res.stderr and manifest_of(tree)["additions"] == ["pkg/kilonova.py"]
    # upstream's next version brings a file of its own at the same path
    tree.write("upstream/pkg/kilonova.py", "KN = 'upstream'\n")
    res = tree.build()
    assert "warning: upstream now has 1 file(s) that extensions/ adds" in res.stderr
    assert "  pkg/kilonova.py\n" in res.stderr and "1 overridden" in res.stderr
    entry = manifest_of(tree)["overrides"]["pkg/kilonova.py"]
    assert entry["upstream_blob"] == git_blob(b"KN = 'upstream'\n") and entry["was_addition"] is True
    assert manifest_of(tree)["additions"] == []
    assert (tree.patched / "pkg/kilonova.py").read_text() == "KN = True\n"
    out = tree.run("diff", "pkg/kilonova.py").stdout
    assert "-KN = 'upstream'\n+KN = True\n" in out and "was an addition" in out
    # it keeps warning until reviewed and accepted
    assert "warning: upstream now has 1 file(s)" in tree.build().stderr
    tree.build("--accept-upstream", "pkg/kilonova.py")
    assert "warning" not in tree.build().stderr
    assert "was_addition" not in manifest_of(tree)["overrides"]["pkg/kilonova.py"]


def test_the_plan_is_typed_entries(tree):
    tree.write("extensions/pkg/core.py", "x\n")
    tree.write("extensions/pkg/kilonova.py", "KN = True\n")
    tree.write("extensions/pkg/static/vendor.delete", "# not used\n")
    tree.write("services/broker/supervisor.conf", "[program:broker]\n")
    plan = overlay.compose(Project(tree.root), b"config\n")
    assert isinstance(plan, overlay.Plan) and all(isinstance(e, overlay.PlanEntry) for e in plan.entries)
    kinds = {e.path: e.kind for e in plan.entries}
    assert kinds["pkg/core.py"] is overlay.Kind.OVERRIDE and kinds["pkg/kilonova.py"] is overlay.Kind.ADD
    assert kinds["pkg/static/vendor/a.js"] is overlay.Kind.DELETE and kinds["pkg/__init__.py"] is overlay.Kind.UPSTREAM
    assert kinds["services/broker/supervisor.conf"] is overlay.Kind.SERVICE
    assert kinds["config.yaml"] is overlay.Kind.GENERATED
    core = next(e for e in plan.entries if e.path == "pkg/core.py")
    assert core.upstream.path.endswith("upstream/pkg/core.py") and core.source.path.endswith("extensions/pkg/core.py")
    assert {e.marker for e in plan.of_kind(overlay.Kind.DELETE)} == {"pkg/static/vendor.delete"}
    assert "pkg/static/vendor/a.js" not in plan.targets
    inputs = plan.provenance_inputs()
    assert isinstance(inputs, overlay.ProvenanceInputs) and inputs.additions == ["pkg/kilonova.py"]
    assert overlay.ProvenanceInputs.from_json(inputs.to_json()) == inputs
