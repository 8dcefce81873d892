"""Forged requests and browser sessions: what another site can make a logged-in browser do, and how long a
session lives.

The attacks reproduced here worked before: a page at http://127.0.0.1:<other port> ran
`fetch(url, {mode: "no-cors", credentials: "include", headers: {"Content-Type": "text/plain"}})` and made a
user Super admin, and a `<form enctype="text/plain">` created an API token for the admin. A browser sends
the session cookie with both (SameSite=Lax does not separate ports of one host) and the Origin of the page
that started them; these tests send the same requests.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import requests
from sqlalchemy import select, update

from conftest import free_port

SESSION_COOKIE = "session"


def browser(server, username: str) -> requests.Session:
    """A requests session logged in through the debug login, as a browser would be."""
    s = requests.Session()
    r = s.get(f"{server.url}/debug_login", params={"username": username}, allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text[:300]
    assert s.cookies.get(SESSION_COOKIE)
    return s


def page_token(s: requests.Session, server) -> str:
    """The anti-forgery token a portal page hands its scripts."""
    r = s.get(server.url + "/profile", timeout=30)
    assert r.status_code == 200
    match = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', r.text)
    assert match, "the page carries no anti-forgery token"
    return match.group(1)


def foreign_origin() -> str:
    return f"http://127.0.0.1:{free_port()}"


def roles_of(db, user_id: int) -> list[str]:
    from astroportal.models import User

    with db() as s:
        return s.get(User, user_id).role_names


def token_names(db, username: str) -> list[str]:
    from astroportal.models import Token, User

    with db() as s:
        return sorted(s.scalars(select(Token.name).join(User).where(User.username == username)))


def test_cross_site_fetch_cannot_grant_a_role(server, db, make_user):
    """The no-cors fetch from another port with text/plain: refused, and the victim's roles do not change."""
    victim, _ = make_user("View only")
    admin = browser(server, "admin")
    body = '{"roleIds": ["Super admin"]}'
    url = f"{server.url}/api/user/{victim}/roles"

    r = admin.post(url, data=body, headers={"Content-Type": "text/plain", "Origin": foreign_origin()}, timeout=30)
    assert r.status_code == 403, r.text
    assert "another site" in r.json()["message"]
    assert roles_of(db, victim) == ["View only"]

    # The right Origin alone is not enough: the page's token is needed too ...
    r = admin.post(url, data=body, headers={"Content-Type": "text/plain", "Origin": server.url}, timeout=30)
    assert r.status_code == 403 and "anti-forgery token" in r.json()["message"], r.text
    # ... and the token with another site's Origin is refused as well.
    token = page_token(admin, server)
    r = admin.post(url, data=body, timeout=30,
                   headers={"Content-Type": "text/plain", "Origin": foreign_origin(), "X-CSRF-Token": token})
    assert r.status_code == 403, r.text
    # A JSON route takes JSON only: text/plain, even with the token and the right Origin, is 415.
    r = admin.post(url, data=body, timeout=30,
                   headers={"Content-Type": "text/plain", "Origin": server.url, "X-CSRF-Token": token})
    assert r.status_code == 415, r.text
    assert roles_of(db, victim) == ["View only"]

    # What the portal's own page sends works.
    r = admin.post(url, data=body, timeout=30,
                   headers={"Content-Type": "application/json", "Origin": server.url, "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    assert roles_of(db, victim) == ["Super admin", "View only"]


def test_cross_site_text_plain_form_cannot_create_a_token(server, db):
    """<form enctype="text/plain" method="post" action=".../api/internal/tokens"> with name='{"name":"x","y":"'
    and value='"}' posts a JSON-looking body; with or without an Origin it is refused."""
    admin = browser(server, "admin")
    name = f"forged-{uuid.uuid4().hex[:6]}"
    body = f'{{"name": "{name}", "pad": "="}}'
    url = server.url + "/api/internal/tokens"
    for headers in (
        {"Content-Type": "text/plain", "Origin": foreign_origin()},
        # An old browser, or a page that asks for no Origin: the Referer then decides.
        {"Content-Type": "text/plain", "Referer": foreign_origin() + "/attack.html"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "text/plain", "Origin": "null"},
    ):
        r = admin.post(url, data=body, headers=headers, timeout=30)
        assert r.status_code == 403, (headers, r.text)
    assert name not in token_names(db, "admin")

    # From the profile page (same origin, its token, JSON): created.
    token = page_token(admin, server)
    r = admin.post(url, json={"name": name}, timeout=30,
                   headers={"Origin": server.url, "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    assert name in token_names(db, "admin")


def test_a_page_referer_stands_in_for_a_missing_origin(server, make_user):
    s = browser(server, f"ref-{uuid.uuid4().hex[:6]}")
    token = page_token(s, server)
    r = s.post(server.url + "/api/internal/tokens", json={"name": "from a page"}, timeout=30,
               headers={"Referer": server.url + "/profile", "X-CSRF-Token": token})
    assert r.status_code == 200, r.text


def test_token_requests_are_not_concerned(api, make_user):
    """Scripts with `Authorization: token` need neither Origin, nor the page's token, nor a JSON content type."""
    _, token = make_user("Full user")
    status, body = api.post("/api/internal/tokens", token, data='{"name": "script"}',
                            headers={"Content-Type": "text/plain", "Origin": foreign_origin()})
    assert status == 200, body


def test_another_users_page_token_does_not_work(server):
    alice = browser(server, f"alice-{uuid.uuid4().hex[:6]}")
    bob = browser(server, f"bob-{uuid.uuid4().hex[:6]}")
    r = alice.post(server.url + "/api/internal/tokens", json={"name": "x"}, timeout=30,
                   headers={"Origin": server.url, "X-CSRF-Token": page_token(bob, server)})
    assert r.status_code == 403, r.text


def profile_status(cookie: str, server) -> int:
    return requests.get(server.url + "/api/internal/profile", cookies={SESSION_COOKIE: cookie}, timeout=30).status_code


def test_logout_revokes_every_copy_of_the_cookie(server):
    s = browser(server, f"carol-{uuid.uuid4().hex[:6]}")
    copied = s.cookies.get(SESSION_COOKIE)
    assert profile_status(copied, server) == 200

    # Another site cannot log the person out, and neither does a plain link (GET only shows the login page).
    r = s.post(server.url + "/logout", data={}, headers={"Origin": foreign_origin()}, allow_redirects=False, timeout=30)
    assert r.status_code == 403
    r = s.get(server.url + "/logout", allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert profile_status(copied, server) == 200

    # The page's logout form: the session ends in the database, so the copied cookie stops working too.
    login_page = s.get(server.url + "/login", timeout=30).text
    field = re.search(r'name="csrf_token" value="([0-9a-f]+)"', login_page)
    assert field, "the login page of a logged-in user offers no logout form"
    r = s.post(server.url + "/logout", data={"csrf_token": field.group(1)}, headers={"Origin": server.url},
               allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert SESSION_COOKIE not in s.cookies
    assert profile_status(copied, server) == 401


def _age_session(db, cookie_owner: str, **delta) -> None:
    """Move the user's sessions back in time, as if `delta` had passed."""
    from astroportal.models import User, UserSession

    with db() as s:
        uid = s.scalar(select(User.id).where(User.username == cookie_owner))
        s.execute(
            update(UserSession)
            .where(UserSession.user_id == uid)
            .values(
                created_at=UserSession.created_at - timedelta(**delta.get("created", {})),
                last_seen=UserSession.last_seen - timedelta(**delta.get("seen", {})),
            )
        )
        s.commit()


def test_sessions_end_after_the_idle_and_the_absolute_lifetime(server, cfg, db):
    idle = float(cfg.get("server.session.idle_minutes"))
    max_hours = float(cfg.get("server.session.max_hours"))
    assert idle > 0 and max_hours > 0

    # Used recently enough: alive; unused for longer than idle_minutes: over.
    name = f"idle-{uuid.uuid4().hex[:6]}"
    s = browser(server, name)
    cookie = s.cookies.get(SESSION_COOKIE)
    _age_session(db, name, seen={"minutes": idle - 5}, created={"minutes": idle - 5})
    assert profile_status(cookie, server) == 200
    _age_session(db, name, seen={"minutes": idle + 5}, created={"minutes": idle + 5})
    assert profile_status(cookie, server) == 401

    # In constant use but logged in longer ago than max_hours: over.
    name = f"old-{uuid.uuid4().hex[:6]}"
    s = browser(server, name)
    cookie = s.cookies.get(SESSION_COOKIE)
    _age_session(db, name, created={"hours": max_hours - 1})
    assert profile_status(cookie, server) == 200
    _age_session(db, name, created={"hours": 2})
    assert profile_status(cookie, server) == 401


def test_a_new_login_ends_the_browsers_previous_session(server):
    """A session key planted in a browser before it logs in (session fixation) is worthless afterwards."""
    s = browser(server, f"fix-{uuid.uuid4().hex[:6]}")
    before = s.cookies.get(SESSION_COOKIE)
    r = s.get(f"{server.url}/debug_login", params={"username": f"fix-{uuid.uuid4().hex[:6]}"}, allow_redirects=False,
              timeout=30)
    assert r.status_code == 302
    assert s.cookies.get(SESSION_COOKIE) != before
    assert profile_status(before, server) == 401
    assert profile_status(s.cookies.get(SESSION_COOKIE), server) == 200
