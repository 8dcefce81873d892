"""The solve service through nova's protocol, with real workers running Debian's solve-field: a client that
follows nova's documentation (login, upload, poll the submission, poll the job, calibration, wcs_file), the
real photograph apod4.jpg, and a synthetic field made from the index's own stars with a known WCS."""

from __future__ import annotations

import pytest
import requests
from solve_support import APOD4, NovaClient, SolvePortal, centre_offset_arcsec, synthetic_field


@pytest.fixture(scope="module")
def portal():
    p = SolvePortal()
    p.start_worker("w1")
    yield p
    p.stop()


@pytest.fixture(scope="module")
def field():
    """A 1024x1024 field at 7"/pixel around RA 150, Dec +20, rotated 20 degrees."""
    return synthetic_field(150.0, 20.0, scale_arcsec=7.0, size=1024, rotation_deg=20.0)


def logged_in(portal) -> NovaClient:
    client = NovaClient(portal.url + "/nova", portal.admin_token)
    answer = client.login()
    assert answer["status"] == "success", answer
    return client


def test_nova_protocol_walk_on_a_synthetic_field(portal, field):
    from astropy.io import fits
    from astropy.wcs import WCS

    data, _ = field
    client = logged_in(portal)
    assert len(client.session) >= 16
    answer = client.upload(data, "synthetic.fits", scale_units="arcsecperpix", scale_type="ul", scale_lower=6,
                           scale_upper=8, publicly_visible="y")
    assert answer.status_code == 200, answer.text
    up = answer.json()
    assert up["status"] == "success" and isinstance(up["subid"], int) and len(up["hash"]) == 40

    sub = client.get(f"api/submissions/{up['subid']}").json()
    assert set(sub) >= {"user", "processing_started", "processing_finished", "jobs", "job_calibrations"}
    job_id, status = client.wait_job(up["subid"])
    assert status == "success", client.get(f"api/jobs/{job_id}/info").json()
    sub = client.get(f"api/submissions/{up['subid']}").json()
    assert sub["jobs"] == [job_id] and sub["job_calibrations"] == [[job_id, job_id]]

    cal = client.get(f"api/jobs/{job_id}/calibration").json()
    assert set(cal) == {"ra", "dec", "radius", "pixscale", "orientation", "parity"}
    assert abs(cal["ra"] - 150.0) < 0.01 and abs(cal["dec"] - 20.0) < 0.01
    assert cal["pixscale"] == pytest.approx(7.0, rel=0.005)
    info = client.get(f"api/jobs/{job_id}/info").json()
    assert info["status"] == "success" and info["original_filename"] == "synthetic.fits"
    assert info["calibration"] == cal

    wcs_file = client.get(f"wcs_file/{job_id}")
    assert wcs_file.status_code == 200
    header = fits.Header.fromstring(wcs_file.content)
    solved = WCS(header)
    assert centre_offset_arcsec(solved, 1024, 150.0, 20.0) < 2.0
    for name in ("new_fits_file", "corr_file"):
        got = client.get(f"{name}/{job_id}")
        assert got.status_code == 200 and got.content.startswith(b"SIMPLE"), name


def test_the_photograph_apod4_solves_through_the_api(portal):
    client = logged_in(portal)
    answer = client.upload(APOD4.read_bytes(), "apod4.jpg", downsample_factor=2)
    assert answer.status_code == 200, answer.text
    job_id, status = client.wait_job(answer.json()["subid"], timeout=400)
    assert status == "success", client.get(f"api/jobs/{job_id}/info").json()
    cal = client.get(f"api/jobs/{job_id}/calibration").json()
    assert abs(cal["ra"] - 187.2) < 0.5 and abs(cal["dec"] - 56.7) < 0.5
    assert 20 < cal["radius"] < 22  # a 33 x 24 degree field


def test_an_x_y_list_solves_as_astroquery_sends_it(portal, field):
    """astroquery's solve_from_source_list posts x, y, image_width, image_height to url_upload."""
    import json

    import numpy as np

    _, truth = field
    from solve_support import index_stars

    stars = index_stars(150.0, 20.0, 1.0)
    x, y = truth.all_world2pix(stars[:, 0], stars[:, 1], 1)
    keep = (x > 1) & (x < 1024) & (y > 1) & (y < 1024)
    order = np.argsort(stars[keep, 2])
    client = logged_in(portal)
    body = {"session": client.session, "x": [float(v) for v in x[keep][order]],
            "y": [float(v) for v in y[keep][order]], "image_width": 1024, "image_height": 1024,
            "scale_units": "arcsecperpix", "scale_lower": 6.5, "scale_upper": 7.5, "scale_type": "ul"}
    answer = requests.post(portal.url + "/nova/api/url_upload", data={"request-json": json.dumps(body)}, timeout=60)
    assert answer.status_code == 200, answer.text
    job_id, status = client.wait_job(answer.json()["subid"])
    assert status == "success", client.get(f"api/jobs/{job_id}/info").json()
    cal = client.get(f"api/jobs/{job_id}/calibration").json()
    assert abs(cal["ra"] - 150.0) < 0.01 and abs(cal["dec"] - 20.0) < 0.01


def test_a_hint_at_ra_0_dec_0_is_honoured(portal):
    """nova drops a centre of 0; here RA 0, Dec 0 is a position and reaches solve-field."""
    data, _ = synthetic_field(0.5, 0.5, scale_arcsec=7.0, size=1024, rotation_deg=0.0, seed=3)
    client = logged_in(portal)
    answer = client.upload(data, "origin.fits", center_ra=0, center_dec=0, radius=2, scale_units="arcsecperpix",
                           scale_lower=6.5, scale_upper=7.5)
    assert answer.status_code == 200, answer.text
    job_id, status = client.wait_job(answer.json()["subid"])
    assert status == "success"
    job = portal.api("GET", f"/api/solve/jobs/{job_id}")
    assert job["options"]["center_ra"] == 0 and job["options"]["center_dec"] == 0
    cal = job["calibration"]
    assert abs(cal["ra"] - 0.5) < 0.01 and abs(cal["dec"] - 0.5) < 0.01
