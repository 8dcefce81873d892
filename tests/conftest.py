"""The distribution's test fixtures: throwaway project roots, the launcher as a process, a running instance.

Tests never touch the developer's patched/ or var/: every instance lives under a temporary project root
(PORTAL_ROOT) whose upstream/, extensions/ and services/ are either synthetic or links to the real ones.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

CODE_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# A failed browser test leaves <test>.png (a screenshot) and <test>.html (the page's source) here (git-ignored).
ARTIFACTS = CODE_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
_CALL_FAILED = pytest.StashKey[bool]()


def migration_heads(root: Path = CODE_ROOT) -> tuple[str, str]:
    """(upstream's head revision, the distribution branch's head), read from the migration files: each new
    revision moves them, so tests that add one of their own chain it on these."""
    import re as _re

    def head(folder: Path) -> str:
        revisions, parents = set(), set()
        for path in folder.glob("*.py"):
            text = path.read_text()
            revisions |= set(_re.findall(r"""^revision = ["'](\w+)["']""", text, _re.M))
            parents |= set(_re.findall(r"""^down_revision = ["'](\w+)["']""", text, _re.M))
        (tip,) = revisions - parents
        return tip

    return head(root / "upstream/alembic/versions"), head(root / "extensions/alembic/versions_distribution")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the developer's PORTAL_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(extra)
    return env


def launcher(root: Path, *args: str, env: dict | None = None, input: str | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `./run.sh ARGS` for the project at `root` (through the launcher package, as run.sh does)."""
    return subprocess.run(
        [PYTHON, str(CODE_ROOT / "launcher"), *args],
        cwd=root,
        env=clean_env(PORTAL_ROOT=str(root), **(env or {})),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def private_tmpdir(prefix: str) -> Path:
    """A directory the `postgres` system user can traverse (pytest's own tmp dirs are 0700)."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(d, 0o711)
    return d


class Tree:
    """A synthetic project root: write files into its layers and build it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for d in ("upstream", "extensions", "services", "data"):
            (root / d).mkdir(parents=True, exist_ok=True)

    def write(self, rel: str, text: str = "") -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return launcher(self.root, *args, **kw)

    def build(self, *args: str, **kw) -> subprocess.CompletedProcess:
        res = self.run("build", *args, **kw)
        assert res.returncode == 0, res.stderr
        return res

    @property
    def patched(self) -> Path:
        return self.root / "patched"

    def files(self) -> set[str]:
        """Every file of patched/ but the build's own state."""
        out = set()
        for dirpath, _, names in os.walk(self.patched):
            for n in names:
                rel = os.path.relpath(os.path.join(dirpath, n), self.patched)
                if rel not in (".build-state.json", ".build-targets.json"):
                    out.add(rel)
        return out


@pytest.fixture
def tree(tmp_path) -> Tree:
    """A small synthetic upstream with nothing in extensions/ or services/ yet."""
    t = Tree(tmp_path / "project")
    # Free ports, not the real defaults (5000, 5433): a portal running on this machine must not matter.
    t.port, t.db_port = free_port(), free_port()
    t.write("upstream/config.defaults.yaml",
            f"server:\n  host: 127.0.0.1\n  port: {t.port}\ndatabase:\n  url: postgresql://x@127.0.0.1/x\n")
    t.write("upstream/UPSTREAM.yaml", "name: astroportal\nversion: 1.0.0\n")
    t.write("upstream/pkg/__init__.py", "VERSION = 1\n")
    t.write("upstream/pkg/core.py", "def answer():\n    return 42\n")
    t.write("upstream/pkg/templates/base.html", "<html>\n<title>Portal</title>\n</html>\n")
    t.write("upstream/pkg/static/old.js", "console.log('old')\n")
    t.write("upstream/pkg/static/vendor/a.js", "a\n")
    t.write("upstream/pkg/static/vendor/b.js", "b\n")
    t.write("upstream/services/app/supervisor.conf", "[program:app]\ncommand={python} -m pkg\n")
    t.write("config.defaults.yaml", f"database:\n  embedded:\n    port: {t.db_port}\n")
    return t


def link_real_layers(root: Path, data: Path | None = None) -> None:
    """A project root whose layers are the real upstream/, extensions/, services/ and defaults.

    Its config.yaml gives the portal and the embedded database free ports, never the defaults (5000,
    5433): whatever else runs on this machine, the root's commands only ever see their own instance.
    """
    root.mkdir(parents=True, exist_ok=True)
    for name in ("upstream", "extensions", "services", "config.defaults.yaml"):
        if (CODE_ROOT / name).exists():
            os.symlink(CODE_ROOT / name, root / name)
    if data is None:
        (root / "data").mkdir()
    else:
        os.symlink(data, root / "data")
    (root / "config.yaml").write_text(yaml.safe_dump(
        {"server": {"port": free_port()}, "database": {"embedded": {"port": free_port()}}}))


@pytest.fixture(scope="session")
def real_build(tmp_path_factory) -> Path:
    """The real tree (upstream + extensions + services) built into a temporary project root; returns patched/."""
    root = tmp_path_factory.mktemp("real") / "project"
    link_real_layers(root)
    res = launcher(root, "build")
    assert res.returncode == 0, res.stderr
    return root / "patched"


class Instance:
    """A project root with the real layers, its own var/, a free app port and a free database port."""

    def __init__(self) -> None:
        self.base = private_tmpdir("portal-instance-")
        self.root = self.base / "project"
        self.data = self.base / "data"
        self.data.mkdir()
        link_real_layers(self.root, self.data)
        self.port = free_port()
        self.db_port = free_port()
        config = {
            "server": {"port": self.port},
            "database": {"embedded": {"port": self.db_port,
                                      "settings": {"fsync": False, "synchronous_commit": False,
                                                   "full_page_writes": False}}},
        }
        (self.root / "config.yaml").write_text(yaml.safe_dump(config))
        self.var = self.root / "var"
        self.url = f"http://127.0.0.1:{self.port}"

    def run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return launcher(self.root, *args, **kw)

    def ensure_running(self) -> None:
        if self.run("status").returncode != 0:
            res = self.run("run", "--init")
            assert res.returncode == 0, res.stderr
            self.last_run = res

    last_run: subprocess.CompletedProcess | None = None

    def cleanup(self) -> None:
        self.run("stop")
        # pgdata belongs to the postgres user; root can remove it all the same.
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def instance():
    inst = Instance()
    yield inst
    inst.cleanup()


@pytest.fixture
def running(instance) -> Instance:
    """The session's instance, started (run --init) if it is not running."""
    instance.ensure_running()
    return instance


def wait_until(predicate, timeout: float = 20, step: float = 0.2) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


class PatchedPortal:
    """The real tree built under a temporary project root and served from patched/ on a test database.

    For the extensions' tests: `url`, `root`, `patched`, `config` (patched/config.yaml), `var`,
    `admin_token`, and `run(*launcher args)` for launcher commands on this instance.
    """

    def __init__(self) -> None:
        sys.path.insert(0, str(CODE_ROOT / "upstream" / "tests"))
        from pgcluster import PgCluster  # upstream's throwaway cluster helper

        self.base = private_tmpdir("portal-patched-")
        self.root = self.base / "project"
        link_real_layers(self.root)
        self.pg = PgCluster().start()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.root / "config.yaml").write_text(yaml.safe_dump({
            "server": {"port": self.port},
            "database": {"url": self.pg.create_database("patched_test")},
        }))
        res = self.run("migrate")
        assert res.returncode == 0, res.stderr
        self.patched = self.root / "patched"
        self.config = self.patched / "config.yaml"
        self.var = self.root / "var"
        self.log = open(self.base / "serve.log", "w")
        self.proc = subprocess.Popen([PYTHON, "-m", "astroportal", "serve", "--config", str(self.config)],
                                     cwd=self.patched, stdout=self.log, stderr=subprocess.STDOUT)
        import requests

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError("the patched portal exited: " + (self.base / "serve.log").read_text())
            try:
                return requests.get(self.url + "/api/sysinfo", timeout=1).ok
            except requests.ConnectionError:
                return False

        if not wait_until(answers, 60):
            raise RuntimeError("the patched portal did not answer within 60 s")
        self.admin_token = (self.var / "admin_token").read_text().strip()

    def run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return launcher(self.root, *args, **kw)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        self.pg.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def patched_portal():
    """A portal served from the patched build of the real tree (see PatchedPortal)."""
    portal = PatchedPortal()
    yield portal
    portal.stop()


# -- markers: `e2e` and `fast` (registered in pytest.ini) ----------------------------------------------------
# A test that uses one of these fixtures starts a launcher instance, a patched portal or a browser; a test
# that makes an Instance() itself says so with @pytest.mark.e2e (or a module's pytestmark).
E2E_FIXTURES = frozenset({"instance", "running", "patched_portal", "browser"})


def pytest_collection_modifyitems(config, items):
    """Mark each test `e2e` or `fast`: `./run.sh test --fast` (pytest -m "not e2e") is the quick loop."""
    for item in items:
        if item.get_closest_marker("e2e") is None and E2E_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.fast)
        else:
            item.add_marker(pytest.mark.e2e)


# -- browser tests ------------------------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember whether the test itself failed, for browser_artifacts (which runs at teardown)."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Debian chromium driven by selenium; a failed test saves the page (see browser_artifacts)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: install Debian's chromium and chromium-driver packages")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 f"--user-data-dir={profile}", "--window-size=1280,900", "--disable-extensions"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def artifact_name(nodeid: str) -> str:
    """A file name for a test: its module and name, e.g. test_iam_login.py__test_browser_login."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.rsplit("/", 1)[-1].replace("::", "__"))


@pytest.fixture(autouse=True)
def browser_artifacts(request):
    """After a failed test that used `browser`: test-artifacts/<test>.png and .html of the page it showed."""
    yield
    driver = request.node.funcargs.get("browser") if hasattr(request.node, "funcargs") else None
    if driver is None or not request.node.stash.get(_CALL_FAILED, False):
        return
    ARTIFACTS.mkdir(exist_ok=True)
    base = ARTIFACTS / artifact_name(request.node.nodeid)
    try:
        driver.save_screenshot(str(base.with_name(base.name + ".png")))
        base.with_name(base.name + ".html").write_text(
            f"<!-- {driver.current_url} -->\n" + driver.page_source, encoding="utf-8")
    except Exception as exc:  # noqa: BLE001 - a dead browser must not hide the test's own failure
        base.with_name(base.name + ".txt").write_text(f"could not capture the page: {exc}\n")
