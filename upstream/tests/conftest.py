"""The test session's real parts: a PostgreSQL cluster, a migrated database and a running portal process."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pgcluster import PgCluster, free_port  # noqa: E402

UPSTREAM = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pg():
    cluster = PgCluster().start()
    yield cluster
    cluster.stop()


def write_config(path: Path, db_url: str, port: int, **extra) -> Path:
    data = {
        "database": {"url": db_url},
        "server": {"port": port, "host": "127.0.0.1"},
        "paths": {"var": str(path.parent / "var")},
    }
    for dotted, value in extra.items():
        node = data
        parts = dotted.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    path.write_text(yaml.safe_dump(data))
    return path


def portal(*args: str, config: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run `python -m astroportal ARGS --config FILE` in upstream/."""
    return subprocess.run(
        [sys.executable, "-m", "astroportal", *args, "--config", str(config)],
        cwd=UPSTREAM,
        capture_output=True,
        text=True,
        check=check,
    )


@pytest.fixture(scope="session")
def config_path(pg, tmp_path_factory) -> Path:
    """A configuration for a fresh, migrated database."""
    root = tmp_path_factory.mktemp("portal")
    path = write_config(root / "config.yaml", pg.create_database("portal_test"), free_port())
    portal("migrate", config=path)
    return path


@pytest.fixture(scope="session")
def cfg(config_path):
    from astroportal import config as portal_config

    return portal_config.load(config_path)


class Server:
    """A `python -m astroportal serve` process on loopback."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.port = yaml.safe_load(config.read_text())["server"]["port"]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(config.parent / "server.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "astroportal", "serve", "--config", str(config)],
            cwd=UPSTREAM,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"portal exited: {(config.parent / 'server.log').read_text()}")
            try:
                if requests.get(self.url + "/api/sysinfo", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()  # a portal that did not come up is not left running
        raise RuntimeError("portal did not answer within 30 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def server(config_path):
    srv = Server(config_path)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def admin_token(server, cfg) -> str:
    from astroportal.bootstrap import token_file

    return token_file(cfg).read_text().strip()


class Api:
    """requests against the running portal: `api.post("/api/sources", token, json=...)` -> (status, body)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def request(self, method: str, path: str, token: str | None = None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"token {token}"
        r = self.http.request(method, self.base + path, headers=headers, timeout=60, **kwargs)
        try:
            body = r.json()
        except ValueError:
            body = r.text
        return r.status_code, body

    def get(self, path, token=None, **kw):
        return self.request("GET", path, token, **kw)

    def post(self, path, token=None, **kw):
        return self.request("POST", path, token, **kw)

    def put(self, path, token=None, **kw):
        return self.request("PUT", path, token, **kw)

    def patch(self, path, token=None, **kw):
        return self.request("PATCH", path, token, **kw)

    def delete(self, path, token=None, **kw):
        return self.request("DELETE", path, token, **kw)


@pytest.fixture(scope="session")
def api(server) -> Api:
    return Api(server.url)


@pytest.fixture(scope="session")
def db(cfg):
    """A session factory on the test database, for set-up and for checking what a request wrote."""
    from astroportal.db import make_sessionmaker

    return make_sessionmaker(cfg)


@pytest.fixture(scope="session")
def make_user(db, server):
    """make_user(role, username=None) -> (user_id, token): a user with one role, their groups and an API token."""
    from astroportal.domain.accounts import create_token, create_user

    def make(role: str | None = "Full user", username: str | None = None) -> tuple[int, str]:
        with db() as session:
            user = create_user(session, username or f"user-{uuid.uuid4().hex[:8]}", [role] if role else [])
            _, token = create_token(session, user, "test")
            session.commit()
            return user.id, token

    return make


@pytest.fixture(scope="session")
def role_tokens(make_user) -> dict[str, str]:
    """One user per role, sharing no group but the sitewide one: {role: token}."""
    return {role: make_user(role)[1] for role in ("Super admin", "Group admin", "Full user", "View only")}


def unique(prefix: str = "ZTF") -> str:
    """A fresh object id such as ZTF26abcdefg."""
    return prefix + "26" + uuid.uuid4().hex[:7]


# -- markers: `e2e` (a real browser) and `fast` (the rest), registered in pytest.ini ---------------------
E2E_FIXTURES = frozenset({"driver", "browser"})


def pytest_collection_modifyitems(config, items):
    """Mark each test `e2e` when it drives a browser, `fast` otherwise (`pytest -m "not e2e"`: the quick loop)."""
    for item in items:
        if item.get_closest_marker("e2e") is None and E2E_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.fast)
        else:
            item.add_marker(pytest.mark.e2e)
