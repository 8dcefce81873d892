"""A failed browser test leaves what the browser showed under test-artifacts/ (tests/conftest.py's `browser`)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from conftest import ARTIFACTS, CODE_ROOT, artifact_name

PROBE = '''
def test_{name}(browser):
    browser.get("data:text/html,<title>probe</title><h1 id=marker>the page at the failure</h1>")
    assert browser.find_element("id", "marker").text == "something else"


def test_{name}_passes(browser):
    browser.get("data:text/html,<h1>fine</h1>")
'''


def test_a_failed_browser_test_saves_a_screenshot_and_the_page(tmp_path):
    name = "artifact_probe_" + uuid.uuid4().hex[:8]
    probe = tmp_path / f"test_{name}.py"
    probe.write_text(PROBE.format(name=name))
    env = {**os.environ, "PYTHONPATH": str(CODE_ROOT / "tests")}
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                          str(probe)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert "1 failed, 1 passed" in res.stdout, res.stdout + res.stderr
    base = ARTIFACTS / artifact_name(f"{probe.name}::test_{name}")
    png, html = base.with_name(base.name + ".png"), base.with_name(base.name + ".html")
    try:
        assert png.read_bytes().startswith(b"\x89PNG")
        assert "the page at the failure" in html.read_text()
        # the passing test left nothing
        assert not list(ARTIFACTS.glob(f"*test_{name}_passes*"))
    finally:
        for p in ARTIFACTS.glob(f"*test_{name}*"):
            p.unlink()
