"""Logging in through an OAuth2 provider (a fake one on loopback), the debug login, logging out.

Two portal processes share one database: one in debug mode and one in production mode. Both offer the
test-only backend fake_backends.FakeGoogleOAuth2, which talks to the FakeProvider this module runs.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests
from sqlalchemy import select

from conftest import Server, free_port, portal, write_config
from fake_backends import PORT_VARIABLE
from oauth_fake_provider import FakeProvider

TESTS_DIR = Path(__file__).resolve().parent
BACKEND = "fake-oauth2"
CLIENT_ID, CLIENT_SECRET = "portal-client", "portal-secret"
DEFAULT_ROLE = "View only"  # not the portal's default, so that the configured one is seen to be used


def auth_config(root: Path, db_url: str, **extra) -> Path:
    port = free_port()
    return write_config(
        root / f"config-{port}.yaml",
        db_url,
        port,
        **{
            "server__url": f"http://127.0.0.1:{port}",
            "server__auth__backends": ["fake_backends.FakeGoogleOAuth2"],
            f"server__auth__{BACKEND}": {
                "key": CLIENT_ID,
                "secret": CLIENT_SECRET,
                "display_name": "Collaboration IdP",
                "logo": "/static/images/logo.svg",
            },
            "server__auth__default_role": DEFAULT_ROLE,
            "server__auth__pipeline_extra": ["fake_backends.map_groups"],
            "server__auth__debug_login": True,
            **extra,
        },
    )


@pytest.fixture(scope="module")
def provider():
    prov = FakeProvider(CLIENT_ID, CLIENT_SECRET).start()
    yield prov
    prov.stop()


@pytest.fixture(scope="module")
def portals(pg, provider, tmp_path_factory):
    """{"debug": Server, "production": Server}: portal processes whose backend points at `provider`."""
    root = tmp_path_factory.mktemp("login")
    db_url = pg.create_database("portal_login")
    for sub in ("debug", "prod"):
        (root / sub).mkdir()
    debug_cfg = auth_config(root / "debug", db_url)
    prod_cfg = auth_config(root / "prod", db_url, server__production=True)
    portal("migrate", config=debug_cfg)
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", PORT_VARIABLE)}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), saved["PYTHONPATH"]) if p)
    os.environ[PORT_VARIABLE] = str(provider.port)
    servers = {}
    try:
        servers["debug"] = Server(debug_cfg)
        servers["production"] = Server(prod_cfg)
    finally:
        # The processes have their environment; the test process gets its own back.
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    servers["db_url"] = db_url
    servers["config"] = debug_cfg
    yield servers
    for name in ("debug", "production"):
        if name in servers:
            servers[name].stop()


@pytest.fixture(scope="module")
def db(portals):
    """Sessions on the login tests' database (shadows conftest's `db`, which is another database)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from astroportal.db import engine_url

    engine = create_engine(engine_url(portals["db_url"]))
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


def new_identity(groups: list[str] | None = None) -> dict:
    """A Google-shaped userinfo for a person nobody has seen yet."""
    tag = uuid.uuid4().hex[:8]
    return {
        "sub": f"1{int(tag, 16)}",
        "email": f"alice.{tag}@example.org",
        "email_verified": True,
        "name": f"Alice {tag}",
        "given_name": "Alice",
        "family_name": tag,
        "groups": groups or [],
    }


def begin(http: requests.Session, portal_url: str, next_url: str | None = None) -> str:
    """GET /login/<backend>; return the provider's authorization URL it redirects to."""
    params = {"next": next_url} if next_url else None
    r = http.get(f"{portal_url}/login/{BACKEND}", params=params, allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text
    return r.headers["Location"]


def authorize(http: requests.Session, authorization_url: str) -> str:
    """What the browser does at the provider: return the callback URL the provider redirects back to."""
    r = http.get(authorization_url, allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text
    return r.headers["Location"]


def oauth_login(portal_url: str, provider: FakeProvider, identity: dict, next_url: str | None = None):
    """The whole authorization-code round trip over plain HTTP; return (session, the callback's response)."""
    provider.profile = identity
    http = requests.Session()
    callback = authorize(http, begin(http, portal_url, next_url))
    return http, http.get(callback, allow_redirects=False, timeout=30)


def assert_readable_page(r: requests.Response, status: int, *phrases: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("text/html")
    assert "Traceback" not in r.text and "File \"" not in r.text
    for phrase in phrases:
        assert phrase in r.text, f"{phrase!r} not in page:\n{r.text}"


def profile(http: requests.Session, portal_url: str) -> tuple[int, dict]:
    r = http.get(f"{portal_url}/api/internal/profile", timeout=30)
    return r.status_code, r.json()


def test_login_page_offers_each_backend_and_debug_form(portals):
    r = requests.get(portals["debug"].url + "/login", params={"next": "/sources"}, timeout=30)
    assert_readable_page(r, 200, "Log in with Collaboration IdP", 'src="/static/images/logo.svg"', 'id="debug-login-form"')
    assert f'href="/login/{BACKEND}?next=%2Fsources"' in r.text

    r = requests.get(portals["production"].url + "/login", timeout=30)
    assert_readable_page(r, 200, "Log in with Collaboration IdP")
    assert "debug-login-form" not in r.text


def test_authorization_code_login_creates_user_with_default_role(portals, provider, db):
    from astroportal.models import Group, GroupUser, User, UserSocialAuth
    from astroportal.permissions import SITEWIDE_GROUP

    url = portals["debug"].url
    identity = new_identity(groups=["kilonova-followup"])
    authorization_url = begin(requests.Session(), url)
    query = parse_qs(urlparse(authorization_url).query)
    assert authorization_url.startswith(provider.url + "/authorize")
    assert query["client_id"] == [CLIENT_ID] and query["redirect_uri"] == [f"{url}/complete/{BACKEND}"]
    assert len(query["state"][0]) >= 32

    http, r = oauth_login(url, provider, identity, next_url="/sources")
    assert r.status_code == 302, r.text
    assert r.headers["Location"] == "/sources"
    cookie = r.headers["Set-Cookie"]
    assert "session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # debug mode over plain HTTP

    # The browser session works: the API and the login page both know who this is.
    status, body = profile(http, url)
    assert status == 200, body
    assert body["data"]["username"] == identity["email"]
    page = http.get(url + "/login", timeout=30)
    assert f"logged in as <strong>{identity['email']}</strong>" in page.text

    with db() as session:
        user = session.scalar(select(User).where(User.username == identity["email"]))
        assert user is not None
        assert user.role_names == [DEFAULT_ROLE]
        assert (user.first_name, user.last_name, user.contact_email) == ("Alice", identity["family_name"], identity["email"])
        groups = {
            g.name: g
            for g in session.scalars(select(Group).join(GroupUser).where(GroupUser.user_id == user.id))
        }
        assert groups[user.username].single_user_group
        assert SITEWIDE_GROUP in groups
        # server.auth.pipeline_extra ran: the provider's groups claim became a membership.
        assert "kilonova-followup" in groups
        social = session.scalar(select(UserSocialAuth).where(UserSocialAuth.user_id == user.id))
        assert (social.provider, social.uid) == (BACKEND, identity["sub"])
        first_id = user.id

    # A second login with the same identity is the same user, not a new one.
    http2, r = oauth_login(url, provider, identity)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    status, body = profile(http2, url)
    assert status == 200 and body["data"]["id"] == first_id
    with db() as session:
        assert len(list(session.scalars(select(User).where(User.username.like(identity["email"] + "%"))))) == 1


def test_login_without_next_goes_home_and_unsafe_next_is_dropped(portals, provider):
    _, r = oauth_login(portals["debug"].url, provider, new_identity(), next_url="https://evil.example/steal")
    assert r.status_code == 302
    assert r.headers["Location"] == "/"


def test_wrong_state_is_rejected_with_a_readable_page(portals, provider):
    url = portals["debug"].url
    provider.profile = new_identity()
    http = requests.Session()
    callback = authorize(http, begin(http, url))
    parsed = urlparse(callback)
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}

    wrong = dict(query, state="x" * 32)
    r = http.get(f"{url}{parsed.path}?{urlencode(wrong)}", allow_redirects=False, timeout=30)
    assert_readable_page(r, 400, "Please restart login", "login-error")
    assert "session=" not in r.headers.get("Set-Cookie", "")

    missing = {"code": query["code"]}
    r = http.get(f"{url}{parsed.path}?{urlencode(missing)}", allow_redirects=False, timeout=30)
    assert_readable_page(r, 400, "A required authentication parameter is missing")

    # Another browser (without this one's session cookie) cannot use the right state either.
    r = requests.get(callback, allow_redirects=False, timeout=30)
    assert_readable_page(r, 400, "Please restart login")

    # The real callback still works once, and only once.
    r = http.get(callback, allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text
    r = http.get(callback, allow_redirects=False, timeout=30)
    assert_readable_page(r, 400, "restart login")


def test_access_denied_at_the_provider(portals, provider):
    provider.deny = True
    try:
        _, r = oauth_login(portals["debug"].url, provider, new_identity())
    finally:
        provider.deny = False
    assert_readable_page(r, 400, "cancelled at the provider")


def test_provider_down_gives_a_clear_error_page(portals, provider):
    url = portals["debug"].url
    provider.profile = new_identity()
    http = requests.Session()
    callback = authorize(http, begin(http, url))
    provider.stop()
    try:
        r = http.get(callback, allow_redirects=False, timeout=60)
    finally:
        provider.start()
    assert_readable_page(r, 502, "could not be reached", "Try again in a few minutes")
    assert "session=" not in r.headers.get("Set-Cookie", "")


def test_unknown_backend_is_a_404_page(portals):
    r = requests.get(portals["debug"].url + "/login/nonesuch", allow_redirects=False, timeout=30)
    assert_readable_page(r, 404, "no login method named")


def test_logout_clears_the_session(portals):
    url = portals["debug"].url
    http = requests.Session()
    r = http.get(url + "/debug_login", params={"username": f"carol-{uuid.uuid4().hex[:6]}"}, allow_redirects=False, timeout=30)
    assert r.status_code == 302
    assert profile(http, url)[0] == 200

    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', http.get(url + "/login", timeout=30).text).group(1)
    r = http.post(url + "/logout", data={"csrf_token": token}, headers={"Origin": url}, allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert "session=;" in r.headers["Set-Cookie"] or 'session="";' in r.headers["Set-Cookie"]
    assert "session" not in http.cookies
    assert profile(http, url)[0] == 401
    assert "logged-in-as" not in http.get(url + "/login", timeout=30).text


def test_debug_login_in_debug_mode(portals, db):
    from astroportal.models import User

    url = portals["debug"].url
    name = f"dave-{uuid.uuid4().hex[:6]}"
    http = requests.Session()
    r = http.get(url + "/debug_login", params={"username": name, "next": "/sources"}, allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"] == "/sources"
    status, body = profile(http, url)
    assert status == 200 and body["data"]["username"] == name
    with db() as session:
        assert session.scalar(select(User).where(User.username == name)).role_names == [DEFAULT_ROLE]

    # Logging in again finds the same user; an off-site `next` is ignored.
    r = http.get(url + "/debug_login", params={"username": name, "next": "//evil.example/"}, allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert profile(http, url)[1]["data"]["id"] == body["data"]["id"]

    # Without a username: "testuser".
    http = requests.Session()
    assert http.get(url + "/debug_login", allow_redirects=False, timeout=30).status_code == 302
    assert profile(http, url)[1]["data"]["username"] == "testuser"

    r = requests.get(url + "/debug_login", params={"username": "no spaces <b>"}, allow_redirects=False, timeout=30)
    assert_readable_page(r, 400, "A username is")


def test_debug_login_refused_in_production_mode(portals, db):
    from astroportal.models import User

    url = portals["production"].url
    name = f"mallory-{uuid.uuid4().hex[:6]}"
    r = requests.get(url + "/debug_login", params={"username": name}, allow_redirects=False, timeout=30)
    assert_readable_page(r, 403, "disabled in production mode")
    assert "session=" not in r.headers.get("Set-Cookie", "")
    with db() as session:
        assert session.scalar(select(User).where(User.username == name)) is None


def test_production_cookies_are_secure(portals, provider):
    """In production mode both cookies (the pending login's and the session's) are Secure, HttpOnly, Lax."""
    url = portals["production"].url
    provider.profile = new_identity()
    r = requests.get(f"{url}/login/{BACKEND}", allow_redirects=False, timeout=30)
    assert r.status_code == 302
    pending = r.headers["Set-Cookie"]
    assert pending.startswith("social_auth=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax"):
        assert flag in pending
    # A browser sends Secure cookies over HTTPS only; this test speaks plain HTTP, so it sends it by hand.
    callback = authorize(requests.Session(), r.headers["Location"])
    r = requests.get(callback, headers={"Cookie": pending.split(";")[0]}, allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text
    session_cookie = [c for c in r.raw.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert session_cookie, r.headers["Set-Cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=Lax"):
        assert flag in session_cookie[0]


def test_storage_answers_social_core(portals, db):
    """The storage parts the login above does not reach: duplicates, re-keying, nonces, partials, OpenID."""
    from types import SimpleNamespace

    from sqlalchemy.exc import IntegrityError

    from astroportal import config as portal_config
    from astroportal.auth.storage import bind_storage
    from astroportal.domain.accounts import create_user

    cfg = portal_config.load(portals["config"])
    tag = uuid.uuid4().hex[:8]
    with db() as session:
        storage = bind_storage(session, cfg)
        user = create_user(session, f"erin-{tag}", [DEFAULT_ROLE])
        social = storage.user.create_social_auth(user, f"e{tag}@example.org", BACKEND, id_key="email")
        assert storage.user.get_social_auth(BACKEND, f"e{tag}@example.org", id_key="email") is social
        assert storage.user.get_social_auth(BACKEND, f"e{tag}@example.org", id_key="sub") is None
        # A duplicate identity is an integrity error that leaves the transaction usable.
        with pytest.raises(IntegrityError) as err:
            storage.user.create_social_auth(user, f"e{tag}@example.org", BACKEND)
        assert storage.is_integrity_error(err.value)
        assert storage.user.user_exists(username=f"erin-{tag}")

        social.set_extra_data({"email": f"e{tag}@example.org", "sub": f"sub-{tag}", "access_token": "t"})
        assert storage.user.get_social_auth_by_extra_data(BACKEND, "email", f"e{tag}@example.org", id_key="email") is social
        with pytest.raises(ValueError):
            # Re-keying needs stored evidence of the new identifier.
            storage.user.migrate_social_auth(social, f"sub-{tag}", "sub", evidence_key="email")
        storage.user.migrate_social_auth(social, f"sub-{tag}", "sub", evidence_key="sub")
        assert storage.user.get_social_auth(BACKEND, f"sub-{tag}", id_key="sub") is social
        assert social.access_token == "t"
        assert not storage.user.allowed_to_disconnect(user, BACKEND)

        assert storage.nonce.use("scope", 1_900_000_000, tag)
        assert not storage.nonce.use("scope", 1_900_000_000, tag)
        assert storage.nonce.consume("scope", 1_900_000_000, tag)
        assert not storage.nonce.consume("scope", 1_900_000_000, tag)

        partial = storage.partial.store(storage.partial.prepare(BACKEND, 3, {"args": [], "kwargs": {"a": 1}}))
        partial.extend_kwargs({"b": 2})
        partial.save()
        token = partial.token
        session.commit()
        session.expire_all()
        assert storage.partial.load(token).kwargs == {"a": 1, "b": 2}
        storage.partial.destroy(token)
        assert storage.partial.load(token) is None

        code = storage.code.make_code(f"e{tag}@example.org")
        assert storage.code.get_code(code.code) is code

        assoc = SimpleNamespace(handle=f"h{tag}", secret=b"secret", issued=1, lifetime=10, assoc_type="HMAC-SHA1")
        row = storage.association.store("https://openid.example", assoc)
        assert [a.id for a in storage.association.get("https://openid.example", f"h{tag}")] == [row.id]
        storage.association.remove([row.id])
        assert storage.association.get(handle=f"h{tag}") == []
        session.rollback()
