"""The solve service's pages in a real browser: a collaborator (a Full user, who holds 'Solve images') uploads
a FITS image with scale hints through the form, watches the jobs table update by itself, and opens the job page:
the calibration, the image with the matched index stars and a coordinate grid, and the portal's source that
lies in the field, linked to its page."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait
from solve_support import SolvePortal, synthetic_field


@pytest.fixture(scope="module")
def portal():
    p = SolvePortal()
    p.start_worker("page-worker")
    yield p
    p.stop()


def test_upload_watch_and_inspect_a_job(portal, browser, tmp_path):
    sitewide = portal.api("GET", "/api/groups/public")["id"]
    portal.api("POST", "/api/sources", json={"id": "GW26kn01", "ra": 150.05, "dec": 20.03, "group_ids": [sitewide]})
    portal.api("POST", "/api/sources", json={"id": "FarAway01", "ra": 10.0, "dec": -40.0, "group_ids": [sitewide]})
    data, _ = synthetic_field(150.0, 20.0, seed=7)
    image = tmp_path / "field.fits"
    image.write_bytes(data)

    wait = WebDriverWait(browser, 120)
    browser.get(portal.url + "/debug_login?username=observer&next=/solve")
    nav = browser.find_element(By.CSS_SELECTOR, "a[data-nav-extra][href='/solve']")
    assert nav.text == "Plate solving"
    browser.find_element(By.ID, "solve-file").send_keys(str(image))
    Select(browser.find_element(By.NAME, "scale_units")).select_by_value("arcsecperpix")
    browser.find_element(By.NAME, "scale_lower").send_keys("6")
    browser.find_element(By.NAME, "scale_upper").send_keys("8")
    browser.find_element(By.ID, "solve-submit").click()
    # The table refreshes by itself: no reload until the job has run.
    row = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table.solve-jobs tr[data-status='success']")))
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[1] == "field.fits" and cells[2] == "observer"
    assert cells[7].endswith(" s") and cells[8].endswith("MB")
    row.find_element(By.CSS_SELECTOR, "a.job-details").click()

    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#job-calibration td[data-field='ra']")))
    ra_text = browser.find_element(By.CSS_SELECTOR, "#job-calibration td[data-field='ra']").text
    assert ra_text.startswith(("150.0", "149.99"))
    scale = browser.find_element(By.CSS_SELECTOR, "#job-calibration td[data-field='pixscale']").text
    assert scale.startswith(("6.99", "7.00"))
    wait.until(lambda d: d.execute_script(
        "const i = document.getElementById('job-preview'); return i && i.complete && i.naturalWidth > 0"))
    # The drawing lies exactly over the picture (same box), so circles sit on the stars.
    boxes = browser.execute_script(
        "const r = (id) => document.getElementById(id).getBoundingClientRect();"
        "const a = r('job-preview'), b = r('job-overlay');"
        "return [a.x, a.y, a.width, a.height, b.x, b.y, b.width, b.height];")
    assert all(abs(p - q) < 1.5 for p, q in zip(boxes[:4], boxes[4:])), boxes
    assert len(browser.find_elements(By.CSS_SELECTOR, "#job-overlay circle.matched-star")) >= 10
    assert len(browser.find_elements(By.CSS_SELECTOR, "#job-overlay polyline.grid-line[data-kind='ra']")) >= 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "#job-overlay polyline.grid-line[data-kind='dec']")) >= 2
    links = browser.find_elements(By.CSS_SELECTOR, "a.field-source-link")
    assert [a.text for a in links] == ["GW26kn01"]
    assert links[0].get_attribute("href").endswith("/source/GW26kn01")
    history = browser.find_element(By.CSS_SELECTOR, "table.job-history").text
    assert "running" in history and "success" in history and "page-worker" in history
    downloads = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.job-file")}
    assert downloads == {"wcs", "new fits", "corr"}
    links[0].click()
    wait.until(ec.url_contains("/source/GW26kn01"))


def test_a_user_without_the_acl_cannot_upload(portal):
    import requests

    viewer = portal.api("POST", "/api/service_tokens", json={"name": "viewer-bot", "acls": []})["token"]
    answer = requests.post(portal.url + "/api/solve/upload", files={"file": ("x.fits", b"SIMPLE  =")},
                           headers={"Authorization": f"token {viewer}"}, timeout=10)
    assert answer.status_code == 403 and "Solve images" in answer.json()["message"]
