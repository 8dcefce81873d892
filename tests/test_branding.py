"""The patched portal carries the distribution's name and logo, set in config.defaults.yaml (not by editing
upstream's templates), with the logo file added under extensions/."""

from __future__ import annotations

import re

import requests
import yaml

from conftest import CODE_ROOT, launcher

NAME = "GRANDMA Follow-up Portal"
LOGO = "/static/images/grandma-portal-logo.svg"
TIMEOUT = 30


def test_the_name_and_logo_come_from_the_distributions_defaults():
    defaults = yaml.safe_load((CODE_ROOT / "config.defaults.yaml").read_text())
    assert (defaults["app"]["title"], defaults["app"]["logo"]) == (NAME, LOGO)
    assert (CODE_ROOT / "extensions/astroportal" / LOGO.lstrip("/")).is_file()
    # Upstream keeps its own name: the distribution changes it by configuration.
    upstream = yaml.safe_load((CODE_ROOT / "upstream/config.defaults.yaml").read_text())
    assert upstream["app"]["title"] != NAME


def test_pages_show_the_distribution_name_and_logo(running):
    r = requests.get(running.url + "/login", timeout=TIMEOUT)
    assert r.status_code == 200
    assert re.search(r"<title>[^<]*GRANDMA Follow-up Portal</title>", r.text)
    assert f'<a class="brand" href="/"><img src="{LOGO}" alt=""><span>{NAME}</span></a>' in r.text
    assert f'<link rel="icon" href="{LOGO}">' in r.text
    assert f"Log in to {NAME}" in r.text
    assert "Astro Portal" not in r.text


def test_the_logo_is_served_as_svg(running):
    r = requests.get(running.url + LOGO, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("image/svg+xml")
    assert r.text.lstrip().startswith("<svg") and NAME in r.text


def test_the_built_configuration_and_the_overlay(running):
    built = yaml.safe_load((running.root / "patched" / "config.yaml").read_text())
    assert built["app"]["title"] == NAME and built["app"]["logo"] == LOGO
    res = launcher(running.root, "diff")
    assert res.returncode == 0, res.stderr
    for path in ("astroportal/static/images/grandma-portal-logo.svg", "astroportal/static/images/iam-logo.svg",
                 "astroportal/auth/iam.py", "astroportal/auth/group_mapping.py"):
        assert f"added: {path} (from extensions/{path})" in res.stdout, res.stdout
    # Branding and login are additions: no upstream template is overridden for them.
    assert "extensions/astroportal/templates/base.html" not in res.stdout
    assert "extensions/astroportal/templates/login.html" not in res.stdout
