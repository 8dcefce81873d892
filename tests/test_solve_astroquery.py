"""astroquery's own AstrometryNet client, unchanged but for its server URL, solves through <portal>/nova:
a source list (posted to url_upload as x, y, image_width, image_height) and an uploaded image."""

from __future__ import annotations

import numpy as np
import pytest
from astroquery import astrometry_net
from solve_support import SolvePortal, index_stars, synthetic_field, synthetic_wcs


@pytest.fixture(scope="module")
def portal():
    p = SolvePortal()
    p.start_worker("aq")
    yield p
    p.stop()


@pytest.fixture
def client(portal):
    nova = astrometry_net.AstrometryNetClass()
    nova.URL = portal.url + "/nova"
    nova.API_URL = portal.url + "/nova/api"
    with astrometry_net.conf.set_temp("api_key", portal.admin_token):
        yield nova


def test_astroquery_solves_a_source_list(client):
    wcs = synthetic_wcs(200.0, 40.0, 7.0, 1024, 15.0)
    stars = index_stars(200.0, 40.0, 1.5)
    x, y = wcs.all_world2pix(stars[:, 0], stars[:, 1], 1)
    keep = (x > 1) & (x < 1024) & (y > 1) & (y < 1024)
    order = np.argsort(stars[keep, 2])
    header = client.solve_from_source_list(x[keep][order], y[keep][order], 1024, 1024, solve_timeout=240,
                                           verbose=False, scale_units="arcsecperpix", scale_type="ul",
                                           scale_lower=6.5, scale_upper=7.5)
    assert header["CTYPE1"].startswith("RA---TAN")
    from astropy.wcs import WCS

    ra, dec = WCS(header).all_pix2world([[512.5, 512.5]], 1)[0]
    assert abs(ra - 200.0) < 0.01 and abs(dec - 40.0) < 0.01


def test_astroquery_uploads_an_image(client, tmp_path):
    data, _ = synthetic_field(120.0, -10.0, seed=21)
    path = tmp_path / "field.fits"
    path.write_bytes(data)
    header, subid = client.solve_from_image(str(path), force_image_upload=True, solve_timeout=240, verbose=False,
                                            return_submission_id=True, scale_units="arcsecperpix",
                                            scale_type="ul", scale_lower=6, scale_upper=8)
    assert isinstance(subid, int)
    from astropy.wcs import WCS

    ra, dec = WCS(header).all_pix2world([[512.5, 512.5]], 1)[0]
    assert abs(ra - 120.0) < 0.01 and abs(dec + 10.0) < 0.01
