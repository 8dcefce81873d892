"""The web pages as HTTP: logins and redirects, error pages, server-side content, escaping, vendored scripts."""

from __future__ import annotations

import html
import json
import re
import uuid

import pytest
import requests

from conftest import unique
from uihelpers import own_group, private_source

PAYLOAD = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
PAGES = ["/", "/sources", "/candidates", "/telescopes", "/instruments", "/groups", "/profile"]


def browser_session(server, username: str) -> requests.Session:
    """A requests session logged in through the debug login, as a browser would be."""
    s = requests.Session()
    r = s.get(f"{server.url}/debug_login", params={"username": username}, allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text[:500]
    return s


def page_data(text: str) -> dict:
    match = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', text, re.S)
    assert match, "the page has no page-data block"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def member(make_user, api):
    """A Full user, their token and a logged-in browser-like session: (username, token, session)."""
    name = f"pages-{uuid.uuid4().hex[:8]}"
    _, token = make_user("Full user", username=name)
    return name, token


@pytest.fixture()
def web(server, member):
    return browser_session(server, member[0])


# -- logging in -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES + ["/source/ZTF00nothing", "/telescope/1", "/group/1", "/user_management"])
def test_pages_redirect_to_login_with_next(server, path):
    r = requests.get(server.url + path, allow_redirects=False, timeout=30)
    assert r.status_code == 302
    assert r.headers["Location"] == "/login?next=" + requests.utils.quote(path, safe="")


def test_every_page_renders_for_a_member(web, server, member):
    for path in PAGES:
        r = web.get(server.url + path, timeout=30)
        assert r.status_code == 200, (path, r.text[:300])
        text = r.text
        assert "Astro Portal" in text  # app.title
        for label in ("Dashboard", "Sources", "Candidates", "Telescopes", "Instruments", "Groups", "Profile"):
            assert f">{label}</a>" in text, (path, label)
        # Logging out is a form posting the page's anti-forgery token, which the scripts read from a meta tag.
        assert 'id="logout-link">Logout</button>' in text, path
        assert re.search(r'<meta name="csrf-token" content="[0-9a-f]{64}">', text), path
        # A Full user manages nobody: no link to user management.
        assert "User management" not in text
        assert member[0] in text
        assert "Traceback" not in text
        assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_navbar_shows_user_management_to_admins(server, make_user):
    name = f"admin-{uuid.uuid4().hex[:8]}"
    make_user("Super admin", username=name)
    s = browser_session(server, name)
    r = s.get(server.url + "/user_management", timeout=30)
    assert r.status_code == 200
    assert ">User management</a>" in r.text and page_data(r.text) == {"canEditRoles": True}


def test_user_management_refused_to_members(web, server):
    r = web.get(server.url + "/user_management", timeout=30)
    assert r.status_code == 403
    assert "Manage users" in r.text and "Traceback" not in r.text


def test_logo_and_branding_are_served(server):
    r = requests.get(server.url + "/static/images/logo.svg", timeout=30)
    assert r.status_code == 200 and "<svg" in r.text
    r = requests.get(server.url + "/login", timeout=30)
    assert 'src="/static/images/logo.svg"' in r.text and "Astro Portal" in r.text


# -- errors ------------------------------------------------------------------------------------------------------
def test_missing_source_is_a_404_page(web, server):
    r = web.get(server.url + "/source/ZTF00doesnotexist", timeout=30)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("text/html")
    assert "object 'ZTF00doesnotexist' not found" in html.unescape(r.text)
    assert 'id="error-page"' in r.text and "Traceback" not in r.text


def test_someone_elses_private_source_is_a_404_page(web, server, api, make_user):
    _, other = make_user("Full user")
    obj_id = unique()
    private_source(api, other, obj_id, 12.0, 13.0)
    r = web.get(f"{server.url}/source/{obj_id}", timeout=30)
    assert r.status_code == 404 and "not found" in r.text


def test_unknown_pages_and_ids_are_404_pages(web, server):
    for path in ("/no/such/page", "/telescope/99999999", "/telescope/abc", "/group/99999999"):
        r = web.get(server.url + path, timeout=30)
        assert r.status_code == 404, path
        assert 'id="error-page"' in r.text and "Traceback" not in r.text
    # API addresses keep their JSON errors.
    r = web.get(server.url + "/api/no_such_route", timeout=30)
    assert r.status_code == 404 and r.json()["status"] == "error"


# -- the source page -------------------------------------------------------------------------------------------------
def test_source_page_positions(web, server, api, member):
    obj_id = unique()
    # M31's nucleus: 00:42:44.33 +41:16:07.5, Galactic l=121.174, b=-21.573.
    private_source(api, member[1], obj_id, 10.684708, 41.26875, redshift=-0.001)
    r = web.get(f"{server.url}/source/{obj_id}", timeout=30)
    assert r.status_code == 200
    text = r.text
    assert "10.684708" in text and "+41.268750" in text
    assert "00:42:44.330" in text and "+41:16:07.50" in text
    gal = re.search(r'id="pos-gal">([-+\d.]+) &nbsp; ([-+\d.]+)<', text)
    assert gal and float(gal.group(1)) == pytest.approx(121.1743, abs=0.001)
    assert float(gal.group(2)) == pytest.approx(-21.5733, abs=0.001)
    assert page_data(text) == {"objId": obj_id, "ra": 10.684708, "dec": 41.26875, "photometryCount": 0}
    # Plotly comes from the portal itself.
    assert re.search(r'<script src="/vendor/plotly\.min\.js\?v=[\d.]+"></script>', text)
    assert "cdn" not in text.lower()


def test_source_page_counts_only_the_points_the_user_may_see(web, server, api, member, admin_token):
    from uihelpers import instrument, photometry

    obj_id = unique()
    status, body = api.post(
        "/api/sources", member[1], json={"id": obj_id, "ra": 50.0, "dec": 5.0, "group_ids": [own_group(api, member[1])]}
    )
    assert status == 200, body
    inst = instrument(api, admin_token)
    photometry(api, member[1], obj_id, inst, detections=3, limits=1, group_id=own_group(api, member[1]))
    # The admin's points, shared with the admin alone, stay out of the member's count.
    admin_group = own_group(api, admin_token)
    body = {"obj_id": obj_id, "instrument_id": inst, "mjd": [61000.0, 61001.0], "filter": ["ztfg", "ztfg"],
            "mag": [19.0, 19.1], "magerr": [0.1, 0.1], "limiting_mag": [21.0, 21.0], "magsys": "ab", "group_ids": [admin_group]}
    status, answer = api.post("/api/photometry", admin_token, json=body)
    assert status == 200, answer
    r = web.get(f"{server.url}/source/{obj_id}", timeout=30)
    assert page_data(r.text)["photometryCount"] == 4
    status, points = api.get(f"/api/sources/{obj_id}/photometry", member[1])
    assert len(points["data"]) == 4


def test_source_page_shows_the_annotations_the_user_may_see(web, server, api, member, admin_token):
    obj_id = unique()
    private_source(api, member[1], obj_id, 30.0, 1.0)
    r = web.get(f"{server.url}/source/{obj_id}", timeout=30)
    assert 'id="annotations"' not in r.text  # no annotations, no empty table
    data = {"rf_kn_vs_nonkn": 0.823456, "cdsxmatch": PAYLOAD, "flagged": True}
    status, body = api.post(f"/api/sources/{obj_id}/annotations", member[1], json={"origin": "fink", "data": data})
    assert status == 200, body
    # The admin's annotation, shared with the admin alone, is not shown to the member.
    status, body = api.post(f"/api/sources/{obj_id}/annotations", admin_token,
                            json={"origin": "secret", "data": {"x": 1}, "group_ids": [own_group(api, admin_token)]})
    assert status == 200, body
    r = web.get(f"{server.url}/source/{obj_id}", timeout=30)
    rows = re.findall(r'<tr class="annotation" data-origin="([^"]*)">(.*?)</tr>', r.text, re.S)
    assert [origin for origin, _ in rows] == ["fink"] * 3
    cells = [re.findall(r"<td>(.*?)</td>", row, re.S) for _, row in rows]
    assert cells == [["cdsxmatch", html.escape(PAYLOAD, quote=True)], ["flagged", "true"], ["rf_kn_vs_nonkn", "0.8235"]]
    assert "secret" not in r.text and "<script>window.__xss" not in r.text


def test_user_text_is_escaped_in_pages(web, server, api, member):
    obj_id = unique()
    private_source(api, member[1], obj_id, 20.0, 21.0, alias=[PAYLOAD])
    r = web.get(f"{server.url}/source/{obj_id}", timeout=30)
    assert r.status_code == 200
    assert PAYLOAD not in r.text and "<script>window.__xss" not in r.text
    assert html.escape(PAYLOAD, quote=True) in r.text


def test_group_name_is_escaped_on_group_page(server, make_user):
    name = f"gadmin-{uuid.uuid4().hex[:8]}"
    _, token = make_user("Group admin", username=name)
    group_name = f"{PAYLOAD} {uuid.uuid4().hex[:6]}"
    r = requests.post(
        f"{server.url}/api/groups", json={"name": group_name, "nickname": "x<b>y</b>"},
        headers={"Authorization": f"token {token}"}, timeout=30,
    )
    assert r.status_code == 200, r.text
    s = browser_session(server, name)
    groups = s.get(f"{server.url}/api/groups", timeout=30).json()["data"]["user_groups"]
    gid = next(g["id"] for g in groups if g["name"] == group_name)
    r = s.get(f"{server.url}/group/{gid}", timeout=30)
    assert r.status_code == 200
    assert PAYLOAD not in r.text and "x<b>y</b>" not in r.text
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in r.text
    assert page_data(r.text) == {"groupId": gid, "isGroupAdmin": True}


def test_page_data_cannot_break_out_of_its_script_block(web, server, api, member):
    from astroportal.handlers.pages.common import PageHandler

    # Object ids cannot hold '/', so "</script>" is tried on the encoder itself.
    encoded = PageHandler.page_data_json(None, {"x": "</script><script>alert(1)</script><!--"})
    assert "<" not in encoded
    assert json.loads(encoded) == {"x": "</script><script>alert(1)</script><!--"}

    obj_id = unique() + "<!--<script>x=1"
    private_source(api, member[1], obj_id, 30.0, 31.0)
    r = web.get(f"{server.url}/source/{requests.utils.quote(obj_id, safe='')}", timeout=30)
    assert r.status_code == 200
    assert page_data(r.text)["objId"] == obj_id
    assert f'<h1 id="source-id">{html.escape(obj_id)}</h1>' in r.text


# -- the sources list and its cone search --------------------------------------------------------------------------------
def test_cone_search_form_reads_sexagesimal_and_degrees(web, server):
    r = web.get(f"{server.url}/sources", params={"ra": "10:00:24.0", "dec": "-02:30:00", "radius": "5", "unit": "arcmin"}, timeout=30)
    assert r.status_code == 200
    cone = page_data(r.text)["cone"]
    assert cone["ra"] == pytest.approx(150.1) and cone["dec"] == pytest.approx(-2.5)
    assert cone["radius"] == pytest.approx(5 / 60)
    assert 'value="10:00:24.0"' in r.text  # the form keeps what was typed

    r = web.get(f"{server.url}/sources", params={"ra": "150.1", "dec": "-2.5", "radius": "3"}, timeout=30)
    cone = page_data(r.text)["cone"]
    assert cone == {"ra": 150.1, "dec": -2.5, "radius": pytest.approx(3 / 3600)}

    r = web.get(f"{server.url}/sources", params={"ra": "10h00m24s", "dec": "-2d30m", "radius": "1", "unit": "deg"}, timeout=30)
    cone = page_data(r.text)["cone"]
    assert cone["ra"] == pytest.approx(150.1) and cone["dec"] == pytest.approx(-2.5) and cone["radius"] == 1.0


@pytest.mark.parametrize(
    "params, message",
    [
        ({"ra": "361", "dec": "0"}, "outside 0..360"),
        ({"ra": "25:00:00", "dec": "0"}, "cannot read the right ascension"),
        ({"ra": "abc", "dec": "0"}, "cannot read the right ascension"),
        ({"ra": "10", "dec": "95"}, "outside -90..+90"),
        ({"ra": "10", "dec": ""}, "needs both"),
        ({"ra": "10", "dec": "1", "radius": "-1"}, "radius must be more than 0"),
        ({"ra": "10", "dec": "1", "radius": "1", "unit": "parsec"}, "unknown radius unit"),
    ],
)
def test_cone_search_form_explains_bad_input(web, server, params, message):
    r = web.get(f"{server.url}/sources", params=params, timeout=30)
    assert r.status_code == 400
    assert message in html.unescape(r.text)
    assert 'id="search-error"' in r.text and page_data(r.text)["cone"] is None


def test_sources_page_keeps_paging_and_sorting_sane(web, server):
    r = web.get(f"{server.url}/sources", params={"pageNumber": "x", "numPerPage": "7", "sortBy": "evil"}, timeout=30)
    data = page_data(r.text)
    assert data["pageNumber"] == 1 and data["numPerPage"] == 100 and data["sortBy"] == "saved_at"


# -- telescopes ---------------------------------------------------------------------------------------------------------
def test_telescope_page_shows_night_and_dark_window(web, server, api, admin_token, db):
    from astroportal.models import Telescope

    tag = uuid.uuid4().hex[:6]
    payload = {"name": f"pages-paranal-{tag}", "nickname": "VLT<i>", "lat": -24.6272, "lon": -70.4042,
               "elevation": 2635.0, "diameter": 8.2, "robotic": False, "fixed_location": True,
               "skycam_link": "javascript:alert(1)", "weather_link": "https://www.eso.org/weather"}
    status, body = api.post("/api/telescope", admin_token, json=payload)
    assert status == 400 and "`skycam_link` must be an http:// or https:// URL" in body["message"]
    status, body = api.post("/api/telescope", admin_token, json={**payload, "skycam_link": None})
    assert status == 200, body
    tid = body["data"]["id"]
    with db() as session:  # a link stored before the API refused such links must not become one either
        session.get(Telescope, tid).skycam_link = "javascript:alert(1)"
        session.commit()
    r = web.get(f"{server.url}/telescope/{tid}", timeout=30)
    assert r.status_code == 200
    text = r.text
    assert f"pages-paranal-{tag}" in text and "VLT&lt;i&gt;" in text
    assert "-24.62720°" in text and "2635 m" in text
    assert re.search(r'id="night-state" data-is-night="(true|false)"', text)
    assert re.search(r'id="sun-altitude">[-+]\d+\.\d°<', text)
    assert "Dark window" in text and 'id="dark-window"' in text
    # Only http(s) links become links.
    assert "javascript:alert" not in text
    assert 'href="https://www.eso.org/weather"' in text

    status, body = api.post(
        "/api/telescope", admin_token,
        json={"name": f"pages-ship-{tag}", "nickname": "ship", "diameter": 0.5, "robotic": True,
              "fixed_location": False, "lat": None, "lon": None, "elevation": None},
    )
    assert status == 200, body
    r = web.get(f"{server.url}/telescope/{body['data']['id']}", timeout=30)
    assert r.status_code == 200 and 'id="no-location"' in r.text


# -- vendored scripts -----------------------------------------------------------------------------------------------------
def test_plotly_is_served_from_the_installed_package(server):
    from importlib.metadata import version

    r = requests.get(f"{server.url}/vendor/plotly.min.js?v={version('plotly')}", timeout=60)
    assert r.status_code == 200
    assert "javascript" in r.headers["Content-Type"]
    assert "immutable" in r.headers.get("Cache-Control", "")
    assert len(r.content) > 1_000_000 and b"plotly" in r.content[:2000].lower()
    # Compressed once and kept: the browser gets gzip, and a revalidation costs nothing.
    assert r.headers["Content-Encoding"] == "gzip"
    again = requests.get(f"{server.url}/vendor/plotly.min.js", headers={"If-None-Match": r.headers["ETag"]}, timeout=30)
    assert again.status_code == 304 and again.content == b""
    assert requests.get(f"{server.url}/vendor/../config.yaml", timeout=30).status_code == 404
    assert requests.get(f"{server.url}/vendor/other.js", timeout=30).status_code == 404


def test_pages_reference_no_outside_resources(web, server, api, member):
    """Every script, style sheet and image a page loads comes from the portal (no CDN)."""
    obj_id = unique()
    private_source(api, member[1], obj_id, 40.0, 41.0)
    for path in PAGES + [f"/source/{obj_id}", "/login"]:
        text = web.get(server.url + path, timeout=30).text
        for ref in re.findall(r'(?:src|href)="([^"]+)"', text):
            assert ref.startswith("/") and not ref.startswith("//"), (path, ref)


# -- coordinate parsing (the form's helpers) ---------------------------------------------------------------------------------
def test_parse_ra_and_dec():
    from astroportal.handlers.pages.sources import CoordinateError, parse_dec, parse_ra

    assert parse_ra("150.1") == 150.1
    assert parse_ra("10:00:24") == pytest.approx(150.1)
    assert parse_ra("10 00 24") == pytest.approx(150.1)
    assert parse_ra("10h00m24s") == pytest.approx(150.1)
    assert parse_ra("150d06m") == pytest.approx(150.1)
    assert parse_dec("-02:30:00") == pytest.approx(-2.5)
    assert parse_dec("+2d30m") == pytest.approx(2.5)
    assert parse_dec("-0:30:00") == pytest.approx(-0.5)
    for bad in ("", "north", "360", "24:00:01"):
        with pytest.raises(CoordinateError):
            parse_ra(bad)
    with pytest.raises(CoordinateError):
        parse_dec("-91")


def test_unexpected_failure_is_a_readable_500_page(cfg, tmp_path, monkeypatch):
    """A page that fails with an unexpected exception shows a plain message, never the exception or a traceback."""
    import asyncio
    import copy

    from tornado.httpclient import AsyncHTTPClient

    from astroportal.app import make_app
    from conftest import free_port

    (tmp_path / "boom_pages.py").write_text(
        "from astroportal.handlers.pages.common import PageHandler\n"
        "class Boom(PageHandler):\n"
        "    def get(self):\n"
        "        raise RuntimeError('secret internal detail')\n"
        "ROUTES = [(r'/boom', Boom)]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    boom_cfg = copy.deepcopy(cfg)
    boom_cfg.path = cfg.path
    boom_cfg["app"]["handler_modules"] = ["boom_pages"]
    port = free_port()

    async def fetch():
        server = make_app(boom_cfg).listen(port, address="127.0.0.1")
        try:
            return await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/boom", raise_error=False)
        finally:
            server.stop()

    response = asyncio.run(fetch())
    text = response.body.decode()
    assert response.code == 500
    assert "Something went wrong on the server" in text and 'id="error-page"' in text
    assert "secret internal detail" not in text and "Traceback" not in text and "RuntimeError" not in text
