"""launcher/datacheck.py: the data files are checked before anything is loaded, with errors naming the file
(and line), the entry and the field. No database here: the check runs before the portal is asked anything."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import CODE_ROOT, Instance, launcher, link_real_layers

sys.path.insert(0, str(CODE_ROOT))

from launcher import datacheck  # noqa: E402
from launcher.paths import Project  # noqa: E402

DATA = CODE_ROOT / "data"
VOCABULARY = datacheck.Vocabulary(
    frozenset({"sdssg", "sdssr", "sdssi", "bessellv", "ps1::open", "ztfg", "ztfr"}),
    ("imager", "spectrograph", "imaging spectrograph"),
)

GOOD_TELESCOPES = """\
telescope:
  - name: Observatoire de Haute-Provence T120
    nickname: OHP/T120
    lat: 43.932348
    lon: 5.713301
    elevation: 650.0
    diameter: 1.2
    robotic: true
    fixed_location: true
    skycam_link: null
    weather_link: https://example.org/weather
    =id: OHP/T120
"""
GOOD_INSTRUMENTS = """\
instrument:
  - name: T120 camera
    type: imager
    band: optical
    telescope_id: =OHP/T120
    filters: [sdssg, sdssr, ps1::open]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(*files: Path) -> list[str]:
    return datacheck.validate(list(files), VOCABULARY)[1]


def one_telescope(**fields) -> str:
    entry = {"name": "T", "nickname": "T", "lat": 1.0, "lon": 2.0, "elevation": 3.0, "diameter": 1.0, "=id": "T"}
    entry.update(fields)
    lines = [f"    {k}: {v}" for k, v in entry.items() if v is not None]
    return "telescope:\n  -" + "\n".join(lines)[3:] + "\n"


def test_the_distribution_data_passes_with_the_portals_own_filter_list(tmp_path):
    # A root with no build: the list comes from upstream's code (never from a developer's patched/).
    link_real_layers(tmp_path / "root")
    cfg = SimpleNamespace(project=Project(tmp_path / "root"))
    vocabulary = datacheck.portal_vocabulary(cfg)
    assert "ps1::open" in vocabulary.filters and "imaging spectrograph" in vocabulary.instrument_types
    files = [DATA / "instruments.yaml", DATA / "telescopes.yaml"]
    ordered, found = datacheck.validate(files, vocabulary)
    assert found == []
    # Instruments refer to telescopes: telescopes go first whatever the order given.
    assert ordered == [DATA / "telescopes.yaml", DATA / "instruments.yaml"]


def test_good_files_pass_and_keep_an_order_that_already_works(tmp_path):
    t = write(tmp_path, "a_telescopes.yaml", GOOD_TELESCOPES)
    i = write(tmp_path, "b_instruments.yaml", GOOD_INSTRUMENTS)
    assert datacheck.validate([t, i], VOCABULARY) == ([t, i], [])


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"lat": 90.5}, "lat: 90.5 is outside [-90, 90] degrees"),
        ({"lat": -91}, "lat: -91 is outside [-90, 90] degrees"),
        ({"lon": 180.01}, "lon: 180.01 is outside [-180, 180] degrees"),
        ({"lon": "east"}, "lon: must be a number, got 'east'"),
        ({"elevation": 9000}, "elevation: 9000 is outside [-500, 6000] m"),
        ({"elevation": -1000}, "elevation: -1000 is outside [-500, 6000] m"),
        ({"diameter": 0}, "diameter: 0 is outside (0, 50] m"),
        ({"diameter": 120}, "diameter: 120 is outside (0, 50] m"),
        ({"diameter": None}, "diameter: missing (required)"),
        ({"lat": None}, "lat: missing (required)"),
        ({"nickname": None}, "nickname: missing (required)"),
        ({"robotic": "yes please"}, "robotic: must be true or false, got 'yes please'"),
        ({"weather_link": "weather.example.org"}, "weather_link: must be an http(s) URL or null"),
        ({"elevaton": 5}, "elevaton: unknown telescope field (did you mean 'elevation'?)"),
    ],
)
def test_a_bad_telescope_field_is_named_with_its_file_line_and_entry(tmp_path, fields, expected):
    path = write(tmp_path, "telescopes.yaml", one_telescope(**fields))
    found = problems(path)
    assert len(found) == 1, found
    assert found[0].startswith(f'{path}:2: telescope entry 1 ("T"): ')
    assert expected in found[0]


def test_a_telescope_that_moves_needs_no_position(tmp_path):
    path = write(tmp_path, "telescopes.yaml", one_telescope(lat=None, lon=None, elevation=None,
                                                            fixed_location="false"))
    assert problems(path) == []


def test_bad_instruments_are_named(tmp_path):
    t = write(tmp_path, "telescopes.yaml", GOOD_TELESCOPES)
    i = write(tmp_path, "instruments.yaml", """\
        instrument:
          - name: A
            type: imagr
            telescope_id: =OHP/T120
          - name: B
            type: imager
            telescope_id: =OHP/T12
            filters: [sdssr, sdssr, ztf_g, r]
          - name: C
            type: spectrograph
            telescope_id: OHP/T120
            api_classname: X
          - name: D
            type: imager
        """)
    found = problems(t, i)
    assert found == [
        f'{i}:2: instrument entry 1 ("A"): type: \'imagr\' is not an instrument type: one of imager, spectrograph, '
        "imaging spectrograph (did you mean 'imager'?)",
        f'{i}:5: instrument entry 2 ("B"): telescope_id: \'=OHP/T12\' names no telescope: no telescope entry of the '
        "files loaded has `=id: OHP/T12` (did you mean 'OHP/T120'?)",
        f'{i}:5: instrument entry 2 ("B"): filters: \'sdssr\' is listed twice',
        f'{i}:5: instrument entry 2 ("B"): filters: \'ztf_g\' is not a bandpass the portal knows (did you mean '
        "'ztfg', 'ztfr'?) (the portal's list: python -m astroportal vocabulary)",
        f'{i}:5: instrument entry 2 ("B"): filters: \'r\' is not a bandpass the portal knows (the portal\'s list: '
        "python -m astroportal vocabulary)",
        f'{i}:9: instrument entry 3 ("C"): api_classname: unknown instrument field; the fields are name, type, '
        "band, telescope_id, filters",
        f'{i}:9: instrument entry 3 ("C"): telescope_id: must be `=<the telescope entry\'s =id>`, got \'OHP/T120\'',
        f'{i}:13: instrument entry 4 ("D"): telescope_id: missing (required): `=<the telescope entry\'s =id>`',
    ]


def test_ids_and_names_are_unique_across_files(tmp_path):
    a = write(tmp_path, "a.yaml", GOOD_TELESCOPES)
    b = write(tmp_path, "b.yaml", GOOD_TELESCOPES.replace("nickname: OHP/T120", "nickname: other"))
    found = problems(a, b)
    assert f'{b}:2: telescope entry 1 ("Observatoire de Haute-Provence T120"): =id: \'OHP/T120\' is also the =id ' \
        f'of {a}:2: telescope entry 1 ("Observatoire de Haute-Provence T120")' in found
    assert any("name: 'Observatoire de Haute-Provence T120' is also the name of" in p for p in found)
    # An instrument cannot name a telescope by the =id of something else.
    i = write(tmp_path, "i.yaml", "instrument:\n  - {name: X, type: imager, telescope_id: =X, =id: X}\n")
    assert "is the instrument entry" in " ".join(problems(i))


def test_unreadable_files_are_reported_before_any_entry_check(tmp_path):
    bad = write(tmp_path, "bad.yaml", "telescope:\n  - name: A\n    name: B\n")
    found = problems(bad, tmp_path / "missing.yaml")
    assert found[0].startswith(f"{bad}:3: invalid YAML: duplicate key 'name'")
    assert found[1] == f"{tmp_path / 'missing.yaml'}: no such file"
    bare = write(tmp_path, "bare.yaml", "- name: A\n")
    assert "the top level must map endpoints" in problems(bare)[0]


def test_included_files_are_checked_under_their_own_name(tmp_path):
    write(tmp_path, "more.yaml", "- name: M\n  nickname: M\n  lat: 1\n  lon: 500\n  elevation: 1\n  diameter: 1\n")
    main = write(tmp_path, "main.yaml", "telescope:\n  - file: more.yaml\n")
    assert problems(main) == [f'{tmp_path / "more.yaml"}:1: telescope entry 1 ("M"): lon: 500 is outside '
                              "[-180, 180] degrees"]


def test_other_endpoints_are_left_to_the_portal(tmp_path):
    path = write(tmp_path, "groups.yaml", "groups:\n  - name: Kilonova\n    anything: goes\n")
    assert problems(path) == []


# -- through the launcher ---------------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path) -> Path:
    """A project root with the real layers and its own data/ (nothing running)."""
    root = tmp_path / "project"
    data = tmp_path / "data"
    data.mkdir()
    link_real_layers(root, data)
    res = launcher(root, "build")
    assert res.returncode == 0, res.stderr
    return root


def test_load_data_refuses_bad_files_before_asking_the_portal(project):
    data = project / "data"
    (data / "telescopes.yaml").write_text(one_telescope(lat=123))
    res = launcher(project, "load_data")
    assert res.returncode == 2, res.stderr
    assert "the data files have 1 problem(s); nothing was loaded" in res.stderr
    assert 'telescopes.yaml:2: telescope entry 1 ("T"): lat: 123 is outside [-90, 90] degrees' in res.stderr
    # Good files get past the check, to the next condition: the portal must be running.
    (data / "telescopes.yaml").write_text(one_telescope())
    res = launcher(project, "load_data")
    assert res.returncode == 1 and "the portal is not running" in res.stderr, res.stderr


def test_run_init_refuses_bad_data_before_starting_anything():
    inst = Instance()
    try:
        (inst.data / "instruments.yaml").write_text(GOOD_INSTRUMENTS.replace("sdssg", "sdss-g"))
        (inst.data / "telescopes.yaml").write_text(GOOD_TELESCOPES)
        res = inst.run("run", "--init", timeout=120)
        assert res.returncode == 2, res.stderr
        assert "filters: 'sdss-g' is not a bandpass the portal knows (did you mean 'sdssg'" in res.stderr
        # Neither the database nor the portal was started.
        assert not (inst.var / "pgdata").exists()
        assert inst.run("status").returncode == 3
    finally:
        inst.cleanup()


def test_the_vocabulary_comes_from_the_portals_public_command_in_the_build(tmp_path):
    # A build whose portal answers `vocabulary` with its own lists: those are what the check uses.
    root = tmp_path / "root"
    (root / "patched/astroportal").mkdir(parents=True)
    (root / "patched/astroportal/__init__.py").write_text("")
    (root / "patched/astroportal/__main__.py").write_text(
        "import json, sys\n"
        "assert sys.argv[1:] == ['vocabulary'], sys.argv\n"
        "print(json.dumps({'filters': ['only-this'], 'instrument_types': ['camera'], 'roles': ['Super admin']}))\n")
    cfg = SimpleNamespace(project=Project(root))
    assert datacheck.portal_vocabulary(cfg) == datacheck.Vocabulary(frozenset({"only-this"}), ("camera",))
    # A portal that cannot answer: a clear error naming the command's failure, not a traceback.
    (root / "patched/astroportal/__main__.py").write_text("import sys\nsys.exit('vocabulary: broken portal')\n")
    with pytest.raises(datacheck.LauncherError, match="cannot list the portal's known filters.*broken portal"):
        datacheck.portal_vocabulary(cfg)


def test_the_launcher_never_imports_the_portal():
    for path in (CODE_ROOT / "launcher").glob("*.py"):
        text = path.read_text()
        assert "import astroportal" not in text and "from astroportal" not in text, path.name
