"""Logging in to the patched portal through the collaboration's OpenID Connect provider (IAM style).

A real instance (the launcher's `run --init`: patched build, embedded PostgreSQL, supervisord) is configured
to use tests/oidc_provider.py, started on 127.0.0.1 by these tests, as its `iam` login provider.
"""

from __future__ import annotations

import re
import secrets
import uuid
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import pytest
import requests
import yaml

from conftest import Instance
from oidc_provider import OIDCProvider

pytestmark = pytest.mark.e2e  # a running instance with an OpenID provider, and a browser

CLIENT_ID = "grandma-portal-test"
DEFAULT_ROLE = "View only"
GROUP_MAPPING = {
    "grandma-kilonova": "Kilonova",
    "grandma-shifters": ["Shifters", "Kilonova"],
    "grandma-observers": "Observers",
}
TIMEOUT = 30


@pytest.fixture(scope="module")
def iam():
    """(instance, provider): a running patched portal whose `iam` backend points at a fresh provider."""
    inst = Instance()
    provider = OIDCProvider(CLIENT_ID, secrets.token_urlsafe(24), [inst.url + "/complete/iam"]).start()
    config = yaml.safe_load((inst.root / "config.yaml").read_text())
    config["server"]["auth"] = {
        "default_role": DEFAULT_ROLE,
        "iam": {
            "oidc_endpoint": provider.issuer,
            "key": CLIENT_ID,
            # A secret belongs in config.yaml (git-ignored), as here.
            "secret": provider.client_secret,
            "group_mapping": GROUP_MAPPING,
        },
    }
    (inst.root / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        inst.ensure_running()
        yield inst, provider
    finally:
        provider.stop()
        inst.cleanup()


@pytest.fixture(scope="module")
def admin_token(iam) -> str:
    inst, _ = iam
    res = inst.run("token")
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def new_person(provider: OIDCProvider, groups: list[str] | None = None):
    name = "kn" + uuid.uuid4().hex[:10]
    password = secrets.token_urlsafe(12)
    return provider.add_user(name, password, groups=groups), password


# -- the authorization-code round trip over plain HTTP ----------------------------------------------------
def begin(http: requests.Session, portal: str, next_url: str | None = None) -> str:
    """The portal's /login/iam: returns the provider's authorization URL it redirects to."""
    r = http.get(f"{portal}/login/iam", params={"next": next_url} if next_url else None,
                 allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 302, r.text
    return r.headers["Location"]


def sign_in(http: requests.Session, authorization_url: str, person, password: str) -> str:
    """At the provider: open the sign-in form, post the credentials; returns the callback URL it redirects to."""
    r = http.get(authorization_url, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    request_id = re.search(r'name="request" value="([^"]+)"', r.text).group(1)
    action = urlparse(authorization_url)._replace(query="").geturl()
    r = http.post(action, data={"request": request_id, "username": person.username, "password": password,
                                "action": "login"}, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 302, r.text
    return r.headers["Location"]


def login(portal: str, provider: OIDCProvider, person, password: str, next_url: str | None = None):
    """The whole round trip; returns (the HTTP session, the portal's answer to the callback)."""
    http = requests.Session()
    callback = sign_in(http, begin(http, portal, next_url), person, password)
    return http, http.get(callback, allow_redirects=False, timeout=TIMEOUT)


def profile(http: requests.Session, portal: str) -> dict:
    r = http.get(f"{portal}/api/internal/profile", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def group_names(data: dict) -> set[str]:
    return {g["name"] for g in data["groups"] if not g.get("single_user_group")}


def assert_error_page(r: requests.Response, status: int, *phrases: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("text/html")
    assert "Traceback" not in r.text
    for phrase in phrases:
        assert phrase in r.text, f"{phrase!r} not in the page:\n{r.text}"
    assert "user_id=" not in r.headers.get("Set-Cookie", "")


def users_named(portal: str, token: str, username: str) -> list[dict]:
    r = requests.get(f"{portal}/api/user", params={"username": username},
                     headers={"Authorization": f"token {token}"}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    users = data["users"] if isinstance(data, dict) else data
    return [u for u in users if u["username"] == username]


# -- tests ------------------------------------------------------------------------------------------------
def test_login_page_offers_iam_with_its_name_and_logo_instead_of_google(iam):
    inst, _ = iam
    r = requests.get(inst.url + "/login", timeout=TIMEOUT)
    assert r.status_code == 200
    assert 'id="login-iam"' in r.text and "Log in with GRANDMA IAM" in r.text
    assert 'src="/static/images/iam-logo.svg"' in r.text
    assert "Google" not in r.text and "/login/google-oauth2" not in r.text
    logo = requests.get(inst.url + "/static/images/iam-logo.svg", timeout=TIMEOUT)
    assert logo.status_code == 200 and "svg" in logo.headers["Content-Type"]
    # Debug mode: the debug login is still offered beside the provider.
    assert 'id="debug-login-form"' in r.text


def test_authorization_request_follows_discovery_with_scopes_state_nonce_and_pkce(iam):
    inst, provider = iam
    location = begin(requests.Session(), inst.url)
    url = urlparse(location)
    assert f"{url.scheme}://{url.netloc}{url.path}" == provider.base_url + "/authorize"
    q = {k: v[-1] for k, v in parse_qs(url.query).items()}
    assert q["client_id"] == CLIENT_ID
    assert q["redirect_uri"] == inst.url + "/complete/iam"
    assert q["response_type"] == "code"
    assert sorted(q["scope"].split()) == ["email", "openid", "profile"]
    assert q["state"] and q["nonce"]
    assert q["code_challenge_method"] == "S256" and q["code_challenge"]


def test_http_login_creates_the_user_with_the_default_role_and_mapped_groups(iam, admin_token):
    inst, provider = iam
    person, password = new_person(provider, groups=["grandma-kilonova", "some-other-iam-group"])
    http, r = login(inst.url, provider, person, password, next_url="/sources")
    assert r.status_code == 302, r.text
    assert r.headers["Location"] == "/sources"
    me = profile(http, inst.url)
    assert me["username"] == person.claims["email"]
    assert me["roles"] == [DEFAULT_ROLE]
    assert me["first_name"] == person.claims["given_name"]
    assert group_names(me) == {"Sitewide Group", "Kilonova"}
    # The portal used every part of the protocol.
    for call in ("GET /.well-known/openid-configuration", "POST /token", "GET /jwk", "GET /userinfo"):
        assert call in provider.calls
    # A second login is the same person, not a new account.
    http2, r = login(inst.url, provider, person, password)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert profile(http2, inst.url)["id"] == me["id"]
    assert len(users_named(inst.url, admin_token, person.claims["email"])) == 1


def test_groups_claim_maps_to_portal_groups_at_every_login(iam, admin_token):
    inst, provider = iam
    headers = {"Authorization": f"token {admin_token}"}
    # "Observers" exists already (the mapping uses it); "Shifters" does not, until someone needs it.
    r = requests.post(f"{inst.url}/api/groups", json={"name": "Observers"}, headers=headers, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    observers_id = r.json()["data"]["id"]
    r = requests.post(f"{inst.url}/api/groups", json={"name": "Hand-picked " + uuid.uuid4().hex[:6]},
                      headers=headers, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    manual_id = r.json()["data"]["id"]

    person, password = new_person(provider, groups=["grandma-observers", "grandma-kilonova"])
    http, r = login(inst.url, provider, person, password)
    assert r.status_code == 302, r.text
    me = profile(http, inst.url)
    assert group_names(me) == {"Sitewide Group", "Observers", "Kilonova"}
    assert next(g["id"] for g in me["groups"] if g["name"] == "Observers") == observers_id
    # An administrator adds them to a group no mapping names: logins leave that membership alone.
    r = requests.post(f"{inst.url}/api/groups/{manual_id}/users", json={"userID": me["id"]}, headers=headers,
                      timeout=TIMEOUT)
    assert r.status_code == 200, r.text

    # At the provider they leave the observers and become shifters.
    person.claims["groups"] = ["grandma-shifters"]
    http, r = login(inst.url, provider, person, password)
    assert r.status_code == 302, r.text
    me = profile(http, inst.url)
    manual = next(g["name"] for g in me["groups"] if g["id"] == manual_id)
    assert group_names(me) == {"Sitewide Group", "Shifters", "Kilonova", manual}

    # No group at the provider any more: out of every mapped group, still in the others.
    person.claims["groups"] = []
    http, r = login(inst.url, provider, person, password)
    assert r.status_code == 302, r.text
    assert group_names(profile(http, inst.url)) == {"Sitewide Group", manual}
    # The groups the mapping created are ordinary portal groups.
    r = requests.get(f"{inst.url}/api/groups", headers=headers, timeout=TIMEOUT)
    names = [g["name"] for g in r.json()["data"]["all_groups"]]
    assert names.count("Shifters") == 1 and names.count("Observers") == 1


def test_a_wrong_state_is_rejected(iam, admin_token):
    inst, provider = iam
    person, password = new_person(provider)
    http = requests.Session()
    callback = sign_in(http, begin(http, inst.url), person, password)
    parts = urlparse(callback)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    forged = urlunparse(parts._replace(query=urlencode({**query, "state": secrets.token_urlsafe(24)})))
    r = http.get(forged, allow_redirects=False, timeout=TIMEOUT)
    assert_error_page(r, 400, "Start the login again from the login page")
    assert http.get(f"{inst.url}/api/internal/profile", timeout=TIMEOUT).status_code in (401, 403)
    assert users_named(inst.url, admin_token, person.claims["email"]) == []


def test_a_callback_cannot_be_replayed(iam):
    inst, provider = iam
    person, password = new_person(provider)
    http = requests.Session()
    callback = sign_in(http, begin(http, inst.url), person, password)
    assert http.get(callback, allow_redirects=False, timeout=TIMEOUT).status_code == 302
    r = http.get(callback, allow_redirects=False, timeout=TIMEOUT)
    assert_error_page(r, 400, "Start the login again from the login page")


def test_an_id_token_signed_by_another_key_is_rejected(iam, admin_token):
    inst, provider = iam
    person, password = new_person(provider, groups=["grandma-kilonova"])
    provider.rogue_signing = True
    try:
        http, r = login(inst.url, provider, person, password)
    finally:
        provider.rogue_signing = False
    assert_error_page(r, 502, "signature could not be verified")
    assert http.get(f"{inst.url}/api/internal/profile", timeout=TIMEOUT).status_code in (401, 403)
    assert users_named(inst.url, admin_token, person.claims["email"]) == []
    # The same person, with a genuine token, gets in.
    http, r = login(inst.url, provider, person, password)
    assert r.status_code == 302, r.text


def test_a_provider_that_goes_down_during_login_gives_a_clear_error_page(iam):
    inst, provider = iam
    person, password = new_person(provider)
    http = requests.Session()
    callback = sign_in(http, begin(http, inst.url), person, password)
    provider.stop()
    try:
        r = http.get(callback, allow_redirects=False, timeout=60)
    finally:
        provider.start()
    assert_error_page(r, 502, "could not be reached", "Try again in a few minutes")


def test_a_provider_that_is_down_when_login_starts_gives_a_clear_error_page(iam):
    inst, provider = iam
    provider.stop()
    try:
        # A fresh app process has not cached the provider's discovery document.
        res = inst.run("restart", "app")
        assert res.returncode == 0, res.stderr
        r = requests.get(inst.url + "/login/iam", allow_redirects=False, timeout=60)
    finally:
        provider.start()
    assert_error_page(r, 502, "could not be reached", "Try again in a few minutes")
    # Back up: logging in works again.
    person, password = new_person(provider)
    _, r = login(inst.url, provider, person, password)
    assert r.status_code == 302, r.text


def test_debug_login_still_works_in_debug_mode(iam):
    inst, _ = iam
    http = requests.Session()
    r = http.get(inst.url + "/debug_login", params={"username": "debugger", "next": "/groups"},
                 allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 302 and r.headers["Location"] == "/groups"
    assert profile(http, inst.url)["username"] == "debugger"


# -- the same login, in a browser (conftest's `browser`; a failure leaves its page in test-artifacts/) ----
def test_browser_login_through_the_provider(iam, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    inst, provider = iam
    person, password = new_person(provider, groups=["grandma-kilonova"])
    wait = WebDriverWait(browser, 30)
    browser.get(inst.url + "/sources")
    wait.until(EC.url_contains("/login"))
    assert "GRANDMA Follow-up Portal" in browser.title
    browser.find_element(By.ID, "login-iam").click()
    wait.until(EC.url_contains(provider.base_url + "/authorize"))
    browser.find_element(By.ID, "username").send_keys(person.username)
    browser.find_element(By.ID, "password").send_keys("not the password")
    browser.find_element(By.ID, "login-submit").click()
    assert "Bad user credentials" in wait.until(EC.presence_of_element_located((By.ID, "login-error"))).text
    browser.find_element(By.ID, "username").send_keys(person.username)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "login-submit").click()
    # Back at the page first asked for (whose script may add its query to the URL), logged in.
    wait.until(lambda d: d.current_url.startswith(inst.url) and urlparse(d.current_url).path == "/sources")
    shown = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".nav-user .username")))
    assert shown.text == person.claims["email"]
    brand = browser.find_element(By.CSS_SELECTOR, ".navbar .brand")
    assert "GRANDMA Follow-up Portal" in brand.text
    browser.find_element(By.ID, "logout-link").click()
    wait.until(EC.url_contains("/login"))
