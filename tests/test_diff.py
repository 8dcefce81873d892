"""./run.sh diff: overrides as unified diffs against upstream, additions and deletions listed."""


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
    assert "deleted: pkg/static/old.js (by extensions/pkg/static/old.js.delete: superseded by the light-curve widget)" in out
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
