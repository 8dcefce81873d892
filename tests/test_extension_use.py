"""The distribution extends upstream only through the points upstream's catalogue declares
(upstream/astroportal/extension_points.py), and its overlay adds files without replacing any of upstream's."""

from __future__ import annotations

import json
import re
import subprocess

import yaml

from conftest import CODE_ROOT, PYTHON, clean_env, launcher

UPSTREAM = CODE_ROOT / "upstream"
EXTENSIONS = CODE_ROOT / "extensions"


def catalogue() -> dict:
    """Upstream's catalogue, from its `extension_points` command (the distribution does not import the portal)."""
    result = subprocess.run([PYTHON, "-m", "astroportal", "extension_points"], cwd=UPSTREAM, env=clean_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def dotted_keys(node: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        out.append(path)
        if isinstance(value, dict):
            out.extend(dotted_keys(value, path + "."))
    return out


def backend_names(paths: list[str]) -> set[str]:
    """The `name` of each configured backend class that the overlay adds (read from its source)."""
    names = set()
    for path in paths:
        module, _, cls = path.rpartition(".")
        source = EXTENSIONS / (module.replace(".", "/") + ".py")
        match = re.search(rf"class {cls}\b.*?\n\s+name = \"([\w-]+)\"", source.read_text(), re.S)
        assert match, f"{path}: no backend class with a `name` in {source}"
        names.add(match.group(1))
    return names


def test_the_distributions_configuration_uses_only_catalogued_points():
    points = {p["name"] for p in catalogue()["points"]}
    defaults = yaml.safe_load((CODE_ROOT / "config.defaults.yaml").read_text())
    backends = backend_names(defaults["server"]["auth"]["backends"])
    used, unknown = [], []
    for key in dotted_keys(defaults):
        catalogued_namespaces = ("app.", "server.auth.", "database.migration_locations")
        if key in ("app", "server.auth") or not key.startswith(catalogued_namespaces):
            continue
        parts = key.split(".")
        if any(".".join(parts[:i]) in points for i in range(1, len(parts))):
            continue  # inside a point's own mapping (app.role_grants.<role>, app.page_blocks.<place>)
        if key in points:
            used.append(key)
        elif key.startswith("server.auth.") and parts[2] in backends:
            used.append("server.auth.<backend name>")
        else:
            unknown.append(key)
    assert unknown == [], f"the distribution sets keys that are no extension point of upstream: {unknown}"
    # What the IAM login and the branding rely on (a test that cannot pass vacuously).
    assert {"app.title", "app.logo", "server.auth.backends", "server.auth.pipeline_extra",
            "server.auth.<backend name>", "database.migration_locations"} <= set(used)


def test_the_overlay_only_adds_files():
    result = launcher(CODE_ROOT, "diff")
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"0 overridden, \d+ added, 0 deleted", summary), result.stdout
    provenance = yaml.safe_load((EXTENSIONS / "PROVENANCE.yaml").read_text())
    assert not provenance["overrides"] and not provenance["deletions"]
