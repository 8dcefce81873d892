"""Sources and candidates in a localization's credible region, on the real sample alerts (tests/data/gcn):
membership checked point by point on 200,000 random positions against mocpy and astropy-healpix, the rule for
the tile that crosses p, the probability density of each match, group visibility and the API's refusals."""

from __future__ import annotations

import io
import json
import math
import uuid
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy_healpix import healpix_to_lonlat, lonlat_to_healpix
from sqlalchemy import select, text

from conftest import free_port, portal, unique, write_config

DATA = Path(__file__).parent / "data" / "gcn"
N_RANDOM = 200_000
PRELIMINARY_DATEOBS = "2026-06-05T11:57:26.395"
GW190425_DATEOBS = "S190425z"  # an alias names the event as well as its time


def notice(name: str):
    from astroportal.gw.notices import parse

    return parse((DATA / name).read_bytes())


def fetch_test_data(url: str) -> bytes:
    """The GW190425 VOEvent names its sky map by URL: read our copy instead (no network in tests)."""
    return (DATA / url.rsplit("/", 1)[-1]).read_bytes()


def tile_uniq(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, uniq) of tiles given as depth-29 ranges [lo, hi)."""
    size = hi - lo
    order = 29 - (np.log2(size).round().astype(np.int64) // 2)
    ipix = lo // size
    return order, (np.int64(4) << (2 * order)) + ipix


def tile_centre(order: int, uniq: int) -> tuple[float, float]:
    """(ra, dec) in degrees of the centre of a tile."""
    ipix = uniq - (4 << (2 * order))
    lon, lat = healpix_to_lonlat(np.array([ipix]), 1 << order, order="nested")
    return float(lon.to_value(u.deg)[0]), float(lat.to_value(u.deg)[0])


class Tiles:
    """A localization's stored tiles (lo, hi, probdensity, cumprob), read back for the checks."""

    def __init__(self, session, localization_id: int) -> None:
        rows = session.execute(
            text("SELECT lo, hi, probdensity, cumprob FROM localizationtiles WHERE localization_id = :l ORDER BY lo"),
            {"l": localization_id},
        ).all()
        self.lo = np.array([r.lo for r in rows], dtype=np.int64)
        self.hi = np.array([r.hi for r in rows], dtype=np.int64)
        self.density = np.array([r.probdensity for r in rows])
        self.cumprob = np.array([r.cumprob for r in rows])
        self.order, self.uniq = tile_uniq(self.lo, self.hi)
        self.prob = self.density * 4 * np.pi / (12 * 4.0**self.order)
        # Tiles in credible-region order: densest first, ties by lo.
        self.rank = np.lexsort((self.lo, -self.density))

    def crossing(self, p: float) -> tuple[int, int]:
        """Indices of the tile that crosses p and of the next one in density order (the first left out)."""
        ordered = self.rank
        inside = self.cumprob[ordered] < p
        last_in = int(np.nonzero(inside)[0].max())
        return int(ordered[last_in]), int(ordered[last_in + 1])

    def moc(self, p: float):
        """The region as a mocpy MOC, from the tiles with cumprob < p."""
        from mocpy import MOC

        keep = self.cumprob < p
        return MOC.from_depth29_ranges(29, np.stack([self.lo[keep], self.hi[keep]], axis=1).astype(np.uint64))

    def lookup(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Per position, the index of the tile holding it (astropy-healpix at each tile order), -1 if none."""
        where = {int(q): i for i, q in enumerate(self.uniq)}
        out = np.full(len(ra), -1, dtype=np.int64)
        for order in np.unique(self.order):
            pix = lonlat_to_healpix(ra * u.deg, dec * u.deg, 1 << int(order), order="nested")
            uniq = (np.int64(4) << (2 * int(order))) + pix.astype(np.int64)
            for k, q in enumerate(uniq):
                i = where.get(int(q))
                if i is not None:
                    out[k] = i
        return out


# -- a database of its own: 200,000 random sources and the sample localizations ---------------------------------
@pytest.fixture(scope="module")
def regiondb(pg, tmp_path_factory):
    from astroportal import config as portal_config
    from astroportal.db import make_sessionmaker
    from astroportal.gw.ingest import ingest_notice
    from astroportal.gw.skymaps import healpix29

    root = tmp_path_factory.mktemp("gwregion")
    path = write_config(root / "config.yaml", pg.create_database("gw_region"), free_port())
    portal("migrate", config=path)
    portal("bootstrap", config=path)
    maker = make_sessionmaker(portal_config.load(path))
    rng = np.random.default_rng(20260605)
    ra = rng.uniform(0, 360, N_RANDOM)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, N_RANDOM)))
    ids = np.array([f"RND{i:07d}" for i in range(N_RANDOM)])
    with maker() as s:
        prelim = ingest_notice(s, notice("igwn_gwalert_preliminary.json"), contours=False)
        gw190425 = ingest_notice(s, notice("GW190425_initial.xml"), fetch=fetch_test_data, contours=False)
        groups = [s.execute(text("INSERT INTO groups (name) VALUES (:n) RETURNING id"), {"n": n}).scalar()
                  for n in ("region-even", "region-odd")]
        admin_id = s.execute(text("SELECT id FROM users WHERE username = 'admin'")).scalar()
        s.commit()
        conn = s.connection().connection.dbapi_connection
        hp = healpix29(ra, dec)
        with conn.cursor() as cur:
            cur.copy_from(io.StringIO("".join(
                f"{i}\t{a}\t{d}\t{h}\n" for i, a, d, h in zip(ids, ra.tolist(), dec.tolist(), hp.tolist())
            )), "objs", columns=("id", "ra", "dec", "healpix"))
            # Even objects saved to one group, odd ones to the other: what a member of one sees is half.
            cur.copy_from(io.StringIO("".join(
                f"{i}\t{groups[k % 2]}\t{admin_id}\n" for k, i in enumerate(ids)
            )), "sources", columns=("obj_id", "group_id", "saved_by_id"))
            cur.execute("ANALYZE objs; ANALYZE sources")
        conn.commit()
    yield {
        "maker": maker, "ra": ra, "dec": dec, "ids": ids, "groups": groups,
        "localizations": {PRELIMINARY_DATEOBS: prelim.localization_ids[0], GW190425_DATEOBS: gw190425.localization_ids[0]},
        "dateobs": {PRELIMINARY_DATEOBS: prelim.dateobs.isoformat(), GW190425_DATEOBS: gw190425.dateobs.isoformat()},
    }


@pytest.mark.parametrize("dateobs", [PRELIMINARY_DATEOBS, GW190425_DATEOBS])
@pytest.mark.parametrize("p", [0.5, 0.9])
def test_region_membership_and_density_match_mocpy_and_astropy_healpix_point_by_point(regiondb, dateobs, p):
    from astroportal.gw.region import find_region, objects_in_region

    ra, dec, ids = regiondb["ra"], regiondb["dec"], regiondb["ids"]
    with regiondb["maker"]() as s:
        region = find_region(s, regiondb["dateobs"][dateobs], None, p)
        assert region.localization_id == regiondb["localizations"][dateobs]
        tiles = Tiles(s, region.localization_id)
        found = dict(objects_in_region(s, region))
    # The stored cumprob is the probability before each tile in density order (recomputed here).
    before = np.empty_like(tiles.prob)
    before[tiles.rank] = np.concatenate(([0.0], np.cumsum(tiles.prob[tiles.rank])[:-1]))
    assert np.allclose(tiles.cumprob, before / tiles.prob.sum(), atol=1e-9)

    in_moc = tiles.moc(p).contains_lonlat(ra * u.deg, dec * u.deg)
    at = tiles.lookup(ra, dec)
    assert (at >= 0).all()  # the tiles cover the sky
    in_tiles = tiles.cumprob[at] < p
    expected = set(ids[in_moc])
    assert set(ids[in_tiles]) == expected  # mocpy and astropy-healpix agree
    assert 0 < len(expected) < N_RANDOM
    assert set(found) == expected
    # Each match carries the density of the tile that holds it.
    want = dict(zip(ids[in_tiles], tiles.density[at[in_tiles]]))
    assert all(found[k] == pytest.approx(want[k], rel=1e-12) for k in found)
    # And the region covers as much sky as its tiles say (random points: within 5 sigma).
    area = tiles.prob[tiles.cumprob < p].sum() / tiles.prob.sum()
    frac = (tiles.order[tiles.cumprob < p], )
    sky = (4 * np.pi / (12 * 4.0 ** frac[0])).sum() / (4 * np.pi)
    assert abs(len(found) / N_RANDOM - sky) < 5 * math.sqrt(sky * (1 - sky) / N_RANDOM) + 1e-4
    assert area >= p  # the crossing tile is in: the region holds at least p


def test_mocpy_cumulative_region_differs_from_ours_at_most_by_the_crossing_tile(regiondb):
    """mocpy's own selection from the multi-order FITS (cumul_to=p) leaves the tile that crosses p out; ours
    keeps it. Everything else is the same sky."""
    import base64

    from astropy.table import Table
    from mocpy import MOC

    from astroportal.gw.region import find_region

    alert = json.loads((DATA / "igwn_gwalert_preliminary.json").read_text())
    table = Table.read(io.BytesIO(base64.b64decode(alert["event"]["skymap"])))
    p = 0.9
    with regiondb["maker"]() as s:
        tiles = Tiles(s, find_region(s, PRELIMINARY_DATEOBS, None, p).localization_id)
    order = (np.log2(np.asarray(table["UNIQ"]) // 4) // 2).astype(int)
    prob = np.asarray(table["PROBDENSITY"]) * 4 * np.pi / (12 * 4.0**order)
    theirs = MOC.from_valued_healpix_cells(np.asarray(table["UNIQ"], dtype=np.uint64), prob / prob.sum(), 29,
                                           cumul_to=p)
    ours = tiles.moc(p)
    cross, _ = tiles.crossing(p)
    crossing = MOC.from_depth29_ranges(29, np.array([[tiles.lo[cross], tiles.hi[cross]]], dtype=np.uint64))
    assert theirs.difference(ours).empty()
    extra = ours.difference(theirs)
    assert extra.difference(crossing).empty()


@pytest.mark.parametrize("p", [0.5, 0.9])
def test_a_source_in_the_crossing_tile_is_in_and_one_just_outside_is_out(regiondb, p):
    from astroportal.gw.region import find_region, objects_in_region
    from astroportal.gw.skymaps import healpix29

    with regiondb["maker"]() as s:
        region = find_region(s, PRELIMINARY_DATEOBS, None, p)
        tiles = Tiles(s, region.localization_id)
        cross, nxt = tiles.crossing(p)
        assert tiles.cumprob[cross] < p <= tiles.cumprob[cross] + tiles.prob[cross] / tiles.prob.sum() + 1e-12
        assert tiles.cumprob[nxt] >= p
        names = {}
        for label, i in (("in", cross), ("out", nxt)):
            obj_id = unique(f"CROSS{label.upper()}")
            ra, dec = tile_centre(int(tiles.order[i]), int(tiles.uniq[i]))
            s.execute(text("INSERT INTO objs (id, ra, dec, healpix) VALUES (:i, :r, :d, :h)"),
                      {"i": obj_id, "r": ra, "d": dec, "h": healpix29(ra, dec)})
            names[label] = obj_id
        s.commit()
        found = dict(objects_in_region(s, region))
        assert names["in"] in found and names["out"] not in found
        assert found[names["in"]] == pytest.approx(tiles.density[cross])
        # At p equal to the left-out tile's own cumprob, that tile is still out (cumprob < p is strict) and
        # the tile before it, whose probability ends exactly at p, is in.
        edge = find_region(s, PRELIMINARY_DATEOBS, None, float(tiles.cumprob[nxt]))
        found = dict(objects_in_region(s, edge))
        assert names["in"] in found and names["out"] not in found
        # The merged ranges are disjoint, ordered, and cover exactly the region's tiles.
        from astroportal.gw.region import region_ranges

        ranges = region_ranges(s, region)
        keep = tiles.cumprob < p
        assert sum(hi - lo for lo, hi in ranges) == int((tiles.hi[keep] - tiles.lo[keep]).sum())
        assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:]))  # adjacent tiles were merged


@pytest.fixture
def count_strategy(monkeypatch, request):
    """Force the count of a member's region list to probe each object, hash the saves, or (the default for a
    member) read the saves' healpix copy; the cached statements are rebuilt before and after."""
    from astroportal.domain import sources

    sources._region_list_statements.cache_clear()
    if request.param != "the saves' healpix copy":
        monkeypatch.setattr(sources, "_count_by_saves", lambda *shape, **kw: False)
    yield request.param
    sources._region_list_statements.cache_clear()


@pytest.mark.parametrize("count_strategy", ["the saves' healpix copy", "probing each object", "hashing the saves"],
                         indirect=True)
def test_the_sources_list_counts_and_pages_only_what_a_member_of_one_group_sees(regiondb, monkeypatch,
                                                                                count_strategy):
    """Of the 200,000 random sources, the even ones are in one group and the odd ones in another: a member of
    the first sees, counts and pages only even ones, densest first, whatever the planner thinks, and whichever
    way the count is made (over the saves' copy of healpix; or, as for all-seeing users, large regions hash the
    saves instead of probing each object's)."""
    from astroportal.domain.accounts import create_user
    from astroportal.domain.sources import list_sources
    from astroportal.gw import region as gwr
    from astroportal.models import GroupUser, User

    hashing = count_strategy == "hashing the saves"
    monkeypatch.setattr(gwr, "SAVES_JOIN_RATIO", 0.0 if hashing else math.inf)
    monkeypatch.setattr(gwr, "SAVES_JOIN_MIN_OBJECTS", 0)

    p = 0.9
    even, odd = regiondb["groups"]
    ra, dec, ids = regiondb["ra"], regiondb["dec"], regiondb["ids"]
    with regiondb["maker"]() as s:
        user = create_user(s, f"region-{uuid.uuid4().hex[:6]}", ["Full user"])
        s.add(GroupUser(group_id=even, user_id=user.id))
        s.commit()
        loc = regiondb["localizations"][GW190425_DATEOBS]
        region = gwr.find_region(s, GW190425_DATEOBS, None, p)
        assert gwr.saves_drive_count(s, region) is hashing
        s.rollback()
        tiles = Tiles(s, loc)
        at = tiles.lookup(ra, dec)
        inside = tiles.cumprob[at] < p
        mine = inside & (np.arange(N_RANDOM) % 2 == 0)
        # Expected order: densest first, ties by tile then id.
        order = np.lexsort((ids[mine], tiles.lo[at[mine]], -tiles.density[at[mine]]))
        expected = list(ids[mine][order])
        dens = tiles.density[at[mine]][order]

        answer = list_sources(s, user, localization_dateobs=GW190425_DATEOBS, localization_cumprob=p,
                              sort_by="localization_probdensity", num_per_page=500)
        s.rollback()
        assert answer["totalMatches"] == int(mine.sum())
        got = [row["id"] for row in answer["sources"]]
        assert got == expected[:500]
        assert [row["localization_probdensity"] for row in answer["sources"]] == pytest.approx(list(dens[:500]))
        assert all(g["id"] == even for row in answer["sources"] for g in row["groups"])
        page3 = list_sources(s, user, localization_dateobs=GW190425_DATEOBS, localization_cumprob=p,
                             sort_by="localization_probdensity", num_per_page=100, page_number=3)
        s.rollback()
        assert [row["id"] for row in page3["sources"]] == expected[200:300]
        # Other orders list the same region (here by id), each with its density.
        by_id = list_sources(s, user, localization_dateobs=GW190425_DATEOBS, localization_cumprob=p,
                             sort_by="id", num_per_page=50)
        s.rollback()
        assert [row["id"] for row in by_id["sources"]] == sorted(expected)[:50]
        where = dict(zip(expected, dens))
        assert [row["localization_probdensity"] for row in by_id["sources"]] == pytest.approx(
            [where[row["id"]] for row in by_id["sources"]])
        # The default order (latest save first) and a cone inside the region.
        by_save = list_sources(s, user, localization_dateobs=GW190425_DATEOBS, localization_cumprob=p)
        s.rollback()
        assert by_save["totalMatches"] == int(mine.sum()) and {r["id"] for r in by_save["sources"]} <= set(expected)
        # An all-seeing user counts both groups' sources (over every group's saves, or as forced above).
        admin = s.scalars(select(User).where(User.username == "admin")).one()
        everyone = list_sources(s, admin, localization_dateobs=GW190425_DATEOBS, localization_cumprob=p,
                                sort_by="localization_probdensity", num_per_page=5)
        s.rollback()
        assert everyone["totalMatches"] == int(inside.sum()) > int(mine.sum())


# -- through the API, on the shared test portal ----------------------------------------------------------------
@pytest.fixture(scope="module")
def preliminary(api, admin_token):
    status, body = api.post("/api/gcn_event", admin_token, data=(DATA / "igwn_gwalert_preliminary.json").read_bytes(),
                            headers={"Content-Type": "application/json"})
    assert status == 200, body
    status, body = api.get(f"/api/gcn_event/{PRELIMINARY_DATEOBS}", admin_token)
    assert status == 200, body
    return body["data"]


def densest_tiles(db, dateobs: str, n: int = 200) -> list[tuple[float, float, float]]:
    """(ra, dec, probdensity) at the centres of the n densest tiles of the event's newest localization."""
    with db() as s:
        rows = s.execute(text(
            "SELECT t.lo, t.hi, t.probdensity FROM localizationtiles t JOIN localizations l ON l.id = t.localization_id "
            "WHERE l.dateobs = :d ORDER BY l.created_at DESC, t.cumprob LIMIT :n"), {"d": dateobs, "n": n}).all()
    out = []
    for r in rows:
        order, uniq = tile_uniq(np.array([r.lo]), np.array([r.hi]))
        out.append((*tile_centre(int(order[0]), int(uniq[0])), r.probdensity))
    return out


def new_group(db, *user_ids: int) -> int:
    from astroportal.models import Group, GroupUser

    with db() as s:
        g = Group(name=f"gw-{uuid.uuid4().hex[:10]}")
        s.add(g)
        s.flush()
        for uid in user_ids:
            s.add(GroupUser(group_id=g.id, user_id=uid, can_save=True))
        s.commit()
        return g.id


def new_filter(db, group_id: int) -> int:
    from astroportal.models import Filter, Stream

    with db() as s:
        stream = Stream(name=f"gw-stream-{uuid.uuid4().hex[:10]}")
        s.add(stream)
        s.flush()
        f = Filter(name="gw-filter", stream_id=stream.id, group_id=group_id)
        s.add(f)
        s.commit()
        return f.id


def test_the_api_lists_my_sources_in_the_region_densest_first_and_hides_other_groups(api, db, make_user,
                                                                                    admin_token, preliminary):
    me, my_token = make_user("Full user")
    other, _ = make_user("Full user")
    mine, theirs = new_group(db, me), new_group(db, other)
    spots = densest_tiles(db, PRELIMINARY_DATEOBS)
    dense, less, hidden = spots[0], spots[150], spots[1]
    ids = {name: unique("GWR") for name in ("dense", "less", "hidden", "far")}
    for name, (ra, dec, _), group in (("dense", dense, mine), ("less", less, mine), ("hidden", hidden, theirs)):
        assert api.post("/api/sources", admin_token, json={"id": ids[name], "ra": ra, "dec": dec,
                                                           "group_ids": [group]})[0] == 200
    far_ra = (dense[0] + 180) % 360
    assert api.post("/api/sources", admin_token, json={"id": ids["far"], "ra": far_ra, "dec": -dense[1],
                                                       "group_ids": [mine]})[0] == 200

    params = {"localizationDateobs": PRELIMINARY_DATEOBS, "localizationCumprob": 0.9, "group_ids": mine,
              "sortBy": "localization_probdensity"}
    status, body = api.get("/api/sources", my_token, params=params)
    assert status == 200, body
    data = body["data"]
    assert [s["id"] for s in data["sources"]] == [ids["dense"], ids["less"]]
    assert data["totalMatches"] == 2
    assert [s["localization_probdensity"] for s in data["sources"]] == pytest.approx([dense[2], less[2]])
    # Pages of one.
    firsts = [api.get("/api/sources", my_token, params={**params, "numPerPage": 1, "pageNumber": n})[1]["data"]
              for n in (1, 2, 3)]
    assert [[s["id"] for s in page["sources"]] for page in firsts] == [[ids["dense"]], [ids["less"]], []]
    # Without the group filter: the other group's source is neither listed nor counted.
    unfiltered = {k: v for k, v in params.items() if k != "group_ids"}
    before = api.get("/api/sources", my_token, params={**unfiltered, "numPerPage": 500})[1]["data"]
    assert ids["hidden"] not in {s["id"] for s in before["sources"]}
    assert {ids["dense"], ids["less"]} <= {s["id"] for s in before["sources"]}
    assert api.post("/api/sources", admin_token, json={"id": ids["hidden"], "group_ids": [mine]})[0] == 200
    after = api.get("/api/sources", my_token, params={**unfiltered, "numPerPage": 500})[1]["data"]
    assert after["totalMatches"] == before["totalMatches"] + 1
    assert ids["hidden"] in {s["id"] for s in after["sources"]}
    # The whole sky (p = 1) holds the far one too; the name of the localization may be given.
    name = preliminary["localizations"][0]["localization_name"]
    status, body = api.get("/api/sources", my_token, params={**params, "localizationCumprob": 1,
                                                             "localizationName": name})
    assert status == 200 and ids["far"] in {s["id"] for s in body["data"]["sources"]}


def test_a_moved_object_leaves_or_enters_my_region_count_and_batch_saves_count_at_once(api, db, make_user,
                                                                                     admin_token, preliminary):
    """The count reads the saves' copy of the object's healpix (migration 0011's triggers): sources saved by a
    batch (POST /api/sources with a list) count at once, and moving an object (PATCH ra/dec) moves it in or out."""
    me, my_token = make_user("Full user")
    mine = new_group(db, me)
    spots = densest_tiles(db, PRELIMINARY_DATEOBS)
    ids = {name: unique("GWM") for name in ("a", "b", "far")}
    far = ((spots[0][0] + 180) % 360, -spots[0][1])
    batch = [{"id": ids["a"], "ra": spots[0][0], "dec": spots[0][1], "group_ids": [mine]},
             {"id": ids["b"], "ra": spots[3][0], "dec": spots[3][1], "group_ids": [mine]},
             {"id": ids["far"], "ra": far[0], "dec": far[1], "group_ids": [mine]}]
    status, body = api.post("/api/sources", admin_token, json=batch)
    assert status == 200, body
    params = {"localizationDateobs": PRELIMINARY_DATEOBS, "localizationCumprob": 0.9, "group_ids": mine,
              "sortBy": "id", "numPerPage": 10}

    def listed() -> tuple[int, set[str]]:
        status, body = api.get("/api/sources", my_token, params=params)
        assert status == 200, body
        return body["data"]["totalMatches"], {s["id"] for s in body["data"]["sources"]}

    assert listed() == (2, {ids["a"], ids["b"]})
    # The far one moves into the densest tile: it is counted and listed; "a" moves out: it no longer is.
    assert api.patch(f"/api/sources/{ids['far']}", admin_token, json={"ra": spots[1][0], "dec": spots[1][1]})[0] == 200
    assert listed() == (3, {ids["a"], ids["b"], ids["far"]})
    assert api.patch(f"/api/sources/{ids['a']}", admin_token, json={"ra": far[0], "dec": far[1]})[0] == 200
    assert listed() == (2, {ids["b"], ids["far"]})
    # The copy equals the object's own index on every save of these objects.
    with db() as s:
        pairs = s.execute(text("SELECT s.healpix, o.healpix FROM sources s JOIN objs o ON o.id = s.obj_id "
                               "WHERE s.obj_id = ANY(:ids)"), {"ids": list(ids.values())}).all()
    assert len(pairs) == 3 and all(a == b and a is not None for a, b in pairs)


def test_the_api_lists_candidates_in_the_region_with_their_density(api, db, make_user, admin_token, preliminary):
    me, my_token = make_user("Full user")
    mine = new_group(db, me)
    theirs = new_group(db)
    filters = [new_filter(db, g) for g in (mine, theirs)]
    spots = densest_tiles(db, PRELIMINARY_DATEOBS)
    ids = {}
    for name, spot, flt in (("dense", spots[2], filters[0]), ("less", spots[120], filters[0]),
                            ("hidden", spots[3], filters[1])):
        ids[name] = unique("GWC")
        status, body = api.post("/api/candidates", admin_token, json={
            "id": ids[name], "ra": spot[0], "dec": spot[1], "filter_ids": [flt], "passed_at": "2026-06-05T12:00:00"})
        assert status == 200, body
    params = {"localizationDateobs": PRELIMINARY_DATEOBS, "localizationCumprob": 0.9, "groupIDs": mine,
              "sortBy": "localization_probdensity"}
    status, body = api.get("/api/candidates", my_token, params=params)
    assert status == 200, body
    data = body["data"]
    assert [c["id"] for c in data["candidates"]] == [ids["dense"], ids["less"]] and data["totalMatches"] == 2
    assert [c["localization_probdensity"] for c in data["candidates"]] == pytest.approx([spots[2][2], spots[120][2]])
    status, body = api.get("/api/candidates", my_token, params={k: v for k, v in params.items() if k != "groupIDs"})
    assert ids["hidden"] not in {c["id"] for c in body["data"]["candidates"]}


@pytest.mark.parametrize("params, status, words", [
    ({"localizationCumprob": 0}, 400, "at most 1"),
    ({"localizationCumprob": 1.5}, 400, "at most 1"),
    ({"localizationCumprob": "lots"}, 400, "localizationCumprob"),
    ({"localizationName": "nope"}, 404, "no localization named 'nope'"),
    ({"localizationDateobs": "2001-01-01T00:00:00"}, 404, "no GCN event"),
    ({"localizationDateobs": "yesterday"}, 404, "no GCN event"),
])
@pytest.mark.parametrize("path", ["/api/sources", "/api/candidates"])
def test_bad_localization_arguments_are_refused_with_the_reason(api, role_tokens, preliminary, path, params, status,
                                                                 words):
    query = {"localizationDateobs": PRELIMINARY_DATEOBS, **params}
    got, body = api.get(path, role_tokens["Full user"], params=query)
    assert got == status, body
    assert words in body["message"]


@pytest.mark.parametrize("path", ["/api/sources", "/api/candidates"])
def test_localization_details_without_the_event_time_are_refused(api, role_tokens, path):
    for params in ({"localizationCumprob": 0.9}, {"localizationName": "x"}, {"sortBy": "localization_probdensity"}):
        status, body = api.get(path, role_tokens["Full user"], params=params)
        assert status == 400 and "localizationDateobs" in body["message"], body


def plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


@pytest.mark.parametrize("dateobs", [PRELIMINARY_DATEOBS, GW190425_DATEOBS])
@pytest.mark.parametrize("sort_by", ["localization_probdensity", "saved_at"])
def test_the_region_drives_the_plan_never_a_scan_of_every_object_or_save(regiondb, dateobs, sort_by):
    """Whatever the region's size, objects are reached through ix_objs_healpix and saves through their obj_id
    index: no sequential scan of objs or sources, in the count and in the page, for a member of one group."""
    from sqlalchemy.dialects import postgresql

    from astroportal.domain.sources import _region_list_statements
    from astroportal.gw.region import find_region, without_jit

    even = regiondb["groups"][0]
    with regiondb["maker"]() as s:
        region = find_region(s, regiondb["dateobs"][dateobs], None, 0.9)
        params = {**region.params(), "lim": 100, "off": 0, "readable": [even], "selected": [even]}
        without_jit(s)
        count_stmt, page_stmt = _region_list_statements(None, False, True, False, sort_by, "desc")
        for stmt in (count_stmt, page_stmt):
            sql = stmt.params(**params).compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
            plan = s.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}").scalar()[0]["Plan"]
            nodes = list(plan_nodes(plan))
            scans = {(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in nodes
                     if n.get("Relation Name") in ("objs", "sources")}
            assert not any(kind == "Seq Scan" for kind, _, _ in scans), scans
            if stmt is count_stmt:
                # The count reads the saves' copy of healpix by range scans of their (group_id, healpix) index.
                assert any(n.get("Index Name") == "ix_sources_active_group_id_healpix" for n in nodes), scans
                assert not any(n.get("Relation Name") == "objs" for n in nodes), scans
            else:
                assert any(n.get("Index Name") == "ix_objs_healpix" for n in nodes), scans
            assert not any(n["Node Type"] == "Hash" for n in nodes
                           if any(c.get("Relation Name") == "sources" for c in plan_nodes(n))), scans
        s.rollback()


@pytest.mark.parametrize("dateobs", [PRELIMINARY_DATEOBS, GW190425_DATEOBS])
def test_a_count_that_hashes_the_saves_still_reaches_objects_through_the_region(regiondb, dateobs):
    """The count for large regions (hashing the saves, nested loops off) still finds the region's objects by
    index range scans of ix_objs_healpix, never by a sequential scan of objs."""
    from sqlalchemy.dialects import postgresql

    from astroportal.domain.sources import _region_list_statements
    from astroportal.gw.region import find_region, without_jit

    with regiondb["maker"]() as s:
        region = find_region(s, regiondb["dateobs"][dateobs], None, 0.9)
        params = {**region.params(), "lim": 100, "off": 0}
        without_jit(s)
        s.execute(text("SET LOCAL enable_nestloop = off"))
        # An all-seeing user's count (a member of some groups counts over the saves' healpix copy instead).
        count_stmt, _ = _region_list_statements(None, False, False, False, "localization_probdensity", "desc", True)
        sql = count_stmt.params(**params).compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        plan = s.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}").scalar()[0]["Plan"]
        nodes = list(plan_nodes(plan))
        assert not any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "objs" for n in nodes)
        assert any(n.get("Index Name") == "ix_objs_healpix" for n in nodes)
        s.rollback()
