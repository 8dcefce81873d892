"""Production mode's refusals, and the files `./run.sh nginx` and `./run.sh systemd` write."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import launcher, link_real_layers

SECRET = "a-cookie-secret-long-enough-for-production-use-0123456789"


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "project"
    link_real_layers(r)
    return r


def write_config(root: Path, **server) -> None:
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["server"].update(server)
    (root / "config.yaml").write_text(yaml.safe_dump(config))


def test_production_refuses_debug_login_and_missing_cookie_secret(root):
    write_config(root, production=True)
    res = launcher(root, "run")
    assert res.returncode == 2
    assert "server.auth.debug_login" in res.stderr and "server.cookie_secret" in res.stderr
    assert not (root / "var" / "pgdata").exists() and not (root / "patched").exists()  # nothing started


def test_production_refuses_a_secret_in_a_tracked_file(root):
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["server"].update(production=True, cookie_secret=SECRET, auth={"debug_login": False})
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-f", "config.yaml"], check=True)
    res = launcher(root, "run")
    assert res.returncode == 2
    assert "server.cookie_secret in config.yaml" in res.stderr and "tracked file" in res.stderr
    assert "debug_login" not in res.stderr
    # Untracked again: production mode has nothing left to refuse (the check is done before anything starts,
    # so `deploy` gets past it and stops at the next thing: nothing runs here).
    subprocess.run(["git", "-C", str(root), "rm", "-q", "--cached", "config.yaml"], check=True)
    res = launcher(root, "deploy")
    assert res.returncode == 1 and "none runs here" in res.stderr and "production" not in res.stderr


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_nginx_site(root, tmp_path):
    cert, key = self_signed(tmp_path, "portal.example.org")
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["server"].update(url="https://portal.example.org", max_body_mb=120)
    config["nginx"] = {"ssl_certificate": str(cert), "ssl_certificate_key": str(key)}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "site.conf"
    res = launcher(root, "nginx", "--output", str(out))
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    port = config["server"]["port"]
    assert "server_name portal.example.org;" in text and f"server 127.0.0.1:{port};" in text
    assert f"ssl_certificate     {cert};" in text and "client_max_body_size 120m;" in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text.split("location /api/live")[1].split("}")[0]
    assert f"root {root / 'patched' / 'astroportal'};" in text
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        assert "accepts it" in res.stderr
        # A broken certificate path is caught by nginx -t, with nginx's own words.
        config["nginx"]["ssl_certificate"] = str(tmp_path / "missing.pem")
        (root / "config.yaml").write_text(yaml.safe_dump(config))
        bad = launcher(root, "nginx", "--output", str(out))
        assert bad.returncode == 1 and "nginx -t refuses" in bad.stderr and "missing.pem" in bad.stderr
    else:
        assert "not installed" in res.stderr


def test_nginx_needs_a_host_name(root):
    res = launcher(root, "nginx")
    assert res.returncode == 2 and "server.url" in res.stderr


def test_systemd_unit(root):
    res = launcher(root, "systemd", "--user", "portal")
    assert res.returncode == 0, res.stderr
    unit = Path(res.stdout.strip())
    assert unit == root / "var" / "systemd" / "astroportal.service"
    text = unit.read_text()
    assert f"ExecStart={root}/run.sh run" in text and f"ExecStop={root}/run.sh stop" in text
    assert "Type=oneshot" in text and "RemainAfterExit=yes" in text and "User=portal" in text
    assert "WantedBy=multi-user.target" in text
    rotate = (unit.parent / "astroportal.logrotate").read_text()
    assert str(root / "var" / "log" / "postgresql.log") in rotate and "copytruncate" in rotate


