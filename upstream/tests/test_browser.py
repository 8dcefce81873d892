"""The pages in a real browser: headless Debian chromium driven by selenium against the running portal.

A failed test leaves a screenshot and the page's HTML under upstream/test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import math
import re
import shutil
import uuid
from pathlib import Path

import pytest

from conftest import unique
from uihelpers import instrument, own_group, photometry, private_source

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PAYLOAD = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
WAIT = 30


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: install Debian's chromium and chromium-driver packages")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
        f"--user-data-dir={profile}", "--window-size=1400,1000",
    ):
        opts.add_argument(arg)
    # Keep the pages' console messages, so that a test can check that no script failed.
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(autouse=True)
def artifacts_on_failure(request, driver):
    """After a failed test: test-artifacts/<test>.png and .html of the page the browser was showing."""
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        try:
            driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
            (ARTIFACTS / f"{name}.html").write_text(driver.page_source)
        except Exception as exc:  # a dead browser must not hide the test's own failure
            (ARTIFACTS / f"{name}.txt").write_text(f"could not capture the page: {exc}")


def wait_js(driver, script: str, timeout: float = WAIT):
    """Wait until `script` (the body of a function) returns something truthy; return it."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script))


def login(driver, server, username: str) -> None:
    driver.get(f"{server.url}/debug_login?username={username}")
    wait_js(driver, "return document.readyState === 'complete' && !!document.body.dataset.userId")


def open_page(driver, server, path: str) -> None:
    driver.get(server.url + path)
    wait_js(driver, "return document.readyState === 'complete'")


def no_script_ran(driver) -> bool:
    return driver.execute_script("return window.__xss === undefined")


@pytest.fixture(scope="module")
def member(make_user):
    """(username, token) of a Full user."""
    name = f"browser-{uuid.uuid4().hex[:8]}"
    _, token = make_user("Full user", username=name)
    return name, token


MARKUP_NAME = '<b>cam</b><a href="javascript:window.__xss=3">x</a>'


@pytest.fixture(scope="module")
def instrument_id(api, admin_token):
    """An instrument whose name holds markup (it shows in hover labels and the photometry table)."""
    return instrument(api, admin_token, name=f"{MARKUP_NAME} {uuid.uuid4().hex[:6]}")


# -- the light curve ---------------------------------------------------------------------------------------------
def test_light_curve_draws_every_point(driver, server, api, member, instrument_id):
    name, token = member
    obj_id = unique()
    private_source(api, token, obj_id, 150.0, 2.0)
    photometry(api, token, obj_id, instrument_id, detections=24, limits=8, group_id=own_group(api, token), origin="<i>o</i>")

    login(driver, server, name)
    open_page(driver, server, f"/source/{obj_id}")
    wait_js(driver, "return document.getElementById('lightcurve').dataset.ready === 'true'")
    lc = driver.find_element("id", "lightcurve")
    assert lc.get_attribute("data-points") == "32"
    assert lc.get_attribute("data-renderer") == "scatter"
    # Every marker is in the SVG: 24 detections and 8 upper limits.
    drawn = driver.execute_script("return document.querySelectorAll('#lightcurve .scatterlayer .points path.point').length")
    assert drawn == 32
    info = driver.execute_script(
        """
        const gd = document.getElementById('lightcurve');
        const limits = gd._fullData.filter(t => t.marker && t.marker.symbol === 'triangle-down');
        return {
          limits: limits.reduce((n, t) => n + t.x.length, 0),
          names: gd._fullData.filter(t => t.showlegend).map(t => t.name).sort(),
          colours: [...new Set(gd._fullData.filter(t => t.x.length).map(t => t.marker.color))].length,
          reversed: gd._fullLayout.yaxis.range[0] > gd._fullLayout.yaxis.range[1],
          xtitle: gd._fullLayout.xaxis.title.text,
          dateAxis: gd._fullLayout.xaxis2.ticktext.length > 0 && gd._fullLayout.xaxis2.overlaying === 'x',
        };
        """
    )
    assert info["limits"] == 8
    assert info["names"] == ["ztfg", "ztfr"] and info["colours"] == 2
    assert info["reversed"] is True  # brighter is up
    assert info["xtitle"] == "MJD" and info["dateAxis"] is True

    # Hovering a point shows its MJD and calendar date.
    driver.execute_script(
        "const gd = document.getElementById('lightcurve'); Plotly.Fx.hover(gd, [{curveNumber: 0, pointNumber: 0}]);"
    )
    hover = wait_js(driver, "const h = document.querySelector('#lightcurve .hoverlayer'); return h && h.textContent;")
    assert "MJD 60000" in hover and "UTC" in hover and re.search(r"20\d\d-\d\d-\d\d", hover)
    # Markup in an instrument's name or a point's origin is shown as typed, not read as Plotly's pseudo-HTML.
    assert MARKUP_NAME in hover and "<i>o</i>" in hover
    assert driver.execute_script("return document.querySelectorAll('#lightcurve .hoverlayer a, #lightcurve .hoverlayer b').length") == 0
    assert no_script_ran(driver)

    # Zooming the MJD axis moves the date axis with it.
    dates = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const gd = document.getElementById('lightcurve');
        Plotly.relayout(gd, {'xaxis.range': [60002, 60004]}).then(() => setTimeout(() => done(gd.layout.xaxis2), 200));
        """
    )
    assert dates["range"] == [60002, 60004]
    assert dates["tickvals"][0] == 60002 and dates["ticktext"][0].startswith("Feb 27")
    assert dates["tickvals"][-1] == 60004 and dates["ticktext"][-1].startswith("Mar 1")

    # The photometry table lists every point.
    rows = driver.execute_script("return document.querySelectorAll('#photometry-table table.photometry tbody tr').length")
    assert rows == 32

    # Fetched in pages of 7 (as a light curve longer than one page of 20,000 is), the same 32 points are drawn.
    driver.execute_script("localStorage.setItem('portal.lightCurvePage', '7');")
    try:
        open_page(driver, server, f"/source/{obj_id}")
        wait_js(driver, "return document.getElementById('lightcurve').dataset.ready === 'true'")
        assert driver.find_element("id", "lightcurve").get_attribute("data-points") == "32"
        assert driver.find_element("id", "photometry-count").text == "(32 points)"
        asked = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/photometry?'))"
        )
        assert sorted(int(re.search(r"pageNumber=(\d+)", a).group(1)) for a in asked) == [1, 2, 3, 4, 5]
    finally:
        driver.execute_script("localStorage.removeItem('portal.lightCurvePage');")


# -- comments --------------------------------------------------------------------------------------------------------
def test_comment_add_and_delete_shows_markup_as_text(driver, server, api, member):
    name, token = member
    obj_id = unique()
    private_source(api, token, obj_id, 151.0, 3.0)
    login(driver, server, name)
    open_page(driver, server, f"/source/{obj_id}")
    wait_js(driver, "return !!document.getElementById('no-comments')")

    box = driver.find_element("id", "comment-text")
    box.send_keys(PAYLOAD)
    driver.find_element("id", "comment-submit").click()
    shown = wait_js(driver, "const t = document.querySelector('#comments-list .comment .text'); return t && t.textContent;")
    assert shown == PAYLOAD
    assert no_script_ran(driver)
    assert driver.execute_script("return document.querySelectorAll('#comments-list img, #comments-list script').length") == 0
    status, body = api.get(f"/api/sources/{obj_id}/comments", token)
    assert [c["text"] for c in body["data"]] == [PAYLOAD]

    driver.execute_script("window.confirm = () => true;")
    driver.find_element("css selector", "#comments-list .delete-comment").click()
    wait_js(driver, "return !!document.getElementById('no-comments')")
    status, body = api.get(f"/api/sources/{obj_id}/comments", token)
    assert body["data"] == []


# -- groups: names with markup, save and unsave ------------------------------------------------------------------------
def test_group_name_and_alias_are_text_and_save_unsave_work(driver, server, api, make_user):
    name = f"browser-gadmin-{uuid.uuid4().hex[:8]}"
    _, token = make_user("Group admin", username=name)
    group_name = f"{PAYLOAD} {uuid.uuid4().hex[:6]}"
    status, body = api.post("/api/groups", token, json={"name": group_name})
    assert status == 200, body
    gid = body["data"]["id"]
    obj_id = unique()
    private_source(api, token, obj_id, 152.0, 4.0, alias=[PAYLOAD])

    login(driver, server, name)
    open_page(driver, server, f"/source/{obj_id}")
    assert driver.find_element("css selector", "#source-aliases .alias").text == PAYLOAD
    # Save to the group from the form: the group's name appears, as text.
    wait_js(driver, f"return !!document.querySelector('#save-group option[value=\"{gid}\"]')")
    driver.execute_script(f"document.getElementById('save-group').value = '{gid}';")
    driver.find_element("id", "save-button").click()
    shown = wait_js(
        driver,
        f"const a = document.querySelector('#groups-list tr[data-group-id=\"{gid}\"] .group-name'); return a && a.textContent;",
    )
    assert shown == group_name
    status, body = api.get(f"/api/sources/{obj_id}", token)
    assert gid in [g["id"] for g in body["data"]["groups"]]

    # Unsave asks first: declined, the source stays saved; accepted, it leaves the group.
    driver.execute_script("window.__asked = []; window.confirm = (m) => { window.__asked.push(m); return false; };")
    driver.find_element("css selector", f'#groups-list tr[data-group-id="{gid}"] .unsave').click()
    asked = wait_js(driver, "return window.__asked.length && window.__asked[0]")
    assert group_name in asked and obj_id in asked
    status, body = api.get(f"/api/sources/{obj_id}", token)
    assert gid in [g["id"] for g in body["data"]["groups"]]
    assert driver.find_elements("css selector", f'#groups-list tr[data-group-id="{gid}"]')
    driver.execute_script("window.confirm = () => true;")
    driver.find_element("css selector", f'#groups-list tr[data-group-id="{gid}"] .unsave').click()
    wait_js(driver, f"return !document.querySelector('#groups-list tr[data-group-id=\"{gid}\"]')")
    status, body = api.get(f"/api/sources/{obj_id}", token)
    assert gid not in [g["id"] for g in body["data"]["groups"]]

    # The groups list and the group's own page show the name as typed.
    open_page(driver, server, "/groups")
    link = wait_js(driver, f"const a = document.querySelector('#my-groups tr[data-group-id=\"{gid}\"] a'); return a && a.textContent;")
    assert link == group_name
    open_page(driver, server, f"/group/{gid}")
    assert driver.find_element("id", "group-name").text == group_name
    assert no_script_ran(driver)


# -- tokens ------------------------------------------------------------------------------------------------------------------
def test_create_token_shown_once_then_revoke(driver, server, api, member):
    name, _ = member
    login(driver, server, name)
    open_page(driver, server, "/profile")
    wait_js(driver, "return !document.querySelector('#token-list .muted')")
    label = f"laptop {uuid.uuid4().hex[:6]}"
    driver.find_element("id", "token-name").send_keys(label)
    driver.find_element("id", "token-create").click()
    token = wait_js(driver, "return document.getElementById('token-value').textContent")
    assert driver.find_element("id", "token-shown").is_displayed()
    status, body = api.get("/api/internal/profile", token)
    assert status == 200 and body["data"]["username"] == name

    row = f"//table[contains(@class,'tokens')]//tr[.//span[@class='token-name' and text()='{label}']]"
    wait_js(driver, f"return document.evaluate(\"{row}\", document, null, 9, null).singleNodeValue !== null")
    driver.execute_script("window.confirm = () => true;")
    driver.find_element("xpath", row + "//button[contains(@class,'revoke-token')]").click()
    wait_js(driver, f"return document.evaluate(\"{row}\", document, null, 9, null).singleNodeValue === null")
    # Shown once: after revoking, the token text is gone from the page, and the token no longer works.
    assert not driver.find_element("id", "token-shown").is_displayed()
    status, body = api.get("/api/internal/profile", token)
    assert status == 401


# -- cone search --------------------------------------------------------------------------------------------------------------
def test_cone_search_from_the_form(driver, server, api, member):
    name, token = member
    # A fresh patch of sky, so that other tests' sources stay out of the cone.
    import random

    ra = random.uniform(200, 300)
    dec = random.uniform(-60, 60)
    near1, near2, far = unique(), unique(), unique()
    offset = 2 / 3600 / math.cos(math.radians(dec))
    private_source(api, token, near1, ra, dec)
    private_source(api, token, near2, ra + offset, dec)
    private_source(api, token, far, ra, dec + 0.1)

    h = ra / 15
    ra_text = f"{int(h):02d}:{int(h * 60 % 60):02d}:{h * 3600 % 60:06.3f}"
    sign = "-" if dec < 0 else "+"
    d = abs(dec)
    dec_text = f"{sign}{int(d):02d}:{int(d * 60 % 60):02d}:{d * 3600 % 60:05.2f}"

    login(driver, server, name)
    open_page(driver, server, "/sources")
    driver.find_element("id", "search-ra").send_keys(ra_text)
    driver.find_element("id", "search-dec").send_keys(dec_text)
    radius = driver.find_element("id", "search-radius")
    radius.clear()
    radius.send_keys("10")
    driver.execute_script("document.getElementById('search-unit').value = 'arcsec';")
    driver.find_element("id", "search-submit").click()
    wait_js(driver, "return document.getElementById('cone-summary') && document.querySelector('#sources-table table, #no-sources')")
    found = driver.execute_script(
        "return [...document.querySelectorAll('#sources-table tr[data-source-id]')].map(r => r.dataset.sourceId)"
    )
    assert sorted(found) == sorted([near1, near2])
    assert "ra=" in driver.current_url and "radius=10" in driver.current_url


# -- telescopes and airmass ------------------------------------------------------------------------------------------------------
def test_telescope_page_from_the_list(driver, server, api, admin_token, member):
    tag = uuid.uuid4().hex[:6]
    tel_name = f"browser-tel-{tag}"
    status, body = api.post(
        "/api/telescope", admin_token,
        json={"name": tel_name, "nickname": tag, "lat": 28.7606, "lon": -17.8814, "elevation": 2396.0,
              "diameter": 2.0, "robotic": False, "fixed_location": True},
    )
    assert status == 200, body
    tid = body["data"]["id"]
    login(driver, server, member[0])
    open_page(driver, server, "/telescopes")
    link = wait_js(driver, f"return document.querySelector('#telescopes-list tr[data-telescope-id=\"{tid}\"] a.telescope-link')")
    badge = wait_js(driver, f"return document.querySelector('#telescopes-list tr[data-telescope-id=\"{tid}\"] .night-state')")
    list_is_night = badge.get_attribute("data-is-night")
    link.click()
    wait_js(driver, "return !!document.getElementById('night-state')")
    assert driver.find_element("id", "telescope-name").text == tel_name
    state = driver.find_element("id", "night-state")
    status, body = api.get(f"/api/internal/ephemeris/{tid}", admin_token)
    assert status == 200
    assert state.get_attribute("data-is-night") == str(body["data"]["is_night"]).lower() == list_is_night
    shown_alt = float(driver.find_element("id", "sun-altitude").text.rstrip("°"))
    assert shown_alt == pytest.approx(body["data"]["sun_altitude"], abs=0.5)
    assert "UTC" in driver.find_element("id", "dark-window").text or "darkness" in driver.find_element("id", "dark-window").text


def test_airmass_plot_for_tonight(driver, server, api, member, instrument_id):
    name, token = member
    obj_id = unique()
    private_source(api, token, obj_id, 83.82, -5.39)
    login(driver, server, name)
    driver.get(server.url + "/")  # a page of the portal's origin, to reach its localStorage
    driver.execute_script("localStorage.removeItem('portal.airmassTelescope');")
    open_page(driver, server, f"/source/{obj_id}")
    wait_js(driver, "return document.querySelectorAll('#airmass-telescope option[value]:not([value=\"\"])').length > 0")
    bands = int(wait_js(driver, "return document.getElementById('airmass-plot').dataset.bands"))
    assert bands >= 1
    info = driver.execute_script(
        """
        const gd = document.getElementById('airmass-plot');
        return {shapes: gd.layout.shapes.filter(s => s.type === 'rect').length, y: gd._fullLayout.yaxis.range,
                points: gd._fullData[0].x.length, title: gd._fullLayout.yaxis.title.text};
        """
    )
    assert info["shapes"] == bands and info["points"] > 100 and info["title"] == "Airmass"
    assert info["y"][0] > info["y"][1]  # airmass 1 at the top
    status = driver.find_element("id", "airmass-status").text
    assert "night" in status or "sun" in status


# -- candidates -------------------------------------------------------------------------------------------------------------------
def test_scan_candidates_save_and_reject(driver, server, api, admin_token, make_user):
    from datetime import datetime, timezone

    name = f"browser-scanner-{uuid.uuid4().hex[:8]}"
    uid, token = make_user("Full user", username=name)
    tag = uuid.uuid4().hex[:6]
    status, body = api.post("/api/streams", admin_token, json={"name": f"stream-{tag}"})
    assert status == 200, body
    stream_id = body["data"]["id"]
    status, body = api.post("/api/groups", admin_token, json={"name": f"scanners-{tag}", "group_admins": [uid]})
    assert status == 200, body
    gid = body["data"]["id"]
    assert api.post(f"/api/groups/{gid}/streams", admin_token, json={"stream_id": stream_id})[0] == 200
    status, body = api.post("/api/filters", admin_token, json={"name": f"f-{tag}", "stream_id": stream_id, "group_id": gid})
    assert status == 200, body
    fid = body["data"]["id"]
    keep, reject = unique(), unique()
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")
    for i, obj_id in enumerate((keep, reject)):
        status, body = api.post(
            "/api/candidates", token,
            json={"id": obj_id, "ra": 10.0 + i, "dec": 20.0, "filter_ids": [fid], "passed_at": now, "passing_alert_id": 1 + i},
        )
        assert status == 200, body

    login(driver, server, name)
    open_page(driver, server, "/candidates")
    row = "#candidates-list tr[data-obj-id=\"{}\"]"
    wait_js(driver, f"return !!document.querySelector('{row.format(keep)}') && !!document.querySelector('{row.format(reject)}')")

    # Save one to the group.
    driver.execute_script(f"document.querySelector('{row.format(keep)} select.save-group').value = '{gid}';")
    driver.find_element("css selector", row.format(keep) + " .save-candidate").click()
    saved = wait_js(driver, f"const r = document.querySelector('{row.format(keep)}'); return r && r.querySelector('.badge') && r.querySelector('.badge').textContent;")
    assert saved == f"scanners-{tag}"
    status, body = api.get(f"/api/sources/{keep}", token)
    assert gid in [g["id"] for g in body["data"]["groups"]]

    # Reject the other: it leaves the list, and comes back with "show rejected".
    driver.find_element("css selector", row.format(reject) + " .reject-candidate").click()
    wait_js(driver, f"return !document.querySelector('{row.format(reject)}') && !!document.querySelector('{row.format(keep)}')")
    status, body = api.get("/api/listing?listName=rejected_candidates", token)
    assert [l["obj_id"] for l in body["data"]] == [reject]
    open_page(driver, server, "/candidates?includeRejected=1")
    wait_js(driver, f"return !!document.querySelector('{row.format(reject)} .unreject-candidate')")
    driver.find_element("css selector", row.format(reject) + " .unreject-candidate").click()
    wait_js(driver, f"return !!document.querySelector('{row.format(reject)} .reject-candidate')")
    status, body = api.get("/api/listing?listName=rejected_candidates", token)
    assert body["data"] == []


# -- user management ----------------------------------------------------------------------------------------------------------------
def test_admin_gives_and_takes_a_role(driver, server, api, make_user):
    admin_name = f"browser-admin-{uuid.uuid4().hex[:8]}"
    make_user("Super admin", username=admin_name)
    target_name = f"browser-target-{uuid.uuid4().hex[:8]}"
    target_id, target_token = make_user("View only", username=target_name)

    login(driver, server, admin_name)
    open_page(driver, server, "/user_management")
    driver.find_element("id", "user-search-text").send_keys(target_name)
    driver.find_element("css selector", "#user-search button").click()
    row = f'#users-list tr[data-user-id="{target_id}"]'
    wait_js(driver, f"return document.querySelectorAll('#users-list tr[data-user-id]').length === 1 && !!document.querySelector('{row}')")
    driver.execute_script(f"document.querySelector('{row} .add-role-select').value = 'Full user';")
    driver.find_element("css selector", f"{row} .add-role").click()
    wait_js(driver, f"return !!document.querySelector('{row} .role[data-role=\"Full user\"]')")
    status, body = api.get("/api/internal/profile", target_token)
    assert sorted(body["data"]["roles"]) == ["Full user", "View only"]

    driver.find_element("css selector", f'{row} .role[data-role="View only"] .remove-role').click()
    wait_js(driver, f"return !document.querySelector('{row} .role[data-role=\"View only\"]')")
    status, body = api.get("/api/internal/profile", target_token)
    assert body["data"]["roles"] == ["Full user"]


# -- group members ---------------------------------------------------------------------------------------------------------------------
def test_group_admin_adds_and_removes_a_member(driver, server, api, make_user):
    admin_name = f"browser-gadm-{uuid.uuid4().hex[:8]}"
    _, admin_token = make_user("Group admin", username=admin_name)
    newcomer = f"browser-new-{uuid.uuid4().hex[:8]}"
    new_id, _ = make_user("Full user", username=newcomer)
    status, body = api.post("/api/groups", admin_token, json={"name": f"members-{uuid.uuid4().hex[:6]}"})
    assert status == 200, body
    gid = body["data"]["id"]

    login(driver, server, admin_name)
    open_page(driver, server, f"/group/{gid}")
    wait_js(driver, "return !document.getElementById('add-member-form').classList.contains('hidden')")
    driver.find_element("id", "add-member-user").send_keys(newcomer)
    driver.find_element("id", "add-member-submit").click()
    row = f'#group-members tr[data-user-id="{new_id}"]'
    name = wait_js(driver, f"const r = document.querySelector('{row} .member-name'); return r && r.textContent;")
    assert name == newcomer
    status, body = api.get(f"/api/groups/{gid}", admin_token)
    assert new_id in [u["id"] for u in body["data"]["users"]]

    driver.execute_script("window.confirm = () => true;")
    driver.find_element("css selector", f"{row} .remove-member").click()
    wait_js(driver, f"return !document.querySelector('{row}')")
    status, body = api.get(f"/api/groups/{gid}", admin_token)
    assert new_id not in [u["id"] for u in body["data"]["users"]]


def test_big_light_curve_is_drawn_with_webgl(driver, server, api, member, instrument_id):
    """Above 1,500 points the light curve is drawn with WebGL (prepared while the points load)."""
    name, token = member
    obj_id = unique()
    private_source(api, token, obj_id, 155.0, 5.0)
    photometry(api, token, obj_id, instrument_id, detections=1800, limits=200, group_id=own_group(api, token))
    login(driver, server, name)
    open_page(driver, server, f"/source/{obj_id}")
    wait_js(driver, "return document.getElementById('lightcurve').dataset.ready === 'true'", timeout=60)
    lc = driver.find_element("id", "lightcurve")
    if not driver.execute_script("return PortalPlots.webglAvailable()"):
        pytest.skip("this chromium offers no WebGL (the page then draws with SVG)")
    assert lc.get_attribute("data-renderer") == "scattergl"
    assert lc.get_attribute("data-points") == "2000"
    counts = driver.execute_script(
        """
        const gd = document.getElementById('lightcurve');
        const real = gd._fullData.filter(t => t.type === 'scattergl');
        return [real.reduce((n, t) => n + t.x.length, 0), gd._fullLayout.annotations.length];
        """
    )
    assert counts == [2000, 0]  # every point, and the loading note gone


# -- every page, without script errors ------------------------------------------------------------------------------------------------
def test_every_page_loads_without_script_errors(driver, server, api, make_user, instrument_id):
    name = f"browser-tour-{uuid.uuid4().hex[:8]}"
    _, token = make_user("Super admin", username=name)
    obj_id = unique()
    private_source(api, token, obj_id, 160.0, 6.0)
    login(driver, server, name)
    driver.get_log("browser")  # drop what earlier pages said
    status, body = api.get("/api/groups", token)
    gid = body["data"]["user_groups"][0]["id"]
    status, body = api.get(f"/api/instrument/{instrument_id}", token)
    tid = body["data"]["telescope_id"]
    pages = {
        "/": "#recent-sources table, #recent-sources .empty",
        "/sources": "#sources-table table, #no-sources",
        f"/source/{obj_id}": "#comments-list .empty",
        "/candidates": "#candidates-list table, #no-candidates",
        "/telescopes": "#telescopes-list table",
        f"/telescope/{tid}": "#telescope-instruments table, #telescope-instruments .empty",
        "/instruments": "#instruments-list table, #instruments-list .empty",
        "/groups": "#my-groups table",
        f"/group/{gid}": "#group-members table",
        "/profile": "#token-list table, #no-tokens",
        "/user_management": "#users-list table",
        "/live": "#live-status[data-state=live]",
        "/notifications": "#notifications-list .empty, #notifications-list .notification",
    }
    for path, loaded in pages.items():
        open_page(driver, server, path)
        wait_js(driver, f"return !!document.querySelector({loaded!r})")
        assert not driver.find_elements("css selector", "main .alert.error"), path
        problems = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert problems == [], (path, problems)


# -- logging out ----------------------------------------------------------------------------------------------------------------
def test_logout_button_ends_the_session_for_every_copy_of_the_cookie(driver, server, member):
    """The navbar's Logout posts the page's anti-forgery token; the session ends in the database."""
    import requests

    name, _ = member
    login(driver, server, name)
    open_page(driver, server, "/profile")
    copied = driver.get_cookie("session")["value"]
    profile = lambda: requests.get(server.url + "/api/internal/profile", cookies={"session": copied}, timeout=30)  # noqa: E731
    assert profile().status_code == 200
    driver.find_element("id", "logout-link").click()
    wait_js(driver, "return location.pathname === '/login' && !document.body.dataset.userId")
    assert driver.get_cookie("session") is None
    assert profile().status_code == 401


# -- light curve: the date axis, filter systems, stored points that cannot be drawn ------------------------------------
def _axis_ticks(driver) -> dict:
    """The drawn ticks of the light curve's two x axes: [pixel, label] pairs read from the SVG."""
    return driver.execute_script(
        """
        const gd = document.getElementById('lightcurve');
        const read = (cls) => [...gd.querySelectorAll('.' + cls + ' text')].map((t) => {
          const m = /translate\\(([-0-9.e]+)/.exec(t.getAttribute('transform') || '');
          return [m ? parseFloat(m[1]) : null, t.getAttribute('data-unformatted') || t.textContent];
        });
        return {mjd: read('xtick'), date: read('x2tick')};
        """
    )


MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _pixel_to_mjd(mjd_ticks):
    """The linear map from a pixel to the MJD it shows, from the MJD axis's own ticks."""
    (p0, v0), (p1, v1) = [(p, float(v.replace("\u2212", "-"))) for p, v in (mjd_ticks[0], mjd_ticks[-1])]
    return lambda p: v0 + (p - p0) * (v1 - v0) / (p1 - p0)


def test_light_curve_date_axis_agrees_with_astropy(driver, server, api, member, instrument_id):
    """Every date label above the plot sits over the MJD that astropy converts to that date (midnight UTC)."""
    from datetime import datetime

    from astropy.time import Time

    name, token = member
    obj_id = unique()
    private_source(api, token, obj_id, 150.5, 2.5)
    body = {
        "obj_id": obj_id, "instrument_id": instrument_id, "filter": "ztfg", "magsys": "ab",
        "mjd": [60495.3 + 0.75 * i for i in range(14)], "mag": [18.0 + 0.1 * i for i in range(14)], "magerr": 0.05,
        "group_ids": [own_group(api, token)],
    }
    status, answer = api.post("/api/photometry", token, json=body)
    assert status == 200, answer
    login(driver, server, name)
    for zoom in (None, [60497.5, 60499.5], [60000, 61000]):
        open_page(driver, server, f"/source/{obj_id}")
        wait_js(driver, "return document.getElementById('lightcurve').dataset.ready === 'true'")
        if zoom:
            driver.execute_async_script(
                "const done = arguments[arguments.length - 1]; const gd = document.getElementById('lightcurve');"
                f"Plotly.relayout(gd, {{'xaxis.range': {zoom}}}).then(() => setTimeout(done, 300));"
            )
        ticks = _axis_ticks(driver)
        assert len(ticks["mjd"]) >= 2 and len(ticks["date"]) >= 2, ticks
        to_mjd = _pixel_to_mjd(ticks["mjd"])
        per_pixel = abs(to_mjd(1) - to_mjd(0))
        checked = 0
        for pixel, label in ticks["date"]:
            mjd = to_mjd(pixel)
            shown = label.replace("<br>", " ")
            # "Jul 7 2024", "Jul 7", "Jul 2024", "Jul", "2024", "Jul 7 06:00" or "06:00": the start of that day,
            # month, year or hour must be, by astropy, the MJD under the label (within two pixels).
            parts = re.fullmatch(r"(?:([A-Z][a-z]{2})(?: (\d{1,2}))? ?)?(\d{4})?(?: ?(\d\d):(\d\d))?", shown)
            assert parts and shown, label
            month, day, year, hour, minute = parts.groups()
            tolerance = max(2 * per_pixel, 1e-4)
            after = Time(mjd + tolerance, format="mjd", scale="utc").to_datetime()  # for what the label leaves out
            named = datetime(
                int(year) if year else after.year,
                MONTH_NAMES.index(month) + 1 if month else (after.month if hour else 1),
                int(day) if day else (after.day if hour else 1),
                int(hour or 0), int(minute or 0),
            )
            assert abs(Time(named, scale="utc").mjd - mjd) <= tolerance, (label, mjd, named)
            checked += 1
        assert checked >= 2
    # MJD 60498 is 2024-07-07: the 2-day zoom labels that day.
    open_page(driver, server, f"/source/{obj_id}")
    wait_js(driver, "return document.getElementById('lightcurve').dataset.ready === 'true'")
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; const gd = document.getElementById('lightcurve');"
        "Plotly.relayout(gd, {'xaxis.range': [60497.5, 60499.5]}).then(() => setTimeout(done, 300));"
    )
    ticks = _axis_ticks(driver)
    to_mjd = _pixel_to_mjd(ticks["mjd"])
    near = [label for pixel, label in ticks["date"] if abs(to_mjd(pixel) - 60498) < 0.01]
    assert near and "Jul 7" in near[0], ticks


def test_light_curve_tells_systems_apart_and_survives_a_bad_date(driver, server, api, admin_token, db, member):
    """ztfg and sdssg look different; a stored point at MJD 1e30 is named under the plot, the rest is drawn."""
    from sqlalchemy import text

    name, token = member
    cam = instrument(api, admin_token, filters=("ztfg", "sdssg"))
    obj_id = unique()
    private_source(api, token, obj_id, 153.0, 4.5)
    n = 16
    body = {
        "obj_id": obj_id, "instrument_id": cam, "magsys": "ab", "group_ids": [own_group(api, token)],
        "filter": ["ztfg" if i % 2 else "sdssg" for i in range(n)], "mjd": [60100.0 + i for i in range(n)],
        "mag": [18.0 + 0.1 * i if i < 12 else None for i in range(n)],
        "magerr": [0.05 if i < 12 else None for i in range(n)], "limiting_mag": [21.0] * n,
    }
    status, answer = api.post("/api/photometry", token, json=body)
    assert status == 200, answer
    bad_id = answer["data"]["ids"][3]
    # Whatever checks uploads, the plot must cope with what is already stored.
    with db() as session:
        session.execute(text("UPDATE photometry SET mjd = 1e30 WHERE id = :id"), {"id": bad_id})
        session.commit()

    login(driver, server, name)
    driver.get_log("browser")
    open_page(driver, server, f"/source/{obj_id}")
    wait_js(driver, "return document.getElementById('lightcurve').dataset.ready === 'true'")
    lc = driver.find_element("id", "lightcurve")
    assert lc.get_attribute("data-points") == str(n - 1)
    assert driver.execute_script("return document.querySelectorAll('#lightcurve .scatterlayer .points path.point').length") == n - 1
    note = driver.find_element("id", "lightcurve-skipped").text
    assert str(bad_id) in note and "1e+30" in note
    assert [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    # The point is still listed in the table, its date shown as impossible.
    rows = driver.execute_script("return [...document.querySelectorAll('#photometry-table table.photometry tbody tr')].map(r => r.textContent)")
    assert len(rows) == n and any("no such date" in r for r in rows)

    traces = driver.execute_script(
        "return document.getElementById('lightcurve')._fullData.filter(t => t.x.length)"
        ".map(t => [t.name, t.marker.color, t.marker.symbol]);"
    )
    looks = {name_: (color, symbol) for name_, color, symbol in traces}
    assert looks["ztfg"][0] != looks["sdssg"][0] and looks["ztfg"][1] != looks["sdssg"][1], looks
    # The two systems' upper limits differ in colour too.
    assert looks["ztfg limit"][0] != looks["sdssg limit"][0], looks


# -- who sees which actions; long group names -------------------------------------------------------------------------
def _candidate_in_group(api, admin_token, group_id: int) -> str:
    """A new object that passed a filter of `group_id` (a candidate its members scan)."""
    from datetime import datetime, timezone

    tag = uuid.uuid4().hex[:6]
    status, body = api.post("/api/streams", admin_token, json={"name": f"stream-{tag}"})
    assert status == 200, body
    stream_id = body["data"]["id"]
    assert api.post(f"/api/groups/{group_id}/streams", admin_token, json={"stream_id": stream_id})[0] == 200
    status, body = api.post("/api/filters", admin_token, json={"name": f"f-{tag}", "stream_id": stream_id, "group_id": group_id})
    assert status == 200, body
    obj_id = unique()
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")
    status, body = api.post("/api/candidates", admin_token, json={
        "id": obj_id, "ra": 12.0, "dec": 21.0, "filter_ids": [body["data"]["id"]], "passed_at": now, "passing_alert_id": 7})
    assert status == 200, body
    return obj_id


def _long_group(api, admin_token, *member_ids: int) -> tuple[int, str]:
    name = "collaboration-" + uuid.uuid4().hex * 3 + "-followup"  # 100 characters without a space
    status, body = api.post("/api/groups", admin_token, json={"name": name})
    assert status == 200, body
    gid = body["data"]["id"]
    for uid in member_ids:
        status, body = api.post(f"/api/groups/{gid}/users", admin_token, json={"userID": uid, "admin": False})
        assert status == 200, body
    return gid, name


def test_view_only_users_see_no_save_unsave_or_reject(driver, server, api, admin_token, make_user):
    name = f"browser-viewer-{uuid.uuid4().hex[:8]}"
    uid, _ = make_user("View only", username=name)
    gid, _ = _long_group(api, admin_token, uid)
    saved = unique()
    status, body = api.post("/api/sources", admin_token, json={"id": saved, "ra": 30.0, "dec": 10.0, "group_ids": [gid]})
    assert status == 200, body
    candidate = _candidate_in_group(api, admin_token, gid)

    login(driver, server, name)
    driver.get_log("browser")
    open_page(driver, server, f"/source/{saved}")
    wait_js(driver, f"return !!document.querySelector('#groups-list tr[data-group-id=\"{gid}\"]')")
    assert not driver.find_elements("css selector", "#groups-list .unsave, #save-form, #save-button")
    assert "Upload data" in driver.find_element("id", "save-needs-permission").text

    open_page(driver, server, "/candidates")
    wait_js(driver, f"return !!document.querySelector('#candidates-list tr[data-obj-id=\"{candidate}\"]')")
    assert not driver.find_elements("css selector", "#candidates-list .save-candidate, #candidates-list .reject-candidate, #candidates-list select")
    assert [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []


def _on_screen(driver, selector: str) -> bool:
    """Whether the element is inside the window horizontally (not pushed off to the right)."""
    return driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return r.width > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth;",
        selector,
    )


def test_long_group_names_keep_the_actions_on_screen(driver, server, api, admin_token, make_user):
    name = f"browser-longnames-{uuid.uuid4().hex[:8]}"
    uid, token = make_user("Full user", username=name)
    saved_to, saved_name = _long_group(api, admin_token, uid)
    _long_group(api, admin_token, uid)  # offered in the "Save to group" menu
    obj_id = unique()
    status, body = api.post("/api/sources", token, json={"id": obj_id, "ra": 31.0, "dec": 11.0, "group_ids": [saved_to]})
    assert status == 200, body
    candidate = _candidate_in_group(api, admin_token, saved_to)

    login(driver, server, name)
    driver.set_window_size(1100, 900)
    try:
        open_page(driver, server, f"/source/{obj_id}")
        row = f'#groups-list tr[data-group-id="{saved_to}"]'
        wait_js(driver, f"return !!document.querySelector('{row} .unsave') && !document.getElementById('save-button').disabled")
        assert driver.find_element("css selector", f"{row} .group-name").text == saved_name
        assert _on_screen(driver, f"{row} .unsave") and _on_screen(driver, "#save-button") and _on_screen(driver, "#save-group")
        assert driver.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth")

        open_page(driver, server, "/candidates")
        crow = f'#candidates-list tr[data-obj-id="{candidate}"]'
        wait_js(driver, f"return !!document.querySelector('{crow} .reject-candidate')")
        assert _on_screen(driver, f"{crow} .reject-candidate") and _on_screen(driver, f"{crow} .save-candidate")
    finally:
        driver.set_window_size(1400, 1000)
