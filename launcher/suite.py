"""`./run.sh test`: the upstream portal's own suite and the distribution's, one summary line at the end."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from .paths import CODE_ROOT

SUITES = {
    # name: (working directory, pytest arguments)
    "upstream": (CODE_ROOT / "upstream", ["tests"]),
    "distribution": (CODE_ROOT, ["tests"]),
}


def _counts(junit: Path) -> dict[str, int] | None:
    try:
        root = ET.parse(junit).getroot()
    except (FileNotFoundError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in suites:
        for k in total:
            total[k] += int(s.get(k, 0))
    failed = total["failures"] + total["errors"]
    return {"passed": total["tests"] - failed - total["skipped"], "failed": failed, "skipped": total["skipped"]}


def line(c: dict[str, int]) -> str:
    return f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"


def run(names: list[str], extra: list[str], fast: bool = False) -> int:
    """Run the suites in order; print one line per suite and the total; non-zero if anything failed.

    `fast`: only the tests not marked `e2e` (each suite's conftest marks those that start an instance, a
    supervisord or a browser); arguments in `extra` come after, so a `-m` there wins.
    """
    if fast:
        extra = ["-m", "not e2e", *extra]
    artifacts = CODE_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    # The suites set up their own instances; a developer's PORTAL_* settings must not leak into them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    results = {}
    for name in names:
        cwd, args = SUITES[name]
        junit = artifacts / f"junit-{name}.xml"
        junit.unlink(missing_ok=True)
        shown = " ".join(shlex.quote(a) for a in args + extra)
        print(f"==> {name} suite: (cd {os.path.relpath(cwd, CODE_ROOT)} && pytest {shown})", flush=True)
        rc = subprocess.call([sys.executable, "-m", "pytest", *args, f"--junitxml={junit}", *extra], cwd=cwd, env=env)
        counts = _counts(junit)
        if counts is None:
            counts = {"passed": 0, "failed": 1, "skipped": 0}
            print(f"{name}: pytest ended with exit status {rc} before reporting results", flush=True)
        elif rc not in (0, 5) and counts["failed"] == 0:
            counts["failed"] = 1  # e.g. an error in a fixture's teardown or an interrupted run
        results[name] = counts
    total = {k: sum(c[k] for c in results.values()) for k in ("passed", "failed", "skipped")}
    print()
    for name, c in results.items():
        print(f"{name} suite: {line(c)}")
    print(f"total: {line(total)}", flush=True)
    if total["passed"] + total["failed"] == 0:
        print("no test ran", file=sys.stderr)
        return 1
    return 1 if total["failed"] else 0
