"""The Live page and the dashboard's latest events in the real browser: events arrive without reloading."""

from __future__ import annotations

import time
import uuid

import pytest

from conftest import unique
from test_browser import artifacts_on_failure, driver, login, open_page, wait_js  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def two_groups(api, admin_token, make_user):
    """(username of a member of group A, group A id, group B id)."""
    name = f"live-ui-{uuid.uuid4().hex[:8]}"
    uid, _ = make_user("Full user", username=name)
    ids = []
    for label in ("a", "b"):
        status, body = api.post("/api/groups", admin_token, json={"name": f"live-ui-{label}-{uuid.uuid4().hex[:6]}"})
        assert status == 200, body
        ids.append(body["data"]["id"])
    status, body = api.post(f"/api/groups/{ids[0]}/users", admin_token, json={"userID": uid, "admin": False})
    assert status == 200, body
    return name, ids[0], ids[1]


def save(api, admin_token, group_id, ra, dec) -> str:
    obj_id = unique()
    status, body = api.post("/api/sources", admin_token, json={"id": obj_id, "ra": ra, "dec": dec, "group_ids": [group_id]})
    assert status == 200, body
    return obj_id


def test_the_live_page_shows_new_events_without_reloading(driver, server, api, admin_token, two_groups):
    name, ga, gb = two_groups
    before = save(api, admin_token, ga, 30.0, 10.0)
    login(driver, server, name)
    open_page(driver, server, "/live")
    wait_js(driver, "return document.getElementById('live-status').dataset.state === 'live'")
    assert driver.execute_script(
        "return [...document.querySelectorAll('#live-list .live-event a')].map(a => a.textContent)"
    )[0] == f"{before} saved to a group"
    driver.execute_script("window.__same_page = true")
    hidden = save(api, admin_token, gb, 40.0, 15.0)
    shown = save(api, admin_token, ga, 250.0, -20.0)
    wait_js(driver, f"return document.querySelector('#live-list .live-event a[href=\"/source/{shown}\"]')")
    top = driver.execute_script(
        "const li = document.querySelector('#live-list .live-event');"
        "return [li.querySelector('a').getAttribute('href'), li.querySelector('.ev-icon').textContent,"
        " li.classList.contains('fresh')]")
    assert top == [f"/source/{shown}", "★", True]  # newest on top, with its icon
    assert driver.execute_script("return window.__same_page === true")  # no reload
    # On the sky map: a dot where the source is (RA grows to the left: x = 720 - 2 ra, y = 180 - 2 dec).
    dot = driver.execute_script(
        "const ds = [...document.querySelectorAll('#live-skymap .sky-dot')];"
        "const d = ds[ds.length - 1]; return [d.getAttribute('cx'), d.getAttribute('cy')]")
    assert [float(v) for v in dot] == [720 - 500.0, 180 + 40.0]
    assert hidden not in driver.page_source


def test_the_dashboard_shows_the_latest_few(driver, server, api, admin_token, two_groups):
    name, ga, _ = two_groups
    login(driver, server, name)
    open_page(driver, server, "/")
    wait_js(driver, "return document.querySelector('#dashboard-live .live-event, #dashboard-live .empty')")
    new = save(api, admin_token, ga, 1.0, 1.0)
    wait_js(driver, f"return document.querySelector('#dashboard-live a[href=\"/source/{new}\"]')")
    assert driver.execute_script("return document.querySelectorAll('#dashboard-live .live-event').length") <= 5


def test_subscribe_from_the_source_page_then_the_bell_counts_and_the_page_lists(driver, server, api, admin_token,
                                                                               two_groups):
    name, ga, gb = two_groups
    obj_id = save(api, admin_token, ga, 77.0, 7.0)
    login(driver, server, name)
    open_page(driver, server, f"/source/{obj_id}")
    driver.find_element("css selector", "#subscribe-source").click()
    wait_js(driver, "return [...document.querySelectorAll('.flash')].some(f => f.textContent.includes('Subscribed'))")
    status, body = api.post(f"/api/sources/{obj_id}/comments", admin_token, json={"text": "rising fast", "group_ids": [ga]})
    assert status == 200, body
    # The notifier matches just after the write's answer: open the page until the notification is there.
    deadline = time.monotonic() + 30
    while True:
        open_page(driver, server, "/notifications")
        wait_js(driver, "return document.querySelector('#notifications-list .empty, #notifications-list .notification')")
        if driver.find_elements("css selector", "#notifications-list .notification.unread") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert driver.execute_script("return document.querySelector('#notifications-list .notification a').textContent") \
        == f"comment on {obj_id}: rising fast"
    wait_js(driver, "return document.getElementById('notification-count').textContent === '1'")
    driver.find_element("css selector", "#mark-all-read").click()
    wait_js(driver, "return !document.querySelector('#notifications-list .notification.unread')")
    wait_js(driver, "return document.getElementById('notification-count').textContent === ''")
