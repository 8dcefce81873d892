"""`./run.sh test`: the quick loop (--fast) leaves out the end-to-end tests, which the conftests mark."""

from __future__ import annotations

import subprocess
import sys

from conftest import CODE_ROOT, clean_env, launcher


def collected(cwd, *args: str) -> set[str]:
    res = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *args], cwd=cwd,
                         capture_output=True, text=True, env=clean_env(), timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return {line.split("::")[0] + "::" + line.split("::")[1].split("[")[0] for line in res.stdout.splitlines()
            if "::" in line}


def test_instances_and_browsers_are_marked_e2e_and_the_rest_fast():
    e2e = collected(CODE_ROOT, "tests", "-m", "e2e")
    fast = collected(CODE_ROOT, "tests", "-m", "fast")
    assert not e2e & fast
    assert "tests/test_services.py::test_an_enabled_service_runs_and_a_disabled_one_is_left_out" in e2e  # by hand
    assert "tests/test_run.py::test_run_init_answers_and_prints_the_url" in e2e  # uses `running`
    assert "tests/test_overlay.py::test_patched_build_serves" in e2e  # uses `patched_portal`
    assert "tests/test_overlay.py::test_override_add_delete_and_summary" in fast
    assert "tests/test_suite.py::test_instances_and_browsers_are_marked_e2e_and_the_rest_fast" in fast
    upstream_e2e = collected(CODE_ROOT / "upstream", "tests", "-m", "e2e")
    # Upstream's end-to-end tests are its browser tests (test_browser.py, test_live_browser.py, ...).
    assert upstream_e2e and all(t.split("::")[0].endswith("browser.py") for t in upstream_e2e)


def test_fast_runs_the_quick_loop():
    res = launcher(CODE_ROOT, "test", "--fast", "--suite", "distribution", "--",
                   "-k", "test_boundaries or test_an_enabled_service", "-q", timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pytest tests -m 'not e2e' -k" in res.stdout
    # test_boundaries.py's four tests ran; the service test (e2e) was left out
    assert "distribution suite: 4 passed, 0 failed, 0 skipped" in res.stdout
