"""GCN notices into events and localizations, on SkyPortal's public sample notices (tests/data/gcn, BSD-3):
parsing, sky maps (multi-order, flat, error circles), credible areas and ranges, and idempotent ingest."""

from __future__ import annotations

import base64
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

DATA = Path(__file__).parent / "data" / "gcn"
SR_DEG2 = (180 / math.pi) ** 2


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def notice(name: str):
    from astroportal.gw.notices import parse

    return parse(raw(name))


def fetch_test_data(url: str) -> bytes:
    """The GW190425 VOEvent names its sky map 'skyportal/tests/data/bayestar.fits.gz': read our copy."""
    return (DATA / url.rsplit("/", 1)[-1]).read_bytes()


def preliminary_skymap():
    from astroportal.gw import skymaps

    alert = json.loads(raw("igwn_gwalert_preliminary.json"))
    return skymaps.read_fits(base64.b64decode(alert["event"]["skymap"]), "bayestar")


def direct_area(probdensity, uniq, p):
    """The p credible area straight from a multi-order table, by the stated rule (tiles sorted by density,
    each included while the probability before it is below p)."""
    order = np.floor(np.log2(uniq / 4) / 2).astype(int)
    area = 4 * np.pi / (12 * 4.0 ** order)
    prob = probdensity * area
    prob = prob / prob.sum()
    idx = np.argsort(-probdensity, kind="stable")
    before = np.concatenate(([0.0], np.cumsum(prob[idx])[:-1]))
    return area[idx][before < p].sum() * SR_DEG2


# -- parsing -------------------------------------------------------------------------------------------------------
def test_the_gwalert_preliminary_is_read_with_its_properties_and_is_a_test_event():
    n = notice("igwn_gwalert_preliminary.json")
    assert (n.stream, n.notice_type, n.trigger_id) == ("igwn.gwalert", "PRELIMINARY", "MS260605l")
    assert n.dateobs.isoformat() == "2026-06-05T11:57:26.395000"
    assert n.properties["FAR"] == pytest.approx(5.176954877338635e-16)
    assert n.properties["HasNS"] == 1.0 and n.properties["HasMassGap"] == 0.0
    assert n.properties["classification"]["BNS"] > 0.99
    assert set(n.tags) == {"GW", "Significant", "BNS"}
    assert n.is_test  # MS... superevent, search MDC
    assert len(n.skymaps) == 1 and n.skymaps[0].data.startswith(b"SIMPLE")


def test_the_retraction_names_its_superevent_and_no_time():
    n = notice("igwn_gwalert_retraction.json")
    assert n.is_retraction and n.trigger_id == "MS260605l" and n.dateobs is None and n.skymaps == []
    assert "RETRACTED" in n.tags


def test_the_gw190425_voevent_refers_to_its_flat_skymap():
    n = notice("GW190425_initial.xml")
    assert (n.stream, n.notice_type, n.trigger_id) == ("voevent", "INITIAL", "S190425z")
    assert n.ivorn == "ivo://gwnet/LVC#S190425z-1-Initial"
    assert n.dateobs.isoformat() == "2019-04-25T08:18:05.017147"
    assert n.properties["FAR"] == pytest.approx(4.53764787126e-13) and n.properties["HasRemnant"] == 1.0
    assert "BNS" in n.tags and "GW" in n.tags and not n.is_test
    assert n.skymaps[0].url.endswith("bayestar.fits.gz") and n.skymaps[0].data is None


@pytest.mark.parametrize("name, tags, ra, dec, err, notice_type", [
    ("GRB180116A_Fermi_GBM_Gnd_Pos.xml", {"Fermi", "GRB"}, 214.74, 28.14, 11.19, "GBM_Gnd_Pos"),
    ("SWIFT_1125809-092.xml", {"Swift", "GRB"}, 64.7373, 13.3517, 0.05, "BAT_GRB_Pos"),
])
def test_grb_notices_give_a_position_and_error_circle(name, tags, ra, dec, err, notice_type):
    n = notice(name)
    assert set(n.tags) == tags and n.notice_type == notice_type and not n.is_test
    assert n.skymaps[0].circle == (ra, dec, err)


@pytest.mark.parametrize("content, words", [
    (b"hello", "neither JSON"),
    (b"{not json", "not valid JSON"),
    (b'{"alert_type": "PRELIMINARY"}', "no superevent_id"),
    (b'{"superevent_id": "S1", "alert_type": "MAYBE", "time_created": "2026-01-01T00:00:00Z"}', "alert_type"),
    (b"<VOEvent", "not well-formed XML"),
    (b"<html/>", "not a <VOEvent>"),
])
def test_bad_notices_are_refused_with_the_reason(content, words):
    from astroportal.gw.notices import NoticeError, parse

    with pytest.raises(NoticeError) as err:
        parse(content)
    assert words in str(err.value)


# -- sky maps ------------------------------------------------------------------------------------------------------
def test_multiorder_areas_match_a_direct_computation_and_ranges_cover_the_tiles():
    from astroportal.gw import skymaps

    sky = preliminary_skymap()
    assert sky.distmean == pytest.approx(39.588357871326885) and sky.diststd == pytest.approx(6.038130306012909)
    lo, hi, cumprob = skymaps.cumulative_probability(sky)
    for p in (0.5, 0.9):
        assert skymaps.credible_area_deg2(sky, p, cumprob) == pytest.approx(direct_area(sky.probdensity, sky.uniq, p))
    area90 = skymaps.credible_area_deg2(sky, 0.9, cumprob)
    assert 1 < area90 < 100  # a three-detector BNS: a few to tens of square degrees
    # ranges: disjoint, together exactly the sphere at depth 29, each tile's own cells
    order = np.argsort(lo)
    assert (hi[order][:-1] == lo[order][1:]).all() and lo[order][0] == 0 and hi[order][-1] == 12 * 4**29
    orders = skymaps.uniq_orders(sky.uniq)
    assert ((hi - lo) == 4 ** (29 - orders)).all()
    assert (lo >> (2 * (29 - orders)) == sky.uniq - 4 * 4**orders).all()
    # the densest tile has nothing before it; the credible-region rule includes the tile crossing p
    assert cumprob.min() == 0.0 and cumprob[np.argmax(sky.probdensity)] == 0.0
    inside = cumprob < 0.9
    assert sky.probabilities[inside].sum() >= 0.9
    assert sky.probabilities[inside].sum() - sky.probabilities[inside].max() < 0.9


def test_a_position_falls_in_the_tile_whose_range_holds_its_depth29_index():
    """Cross-check against mocpy: the densest tile's MOC contains the position found through the ranges."""
    from astropy.coordinates import Longitude, Latitude
    import astropy.units as u
    from mocpy import MOC

    from astroportal.gw import skymaps

    sky = preliminary_skymap()
    lo, hi, _ = skymaps.cumulative_probability(sky)
    rng = np.random.default_rng(5)
    ra, dec = rng.uniform(0, 360, 300), np.degrees(np.arcsin(rng.uniform(-1, 1, 300)))
    idx = skymaps.healpix29(ra, dec)
    order = np.argsort(lo)
    tile = order[np.searchsorted(lo[order], idx, side="right") - 1]
    assert ((lo[tile] <= idx) & (idx < hi[tile])).all()
    orders = skymaps.uniq_orders(sky.uniq[tile])
    for k in range(0, 300, 30):
        moc = MOC.from_healpix_cells(np.array([sky.uniq[tile[k]] - 4 * 4 ** orders[k]]), np.array([orders[k]]),
                                     max_depth=int(orders[k]))
        assert moc.contains_lonlat(Longitude(ra[k:k + 1] * u.deg), Latitude(dec[k:k + 1] * u.deg))[0]


def test_the_flat_gw190425_map_becomes_a_few_thousand_tiles_keeping_its_probability():
    from astropy.table import Table

    from astroportal.gw import skymaps

    data = raw("bayestar.fits.gz")
    sky = skymaps.read_fits(data, "bayestar.fits.gz")
    assert 1000 < sky.uniq.size < 30000
    assert sky.probabilities.sum() == pytest.approx(1.0)
    # the 90% area against the flat map's own (every pixel at nside 256)
    flat = np.asarray(Table.read(DATA / "bayestar.fits.gz")["PROB"], dtype=float)
    flat = np.sort(flat)[::-1] / flat.sum()
    before = np.concatenate(([0.0], np.cumsum(flat)[:-1]))
    pixel_deg2 = 4 * np.pi / flat.size * SR_DEG2
    direct = (before < 0.9).sum() * pixel_deg2
    assert skymaps.credible_area_deg2(sky, 0.9) == pytest.approx(direct, rel=0.02)
    assert 8000 < direct < 12000  # GW190425 (LV only): about 10,000 deg2
    assert sky.distmean == pytest.approx(154.6194471943321)
    # every coarse tile merged only low-probability pixels
    orders = skymaps.uniq_orders(sky.uniq)
    assert (sky.probabilities[orders < 8] < skymaps.COARSEN_MAX_PROB).all()


@pytest.mark.parametrize("radius", [0.05, 1.0, 11.19])
def test_an_error_circle_is_a_gaussian_with_the_radius_as_sigma(radius):
    from astroportal.gw import skymaps

    sky = skymaps.from_error_circle("c", 64.7373, 13.3517, radius)
    assert sky.probabilities.sum() == pytest.approx(1.0)
    # a 2-D Gaussian holds p within sigma * sqrt(-2 ln(1 - p)): that disc's area, within the tiles' granularity
    for p in (0.5, 0.9):
        r = math.radians(radius * math.sqrt(-2 * math.log(1 - p)))
        expected = 2 * math.pi * (1 - math.cos(r)) * SR_DEG2
        assert skymaps.credible_area_deg2(sky, p) == pytest.approx(expected, rel=0.08)
    assert sky.uniq.size < 10000


def test_contours_enclose_the_credible_region(tmp_path):
    from astroportal.gw import skymaps
    from astroportal.gw.contours import credible_contours

    sky = preliminary_skymap()
    lo, hi, cumprob = skymaps.cumulative_probability(sky)
    started = time.perf_counter()
    geo = credible_contours(sky, lo, cumprob)
    assert time.perf_counter() - started < 5
    kinds = [(f["geometry"]["type"], f["properties"]) for f in geo["features"]]
    assert kinds[0][0] == "Point" and [k[1].get("credible_level") for k in kinds[1:]] == [50, 90]
    for feature in geo["features"][1:]:
        lines = feature["geometry"]["coordinates"]
        assert lines and all(line[0] == line[-1] for line in lines)  # closed
        for line in lines:
            pts = np.array(line)
            assert ((0 <= pts[:, 0]) & (pts[:, 0] < 360) & (np.abs(pts[:, 1]) <= 90)).all()
    # the densest point is inside the 50% line, which is inside the 90% line: compare the lines' extents
    centre = np.array(geo["features"][0]["geometry"]["coordinates"])
    fifty = np.concatenate([np.array(l) for l in geo["features"][1]["geometry"]["coordinates"]])
    ninety = np.concatenate([np.array(l) for l in geo["features"][2]["geometry"]["coordinates"]])
    assert fifty[:, 1].min() <= centre[1] <= fifty[:, 1].max()
    assert ninety[:, 1].min() <= fifty[:, 1].min() and fifty[:, 1].max() <= ninety[:, 1].max()
    # contour vertices lie on the region's edge: the tile under each vertex is near p on one side
    idx = skymaps.healpix29(ninety[:, 0], ninety[:, 1])
    order = np.argsort(lo)
    tile = order[np.searchsorted(lo[order], idx, side="right") - 1]
    near = cumprob[tile]
    assert np.median(np.abs(near - 0.9)) < 0.1


def test_unreadable_skymaps_are_refused_with_the_reason():
    from astroportal.gw import skymaps

    for data, words in ((b"not fits", "not a FITS file"), (b"\x1f\x8bgarbage", "does not decompress")):
        with pytest.raises(skymaps.SkymapError) as err:
            skymaps.read_fits(data, "x")
        assert words in str(err.value)
    # tiles that overlap: a repeated UNIQ, and a tile inside another
    for uniq in ([4, 4, 5], [4, 16, 5]):
        data = skymaps.to_multiorder_fits(np.array(uniq), np.ones(len(uniq)))
        with pytest.raises(skymaps.SkymapError) as err:
            skymaps.read_fits(data, "x")
        assert "overlap" in str(err.value)
    zero = skymaps.to_multiorder_fits(np.array([4, 5]), np.zeros(2))
    with pytest.raises(skymaps.SkymapError) as err:
        skymaps.read_fits(zero, "x")
    assert "no probability" in str(err.value)


# -- ingest --------------------------------------------------------------------------------------------------------
def counts(db, event_id):
    """Rows of each GCN table that belong to the event."""
    from astroportal.models import GcnNotice, GcnProperty, GcnTag, Localization, LocalizationTile

    with db() as s:
        out = {m.__name__: s.scalar(select(func.count()).select_from(m).where(m.event_id == event_id))
               for m in (GcnNotice, GcnProperty, GcnTag, Localization)}
        out["LocalizationTile"] = s.scalar(select(func.count()).select_from(LocalizationTile).where(
            LocalizationTile.localization_id.in_(select(Localization.id).where(Localization.event_id == event_id))))
    return out


def test_preliminary_then_retraction_then_the_same_again(db):
    from astroportal.gw.ingest import ingest_notice
    from astroportal.models import GcnEvent, Localization, LocalizationTile

    with db() as s:
        first = ingest_notice(s, notice("igwn_gwalert_preliminary.json"))
    assert first.created and not first.duplicate and len(first.localization_ids) == 1
    assert set(first.tags) == {"GW", "Significant", "BNS"}
    assert first.seconds["total"] < 10
    with db() as s:
        event = s.get(GcnEvent, first.event_id)
        assert event.trigger_id == "MS260605l" and event.aliases == ["MS260605l"]
        loc = s.get(Localization, first.localization_ids[0])
        assert loc.localization_name == "bayestar.multiorder.fits"
        assert loc.distmean == pytest.approx(39.588357871326885)
        sky = preliminary_skymap()
        assert loc.area_90 == pytest.approx(direct_area(sky.probdensity, sky.uniq, 0.9))
        assert loc.contour["type"] == "FeatureCollection"
        tiles = s.execute(select(LocalizationTile.lo, LocalizationTile.hi, LocalizationTile.cumprob,
                                 LocalizationTile.probdensity, LocalizationTile.distmu)
                          .where(LocalizationTile.localization_id == loc.id).order_by(LocalizationTile.lo)).all()
    assert len(tiles) == sky.uniq.size == 19200
    lo = np.array([t[0] for t in tiles])
    hi = np.array([t[1] for t in tiles])
    assert lo[0] == 0 and (hi[:-1] == lo[1:]).all() and hi[-1] == 12 * 4**29
    # the tiles with cumprob < 0.9 are exactly the area_90 (the stated rule)
    size_deg2 = (hi - lo) / 4.0**29 * 4 * np.pi / 12 * SR_DEG2
    assert size_deg2[np.array([t[2] for t in tiles]) < 0.9].sum() == pytest.approx(loc.area_90)
    before = counts(db, first.event_id)

    with db() as s:
        again = ingest_notice(s, notice("igwn_gwalert_preliminary.json"))
    assert again.duplicate and again.event_id == first.event_id and again.localization_ids == []
    assert counts(db, first.event_id) == before

    with db() as s:
        retraction = ingest_notice(s, notice("igwn_gwalert_retraction.json"))
    assert retraction.event_id == first.event_id and not retraction.created
    assert "RETRACTED" in retraction.tags
    after = counts(db, first.event_id)
    assert after["GcnNotice"] == before["GcnNotice"] + 1 and after["Localization"] == before["Localization"]
    with db() as s:
        assert ingest_notice(s, notice("igwn_gwalert_retraction.json")).duplicate
    assert counts(db, first.event_id) == after


def test_an_update_adds_a_localization(db):
    from astroportal.gw.ingest import ingest_notice
    from astroportal.gw.notices import parse

    alert = json.loads(raw("igwn_gwalert_preliminary.json"))
    alert["superevent_id"] = "MS260605upd"
    alert["event"]["time"] = "2026-06-05T10:00:00.5Z"
    with db() as s:
        first = ingest_notice(s, parse(json.dumps(alert).encode()), contours=False)
    alert["alert_type"] = "UPDATE"
    alert["time_created"] = "2026-06-05T12:30:00Z"
    alert["event"]["time"] = "2026-06-05T10:00:00.6Z"  # a new preferred event: the superevent is the same
    alert["event"]["far"] = 1e-20
    with db() as s:
        update = ingest_notice(s, parse(json.dumps(alert).encode()), contours=False)
    assert update.event_id == first.event_id and not update.created and not update.duplicate
    assert len(update.localization_ids) == 1 and update.localization_ids != first.localization_ids
    from astroportal.gw.events import get_event

    with db() as s:
        event = get_event(s, "MS260605upd")
    assert [n["notice_type"] for n in event["notices"]] == ["PRELIMINARY", "UPDATE"]
    assert [loc["localization_name"] for loc in event["localizations"]] == [
        "bayestar.multiorder.fits", "bayestar.multiorder.fits,1"]
    assert event["properties"]["FAR"] == 1e-20  # the newest notice's value


def test_the_gw190425_voevent_with_its_flat_skymap(db):
    from astroportal.gw.ingest import ingest_notice

    with db() as s:
        result = ingest_notice(s, notice("GW190425_initial.xml"), fetch=fetch_test_data)
    from astroportal.gw.events import get_event

    with db() as s:
        event = get_event(s, "S190425z")
    assert event["dateobs"].isoformat() == "2019-04-25T08:18:05.017147"
    assert {"GW", "BNS"} <= set(event["tags"])
    (loc,) = event["localizations"]
    assert loc["localization_name"] == "bayestar.fits.gz" and 8000 < loc["area_90"] < 12000
    assert loc["distmean"] == pytest.approx(154.6194471943321)
    assert result.seconds["total"] < 15


def test_a_voevent_skymap_url_is_not_downloaded_and_nothing_is_written(db):
    from astroportal.gw.ingest import ingest_notice
    from astroportal.gw.skymaps import SkymapError
    from astroportal.models import GcnEvent

    with db() as s:
        before = s.scalar(select(func.count()).select_from(GcnEvent))
        with pytest.raises(SkymapError) as err:
            ingest_notice(s, notice("GW190425_initial.xml").__class__(**{
                **notice("GW190425_initial.xml").__dict__, "content": raw("GW190425_initial.xml") + b" "}))
        assert "does not download" in str(err.value)
        s.rollback()
        assert s.scalar(select(func.count()).select_from(GcnEvent)) == before


def test_grb_notices_make_events_with_circles(db):
    from astroportal.gw.ingest import ingest_notice
    from astroportal.models import GcnEvent, Localization

    for name, tag, area90_max in (("GRB180116A_Fermi_GBM_Gnd_Pos.xml", "Fermi", 3000),
                                  ("SWIFT_1125809-092.xml", "Swift", 0.1)):
        with db() as s:
            result = ingest_notice(s, notice(name))
        with db() as s:
            loc = s.get(Localization, result.localization_ids[0])
            assert tag in result.tags and "GRB" in result.tags
            assert 0 < loc.area_90 < area90_max
            assert s.get(GcnEvent, result.event_id).aliases


def test_a_retraction_of_an_unknown_event_is_refused(db):
    from astroportal.gw.ingest import UnknownEvent, ingest_notice
    from astroportal.gw.notices import parse

    body = json.loads(raw("igwn_gwalert_retraction.json"))
    body["superevent_id"] = "S000000nothing"
    with db() as s, pytest.raises(UnknownEvent) as err:
        ingest_notice(s, parse(json.dumps(body).encode()))
    assert "S000000nothing" in str(err.value)


def test_a_ring_ordered_flat_map_reads_as_its_nested_twin(tmp_path):
    """The same map written in RING order gives the same multi-order tiles as the NESTED original."""
    from astropy.io import fits
    from astropy_healpix.core import nested_to_ring

    from astroportal.gw import skymaps

    with fits.open(DATA / "bayestar.fits.gz") as hdus:
        table = hdus[1]
        nside = table.header["NSIDE"]
        prob = np.asarray(table.data["PROB"], dtype=float)
        ring = np.empty_like(prob)
        ring[np.asarray(nested_to_ring(np.arange(prob.size), nside))] = prob
        hdu = fits.BinTableHDU.from_columns([fits.Column("PROB", "D", array=ring)])
        hdu.header.update({"PIXTYPE": "HEALPIX", "ORDERING": "RING", "NSIDE": nside})
        path = tmp_path / "ring.fits"
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    nested = skymaps.read_fits((DATA / "bayestar.fits.gz").read_bytes(), "n")
    ringed = skymaps.read_fits(path.read_bytes(), "r")
    assert (ringed.uniq == nested.uniq).all()
    assert np.allclose(ringed.probdensity, nested.probdensity)
