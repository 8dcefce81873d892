"""./run.sh diff: overrides as unified diffs against upstream, additions and deletions listed."""

import hashlib
import sys

from conftest import CODE_ROOT

sys.path.insert(0, str(CODE_ROOT))

from launcher import diff, overlay  # noqa: E402
from launcher.paths import Project  # noqa: E402


def setup_overlay(tree):
    tree.write("extensions/pkg/templates/base.html", "<html>\n<title>Kilonova portal</title>\n</html>\n")
    tree.write("extensions/pkg/kilonova.py", "KN = True\n")
    tree.write("extensions/pkg/static/old.js.delete", "# superseded by the light-curve widget\n")
    tree.write("services/broker/supervisor.conf", "[program:broker]\ncommand=true\n")


def test_diff_shows_overrides_additions_and_deletions(tree):
    setup_overlay(tree)
    res = tree.run("diff")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "--- upstream/pkg/templates/base.html\n+++ extensions/pkg/templates/base.html\n" in out
    assert "-<title>Portal</title>\n+<title>Kilonova portal</title>\n" in out
    assert "added: pkg/kilonova.py (from extensions/pkg/kilonova.py)" in out
    assert "added: services/broker/supervisor.conf (from services/broker/supervisor.conf)" in out
    assert ("deleted: pkg/static/old.js (by extensions/pkg/static/old.js.delete: superseded by the light-curve "
            "widget)") in out
    assert out.rstrip().endswith("1 overridden, 2 added, 1 deleted")


def test_diff_stat(tree):
    setup_overlay(tree)
    out = tree.run("diff", "--stat").stdout
    assert " pkg/templates/base.html | +1 -1" in out
    assert "---" not in out


def test_diff_of_one_path(tree):
    setup_overlay(tree)
    out = tree.run("diff", "extensions/pkg/templates").stdout
    assert "base.html" in out and "kilonova.py" not in out and "old.js" not in out
    out = tree.run("diff", "pkg/static/old.js").stdout
    assert "deleted: pkg/static/old.js" in out and "base.html" not in out


def test_diff_of_a_path_outside_the_overlay_or_the_tree(tree):
    setup_overlay(tree)
    res = tree.run("diff", "pkg/core.py")
    assert res.returncode == 1 and "nothing in the overlay at pkg/core.py" in res.stderr
    res = tree.run("diff", "../../etc/passwd")
    assert res.returncode == 2 and "leads out of the tree" in res.stderr


def test_diff_with_no_overlay(tree):
    res = tree.run("diff")
    assert res.returncode == 0 and "changes nothing" in res.stdout


def test_diff_refuses_a_broken_overlay(tree):
    tree.write("extensions/pkg/missing.py.delete")
    res = tree.run("diff")
    assert res.returncode == 2 and "upstream does not have" in res.stderr


def test_diff_is_a_report_per_file_with_the_recorded_base(tree):
    setup_overlay(tree)
    base = (tree.root / "upstream/pkg/templates/base.html").read_bytes()
    tree.build()  # records the bases
    report = diff.compare(Project(tree.root))
    by_path = {e.path: e for e in report.entries}
    override = by_path["pkg/templates/base.html"]
    assert override.kind is overlay.Kind.OVERRIDE and (override.added, override.removed) == (1, 1)
    assert override.ours == "extensions/pkg/templates/base.html"
    assert override.upstream == "upstream/pkg/templates/base.html"
    assert "+<title>Kilonova portal</title>\n" in override.lines
    assert override.base_blob == hashlib.sha1(b"blob %d\0" % len(base) + base).hexdigest()
    assert override.base_is_current is True
    assert by_path["pkg/kilonova.py"].kind is overlay.Kind.ADD
    assert by_path["services/broker/supervisor.conf"].kind is overlay.Kind.SERVICE
    deleted = by_path["pkg/static/old.js"]
    assert deleted.kind is overlay.Kind.DELETE and deleted.reason == "superseded by the light-curve widget"
    assert deleted.base_blob is not None
    assert report.render() == tree.run("diff").stdout
    assert report.render(stat=True) == tree.run("diff", "--stat").stdout


def test_diff_says_when_upstream_moved_under_an_override(tree):
    setup_overlay(tree)
    tree.build()
    tree.write("upstream/pkg/templates/base.html", "<html>\n<title>Portal 2</title>\n</html>\n")
    out = tree.run("diff").stdout
    assert "upstream/pkg/templates/base.html has changed since the override was made from it" in out
    stat = tree.run("diff", "--stat").stdout
    assert "pkg/templates/base.html | +1 -1 (upstream changed since the recorded base)" in stat
    assert diff.compare(Project(tree.root), "pkg/templates").entries[0].base_is_current is False
