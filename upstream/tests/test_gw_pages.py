"""The GW events pages as HTTP: the list and an event's page (login, 404s, what the server writes). The same
pages in a real browser: test_gw_browser.py."""

from __future__ import annotations

import html
import random
import uuid
from datetime import datetime, timedelta

import pytest
import requests

from test_pages import browser_session, page_data


def new_event(db, trigger_id: str | None = None, tags=(), aliases=()) -> datetime:
    """An event written straight to the database (no notice): its dateobs, unique to the test."""
    from astroportal.models import GcnEvent, GcnTag

    dateobs = datetime(2020, 1, 1) + timedelta(seconds=random.randrange(10**8), microseconds=random.randrange(10**6))
    with db() as session:
        event = GcnEvent(dateobs=dateobs, trigger_id=trigger_id, aliases=list(aliases))
        event.tags = [GcnTag(text=t) for t in tags]
        session.add(event)
        session.commit()
    return dateobs


@pytest.fixture(scope="module")
def member(make_user):
    """(username, token) of a Full user."""
    name = f"gwpages-{uuid.uuid4().hex[:8]}"
    _, token = make_user("Full user", username=name)
    return name, token


@pytest.fixture()
def web(server, member):
    return browser_session(server, member[0])


# -- logging in -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/gcn_events", "/gcn_events/2019-04-25T08:18:05"])
def test_gw_pages_need_a_login(server, path):
    r = requests.get(server.url + path, allow_redirects=False, timeout=30)
    assert r.status_code == 302
    assert r.headers["Location"] == "/login?next=" + requests.utils.quote(path, safe="")


# -- the list ----------------------------------------------------------------------------------------------------
def test_events_list_renders_with_its_nav_entry(web, server):
    r = web.get(server.url + "/gcn_events", timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert '<a href="/gcn_events" class="active" aria-current="page">GW events</a>' in r.text
    assert 'id="gcn-events-list"' in r.text and "/static/js/gcn-events.js" in r.text
    assert "Traceback" not in r.text
    # Every other page links to it too.
    assert ">GW events</a>" in web.get(server.url + "/sources", timeout=30).text


# -- one event ---------------------------------------------------------------------------------------------------
def test_event_page_renders_for_each_spelling_of_its_time(web, server, db):
    dateobs = new_event(db, "S200105ae", tags=["GW", "NSBH"])
    iso = dateobs.isoformat()
    for spelling in (iso, iso + "Z", iso.replace("T", " "), (dateobs + timedelta(hours=2)).isoformat() + "+02:00"):
        r = web.get(server.url + "/gcn_events/" + requests.utils.quote(spelling), timeout=30)
        assert r.status_code == 200, (spelling, r.text[:300])
        assert '<h1 id="gcn-event-title">S200105ae</h1>' in r.text
        assert page_data(r.text) == {"dateobs": iso, "triggerId": "S200105ae", "planAvailable": True}
        assert 'id="gw-skymap"' in r.text and 'id="network-map"' in r.text
        assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_event_without_trigger_id_has_a_title(web, server, db):
    dateobs = new_event(db, None)
    r = web.get(f"{server.url}/gcn_events/{dateobs.isoformat()}", timeout=30)
    assert r.status_code == 200 and '<h1 id="gcn-event-title">Event</h1>' in r.text


@pytest.mark.parametrize("dateobs", ["2001-02-03T04:05:06", "not-a-time", "2019-13-45T99:00:00", "9" * 300])
def test_unknown_or_unreadable_event_time_is_a_404_page_that_points_to_the_list(web, server, dateobs):
    r = web.get(f"{server.url}/gcn_events/{dateobs}", timeout=30)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("text/html")
    text = html.unescape(r.text)
    assert 'id="error-page"' in text and "Traceback" not in text
    assert "There is no event" in text and "(/gcn_events)" in text


def test_event_page_by_alias(web, server, db):
    alias = "S" + uuid.uuid4().hex[:6]
    dateobs = new_event(db, alias, aliases=[alias])
    r = web.get(f"{server.url}/gcn_events/{alias}", timeout=30)
    assert r.status_code == 200 and page_data(r.text)["dateobs"] == dateobs.isoformat()
