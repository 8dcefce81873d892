"""The data files are checked by the portal's own loader (`python -m astroportal load_data --dry-run --json`)
before anything is loaded or started; the launcher reports every problem clearly, naming file, line, entry and
field. The rules themselves are the portal's and are tested in upstream/tests/test_loader.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CODE_ROOT, Instance, free_port, launcher, link_real_layers

GOOD_TELESCOPES = """\
telescope:
  - name: Observatoire de Haute-Provence T120
    nickname: OHP/T120
    lat: 43.932348
    lon: 5.713301
    elevation: 650.0
    diameter: 1.2
    =id: OHP/T120
"""
GOOD_INSTRUMENTS = """\
instrument:
  - name: T120 camera
    type: imager
    telescope_id: =OHP/T120
    filters: [sdssg, sdssr, ps1::open]
"""


def one_telescope(lat: float = 1.0) -> str:
    return f"telescope:\n  - name: T\n    nickname: T\n    lat: {lat}\n    lon: 2\n    elevation: 3\n    diameter: 1\n"


@pytest.fixture
def project(tmp_path) -> Path:
    """A project root with the real layers and its own data/ (nothing running)."""
    root = tmp_path / "project"
    data = tmp_path / "data"
    data.mkdir()
    link_real_layers(root, data)
    # A free port: "the portal is not running" must not depend on what else runs on this machine.
    (root / "config.yaml").write_text(f"server:\n  port: {free_port()}\n")
    return root


def test_load_data_reports_every_problem_before_asking_the_portal(project):
    data = (project / "data").resolve()
    (data / "telescopes.yaml").write_text(one_telescope(lat=123))
    (data / "instruments.yaml").write_text(GOOD_INSTRUMENTS.replace("sdssg", "sdss-g"))
    res = launcher(project, "load_data")
    assert res.returncode == 2, res.stderr
    assert "the data files have 3 problem(s); nothing was loaded" in res.stderr
    assert f'{data / "telescopes.yaml"}:2: entry 1 (telescope "T"): `lat` must be between -90 and 90 degrees, ' \
           "got 123" in res.stderr
    assert f'{data / "instruments.yaml"}:2: entry 1 (instrument "T120 camera"): reference "=OHP/T120" is not ' \
           "defined" in res.stderr
    assert "`filters`: unknown filter(s) 'sdss-g'" in res.stderr
    # Good files get past the check, to the next condition: the portal must be running.
    (data / "telescopes.yaml").write_text(GOOD_TELESCOPES)
    (data / "instruments.yaml").write_text(GOOD_INSTRUMENTS)
    res = launcher(project, "load_data")
    assert res.returncode == 1 and "the portal is not running" in res.stderr, res.stderr
    res = launcher(project, "load_data", "--dry-run")
    assert res.returncode == 0 and "2 file(s) checked, no problem found" in res.stderr, res.stderr


def test_the_distributions_own_data_passes(tmp_path):
    root = tmp_path / "project"
    link_real_layers(root, CODE_ROOT / "data")
    res = launcher(root, "load_data", "--dry-run")
    assert res.returncode == 0 and "no problem found" in res.stderr, res.stderr


def test_a_yaml_error_names_the_file_and_line(project):
    bad = (project / "data").resolve() / "bad.yaml"
    bad.write_text("telescope:\n  - name: Broken\n    lat: [1,\n")
    res = launcher(project, "load_data", "--dry-run")
    assert res.returncode == 2 and f"{bad}:" in res.stderr and "invalid YAML" in res.stderr


def test_run_init_refuses_bad_data_before_starting_anything():
    inst = Instance()
    try:
        (inst.data / "instruments.yaml").write_text(GOOD_INSTRUMENTS.replace("sdssg", "sdss-g"))
        (inst.data / "telescopes.yaml").write_text(GOOD_TELESCOPES)
        res = inst.run("run", "--init", timeout=120)
        assert res.returncode == 2, res.stderr
        assert "the data files have 1 problem(s)" in res.stderr
        where = inst.data.resolve() / "instruments.yaml"
        assert f'{where}:2: entry 1 (instrument "T120 camera"): `filters`: unknown ' \
               "filter(s) 'sdss-g'" in res.stderr
        # Neither the database nor the portal was started.
        assert not (inst.var / "pgdata").exists()
        assert inst.run("status").returncode == 3
    finally:
        inst.cleanup()


def test_the_launcher_never_imports_the_portal_nor_repeats_its_loader_rules():
    for path in (CODE_ROOT / "launcher").glob("*.py"):
        text = path.read_text()
        assert "import astroportal" not in text and "from astroportal" not in text, path.name
        # The loader's vocabulary (ranges, bandpasses, `=id` references) is the portal's alone.
        assert "=id" not in text and "ELEVATION_RANGE" not in text, path.name
