"""A small OAuth2 provider for tests: authorization, token and userinfo endpoints on 127.0.0.1.

It answers like Google's OAuth2 endpoints (userinfo has Google's shape: sub, email, email_verified, name,
given_name, family_name), checks the client's id and secret, the redirect URI and one-use codes, and can be
told to deny the next authorization (`provider.deny = True`).
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse


class FakeProvider:
    """Start with `start()`, stop with `stop()`; `start()` again binds the same port."""

    def __init__(self, client_id: str, client_secret: str, port: int = 0) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.port = port
        # The identity the next authorization hands out (the test sets it before each login).
        self.profile: dict = {}
        self.deny = False
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.calls: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeProvider":
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output quiet
                pass

            def _send(self, status: int, body: dict | None = None, location: str | None = None) -> None:
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                payload = json.dumps(body or {}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                provider.calls.append(url.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if url.path == "/authorize":
                    self.authorize(query)
                elif url.path == "/userinfo":
                    self.userinfo()
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                provider.calls.append(url.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if url.path == "/token":
                    self.token(form)
                else:
                    self._send(404, {"error": "not_found"})

            def authorize(self, query: dict) -> None:
                redirect_uri = query.get("redirect_uri")
                if query.get("client_id") != provider.client_id or not redirect_uri:
                    self._send(400, {"error": "invalid_request"})
                    return
                if query.get("response_type") != "code":
                    self._send(400, {"error": "unsupported_response_type"})
                    return
                back: dict[str, str] = {}
                if provider.deny:
                    back["error"] = "access_denied"
                else:
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = {"redirect_uri": redirect_uri, "profile": dict(provider.profile)}
                    back["code"] = code
                if "state" in query:
                    back["state"] = query["state"]
                sep = "&" if "?" in redirect_uri else "?"
                self._send(302, location=redirect_uri + sep + urlencode(back))

            def token(self, form: dict) -> None:
                if form.get("client_id") != provider.client_id or form.get("client_secret") != provider.client_secret:
                    self._send(401, {"error": "invalid_client"})
                    return
                if form.get("grant_type") != "authorization_code":
                    self._send(400, {"error": "unsupported_grant_type"})
                    return
                grant = provider.codes.pop(form.get("code", ""), None)
                if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                    self._send(400, {"error": "invalid_grant", "error_description": "unknown or used code"})
                    return
                token = secrets.token_urlsafe(24)
                provider.tokens[token] = grant["profile"]
                self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3599,
                                 "scope": "openid email profile"})

            def userinfo(self) -> None:
                header = self.headers.get("Authorization", "")
                profile = provider.tokens.get(header[len("Bearer "):]) if header.startswith("Bearer ") else None
                if profile is None:
                    self._send(401, {"error": "invalid_token"})
                    return
                self._send(200, profile)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
