"""Observation plans on real alerts (tests/data/gcn, BSD-3): field grids, contained probability, visibility from
a site, greedy plans without overlaps, network plans giving each field once, error boxes, exports and errors."""

from __future__ import annotations

import csv
import io
import math
import re
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data" / "gcn"
TAROT = {"shape": "square", "side_deg": 1.9}
CIRCLE = {"shape": "circle", "radius_deg": 1.0}
# TAROT/TCA at Calern (data/telescopes.yaml of the distribution; any northern site would do).
CALERN = {"lat": 43.75203, "lon": 6.92353, "elevation": 1320.0}
GW190425_NIGHT = "2019-04-25"


# -- independent computations (for checking, not the portal's code) -------------------------------------------
def tangent_plane(ra0, dec0, ra, dec):
    """(xi, eta, cos c) of positions in the tangent plane at (ra0, dec0), degrees in, radians out."""
    a0, d0, a, d = (np.radians(np.asarray(x, dtype=float)) for x in (ra0, dec0, ra, dec))
    cos_c = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cos_c
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cos_c
    return xi, eta, cos_c


def inside_square(ra0, dec0, ra, dec, side=1.9):
    xi, eta, cos_c = tangent_plane(ra0, dec0, ra, dec)
    t = math.tan(math.radians(side / 2))
    return (cos_c > 0) & (np.abs(xi) <= t) & (np.abs(eta) <= t)


def density_lookup(skymap):
    """A function (ra, dec) -> probability density per sr, straight from the map's NUNIQ tiles."""
    from astropy_healpix import lonlat_to_healpix
    import astropy.units as u

    uniq = np.asarray(skymap.uniq, dtype=np.int64)
    order = (np.floor(np.log2(uniq / 4.0) / 2)).astype(int)
    ipix = uniq - 4 * 4**order.astype(np.int64)
    shift = 2 * (29 - order)
    lo = ipix << shift
    by = np.argsort(lo)
    lo, dens, size = lo[by], np.asarray(skymap.probdensity)[by], (np.int64(1) << shift)[by]

    def density(ra, dec):
        idx = np.asarray(lonlat_to_healpix(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg, 1 << 29,
                                           order="nested"), dtype=np.int64)
        k = np.searchsorted(lo, idx, side="right") - 1
        ok = (k >= 0) & (idx < lo[np.clip(k, 0, None)] + size[np.clip(k, 0, None)])
        return np.where(ok, dens[np.clip(k, 0, None)], 0.0)

    return density


def square_probability(density, ra0, dec0, side=1.9, n=120):
    """A 1.9 deg field's probability by integrating the density over its tangent-plane square (n x n cells,
    each weighted by its solid angle dxi deta / (1 + xi^2 + eta^2)^1.5)."""
    t = math.tan(math.radians(side / 2))
    c = (np.arange(n) + 0.5) / n * 2 * t - t
    xi, eta = np.meshgrid(c, c)
    rho = np.hypot(xi, eta)
    cc = np.arctan(rho)
    a0, d0 = math.radians(ra0), math.radians(dec0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dec = np.arcsin(np.cos(cc) * math.sin(d0) + np.where(rho > 0, eta * np.sin(cc) * math.cos(d0) / rho, 0))
    ra = a0 + np.arctan2(xi * np.sin(cc), rho * math.cos(d0) * np.cos(cc) - eta * math.sin(d0) * np.sin(cc))
    weight = (2 * t / n) ** 2 / (1 + xi**2 + eta**2) ** 1.5
    return float(np.sum(density(np.degrees(ra) % 360, np.degrees(dec)) * weight))


def altaz(site, ra, dec, when):
    """(altitude of the position, altitude of the Sun) at a time, with astropy's AltAz frame."""
    import astropy.units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_sun
    from astropy.time import Time

    loc = EarthLocation.from_geodetic(site["lon"] * u.deg, site["lat"] * u.deg, site["elevation"] * u.m)
    t = Time(when.rstrip("Z"), scale="utc")
    frame = AltAz(obstime=t, location=loc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (float(SkyCoord(ra * u.deg, dec * u.deg).transform_to(frame).alt.deg),
                float(get_sun(t).transform_to(frame).alt.deg))


def bayestar():
    from astroportal.gw import skymaps

    return skymaps.read_fits((DATA / "bayestar.fits.gz").read_bytes(), "bayestar.fits.gz")


@pytest.fixture(scope="module")
def tarot_grid():
    from astroportal.gw import fields

    return fields.build_grid(TAROT)


# -- grids ---------------------------------------------------------------------------------------------------
def test_a_square_grid_tiles_the_whole_sky_with_small_overlaps(tarot_grid):
    from astroportal.gw import fields

    g = tarot_grid
    ids = g.field_ids
    assert len(ids) == len(set(ids)) > 11_000  # 41,253 deg2 / 3.61 deg2 = 11,427 fields at the least
    rng = np.random.default_rng(1)
    ra = rng.uniform(0, 360, 3000)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 3000)))
    # Every random position lies in some field's footprint (geometry) ...
    hits = np.zeros(len(ra), dtype=int)
    for chunk in range(0, len(ra), 500):
        sl = slice(chunk, chunk + 500)
        hits[sl] = inside_square(g.ra[:, None], g.dec[:, None], ra[None, sl], dec[None, sl]).sum(axis=0)
    assert (hits >= 1).all()
    # ... and rarely in more than one: the overlaps are the grid's small margins, not a double tiling.
    assert np.mean(hits > 1) < 0.15
    # The stored coverage (depth-29 ranges) covers the sky once over, up to those margins.
    covered = (g.hi - g.lo).sum() / (12 * 4**29)
    assert 1.0 <= covered < 1.15
    assert fields.footprint(TAROT).area_deg2 == pytest.approx(3.61, rel=1e-3)


@pytest.mark.parametrize("fov", [CIRCLE, {"shape": "rectangle", "width_deg": 3.0, "height_deg": 1.5}])
def test_circle_and_rectangle_grids_cover_the_sky(fov):
    from astroportal.gw import fields

    g = fields.build_grid(fov)
    fp = fields.footprint(fov)
    rng = np.random.default_rng(2)
    ra = rng.uniform(0, 360, 1500)
    dec = np.degrees(np.arcsin(rng.uniform(-0.98, 0.98, 1500)))
    found = np.zeros(len(ra), dtype=bool)
    for chunk in range(0, len(ra), 250):
        sl = slice(chunk, chunk + 250)
        found[sl] = fields.contains(fp, g.ra[:, None], g.dec[:, None], ra[None, sl], dec[None, sl]).any(axis=0)
    assert found.all()
    assert 1.0 <= (g.hi - g.lo).sum() / (12 * 4**29) < 1.9  # circles overlap more: they tile as squares


def test_field_of_view_refusals_say_what_to_do():
    from astroportal.gw import fields

    with pytest.raises(fields.FieldOfViewError, match="field_of_view"):
        fields.footprint(None)
    with pytest.raises(fields.FieldOfViewError, match="error boxes"):
        fields.build_grid({"shape": "square", "side_deg": 0.1})



def test_a_sites_planning_defaults_fill_what_a_request_leaves_out():
    from astroportal.config import Config, ConfigError
    from astroportal.gw import plan

    site = plan.configured_defaults(Config({"gw": {"plan": {"n_fields": 20, "airmass": 2.5}}}))
    chosen = plan.options(defaults=site)
    assert (chosen.n_fields, chosen.airmass) == (20, 2.5)
    # what the request says wins over the site's default
    asked = plan.options(n_fields=3, airmass=1.5, defaults=site)
    assert (asked.n_fields, asked.airmass) == (3, 1.5)
    # no configuration at all: upstream's own defaults
    bare = plan.configured_defaults(Config({}))
    assert (bare.n_fields, bare.airmass) == (plan.DEFAULT_N_FIELDS, plan.DEFAULT_AIRMASS)
    with pytest.raises(ConfigError, match="gw.plan.*config.yaml"):
        plan.configured_defaults(Config({"gw": {"plan": {"airmass": 0.5}}}))

# -- contained probability -------------------------------------------------------------------------------------
def test_contained_probability_matches_a_direct_integration_of_the_map(tarot_grid):
    from astroportal.gw import plan, skymaps

    sky = bayestar()
    lo, hi = skymaps.uniq_to_ranges(sky.uniq)
    prob = plan.SkyProbability(lo, hi, sky.probdensity).of_fields(tarot_grid)
    # Every field together holds the whole map (a bit more: the overlaps count twice here).
    assert 1.0 <= prob.sum() < 1.15
    density = density_lookup(sky)
    top = np.argsort(-prob)[:20]
    direct = np.array([square_probability(density, tarot_grid.ra[i], tarot_grid.dec[i]) for i in top])
    # A field's coverage is the ~275 pixels whose centres fall in it: its area, hence its probability, is that
    # of the true square within a few percent, with no bias.
    ratio = prob[top] / direct
    assert np.all(np.abs(ratio - 1) < 0.06), ratio
    assert abs(ratio.mean() - 1) < 0.015, ratio.mean()
    far = np.argsort(prob)[:5]  # fields far from the map hold (almost) nothing either way
    for i in far:
        assert square_probability(density, tarot_grid.ra[i], tarot_grid.dec[i]) < 1e-9 and prob[i] < 1e-9


def test_greedy_fields_do_not_count_the_same_sky_twice(tarot_grid):
    from astroportal.gw import plan, skymaps

    sky = bayestar()
    lo, hi = skymaps.uniq_to_ranges(sky.uniq)
    sp = plan.SkyProbability(lo, hi, sky.probdensity)
    prob = sp.of_fields(tarot_grid)
    cands = [plan.Candidate(0, int(i), float(prob[i]), *tarot_grid.ranges(int(i))) for i in np.flatnonzero(prob > 0)]
    picks = plan.greedy(sp, cands, {0: 60})
    assert len(picks) == 60 and len({c.index for c, _ in picks}) == 60
    gains = [g for _, g in picks]
    assert all(a >= b - 1e-12 for a, b in zip(gains, gains[1:]))  # greedy: each adds no more than the one before
    # What each adds is its probability minus the part already covered, computed here pixel by pixel (the map is
    # at most order 8, the grid's pixels are order 9: each pixel lies in one tile).
    order = tarot_grid.order
    shift = 2 * (29 - order)
    density = density_lookup(sky)
    from astropy_healpix import healpix_to_lonlat

    covered: set[int] = set()
    area = 4 * math.pi / (12 * 4**order)
    for c, gain in picks:
        l, h = tarot_grid.ranges(c.index)
        pix = np.concatenate([np.arange(a >> shift, b >> shift) for a, b in zip(l, h)])
        new = np.array(sorted(set(pix.tolist()) - covered), dtype=np.int64)
        lon, lat = healpix_to_lonlat(new, 1 << order, order="nested") if len(new) else (np.zeros(0), np.zeros(0))
        expected = float(np.sum(density(np.asarray(getattr(lon, "deg", lon)), np.asarray(getattr(lat, "deg", lat))))
                         * area)
        assert gain == pytest.approx(expected, rel=1e-6, abs=1e-12)
        covered |= set(pix.tolist())


# -- visibility --------------------------------------------------------------------------------------------------
def test_tonight_is_the_dark_window_and_polar_summer_has_none():
    from astroportal.gw import visibility as vis

    night = vis.tonight(vis.Site(**CALERN), "2026-11-26")
    assert night.exists and night.start.isot < night.end.isot
    assert 10 < (night.end - night.start).to_value("hour") < 14
    for t in (night.times[0], night.times[-1]):
        assert altaz(CALERN, 0, 0, t.isot)[1] < -12
    svalbard = vis.tonight(vis.Site(78.2, 15.6, 0.0), "2026-06-21")
    assert not svalbard.exists and "does not go below -12" in svalbard.reason


def test_field_altitudes_agree_with_astropy_altaz():
    from astroportal.gw import visibility as vis

    site = vis.Site(**CALERN)
    night = vis.tonight(site, "2026-11-26")
    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(0, 360, 20), rng.uniform(-40, 89, 20)
    alt = vis.altitudes(site, night.times[::30], ra, dec)
    for k, t in enumerate(night.times[::30]):
        for i in range(0, 20, 4):
            assert alt[i, k] == pytest.approx(altaz(CALERN, ra[i], dec[i], t.isot)[0], abs=2e-3)


# -- the API -------------------------------------------------------------------------------------------------------
def _swap(xml: str, tag: str, value: str) -> str:
    return re.sub(rf"<{tag}>[^<]*</{tag}>", f"<{tag}>{value}</{tag}>", xml, count=1)


def grb_notice(ra: float, dec: float, radius: float, when: str) -> str:
    """The Fermi GBM sample notice moved to another position, radius and time (a new trigger)."""
    xml = (DATA / "GRB180116A_Fermi_GBM_Gnd_Pos.xml").read_text()
    trig = str(uuid.uuid4().int % 10**9)
    xml = re.sub(r'(name="TrigID"\s+value=")[^"]*', rf"\g<1>{trig}", xml)
    xml = xml.replace("GBM_Gnd_Pos_", f"GBM_Gnd_Pos_{trig}_")
    for tag, value in (("C1", f"{ra:.4f}"), ("C2", f"{dec:.4f}"), ("Error2Radius", f"{radius:.4f}"),
                       ("ISOTime", when)):
        xml = _swap(xml, tag, value)
    return xml


@pytest.fixture(scope="module")
def network(api, admin_token):
    """Telescopes and instruments: two 1.9 deg imagers at Calern (same grid), a 1 deg circle in Chile, one
    without a field of view, one on a telescope without a site, one at Svalbard. -> {name: (tel_id, inst_id)}"""
    tag = uuid.uuid4().hex[:6]
    out = {}

    def add(name, site, fov, fixed=True):
        tel = {"name": f"{name}-{tag}", "nickname": name, "diameter": 0.25, "fixed_location": fixed,
               **({"lat": site["lat"], "lon": site["lon"], "elevation": site["elevation"]} if site else {})}
        status, body = api.post("/api/telescope", admin_token, json=tel)
        assert status == 200, body
        tel_id = body["data"]["id"]
        inst = {"name": f"{name}-cam-{tag}", "type": "imager", "telescope_id": tel_id, "filters": []}
        if fov is not None:
            inst["field_of_view"] = fov
        status, body = api.post("/api/instrument", admin_token, json=inst)
        assert status == 200, body
        out[name] = (tel_id, body["data"]["id"])

    add("calern-a", CALERN, TAROT)
    add("calern-b", CALERN, TAROT)
    add("chile", {"lat": -29.25992, "lon": -70.7326, "elevation": 2398.0}, CIRCLE)
    add("nofov", CALERN, None)
    add("nosite", None, TAROT, fixed=False)
    add("svalbard", {"lat": 78.2, "lon": 15.6, "elevation": 0.0}, TAROT)
    yield out
    for tel_id, _ in out.values():
        api.delete(f"/api/telescope/{tel_id}", admin_token)


@pytest.fixture(scope="module")
def gw190425(db):
    """GW190425 (flat bayestar map, ~10,000 deg2), ingested as its VOEvent with our copy of the map."""
    from astroportal.gw.ingest import ingest_notice
    from astroportal.gw.notices import parse

    with db() as s:
        ingest_notice(s, parse((DATA / "GW190425_initial.xml").read_bytes()),
                      fetch=lambda url: (DATA / url.rsplit("/", 1)[-1]).read_bytes())
    return "S190425z"


def get_plan(api, token, key, path="plan", **params):
    status, body = api.get(f"/api/gcn_event/{key}/{path}", token, params=params)
    return status, body


def check_visible(plan_rows, site, airmass):
    from astroportal.domain.ephemeris import airmass_from_altitude

    for row in plan_rows:
        for when in (row["window_start"], row["window_end"], row["best_time"]):
            alt, sun = altaz(site, row["ra"], row["dec"], when)
            assert sun < -12 + 1e-3, (row, when, sun)
            assert float(airmass_from_altitude(np.array([alt]))[0]) <= airmass + 2e-3, (row, when, alt)
        assert row["window_start"] <= row["best_time"] <= row["window_end"]


def test_a_plan_has_distinct_fields_observable_tonight_with_their_probability(api, role_tokens, network, gw190425):
    token = role_tokens["View only"]  # anyone logged in may read plans
    inst = network["calern-a"][1]
    status, body = get_plan(api, token, gw190425, instrument_id=inst, n_fields=25, airmass=2.5,
                            date=GW190425_NIGHT)
    assert status == 200, body
    (p,) = body["data"]["plans"]
    rows = p["fields"]
    assert len(rows) == 25 and p["reason"] is None
    ids = [r["field_id"] for r in rows]
    assert len(set(ids)) == 25
    # No chosen field overlaps another beyond the grid's margins: no field's centre lies in another field.
    ra = np.array([r["ra"] for r in rows])
    dec = np.array([r["dec"] for r in rows])
    inside = inside_square(ra[:, None], dec[:, None], ra[None, :], dec[None, :])
    assert inside.sum() == len(rows)  # each contains only its own centre
    # probabilities: what each adds, greedy order, cumulative
    probs = [r["probability"] for r in rows]
    assert all(a >= b - 1e-12 for a, b in zip(probs, probs[1:]))
    assert np.allclose(np.cumsum(probs), [r["cumulative_probability"] for r in rows])
    assert p["probability"] == pytest.approx(sum(probs))
    check_visible(rows, CALERN, 2.5)
    # the plan over the same night for a lower airmass limit keeps to it
    status, body = get_plan(api, token, gw190425, instrument_id=inst, n_fields=10, airmass=1.5, date=GW190425_NIGHT)
    assert status == 200
    check_visible(body["data"]["plans"][0]["fields"], CALERN, 1.5)


def test_the_field_grid_is_stored_once_and_rebuilt_when_the_field_of_view_changes(api, admin_token, network,
                                                                                   gw190425, db):
    from sqlalchemy import text

    inst = network["calern-b"][1]
    assert get_plan(api, admin_token, gw190425, instrument_id=inst, date=GW190425_NIGHT)[0] == 200
    with db() as s:
        first = s.execute(text("SELECT count(*), min(field_of_view::text) FROM instrument_fields "
                               "WHERE instrument_id = :i"), {"i": inst}).one()
    assert first[0] > 11_000 and '"side_deg": 1.9' in first[1]
    status, body = api.put(f"/api/instrument/{inst}", admin_token, json={"field_of_view": {"shape": "square",
                                                                                           "side_deg": 4.0}})
    assert status == 200, body
    status, body = get_plan(api, admin_token, gw190425, instrument_id=inst, date=GW190425_NIGHT, n_fields=5)
    assert status == 200, body
    with db() as s:
        second = s.execute(text("SELECT count(*), min(field_of_view::text) FROM instrument_fields "
                                "WHERE instrument_id = :i"), {"i": inst}).one()
    assert 2_000 < second[0] < 3_500 and '"side_deg": 4.0' in second[1]
    ra = np.array([r["ra"] for r in body["data"]["plans"][0]["fields"]])
    dec = np.array([r["dec"] for r in body["data"]["plans"][0]["fields"]])
    assert inside_square(ra[:, None], dec[:, None], ra[None, :], dec[None, :], side=4.0).sum() == len(ra)
    assert api.put(f"/api/instrument/{inst}", admin_token, json={"field_of_view": TAROT})[0] == 200


def test_the_network_plan_gives_each_field_to_one_telescope(api, role_tokens, network, gw190425):
    token = role_tokens["Full user"]
    status, body = get_plan(api, token, gw190425, "network_plan", n_fields=15, date=GW190425_NIGHT)
    assert status == 200, body
    data = body["data"]
    plans = {p["instrument_id"]: p for p in data["plans"]}
    a, b, chile = network["calern-a"][1], network["calern-b"][1], network["chile"][1]
    assert {a, b, chile} <= set(plans)
    assert network["nofov"][1] not in plans and network["nosite"][1] not in plans
    assert any(s["instrument_id"] == network["nosite"][1] and "site" in s["reason"] for s in data["skipped"])
    sval = plans[network["svalbard"][1]]
    assert sval["fields"] == [] and "does not go below -12" in sval["reason"]  # midnight Sun in late April
    # Calern's two cameras share a grid: the same field never goes to both.
    both = [(r["ra"], r["dec"]) for p in (plans[a], plans[b]) for r in p["fields"]]
    assert len(both) == len(set(both)) and len(both) > 15
    # No field of the plan has its centre in another field of the same camera type.
    ra = np.array([x for x, _ in both])
    dec = np.array([y for _, y in both])
    assert inside_square(ra[:, None], dec[:, None], ra[None, :], dec[None, :]).sum() == len(both)
    total = sum(r["probability"] for p in data["plans"] for r in p["fields"])
    assert data["probability"] == pytest.approx(total)
    for p in data["plans"]:
        site = CALERN if p["instrument_id"] in (a, b) else {"lat": -29.25992, "lon": -70.7326, "elevation": 2398.0}
        if p["instrument_id"] in (a, b, chile):
            check_visible(p["fields"], site, 2.0)


def test_exports_as_csv_and_json_per_telescope(api, role_tokens, network, gw190425):
    token = role_tokens["Full user"]
    tel, inst = network["calern-a"]
    status, body = get_plan(api, token, gw190425, "network_plan", n_fields=8, date=GW190425_NIGHT,
                            telescope_id=tel)
    assert status == 200
    rows = [r for p in body["data"]["plans"] for r in p["fields"]]
    assert {p["telescope_id"] for p in body["data"]["plans"]} == {tel}
    for r in rows:
        assert set(r) >= {"field_id", "ra", "dec", "probability", "cumulative_probability", "window_start",
                          "window_end", "best_time", "airmass"}
    status, text_body = get_plan(api, token, gw190425, "network_plan", n_fields=8, date=GW190425_NIGHT,
                                 telescope_id=tel, format="csv")
    assert status == 200
    table = list(csv.DictReader(io.StringIO(text_body)))
    assert list(table[0]) == ["telescope", "instrument", "field_id", "ra", "dec", "probability",
                              "cumulative_probability", "window_start", "window_end", "best_time", "airmass"]
    assert [int(r["field_id"]) for r in table] == [r["field_id"] for r in rows]
    assert [float(r["ra"]) for r in table] == pytest.approx([r["ra"] for r in rows], abs=1e-6)
    assert float(table[-1]["cumulative_probability"]) == pytest.approx(rows[-1]["cumulative_probability"], rel=1e-5)


def test_a_small_error_box_gets_one_field_centred_on_it(api, admin_token, network):
    # The Swift sample's position (RA 64.74, Dec 13.35, 3 arcmin) moved in time to a night when it is up at
    # midnight from Calern (the Sun opposite it in early December).
    trig = str(2_000_000 + uuid.uuid4().int % 7_000_000)  # a trigger of its own: no other test's event
    xml = (DATA / "SWIFT_1125809-092.xml").read_text().replace("1125809", trig)
    xml = _swap(xml, "ISOTime", "2026-12-02T11:11:52.12")
    status, body = api.post("/api/gcn_event", admin_token, json={"xml": xml})
    assert status == 200, body
    key = body["data"]["dateobs"]
    status, body = get_plan(api, admin_token, key, instrument_id=network["calern-a"][1], date="2026-12-03",
                            n_fields=10)
    assert status == 200, body
    data = body["data"]
    assert data["single_field"] and data["error_box"]["radius_deg"] == pytest.approx(0.05)
    (row,) = data["plans"][0]["fields"]
    assert (row["ra"], row["dec"]) == pytest.approx((64.7373, 13.3517), abs=1e-6)
    assert row["field_id"] == 0 and row["probability"] > 0.999
    check_visible([row], CALERN, 2.0)
    # the network plan gives that one field to one telescope only
    status, body = get_plan(api, admin_token, key, "network_plan", date="2026-12-03")
    assert status == 200
    given = [r for p in body["data"]["plans"] for r in p["fields"]]
    assert len(given) == 1


def test_a_region_never_up_from_the_site_is_never_planned(api, admin_token, network):
    # A 4 deg error circle around Dec -80: never above the horizon from Calern (latitude 43.75).
    status, body = api.post("/api/gcn_event", admin_token,
                            json={"xml": grb_notice(120.0, -80.0, 4.0, "2026-11-20T03:00:00.00")})
    assert status == 200, body
    key = body["data"]["dateobs"]
    status, body = get_plan(api, admin_token, key, instrument_id=network["calern-a"][1], date="2026-11-26")
    assert status == 200, body
    (p,) = body["data"]["plans"]
    assert p["fields"] == [] and p["fields_with_probability"] > 0
    assert "airmass" in p["reason"] and "none of the" in p["reason"]
    # Chile sees it: the network plan gives it only fields from there.
    status, body = get_plan(api, admin_token, key, "network_plan", date="2026-11-26")
    plans = {q["instrument_id"]: q for q in body["data"]["plans"]}
    assert plans[network["calern-a"][1]]["fields"] == [] and plans[network["chile"][1]]["fields"]
    for row in plans[network["chile"][1]]["fields"]:
        assert row["dec"] < -70


def test_daytime_only_gives_an_empty_plan_with_the_reason(api, admin_token, network):
    import astropy.units as u
    from astropy.coordinates import get_sun
    from astropy.time import Time

    sun = get_sun(Time("2026-11-26T12:00:00")).icrs
    # a 3 deg error circle on the Sun: up only in daytime
    status, body = api.post("/api/gcn_event", admin_token, json={"xml": grb_notice(
        float(sun.ra.to_value(u.deg)), float(sun.dec.to_value(u.deg)), 3.0, "2026-11-26T06:00:00.00")})
    assert status == 200, body
    key = body["data"]["dateobs"]
    status, body = get_plan(api, admin_token, key, instrument_id=network["calern-a"][1], date="2026-11-26")
    assert status == 200
    (p,) = body["data"]["plans"]
    assert p["fields"] == [] and "dark time" in p["reason"]
    # a site where the Sun never sets that far (Svalbard in June): no night at all
    status, body = get_plan(api, admin_token, key, instrument_id=network["svalbard"][1], date="2026-06-21")
    (p,) = body["data"]["plans"]
    assert p["fields"] == [] and "does not go below -12" in p["reason"] and p["night"]["exists"] is False


@pytest.mark.parametrize("params, status, words", [
    ({"instrument_id": "nofov"}, 400, "no field of view"),
    ({"instrument_id": "nosite"}, 400, "no fixed site"),
    ({}, 400, "instrument_id"),
    ({"instrument_id": "x1"}, 400, "instrument ids"),
    ({"instrument_id": "calern-a", "n_fields": 0}, 400, "n_fields"),
    ({"instrument_id": "calern-a", "airmass": 0.5}, 400, "airmass"),
    ({"instrument_id": "calern-a", "date": "2026-13-45"}, 400, "date"),
    ({"instrument_id": "calern-a", "format": "xml"}, 400, "format"),
    ({"instrument_id": "calern-a", "localization_name": "nope"}, 404, "no localization named"),
    ({"instrument_id": 999999999}, 404, "no instrument"),
])
def test_bad_requests_are_refused_with_the_reason(api, admin_token, network, gw190425, params, status, words):
    params = {k: (network[v][1] if k == "instrument_id" and v in network else v) for k, v in params.items()}
    got, body = get_plan(api, admin_token, gw190425, **{"date": GW190425_NIGHT, **params})
    assert got == status, body
    assert words in body["message"]


def test_unknown_event_is_404_and_plans_need_a_login(api, admin_token, network):
    status, body = get_plan(api, admin_token, "2001-01-01T00:00:00", instrument_id=network["calern-a"][1])
    assert status == 404 and "no GCN event" in body["message"]
    status, body = get_plan(api, admin_token, "2001-01-01T00:00:00", "network_plan")
    assert status == 404
    assert get_plan(api, None, "S190425z", "network_plan")[0] == 401
