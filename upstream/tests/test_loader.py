"""The YAML data loader (`python -m astroportal load_data`), against the running portal."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from conftest import free_port, portal

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def load(cfg, server, admin_token, capsys):
    """load(*files, **kw) -> (exit status, stdout, stderr), running the loader in this process."""
    from astroportal.loader import main

    def run(*files: Path, **kw) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(cfg, [str(f) for f in files], **kw)
        captured = capsys.readouterr()
        return rc, captured.out, captured.err

    return run


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def tag() -> str:
    return uuid.uuid4().hex[:8]


def telescope_rows(db, name: str):
    from astroportal.models import Telescope

    with db() as session:
        return session.scalars(select(Telescope).where(Telescope.name == name)).all()


def count(db, model, **where) -> int:
    with db() as session:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return session.scalar(query)


def a_telescope(name: str, **fields) -> dict:
    return {"name": name, "nickname": name[:12], "lat": 10.0, "lon": 20.0, "elevation": 100.0,
            "diameter": 1.0, "robotic": False, "fixed_location": True, **fields}


# -- the real data ------------------------------------------------------------------------------------------
def test_loads_real_telescopes_and_instruments(load, db):
    from astroportal.models import Instrument, Telescope

    rc, out, err = load(DATA / "network.yaml")
    assert rc == 0, err
    telescopes = yaml.safe_load((DATA / "telescopes.yaml").read_text())
    instruments = yaml.safe_load((DATA / "instruments.yaml").read_text())
    assert f"{len(telescopes) + len(instruments)} of {len(telescopes) + len(instruments)} entries loaded" in out
    assert 'telescopes.yaml entry 2 (telescope "TAROT/TCA")' in out

    with db() as session:
        by_ref = {}
        for t in telescopes:
            row = session.scalars(select(Telescope).where(Telescope.name == t["name"])).one()
            for key in ("nickname", "lat", "lon", "elevation", "diameter", "robotic", "fixed_location", "skycam_link"):
                assert getattr(row, key) == t[key], (t["name"], key)
            by_ref["=" + t["=id"]] = row.id
        for i in instruments:
            row = session.scalars(select(Instrument).where(Instrument.name == i["name"])).one()
            assert row.type == i["type"] and row.band == i["band"]
            assert sorted(row.filters) == sorted(i["filters"])
            # `telescope_id: =ShAO/T2m` became the id the telescope entry recorded
            assert row.telescope_id == by_ref[i["telescope_id"]]


def test_second_run_creates_nothing_and_reports_unchanged(load, db):
    from astroportal.models import Instrument, Telescope

    assert load(DATA / "network.yaml")[0] == 0
    before = (count(db, Telescope), count(db, Instrument))
    rc, out, err = load(DATA / "network.yaml")
    assert rc == 0, err
    assert (count(db, Telescope), count(db, Instrument)) == before
    lines = [line for line in out.splitlines() if " entry " in line]
    assert len(lines) == 9 and all(": unchanged" in line for line in lines), out
    assert "0 created, 0 updated, 9 unchanged" in out
    assert len(telescope_rows(db, "ZTF")) == 1


def test_changed_entry_is_updated_in_place(load, db, tmp_path):
    name = f"Loader scope {tag()}"
    entry = a_telescope(name, **{"=id": "T"})
    instrument = {"name": f"cam {tag()}", "type": "imager", "band": "optical", "telescope_id": "=T",
                  "filters": ["ztfg"]}
    data = write(tmp_path / "d.yaml", {"telescope": [entry], "instrument": [instrument]})
    rc, out, _ = load(data)
    assert rc == 0 and out.count(": created") == 2
    (row,) = telescope_rows(db, name)

    entry["lat"] = -33.5
    instrument["filters"] = ["ztfg", "ztfr"]
    write(data, {"telescope": [entry], "instrument": [instrument]})
    rc, out, err = load(data)
    assert rc == 0, err
    assert f'telescope "{name}"): updated (lat) id={row.id}' in out
    assert "updated (filters)" in out
    assert "0 created, 2 updated, 0 unchanged" in out
    (updated,) = telescope_rows(db, name)
    assert updated.id == row.id and updated.lat == -33.5 and updated.lon == 20.0

    from astroportal.models import Instrument

    with db() as session:
        inst = session.scalars(select(Instrument).where(Instrument.name == instrument["name"])).one()
        assert inst.filters == ["ztfg", "ztfr"] and inst.telescope_id == row.id


# -- references and includes --------------------------------------------------------------------------------
def test_references_in_paths_and_nested_values(load, db, make_user, tmp_path):
    from astroportal.models import Filter, Group, GroupUser, Stream, group_streams

    user_id, _ = make_user("Full user")
    t = tag()
    data = write(tmp_path / "groups.yaml", f"""
groups:
  - name: loader group {t}
    nickname: lg{t}
    =id: grp
streams:
  - name: loader stream {t}
    =id: stream
groups/=grp/streams:
  - stream_id: =stream
groups/=grp/users:
  - userID: {user_id}
    admin: false
filters:
  - name: loader filter {t}
    stream_id: =stream
    group_id: =grp
    =id: filt
""")
    rc, out, err = load(data)
    assert rc == 0, err
    assert "5 created" in out
    with db() as session:
        group = session.scalars(select(Group).where(Group.name == f"loader group {t}")).one()
        stream = session.scalars(select(Stream).where(Stream.name == f"loader stream {t}")).one()
        assert session.scalars(select(GroupUser).where(GroupUser.group_id == group.id,
                                                       GroupUser.user_id == user_id)).one()
        filt = session.scalars(select(Filter).where(Filter.name == f"loader filter {t}")).one()
        assert (filt.group_id, filt.stream_id) == (group.id, stream.id)
        assert session.execute(select(group_streams).where(group_streams.c.group_id == group.id)).all() == [
            (group.id, stream.id)
        ]

    rc, out, err = load(data)
    assert rc == 0, err
    assert "0 created, 0 updated, 5 unchanged" in out
    assert count(db, Group, name=f"loader group {t}") == 1
    assert count(db, Filter, name=f"loader filter {t}") == 1

    # a changed nickname and membership flag are sent as updates of the same rows
    data.write_text(data.read_text().replace(f"nickname: lg{t}", f"nickname: lg2{t}").replace("admin: false", "admin: true"))
    rc, out, err = load(data)
    assert rc == 0, err
    assert "0 created, 2 updated, 3 unchanged" in out
    assert f'entry 1 (groups/=grp/users "{user_id}"): updated (admin)' in out
    with db() as session:
        assert session.get(Group, group.id).nickname == f"lg2{t}"
        member = session.scalars(select(GroupUser).where(GroupUser.group_id == group.id,
                                                         GroupUser.user_id == user_id)).one()
        assert member.admin is True


def test_references_inside_lists_of_a_payload(load, db, tmp_path):
    from astroportal.models import Source

    t = tag()
    obj_id = f"ZTF26ld{t[:5]}"
    data = write(tmp_path / "src.yaml", f"""
groups:
  - name: loader src group {t}
    nickname: ls{t}
    =id: g
sources:
  - id: {obj_id}
    ra: 150.1
    dec: -20.5
    redshift: 0.01
    group_ids: [=g]
""")
    rc, out, err = load(data)
    assert rc == 0, err
    from astroportal.models import Group

    with db() as session:
        rows = session.scalars(select(Source).where(Source.obj_id == obj_id)).all()
        gid = session.scalars(select(Group.id).where(Group.name == f"loader src group {t}")).one()
        assert [r.group_id for r in rows] == [gid]

    rc, out, err = load(data)
    assert rc == 0 and "0 created, 0 updated, 2 unchanged" in out, out + err

    # a new redshift is patched; a group added to group_ids gets the source saved to it as well
    text = data.read_text().replace("redshift: 0.01", "redshift: 0.02").replace("group_ids: [=g]", "group_ids: [=g, =h]")
    data.write_text(text.replace("sources:", f"  - name: loader src group 2 {t}\n    nickname: ls2{t}\n    =id: h\nsources:"))
    rc, out, err = load(data)
    assert rc == 0 and f'(sources "{obj_id}"): updated (group_ids, redshift)' in out, out + err
    from astroportal.models import Obj

    with db() as session:
        assert session.get(Obj, obj_id).redshift == 0.02
        gid2 = session.scalars(select(Group.id).where(Group.name == f"loader src group 2 {t}")).one()
        rows = session.scalars(select(Source).where(Source.obj_id == obj_id)).all()
        assert sorted(r.group_id for r in rows) == sorted([gid, gid2])


def test_taxonomy_with_hierarchy_file_and_group_reference(load, db, tmp_path):
    from astroportal.models import Group, Taxonomy, taxonomy_groups

    t = tag()
    write(tmp_path / "tree" / "kn.yaml", {"class": "Transient", "subclasses": [{"class": "Kilonova"}, {"class": "GRB"}]})
    data = write(tmp_path / "tax.yaml", f"""
groups:
  - name: loader tax group {t}
    nickname: lt{t}
    =id: g
taxonomy:
  - name: loader taxonomy {t}
    version: "1.0"
    hierarchy: {{file: tree/kn.yaml}}
    group_ids: [=g]
    =id: tax
""")
    rc, out, err = load(data)
    assert rc == 0, err
    with db() as session:
        tax = session.scalars(select(Taxonomy).where(Taxonomy.name == f"loader taxonomy {t}")).one()
        assert tax.hierarchy["subclasses"][0] == {"class": "Kilonova"}
        assert f"created id={tax.id}" in out  # the answer's `taxonomy_id`
        gids = session.scalars(select(taxonomy_groups.c.group_id).where(taxonomy_groups.c.taxonomy_id == tax.id)).all()
        assert gids == session.scalars(select(Group.id).where(Group.name == f"loader tax group {t}")).all()
    rc, out, err = load(data)
    assert rc == 0 and "0 created, 0 updated, 2 unchanged" in out, err

    # a stored taxonomy version cannot be rewritten: the loader says so instead of adding a duplicate
    write(tmp_path / "tree" / "kn.yaml", {"class": "Transient", "subclasses": [{"class": "Kilonova"}]})
    rc, out, err = load(data)
    assert rc == 1
    assert f'tax.yaml entry 1 (taxonomy "loader taxonomy {t}")' in err and "hierarchy" in err
    assert count(db, Taxonomy, name=f"loader taxonomy {t}") == 1


def test_numeric_taxonomy_version_loads_once(load, db, tmp_path):
    """A version written as a number (2) is stored as text ("2"): a second run must find it, not duplicate it."""
    from astroportal.models import Taxonomy

    t = tag()
    data = write(tmp_path / "tax.yaml", f"""
taxonomy:
  - name: numeric version {t}
    version: 2
    hierarchy: {{class: Transient, subclasses: [{{class: Kilonova}}]}}
""")
    rc, out, err = load(data)
    assert rc == 0, err
    rc, out, err = load(data)
    assert rc == 0 and "0 created, 0 updated, 1 unchanged" in out, out + err
    assert count(db, Taxonomy, name=f"numeric version {t}") == 1


def test_file_includes_nest_relative_to_the_including_file(load, db, tmp_path):
    first, second, third = (f"Include scope {tag()}" for _ in range(3))
    write(tmp_path / "lists" / "more.yaml", [a_telescope(third)])
    write(tmp_path / "lists" / "some.yaml", [a_telescope(second), {"file": "more.yaml"}])
    write(tmp_path / "lists" / "first.yaml", [a_telescope(first)])
    data = write(tmp_path / "top.yaml", {"telescope": [{"file": "lists/first.yaml"}, {"file": "lists/some.yaml"}]})
    rc, out, err = load(data)
    assert rc == 0, err
    assert all(len(telescope_rows(db, n)) == 1 for n in (first, second, third))
    assert "lists/more.yaml entry 1" in out


def test_missing_include_names_the_file(load, tmp_path):
    data = write(tmp_path / "top.yaml", {"telescope": [{"file": "nowhere.yaml"}]})
    rc, _, err = load(data)
    assert rc == 1
    assert "top.yaml" in err and "nowhere.yaml" in err and "does not exist" in err


# -- bad input ----------------------------------------------------------------------------------------------
def test_out_of_range_latitude_names_file_entry_and_field(load, db, tmp_path):
    good, bad = f"Good scope {tag()}", f"Bad scope {tag()}"
    data = write(tmp_path / "bad_lat.yaml", {
        "telescope": [a_telescope(good), a_telescope(bad, lat=200, **{"=id": "bad"})],
        "instrument": [{"name": f"never {tag()}", "type": "imager", "telescope_id": "=bad", "filters": []}],
    })
    rc, out, err = load(data)
    assert rc == 1
    assert f'bad_lat.yaml entry 2 (telescope "{bad}")' in err
    assert "lat" in err and "400" in err
    assert "not attempted" in err
    assert len(telescope_rows(db, good)) == 1  # earlier entries stay loaded
    assert telescope_rows(db, bad) == []
    assert "never" not in out


def test_unknown_filter_is_refused_and_nothing_written(load, db, tmp_path):
    from astroportal.models import Instrument

    scope, cam = f"Filter scope {tag()}", f"cam {tag()}"
    data = write(tmp_path / "bad_filter.yaml", {
        "telescope": [a_telescope(scope, **{"=id": "s"})],
        "instrument": [{"name": cam, "type": "imager", "telescope_id": "=s", "filters": ["ztfg", "notafilter"]}],
    })
    rc, _, err = load(data)
    assert rc == 1
    assert f'bad_filter.yaml entry 1 (instrument "{cam}")' in err and "notafilter" in err
    assert count(db, Instrument, name=cam) == 0


def test_undefined_reference_is_refused_before_any_request(load, db, tmp_path):
    scope = f"Ref scope {tag()}"
    data = write(tmp_path / "bad_ref.yaml", {
        "telescope": [a_telescope(scope)],
        "instrument": [{"name": "x", "type": "imager", "telescope_id": "=nosuchscope", "filters": []}],
    })
    rc, _, err = load(data)
    assert rc == 1
    assert 'bad_ref.yaml entry 1 (instrument "x")' in err and '"=nosuchscope" is not defined' in err
    assert telescope_rows(db, scope) == []  # checked before anything was sent


def test_reference_defined_only_later_says_so(load, tmp_path):
    data = write(tmp_path / "order.yaml", {
        "instrument": [{"name": "x", "type": "imager", "telescope_id": "=later"}],
        "telescope": [a_telescope(f"Later {tag()}", **{"=id": "later"})],
    })
    rc, _, err = load(data)
    assert rc == 1 and "defined only later" in err and "order.yaml entry 1" in err


def test_yaml_syntax_error_names_file_and_line(load, tmp_path):
    data = write(tmp_path / "broken.yaml", "telescope:\n  - name: x\n    lat: [1, 2\n  - name: y\n")
    rc, _, err = load(data)
    assert rc == 1
    assert "broken.yaml:4" in err and "invalid YAML" in err


def test_non_mapping_entry_is_refused(load, db, tmp_path):
    scope = f"Fine scope {tag()}"
    data = write(tmp_path / "scalar.yaml", {"telescope": [a_telescope(scope), "just a name"]})
    rc, _, err = load(data)
    assert rc == 1
    assert "scalar.yaml entry 2" in err and "must be a mapping" in err
    assert telescope_rows(db, scope) == []


def test_bare_list_file_at_top_level_is_explained(load):
    rc, _, err = load(DATA / "telescopes.yaml")
    assert rc == 1 and "top level must map API endpoints" in err and "file:" in err


def test_duplicate_endpoint_keys_are_refused(load, tmp_path):
    data = write(tmp_path / "dup.yaml", "telescope: []\ninstrument: []\ntelescope: []\n")
    rc, _, err = load(data)
    assert rc == 1 and "dup.yaml:3" in err and "duplicate key 'telescope'" in err


def test_portal_not_running_is_a_clear_message(load):
    url = f"http://127.0.0.1:{free_port()}"
    rc, _, err = load(DATA / "network.yaml", url=url)
    assert rc == 1 and f"the portal is not running at {url}" in err


def test_url_from_config_and_missing_token_file(cfg, capsys, tmp_path):
    from astroportal.config import Config
    from astroportal.loader import main

    dead = f"http://127.0.0.1:{free_port()}"
    assert main(Config({**cfg, "loader": {"url": dead}}), [str(DATA / "network.yaml")]) == 1
    assert f"not running at {dead}" in capsys.readouterr().err

    no_token = Config({**cfg, "bootstrap": {"token_file": str(tmp_path / "absent")}})
    assert main(no_token, [str(DATA / "network.yaml")]) == 1
    err = capsys.readouterr().err
    assert "no API token" in err and "--token" in err and "absent" in err


def test_bad_token_is_refused(load):
    rc, _, err = load(DATA / "network.yaml", token="not-a-token")
    assert rc == 1 and "401" in err and "invalid API token" in err


# -- through the command line -------------------------------------------------------------------------------
def test_cli_load_data(config_path, server, admin_token, db, tmp_path):
    shutil.copytree(DATA, tmp_path / "data")
    name = f"CLI scope {tag()}"
    write(tmp_path / "data" / "extra.yaml", {"telescope": [a_telescope(name)]})
    result = portal("load_data", str(tmp_path / "data" / "network.yaml"), str(tmp_path / "data" / "extra.yaml"),
                    config=config_path, check=False)
    assert result.returncode == 0, result.stderr
    assert "10 of 10 entries loaded" in result.stdout
    assert len(telescope_rows(db, name)) == 1

    bad = write(tmp_path / "bad.yaml", {"telescope": [a_telescope(f"CLI bad {tag()}", diameter=-1)]})
    result = portal("load_data", str(bad), config=config_path, check=False)
    assert result.returncode == 1
    assert "bad.yaml entry 1" in result.stderr and "diameter" in result.stderr


# -- the dry run: every problem at once, nothing written, no portal or database needed ----------------------
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


def dry(*files: Path) -> tuple[int, dict]:
    """`load_data --dry-run --json FILES` in this process: (exit status, its JSON answer)."""
    import io
    import json

    from astroportal.loader import dry_run

    out, err = io.StringIO(), io.StringIO()
    rc = dry_run([str(f) for f in files], as_json=True, out=out, err=err)
    return rc, json.loads(out.getvalue())


def texts(answer: dict) -> list[str]:
    return [p["text"] for p in answer["problems"]]


def one_telescope(**fields) -> str:
    entry = {"name": "T", "nickname": "T", "lat": 1.0, "lon": 2.0, "elevation": 3.0, "diameter": 1.0, "=id": "T"}
    entry.update(fields)
    return yaml.safe_dump({"telescope": [{k: v for k, v in entry.items() if v is not None}]}, sort_keys=False)


def test_dry_run_passes_the_example_data_and_orders_files_by_their_references(tmp_path):
    t = write(tmp_path / "b_telescopes.yaml", GOOD_TELESCOPES)
    i = write(tmp_path / "a_instruments.yaml", GOOD_INSTRUMENTS)
    rc, answer = dry(i, t)
    assert rc == 0 and answer["ok"] and answer["problems"] == []
    # The instruments refer to the telescope: its file goes first whatever the order given.
    assert answer["files"] == [str(t), str(i)] and answer["entries"] == 2


@pytest.mark.parametrize(
    "fields, field, expected",
    [
        ({"lat": 90.5}, "lat", "`lat` must be between -90 and 90 degrees, got 90.5"),
        ({"lon": 180.01}, "lon", "`lon` must be between -180 and 180 degrees"),
        ({"lon": "east"}, "lon", "`lon` must be a number, got 'east'"),
        ({"elevation": 9000}, "elevation", "`elevation` must be between -500.0 and 6000.0 m"),
        ({"diameter": 0}, "diameter", "`diameter` must be greater than 0 m"),
        ({"diameter": None}, "diameter", "missing required field `diameter`"),
        ({"nickname": None}, "nickname", "missing required field `nickname`"),
        ({"robotic": "yes please"}, "robotic", "`robotic` must be true or false, got 'yes please'"),
        ({"elevaton": 5}, None, "unknown field(s) ['elevaton'] (did you mean 'elevation' for 'elevaton'?)"),
    ],
)
def test_dry_run_names_a_bad_telescope_field_with_file_line_and_entry(tmp_path, fields, field, expected):
    path = write(tmp_path / "telescopes.yaml", one_telescope(**fields))
    rc, answer = dry(path)
    assert rc == 1 and not answer["ok"]
    [problem] = answer["problems"]
    assert (problem["file"], problem["line"], problem["entry"], problem["endpoint"], problem["name"]) == \
        (str(path), 2, 1, "telescope", "T")
    assert problem["field"] == field and expected in problem["message"]
    assert problem["text"].startswith(f'{path}:2: entry 1 (telescope "T"): ')


def test_dry_run_reports_every_bad_instrument_at_once(tmp_path):
    t = write(tmp_path / "telescopes.yaml", GOOD_TELESCOPES)
    i = write(tmp_path / "instruments.yaml", """\
instrument:
  - name: A
    type: imagr
    telescope_id: =OHP/T120
  - name: B
    type: imager
    telescope_id: =OHP/T12
    filters: [sdssr, ztf_g]
  - name: C
    type: spectrograph
    telescope_id: =OHP/T120
    api_classname: X
  - name: D
    type: imager
""")
    rc, answer = dry(t, i)
    assert rc == 1
    found = [(p["line"], p["field"], p["message"]) for p in answer["problems"]]
    assert found[0][:2] == (2, "type") and "`type` must be one of imager" in found[0][2] and "'imagr'" in found[0][2]
    assert found[1][:2] == (5, None) and 'reference "=OHP/T12" is not defined by an earlier entry' in found[1][2]
    assert found[2][:2] == (5, "filters") and "unknown filter(s) 'ztf_g'" in found[2][2]
    assert found[3][:2] == (9, None) and "unknown field(s) ['api_classname']" in found[3][2]
    assert found[4][:2] == (13, "telescope_id") and "missing required field `telescope_id`" in found[4][2]
    assert len(found) == 5


def test_dry_run_refuses_repeated_ids_and_names_and_references_to_the_wrong_kind(tmp_path):
    a = write(tmp_path / "a.yaml", GOOD_TELESCOPES)
    b = write(tmp_path / "b.yaml", GOOD_TELESCOPES.replace("nickname: OHP/T120", "nickname: other"))
    rc, answer = dry(a, b)
    assert rc == 1
    assert any("`=id: OHP/T120` is also the =id of" in t and str(a) in t for t in texts(answer))
    assert any("`name` 'Observatoire de Haute-Provence T120': also that of" in t for t in texts(answer))
    wrong = write(tmp_path / "i.yaml", "instrument:\n  - {name: X, type: imager, telescope_id: 1, =id: X}\n"
                                       "  - {name: Y, type: imager, telescope_id: =X}\n")
    rc, answer = dry(wrong)
    assert rc == 1 and texts(answer) == [f'{wrong}:3: entry 2 (instrument "Y"): telescope_id: "=X" is {wrong} entry 1 '
                                         '(instrument "X"), not a telescope']


def test_dry_run_reports_unreadable_files_and_follows_includes(tmp_path):
    bad = write(tmp_path / "bad.yaml", "telescope:\n  - name: A\n    name: B\n")
    rc, answer = dry(bad, tmp_path / "missing.yaml")
    assert rc == 1
    assert texts(answer)[0].startswith(f"{bad}:3: invalid YAML") and "duplicate key 'name'" in texts(answer)[0]
    assert texts(answer)[1] == f"{tmp_path / 'missing.yaml'}: no such file"
    write(tmp_path / "more.yaml", "- {name: M, nickname: M, lat: 1, lon: 500, elevation: 1, diameter: 1}\n")
    main = write(tmp_path / "main.yaml", "telescope:\n  - file: more.yaml\n")
    rc, answer = dry(main)
    assert rc == 1 and texts(answer) == [f'{tmp_path / "more.yaml"}:1: entry 1 (telescope "M"): `lon` must be between '
                                         "-180 and 180 degrees, got 500"]


def test_dry_run_writes_nothing_and_needs_no_portal(tmp_path):
    # No cfg, server or database fixture here: the command line, with no configuration at all.
    path = write(tmp_path / "t.yaml", one_telescope(lat=123))
    result = subprocess.run([sys.executable, "-m", "astroportal", "load_data", "--dry-run", str(path)],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 1
    assert f'{path}:2: entry 1 (telescope "T"): `lat` must be between -90 and 90 degrees' in result.stderr
    assert "1 entries in 1 file(s), 1 problem(s); nothing was written" in result.stdout
    ok = write(tmp_path / "ok.yaml", one_telescope())
    result = subprocess.run([sys.executable, "-m", "astroportal", "load_data", "--dry-run", "--json", str(ok)],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0 and '"ok": true' in result.stdout


def test_creating_a_telescope_with_a_misspelt_field_is_refused(api, admin_token):
    name = f"Typo scope {tag()}"
    status, body = api.post("/api/telescope", admin_token, json={**a_telescope(name), "elevaton": 5})
    assert status == 400 and "did you mean 'elevation' for 'elevaton'" in body["message"], body
    assert api.get("/api/telescope", admin_token, params={"name": name})[1]["data"] == []
