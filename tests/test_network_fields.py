"""The network's fields of view (data/instruments.yaml): the TAROT imagers are 1.9 deg squares, every field of
view passes the portal's own loader check, and each instrument that has one can take part in network plans
(its telescope has a fixed site). The plans themselves are tested upstream (upstream/tests/test_gw_plan.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from conftest import CODE_ROOT

DATA = CODE_ROOT / "data"
UPSTREAM = CODE_ROOT / "upstream"


def entries(name: str, key: str) -> list[dict]:
    return yaml.safe_load((DATA / name).read_text())[key]


def dry_run(*files) -> dict:
    res = subprocess.run([sys.executable, "-m", "astroportal", "load_data", "--dry-run", "--json", *map(str, files)],
                         cwd=UPSTREAM, capture_output=True, text=True, timeout=120)
    return json.loads(res.stdout)


def test_the_tarot_imagers_have_their_field_of_view_and_a_site():
    instruments = {i["name"]: i for i in entries("instruments.yaml", "instrument")}
    telescopes = {t["=id"]: t for t in entries("telescopes.yaml", "telescope")}
    for name in ("TAROT/TCA", "TAROT/TCH", "TAROT/TRE"):
        assert instruments[name]["field_of_view"] == {"shape": "square", "side_deg": 1.9}
    with_fov = [i for i in instruments.values() if i.get("field_of_view")]
    assert with_fov
    for i in with_fov:
        tel = telescopes[i["telescope_id"][1:]]
        assert tel["fixed_location"] and tel["lat"] is not None and tel["lon"] is not None, i["name"]


def test_the_portal_loader_accepts_the_fields_of_view_and_names_a_bad_one(tmp_path):
    ok = dry_run(DATA / "telescopes.yaml", DATA / "instruments.yaml")
    assert ok["problems"] == [], ok
    bad = tmp_path / "instruments.yaml"
    bad.write_text((DATA / "instruments.yaml").read_text().replace(
        "field_of_view: {shape: square, side_deg: 1.9}", "field_of_view: {shape: hexagon, side_deg: 1.9}", 1))
    answer = dry_run(DATA / "telescopes.yaml", bad)
    assert len(answer["problems"]) == 1
    assert "field_of_view.shape" in json.dumps(answer["problems"][0]) and "TAROT/TRE" in json.dumps(answer)
