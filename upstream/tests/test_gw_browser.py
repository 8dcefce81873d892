"""The GW event pages in a real browser: the sample alert from the list to its sky map, the wording of FAR and
classification, the night map's Sun against astropy, an event without a localization."""

from __future__ import annotations

import json
import random
import string
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from test_browser import artifacts_on_failure, driver, login, open_page, wait_js  # noqa: F401 - fixtures
from test_gw_pages import member, new_event  # noqa: F401 - fixture and helper

# -- in a real browser -----------------------------------------------------------------------------------------------

GCN_DATA = Path(__file__).resolve().parent / "data" / "gcn"


def skymap_extremes(alert: dict) -> tuple[tuple[float, float], tuple[float, float]]:
    """(ra, dec) of the densest and of the emptiest tile of the alert's multi-order sky map."""
    import base64
    import io

    import astropy.units as u
    import numpy as np
    from astropy.table import Table
    from astropy_healpix import HEALPix

    table = Table.read(io.BytesIO(base64.b64decode(alert["event"]["skymap"])), format="fits")
    uniq = np.asarray(table["UNIQ"], dtype=np.int64)
    dens = np.asarray(table["PROBDENSITY"], dtype=float)
    out = []
    for i in (int(np.argmax(dens)), int(np.argmin(dens))):
        level = (int(uniq[i]).bit_length() - 3) // 2
        ipix = int(uniq[i]) - 4 * 4**level
        lon, lat = HEALPix(nside=2**level, order="nested").healpix_to_lonlat([ipix])
        out.append((float(lon.to(u.deg).value[0]), float(lat.to(u.deg).value[0])))
    return out[0], out[1]


def years_text(far_hz: float) -> str:
    """What the page must write for this FAR: 1 per N million years, N to two significant digits."""
    years = 1 / (far_hz * 3.15576e7)
    assert 1e6 <= years < 1e9, "the sample alert's FAR is expected in the millions of years"
    return f"1 per {float(f'{years / 1e6:.2g}'):g} million years"


def test_far_and_classification_are_written_for_people(driver, server, member):
    login(driver, server, member[0])
    open_page(driver, server, "/gcn_events")
    cases = {
        1 / 3.15576e7: "1 per year",
        1 / (3.15576e7 * 3412): "1 per 3,400 years",
        5.176954877338635e-16: "1 per 61 million years",
        2e-22: "1 per 1.6 × 10^14 years",
        1e-5: "1 per 28 hours",
        1 / (3.15576e7 * 0.5): "1 per 6 months",
        1 / (86400 * 3.2): "1 per 3.2 days",
    }
    for far, text in cases.items():
        assert driver.execute_script("return GW.farText(arguments[0])", far) == text, far
    assert driver.execute_script("return GW.farText(null)") is None
    assert driver.execute_script("return GW.classificationText({BNS: 0.999997, Terrestrial: 2e-6})") == "BNS (>99.9%)"
    assert driver.execute_script("return GW.classificationText({BBH: 0.62, Terrestrial: 0.38})") == "BBH (62%)"
    assert driver.execute_script("return GW.distanceText(156.3, 41.2)") == "156 ± 41 Mpc"
    assert driver.execute_script("return GW.areaText(1483.2)") == "1,480 deg²"


def test_sample_alert_from_list_to_sky_map_with_a_source_in_the_region(driver, server, api, admin_token, member):
    from conftest import unique
    from uihelpers import private_source

    alert = json.loads((GCN_DATA / "igwn_gwalert_preliminary.json").read_text())
    # an event of this test's own (a mock MS... id, as the sample's), so other modules' use of the sample and this
    # one do not meet in the shared database
    alert["superevent_id"] = "MS" + "".join(random.choice(string.ascii_lowercase) for _ in range(8))
    alert["event"]["time"] = (datetime(2026, 6, 5) + timedelta(seconds=random.randrange(86_400),
                                                               milliseconds=random.randrange(1000))
                              ).isoformat(timespec="milliseconds") + "Z"
    status, body = api.post("/api/gcn_event", admin_token, json=alert)
    assert status == 200, body
    dateobs = body["data"]["dateobs"]
    (ra_in, dec_in), (ra_out, dec_out) = skymap_extremes(alert)
    inside, outside = unique(), unique()
    private_source(api, member[1], inside, ra_in, dec_in)
    private_source(api, member[1], outside, ra_out, dec_out)
    # A telescope whose imager has a field of view: the page links to its share of tonight's plan.
    status, body = api.post("/api/telescope", admin_token, json={
        "name": f"gw-tel-{uuid.uuid4().hex[:6]}", "nickname": "gwtel", "lat": -29.26, "lon": -70.73, "elevation": 2400.0,
        "diameter": 0.25, "robotic": True, "fixed_location": True})
    assert status == 200, body
    telescope_id = body["data"]["id"]
    status, body = api.post("/api/instrument", admin_token, json={
        "name": f"gw-cam-{uuid.uuid4().hex[:6]}", "type": "imager", "band": "optical", "telescope_id": telescope_id,
        "filters": ["ztfg"], "field_of_view": {"shape": "square", "side_deg": 1.9}})
    assert status == 200, body

    login(driver, server, member[0])
    open_page(driver, server, "/gcn_events")
    row = f'tr[data-dateobs="{dateobs}"]'
    wait_js(driver, f"return !!document.querySelector({row!r})")
    far = years_text(alert["event"]["far"])
    assert driver.find_element("css selector", row + " td.far").text == far
    assert "BNS (>99.9%)" in driver.find_element("css selector", row).text
    driver.find_element("css selector", row + " a.gcn-event-link").click()

    wait_js(driver, "return document.querySelectorAll('#gw-skymap path.contour').length >= 2")
    levels = driver.execute_script(
        "return [...document.querySelectorAll('#gw-skymap path.contour')].map(p => [p.getAttribute('class'), p.getAttribute('d').length])")
    assert {cls for cls, _ in levels} == {"contour contour-50", "contour contour-90"}, levels
    assert all(n > 50 for _, n in levels), levels
    assert driver.find_element("id", "gcn-far").text == far
    assert driver.find_element("id", "gcn-event-title").text == alert["superevent_id"]
    assert driver.find_element("id", "test-alert").text == "test alert"  # an MS... superevent of the MDC search
    # The source at the densest tile is listed first with its density; the one at the emptiest is not listed.
    wait_js(driver, f"return !!document.querySelector('#region-sources tr[data-obj-id=\"{inside}\"]')")
    cell = driver.find_element("css selector", f'#region-sources tr[data-obj-id="{inside}"] td.probdensity').text
    assert float(cell) > 0, cell
    assert not driver.find_elements("css selector", f'#region-sources tr[data-obj-id="{outside}"]')
    assert driver.find_elements("css selector", f'#gw-skymap circle[data-obj-id="{inside}"]')
    link = driver.find_element("css selector", f'#region-sources tr[data-obj-id="{inside}"] a.region-link')
    assert link.get_attribute("href").endswith("/source/" + inside)
    # The telescope's row links to its share of the network plan, an address the API answers.
    plan_link = f'#network-telescopes tr[data-telescope-id="{telescope_id}"] a.plan-json'
    wait_js(driver, f"return !!document.querySelector({plan_link!r})")
    href = driver.find_element("css selector", plan_link).get_attribute("href")
    assert "/network_plan?" in href and f"telescope_id={telescope_id}" in href
    status, body = api.get(href[len(server.url):], admin_token)
    assert status == 200 and "plans" in body["data"], body
    # the page plans the localization it shows: the event's newest (another test module may have posted the same
    # sample first, so this one's name may carry a ",N" suffix)
    status, body = api.get(f"/api/gcn_event/{quote(dateobs)}", admin_token)
    assert status == 200, body
    newest = max(body["data"]["localizations"], key=lambda loc: loc["id"])["localization_name"]
    csv_href = driver.find_element("id", "network-plan-csv").get_attribute("href")
    assert csv_href.endswith("format=csv&localization_name=" + quote(newest, safe="")), (csv_href, newest)
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]

    # The retraction: the event is marked so on the list and on its page.
    retraction = json.loads((GCN_DATA / "igwn_gwalert_retraction.json").read_text())
    retraction["superevent_id"] = alert["superevent_id"]
    status, body = api.post("/api/gcn_event", admin_token, json=retraction)
    assert status == 200, body
    driver.refresh()
    wait_js(driver, "return !!document.getElementById('retracted-alert')")
    open_page(driver, server, "/gcn_events")
    wait_js(driver, f"return !!document.querySelector({(row + ' .badge.retracted')!r})")



def test_sun_altitude_of_the_night_map_agrees_with_astropy(driver, server, member):
    """The event page shades night from the Sun's altitude computed in the browser, and gives the region's altitude
    at each telescope: within 0.3° and 0.6° of astropy's."""
    import astropy.units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_sun
    from astropy.time import Time

    import astroportal.domain.ephemeris  # noqa: F401  (astropy offline: the bundled IERS tables, as the portal)

    login(driver, server, member[0])
    open_page(driver, server, "/gcn_events")
    sites = [(43.75, 6.92), (-29.26, -70.73), (-21.2, 55.41), (33.36, -116.86), (78.2, 15.6)]
    for when in ("2026-03-20T12:00:00", "2026-06-21T03:30:00", "2026-11-26T21:10:00", "2030-01-01T00:00:00"):
        t = Time(when, scale="utc")
        for lat, lon in sites:
            where = EarthLocation(lat=lat * u.deg, lon=lon * u.deg, height=0 * u.m)
            # Geometric altitude (no refraction), as the page computes it.
            expected = get_sun(t).transform_to(AltAz(obstime=t, location=where, pressure=0)).alt.deg
            got = driver.execute_script("return GW.sunAltitude(arguments[0], arguments[1], new Date(arguments[2]))",
                                        lat, lon, when + "Z")
            assert abs(got - expected) < 0.3, (when, lat, lon, got, expected)
            # and a star's altitude (the table's "Localization alt." column), from the same sidereal time
            star = SkyCoord(307.86 * u.deg, 8.76 * u.deg).transform_to(AltAz(obstime=t, location=where, pressure=0))
            got = driver.execute_script("return GW.altitude(307.86, 8.76, arguments[0], arguments[1], new Date(arguments[2]))",
                                        lat, lon, when + "Z")
            # The page takes J2000 coordinates as of date (no precession: up to 0.4° by 2030), plenty for "is it up".
            assert abs(got - star.alt.deg) < 0.6, (when, lat, lon, got, star.alt.deg)


def test_event_without_localization_says_so(driver, server, db, member):
    dateobs = new_event(db, "S" + uuid.uuid4().hex[:6])
    login(driver, server, member[0])
    driver.get_log("browser")
    open_page(driver, server, f"/gcn_events/{dateobs.isoformat()}")
    wait_js(driver, "return document.querySelector('#region-sources .empty') !== null")
    assert "no localization yet" in driver.find_element("id", "region-sources").text
    assert driver.find_element("id", "localization-select").get_attribute("disabled") is not None
    assert not driver.find_elements("id", "test-alert")  # a real superevent id: no "test alert" badge
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
