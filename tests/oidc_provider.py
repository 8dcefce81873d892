"""A small OpenID Connect provider for tests, in the manner of INDIGO IAM, on 127.0.0.1.

It speaks the real protocol (authorization-code flow): a discovery document under the issuer
(`<issuer>/.well-known/openid-configuration`, the issuer ending with "/" as IAM's does), an authorization
endpoint that shows a sign-in form and redirects back with a one-use code, a token endpoint (client_secret_basic
or client_secret_post, PKCE S256 checked when the client sent a challenge) answering with an RS256-signed ID
token, a userinfo endpoint (Bearer token) and the JWKS the ID tokens verify with. People sign in with a
username and a password registered by the test (`add_user`); their `groups` claim is IAM's list of group names.

Knobs for the tests: `rogue_signing = True` signs ID tokens with a key that is not in the JWKS (under the
published key's `kid`); `stop()` and `start()` take the provider down and up again on the same port.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CODE_LIFETIME = 120
TOKEN_LIFETIME = 3600
ID_TOKEN_LIFETIME = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


@dataclass
class Person:
    """Someone who can sign in at the provider."""

    username: str
    password: str
    claims: dict = field(default_factory=dict)


@dataclass
class Grant:
    """What a code (and then an access token) stands for."""

    person: Person
    client_id: str
    redirect_uri: str
    scope: list[str]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    expires: float


class OIDCProvider:
    """Start with `start()`, stop with `stop()`; the port stays the same across restarts."""

    def __init__(self, client_id: str, client_secret: str, redirect_uris: list[str], port: int = 0) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = list(redirect_uris)
        self.port = port
        self.kid = "test-" + uuid.uuid4().hex[:8]
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._rogue_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rogue_signing = False
        self.people: dict[str, Person] = {}
        self.pending: dict[str, dict] = {}
        self.codes: dict[str, Grant] = {}
        self.tokens: dict[str, Grant] = {}
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what the tests use ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return self.base_url + "/"

    def add_user(self, username: str, password: str, groups: list[str] | None = None, **claims) -> Person:
        """Register a person; `groups` (default: none) is their IAM groups claim."""
        tag = uuid.uuid4().hex[:8]
        base = {
            "sub": str(uuid.uuid4()),
            "preferred_username": username,
            "email": f"{username}@example.org",
            "email_verified": True,
            "name": f"{username.title()} Tester",
            "given_name": username.title(),
            "family_name": f"Tester{tag}",
            "organisation_name": "grandma",
            "groups": list(groups or []),
        }
        base.update(claims)
        person = Person(username, password, base)
        self.people[username] = person
        return person

    def discovery(self) -> dict:
        b = self.base_url
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{b}/authorize",
            "token_endpoint": f"{b}/token",
            "userinfo_endpoint": f"{b}/userinfo",
            "jwks_uri": f"{b}/jwk",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "name", "preferred_username", "given_name", "family_name", "email",
                                 "email_verified", "groups", "organisation_name"],
        }

    def jwks(self) -> dict:
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return {"keys": [jwk]}

    def id_token(self, grant: Grant, access_token: str) -> str:
        now = int(time.time())
        digest = hashlib.sha256(access_token.encode()).digest()
        claims = {
            "iss": self.issuer,
            "sub": grant.person.claims["sub"],
            "aud": grant.client_id,
            "azp": grant.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME,
            "auth_time": grant.auth_time,
            "jti": uuid.uuid4().hex,
            "at_hash": _b64url(digest[: len(digest) // 2]),
            **{k: v for k, v in grant.person.claims.items() if k != "sub"},
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        key = self._rogue_key if self.rogue_signing else self._key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    # -- serving -----------------------------------------------------------------------------------
    def start(self) -> "OIDCProvider":
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet test output
                pass

            def send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def json(self, status: int, data: dict, headers: dict | None = None) -> None:
                self.send(status, json.dumps(data).encode(), "application/json", headers)

            def page(self, status: int, text: str) -> None:
                self.send(status, text.encode(), "text/html; charset=utf-8")

            def redirect(self, url: str) -> None:
                self.send(302, b"", "text/plain", {"Location": url})

            def form(self) -> dict[str, str]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}

            def do_GET(self) -> None:
                url = urlparse(self.path)
                provider.calls.append(f"GET {url.path}")
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self.json(200, provider.discovery())
                elif url.path == "/jwk":
                    self.json(200, provider.jwks())
                elif url.path == "/authorize":
                    self.authorize(query)
                elif url.path == "/userinfo":
                    self.userinfo()
                else:
                    self.json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                provider.calls.append(f"POST {url.path}")
                if url.path == "/authorize":
                    self.sign_in(self.form())
                elif url.path == "/token":
                    self.token(self.form())
                elif url.path == "/userinfo":
                    self.userinfo()
                else:
                    self.json(404, {"error": "not_found"})

            # The authorization endpoint: check the request, then ask the person to sign in.
            def authorize(self, q: dict) -> None:
                redirect_uri = q.get("redirect_uri", "")
                if q.get("client_id") != provider.client_id or redirect_uri not in provider.redirect_uris:
                    # Never redirect to an unregistered URI (RFC 6749 4.1.2.1).
                    self.page(400, "<h1>Invalid request</h1><p>Unknown client or unregistered redirect URI.</p>")
                    return

                def error(code: str) -> None:
                    params = {"error": code, **({"state": q["state"]} if "state" in q else {})}
                    self.redirect(f"{redirect_uri}?{urlencode(params)}")

                if q.get("response_type") != "code":
                    return error("unsupported_response_type")
                scope = q.get("scope", "").split()
                if "openid" not in scope:
                    return error("invalid_scope")
                method = q.get("code_challenge_method")
                if q.get("code_challenge") and method not in (None, "S256"):
                    return error("invalid_request")
                request_id = secrets.token_urlsafe(16)
                with provider._lock:
                    provider.pending[request_id] = {**q, "scope": scope}
                self.page(200, sign_in_page(request_id))

            def sign_in(self, f: dict) -> None:
                with provider._lock:
                    request = provider.pending.get(f.get("request", ""))
                if request is None:
                    self.page(400, "<h1>Invalid request</h1><p>This sign-in request expired.</p>")
                    return
                redirect_uri = request["redirect_uri"]
                state = {"state": request["state"]} if "state" in request else {}
                if f.get("action") == "deny":
                    provider.pending.pop(f["request"], None)
                    self.redirect(f"{redirect_uri}?{urlencode({'error': 'access_denied', **state})}")
                    return
                person = provider.people.get(f.get("username", ""))
                if person is None or not secrets.compare_digest(person.password, f.get("password", "")):
                    self.page(200, sign_in_page(f["request"], error="Bad user credentials"))
                    return
                provider.pending.pop(f["request"], None)
                code = secrets.token_urlsafe(24)
                with provider._lock:
                    provider.codes[code] = Grant(
                        person, request["client_id"], redirect_uri, request["scope"], request.get("nonce"),
                        request.get("code_challenge"), request.get("code_challenge_method"), int(time.time()),
                        time.time() + CODE_LIFETIME)
                self.redirect(f"{redirect_uri}?{urlencode({'code': code, **state})}")

            def client_authenticated(self, f: dict) -> bool:
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    try:
                        client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                    except ValueError:
                        return False
                else:
                    client_id, secret = f.get("client_id", ""), f.get("client_secret", "")
                return client_id == provider.client_id and secrets.compare_digest(secret, provider.client_secret)

            def token(self, f: dict) -> None:
                if not self.client_authenticated(f):
                    self.json(401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="token"'})
                    return
                if f.get("grant_type") != "authorization_code":
                    self.json(400, {"error": "unsupported_grant_type"})
                    return
                with provider._lock:
                    grant = provider.codes.pop(f.get("code", ""), None)  # one use, whatever happens next
                if grant is None or grant.expires < time.time() or grant.client_id != provider.client_id:
                    self.json(400, {"error": "invalid_grant", "error_description": "unknown or used code"})
                    return
                if f.get("redirect_uri") != grant.redirect_uri:
                    self.json(400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"})
                    return
                if grant.code_challenge:
                    verifier = f.get("code_verifier", "")
                    if _b64url(hashlib.sha256(verifier.encode()).digest()) != grant.code_challenge:
                        self.json(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
                        return
                access_token = secrets.token_urlsafe(32)
                with provider._lock:
                    provider.tokens[access_token] = grant
                self.json(200, {
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": TOKEN_LIFETIME,
                    "scope": " ".join(grant.scope),
                    "id_token": provider.id_token(grant, access_token),
                })

            def userinfo(self) -> None:
                auth = self.headers.get("Authorization", "")
                grant = provider.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
                if grant is None:
                    self.json(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
                    return
                self.json(200, dict(grant.person.claims))

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def sign_in_page(request_id: str, error: str | None = None) -> str:
    """IAM's sign-in form, reduced to what a browser test needs."""
    alert = f'<p class="error" id="login-error">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GRANDMA IAM (test) - Sign in</title></head>
<body>
<h1>Sign in to GRANDMA IAM (test)</h1>
{alert}
<form method="post" action="/authorize" id="sign-in">
  <input type="hidden" name="request" value="{html.escape(request_id)}">
  <label>Username <input type="text" name="username" id="username" autocomplete="username"></label>
  <label>Password <input type="password" name="password" id="password" autocomplete="current-password"></label>
  <button type="submit" name="action" value="login" id="login-submit">Sign in</button>
  <button type="submit" name="action" value="deny" id="deny">Cancel</button>
</form>
</body></html>"""
