"""The GW events pages: the list and an event's page as HTTP (login, 404s, what the server writes), and in a real
browser with the sample LVK preliminary alert (FAR as "1 per N years", the contours drawn, a source in the
credible region listed with its probability density)."""

from __future__ import annotations

import html
import random
import uuid
from datetime import datetime, timedelta

import pytest
import requests

from test_pages import browser_session, page_data


def new_event(db, trigger_id: str | None = None, tags=()) -> datetime:
    """An event written straight to the database (no notice): its dateobs, unique to the test."""
    from astroportal.models import GcnEvent, GcnTag

    dateobs = datetime(2020, 1, 1) + timedelta(seconds=random.randrange(10**8), microseconds=random.randrange(10**6))
    with db() as session:
        event = GcnEvent(dateobs=dateobs, trigger_id=trigger_id, aliases=[])
        event.tags = [GcnTag(text=t) for t in tags]
        session.add(event)
        session.commit()
    return dateobs


@pytest.fixture(scope="module")
def member(make_user):
    name = f"gwpages-{uuid.uuid4().hex[:8]}"
    make_user("Full user", username=name)
    return name


@pytest.fixture()
def web(server, member):
    return browser_session(server, member)


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
        assert page_data(r.text) == {"dateobs": iso, "triggerId": "S200105ae", "planAvailable": False}
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
    assert "There is no event at the time" in text and "(/gcn_events)" in text


def test_parse_dateobs_reads_iso_times_as_naive_utc():
    from astroportal.handlers.pages.gcn_events import parse_dateobs

    assert parse_dateobs("2019-04-25T08:18:05") == datetime(2019, 4, 25, 8, 18, 5)
    assert parse_dateobs("2019-04-25T08:18:05.123Z") == datetime(2019, 4, 25, 8, 18, 5, 123000)
    assert parse_dateobs("2019-04-25T10:18:05+02:00") == datetime(2019, 4, 25, 8, 18, 5)
    assert parse_dateobs("2019-04-25 08:18:05") == datetime(2019, 4, 25, 8, 18, 5)
    for bad in ("", "S190425z", "2019-04-25T25:00:00", "x" * 50):
        assert parse_dateobs(bad) is None
