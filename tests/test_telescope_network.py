"""The GRANDMA network (data/telescopes.yaml, data/instruments.yaml) loaded into a patched instance.

`./run.sh run --init` loads data/; `./run.sh load_data` again changes nothing; an edited entry updates its
row; files that fail validation load nothing at all.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import requests
import yaml

from conftest import CODE_ROOT, Instance

DATA = CODE_ROOT / "data"


def shared_source() -> Path | None:
    """The network's source files in `shared/` beside the project root (`../shared`, where CI lays it), or
    beside a folder above it (a developer's git worktree sits deeper); None when there is none."""
    for folder in Path(__file__).resolve().parents[1:]:
        candidate = folder.parent / "shared" / "data" / "telescope-network"
        if (candidate / "telescopes.yaml").is_file():
            return candidate
    return None


SOURCE = shared_source()
TIMEOUT = 30


def entries(name: str, key: str) -> list[dict]:
    return yaml.safe_load((DATA / name).read_text())[key]


@pytest.fixture(scope="module")
def network():  # its tests are marked e2e below
    """(instance, admin token): a patched instance started with `run --init` on a copy of data/."""
    inst = Instance()
    for f in DATA.glob("*.yaml"):
        shutil.copy(f, inst.data / f.name)
    try:
        res = inst.run("run", "--init")
        assert res.returncode == 0, res.stderr
        token = inst.run("token").stdout.strip()
        yield inst, token
    finally:
        inst.cleanup()


def api(inst: Instance, token: str, path: str, **params):
    r = requests.get(f"{inst.url}/api/{path}", params=params, headers={"Authorization": f"token {token}"},
                     timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def summary(res) -> str:
    lines = [l for l in res.stdout.splitlines() if l.startswith("load_data: ")]
    assert lines, res.stdout + res.stderr
    return lines[-1]


@pytest.mark.e2e
def test_run_init_loaded_every_telescope_and_instrument_with_the_source_values(network):
    inst, token = network
    telescopes = {t["name"]: t for t in api(inst, token, "telescope")}
    wanted = entries("telescopes.yaml", "telescope")
    assert set(telescopes) == {t["name"] for t in wanted}
    for t in wanted:
        row = telescopes[t["name"]]
        for field in ("nickname", "lat", "lon", "elevation", "diameter", "robotic", "fixed_location",
                      "skycam_link", "weather_link"):
            assert row[field] == t[field], (t["name"], field)

    instruments = {i["name"]: i for i in api(inst, token, "instrument")}
    by_id = {t["=id"]: t["name"] for t in wanted}
    for i in entries("instruments.yaml", "instrument"):
        row = instruments[i["name"]]
        assert row["type"] == i["type"]
        assert sorted(row["filters"]) == sorted(i["filters"])
        assert row["field_of_view"] == i.get("field_of_view")
        assert row["telescope"]["name"] == by_id[i["telescope_id"][1:]]
    assert len(instruments) == len(entries("instruments.yaml", "instrument"))
    # A telescope whose name holds a "/" (a reference path) kept its instruments.
    assert instruments["CFHT/WIRCAM"]["telescope"]["name"] == "Canada-France-Hawaii Telescope"


def test_the_yaml_keeps_the_source_facts():
    """data/ holds the network's values as given; the only changes are those data/README.md lists."""
    if SOURCE is None:
        if os.environ.get("CI"):
            pytest.fail("CI lays ../shared beside the clone, but ../shared/data/telescope-network is missing")
        pytest.skip("no shared/data/telescope-network beside the project root or a folder above it")
    source = {t["=id"]: t for t in yaml.safe_load((SOURCE / "telescopes.yaml").read_text())}
    for t in entries("telescopes.yaml", "telescope"):
        assert t == source[t["=id"]]
    source_i = {i["=id"]: i for i in yaml.safe_load((SOURCE / "instruments.yaml").read_text())}
    for i in entries("instruments.yaml", "instrument"):
        s = source_i[i["=id"]]
        assert i["filters"] == list(dict.fromkeys(s["filters"]))
        assert i["band"] == s["band"].lower()
        # field_of_view is the distribution's addition (data/README.md); the source has none
        assert {k: v for k, v in i.items() if k not in ("filters", "band", "field_of_view")} == \
            {k: v for k, v in s.items() if k not in ("filters", "band")}


@pytest.mark.e2e
def test_loading_again_changes_nothing(network):
    inst, token = network
    before = api(inst, token, "telescope")
    res = inst.run("load_data")
    assert res.returncode == 0, res.stderr
    total = len(entries("telescopes.yaml", "telescope")) + len(entries("instruments.yaml", "instrument"))
    assert summary(res) == f"load_data: {total} of {total} entries loaded: 0 created, 0 updated, {total} unchanged"
    assert api(inst, token, "telescope") == before


@pytest.mark.e2e
def test_an_edited_entry_updates_its_row(network):
    inst, token = network
    path = inst.data / "telescopes.yaml"
    original = path.read_text()
    zadko = next(t for t in api(inst, token, "telescope", name="Zadko"))
    assert zadko["elevation"] == 50.0
    old = "    lon: 115.7131\n    elevation: 50.0\n"
    assert original.count(old) == 1
    path.write_text(original.replace(old, "    lon: 115.7131\n    elevation: 47.0\n"))
    try:
        res = inst.run("load_data")
        assert res.returncode == 0, res.stderr
        assert 'telescope "Zadko"): updated (elevation)' in res.stdout
        assert summary(res).endswith("0 created, 1 updated, 109 unchanged")
        row = api(inst, token, "telescope", name="Zadko")[0]
        assert row["id"] == zadko["id"] and row["elevation"] == 47.0
    finally:
        path.write_text(original)
    res = inst.run("load_data")
    assert res.returncode == 0, res.stderr
    assert api(inst, token, "telescope", name="Zadko")[0]["elevation"] == 50.0


@pytest.mark.e2e
def test_files_that_fail_validation_load_nothing(network, tmp_path):
    inst, token = network
    telescopes = (DATA / "telescopes.yaml").read_text() + """
  - name: Somewhere Observatory
    nickname: Somewhere
    lat: 10.0
    lon: 20.0
    elevation: 100.0
    diameter: 1.0
    =id: Somewhere

  - name: Nowhere Observatory
    nickname: Nowhere
    lat: 95.0
    lon: 20.0
    elevation: 100.0
    diameter: 1.0
    =id: Nowhere
"""
    instruments = (DATA / "instruments.yaml").read_text() + """
  - name: Somewhere Camera
    type: imager
    telescope_id: =Somewhere
    filters: [sdssr, cousins_r]
"""
    (tmp_path / "telescopes.yaml").write_text(telescopes)
    (tmp_path / "instruments.yaml").write_text(instruments)
    before = (api(inst, token, "telescope"), api(inst, token, "instrument"))
    res = inst.run("load_data", str(tmp_path / "instruments.yaml"), str(tmp_path / "telescopes.yaml"))
    assert res.returncode != 0
    assert "nothing was loaded" in res.stderr
    assert 'telescopes.yaml:' in res.stderr
    assert ('entry 57 (telescope "Nowhere Observatory"): `lat` must be between -90 and 90 degrees, got 95.0'
            in res.stderr)
    assert 'entry 56 (instrument "Somewhere Camera"): `filters`: unknown filter(s) \'cousins_r\'' in res.stderr
    assert "Somewhere" not in res.stdout  # the loader never ran
    assert (api(inst, token, "telescope"), api(inst, token, "instrument")) == before


@pytest.mark.e2e
def test_the_tarot_imagers_plan_an_alert_for_the_network(network):
    """The fields of view of data/ reach the portal's plans: an alert's network plan gives fields to the
    TAROT imagers (the instruments with a field of view), each piece of sky once."""
    inst, token = network
    alert = (CODE_ROOT / "upstream" / "tests" / "data" / "gcn" / "igwn_gwalert_preliminary.json").read_bytes()
    r = requests.post(f"{inst.url}/api/gcn_event", data=alert, timeout=TIMEOUT,
                      headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    plan = api(inst, token, "gcn_event/MS260605l/network_plan", date="2026-06-05", n_fields=5)
    assert {p["instrument"] for p in plan["plans"]} == {"TAROT/TCA", "TAROT/TCH", "TAROT/TRE"}
    given = [(f["ra"], f["dec"]) for p in plan["plans"] for f in p["fields"]]
    assert given and len(given) == len(set(given)) and plan["probability"] > 0.5
    # a request that names no limits gets the network's planning defaults (config.defaults.yaml, gw.plan)
    default = api(inst, token, "gcn_event/MS260605l/network_plan", date="2026-06-05")
    assert (default["n_fields"], default["airmass"]) == (20, 2.5)
