"""The broker client's mapping of one alert to portal writes, field by field: what a NaN, infinite, missing or
oddly typed value (strings and numpy numbers from the REST source) loses, and which of two measurements of one
exposure the photometry body keeps. No portal needed: mapping is plain functions; the files and Kafka tests send
the same writes to a real portal."""

from __future__ import annotations

import base64
import math
import sys

import numpy as np
import orjson
from broker_support import SERVICE_DIR

if str(SERVICE_DIR) not in sys.path:
    sys.path.insert(0, str(SERVICE_DIR))

from broker_client.mapping import POINT_COLUMNS, Context, map_alert, photometry_body  # noqa: E402

CTX = Context(group_ids=[7], instrument_id=3, filter_id=5, taxonomy_id=9)
NAN, INF = float("nan"), float("inf")


def entry(**over) -> dict:
    """A detection as the Avro decoders give it (floats and ints)."""
    e = {"jd": 2459000.5, "fid": 1, "magpsf": 18.5, "sigmapsf": 0.1, "diffmaglim": 20.25, "ra": 10.5, "dec": -20.25,
         "candid": 1234567890123456789}
    e.update(over)
    return e


def alert(cand: dict | None = None, prv: list | None = None, **fields) -> dict:
    return {"objectId": "ZTF21mapping", "candid": 1234567890123456789, "candidate": cand or entry(),
            "prv_candidates": prv, **fields}


def points(record: dict) -> list[dict]:
    return [dict(zip(POINT_COLUMNS, p)) for p in map_alert(record, None, CTX).points]


def body(*records: dict) -> dict:
    """The PUT /api/photometry body of these alerts, as the portal reads it (JSON)."""
    pts = [p for r in records for p in map_alert(r, None, CTX).points]
    return orjson.loads(orjson.dumps(photometry_body(pts, CTX.group_ids, CTX.origin)))


def test_a_detection_becomes_a_point_with_every_value():
    [p] = points(alert(entry()))
    assert p == {"obj_id": "ZTF21mapping", "mjd": 59000.0, "filter": "ztfg", "instrument_id": 3, "mag": 18.5,
                 "magerr": 0.1, "limiting_mag": 20.25, "alert_id": 1234567890123456789, "ra": 10.5, "dec": -20.25}


def test_nan_infinite_or_missing_values_lose_only_what_needs_them():
    prv = [
        entry(jd=2459001.5, magpsf=NAN),                      # magnitude lost: an upper limit remains
        entry(jd=2459002.5, sigmapsf=INF),                    # error lost: an upper limit remains
        entry(jd=2459003.5, sigmapsf=0.0),                    # no usable error: an upper limit remains
        entry(jd=2459004.5, ra=NAN, dec=-INF),                # position lost, the measurement stays
        entry(jd=2459005.5, ra=360.0, dec=91.0),              # position out of range: lost
        entry(jd=2459006.5, candid=None),                     # no alert id
        entry(jd=2459007.5, magpsf=None, diffmaglim=NAN),     # nothing measured: no point
        entry(jd=NAN),                                        # no time: no point
        entry(jd=2459008.5, fid=4),                           # unknown band: no point
        {k: v for k, v in entry(jd=2459009.5).items() if k not in ("magpsf", "sigmapsf")},  # missing fields
    ]
    got = {p["mjd"]: p for p in points(alert(entry(), prv))}
    assert sorted(got) == [59000.0, 59001.0, 59002.0, 59003.0, 59004.0, 59005.0, 59006.0, 59009.0]
    limit = {"mag": None, "magerr": None, "limiting_mag": 20.25}
    for mjd in (59001.0, 59002.0, 59003.0, 59009.0):
        assert {k: got[mjd][k] for k in limit} == limit, mjd
        assert got[mjd]["ra"] == 10.5 and got[mjd]["alert_id"] == 1234567890123456789
    assert (got[59004.0]["ra"], got[59004.0]["dec"], got[59004.0]["mag"]) == (None, None, 18.5)
    assert (got[59005.0]["ra"], got[59005.0]["dec"]) == (None, None)
    assert got[59006.0]["alert_id"] is None and got[59006.0]["mag"] == 18.5


def test_strings_numpy_numbers_and_booleans_are_read_as_the_numbers_they_stand_for():
    prv = [
        entry(jd="2459001.5", fid="2", magpsf="18.25", sigmapsf=np.float32(0.5), diffmaglim=np.float64(20.5),
              ra=np.float64(11.25), dec="-21.5", candid=np.int64(42)),
        entry(jd=2459002, fid=3.0, magpsf=19, sigmapsf=1, candid="43"),
        entry(jd=2459003.5, fid=True),                        # a boolean is no band
        entry(jd=2459004.5, magpsf=True, candid=INF),         # a boolean is no magnitude, infinity no alert id
        entry(jd=2459005.5, magpsf="bright", candid="x"),
    ]
    got = {p["mjd"]: p for p in points(alert(entry(), prv))}
    assert sorted(got) == [59000.0, 59001.0, 59001.5, 59004.0, 59005.0]
    assert got[59001.0] == {"obj_id": "ZTF21mapping", "mjd": 59001.0, "filter": "ztfr", "instrument_id": 3,
                            "mag": 18.25, "magerr": 0.5, "limiting_mag": 20.5, "alert_id": 42, "ra": 11.25,
                            "dec": -21.5}
    assert (got[59001.5]["filter"], got[59001.5]["mag"], got[59001.5]["magerr"], got[59001.5]["alert_id"]) == \
        ("ztfi", 19.0, 1.0, 43)
    for mjd in (59004.0, 59005.0):
        assert (got[mjd]["mag"], got[mjd]["limiting_mag"], got[mjd]["alert_id"]) == (None, 20.25, None)
    assert all(type(v) is float for p in got.values() for k, v in p.items() if k in ("mjd", "mag", "magerr")
               and v is not None)


def test_one_point_per_object_band_and_time_in_a_body_the_best_measurement_kept():
    # The same exposure twice in one light curve (two readout channels), and again in a later alert's history.
    first = alert(entry(), [entry(jd=2459001.5, sigmapsf=0.3, candid=11), entry(jd=2459001.5, sigmapsf=0.2, candid=12),
                            entry(jd=2459002.5, magpsf=None, candid=None), entry(jd=2459002.5, candid=13)])
    later = alert(entry(jd=2459003.5, candid=14),
                  [entry(jd=2459001.5, sigmapsf=0.2, candid=10), entry(jd=2459002.5, magpsf=NAN, candid=None),
                   entry(), entry(jd=2459000.5, fid=2)])
    b = body(first, later)
    assert b["mjd"] == [59000.0, 59001.0, 59002.0, 59003.0, 59000.0]  # first-seen order
    assert b["filter"] == ["ztfg"] * 4 + ["ztfr"]
    assert b["magerr"][1] == 0.2 and b["alert_id"][1] == 10          # smaller error, then the smaller alert id
    assert b["mag"][2] == 18.5 and b["alert_id"][2] == 13            # a detection over an upper limit
    assert {k: b[k] for k in ("magsys", "origin", "group_ids", "instrument_id")} == \
        {"magsys": "ab", "origin": "Fink", "group_ids": [7], "instrument_id": [3] * 5}
    # the order of the alerts in a batch does not change the choice
    again = body(later, first)
    assert sorted(zip(again["mjd"], again["filter"], again["alert_id"])) == \
        sorted(zip(b["mjd"], b["filter"], b["alert_id"]))
    empty = body(alert(entry(jd=None)))
    assert all(empty[c] == [] for c in POINT_COLUMNS)


def test_scores_classification_and_cutouts():
    stamp = bytes(range(256)) * 10
    record = alert(entry(), None, rf_kn_vs_nonkn=0.75, rfscore=NAN, snn=INF, cdsxmatch="Unknown", roid=np.float32(1),
                   nalerthist=3, mulens=True, cutoutScience={"stampData": stamp},
                   cutoutTemplate={"stampData": bytearray(stamp[:100])}, cutoutDifference={"stampData": b""})
    w = map_alert(record, "fink_kn_candidates_ztf", CTX)
    assert w.annotations == {"rf_kn_vs_nonkn": 0.75, "cdsxmatch": "Unknown", "roid": 1.0, "nalerthist": 3.0}
    assert w.classifications == [{"obj_id": "ZTF21mapping", "taxonomy_id": 9, "classification": "Kilonova candidate",
                                  "probability": 0.75, "group_ids": [7]}]
    assert [(t["ttype"], base64.b64decode(t["data"])) for t in w.thumbnails] == [("new", stamp), ("ref", stamp[:100])]
    assert all(isinstance(t["data"], str) for t in w.thumbnails)
    # a deployment's prefix on the topic keeps its class; an unknown topic falls back to the record's field
    assert map_alert(record, "test_fink_sn_candidates_ztf", CTX).classifications[0]["classification"] == \
        "SN candidate"
    assert map_alert(dict(record, classification="Anomaly"), "other", CTX).classifications[0]["classification"] \
        == "Anomaly"
    assert not map_alert(record, "other", CTX).classifications
    assert math.isclose(map_alert(record, "fink_kn_candidates_ztf", CTX).points[0][1], 59000.0)


def test_photometry_of_a_batch_is_split_into_uploads_the_portal_takes():
    from broker_client.mapping import photometry_bodies

    def pt(obj: str, mjd: float, mag, magerr) -> tuple:
        values = {"obj_id": obj, "mjd": mjd, "filter": "ztfg", "instrument_id": 1, "mag": mag, "magerr": magerr,
                  "limiting_mag": 20.5, "alert_id": None, "ra": None, "dec": None}
        return tuple(values[c] for c in POINT_COLUMNS)

    points = [pt(f"ZTF{i % 7}", 59000.0 + i, 18.0, 0.1) for i in range(25)]
    # the same measurement twice, in what becomes two bodies: the better one is kept, once, in the first
    points.insert(2, pt("ZTF2", 59002.0, None, None))
    points.append(pt("ZTF2", 59002.0, 18.0, 0.05))
    bodies = photometry_bodies(points, [4], "Fink", limit=10)
    assert [len(b["mjd"]) for b in bodies] == [10, 10, 5]
    keys = [(o, m) for b in bodies for o, m in zip(b["obj_id"], b["mjd"])]
    assert len(keys) == len(set(keys)) == 25
    first = bodies[0]
    i = list(zip(first["obj_id"], first["mjd"])).index(("ZTF2", 59002.0))
    assert first["magerr"][i] == 0.05 and all(b["group_ids"] == [4] and b["origin"] == "Fink" for b in bodies)
