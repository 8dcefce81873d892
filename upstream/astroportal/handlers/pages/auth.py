"""Logging in and out: the login page, the provider round trip (social-core), and the debug login."""

from __future__ import annotations

from typing import Any, Callable

import tornado.ioloop

from ... import auth
from ...auth import LoginFailure
from ...auth.backends import BackendConfigError
from ...auth.strategy import SESSION_COOKIE
from ...errors import ApiError
from ..base import log
from .common import PageHandler


class AuthPage(PageHandler):
    """Shows a failed login as the login page with the reason, rather than a generic error page."""

    def viewer(self) -> Any:
        """The logged-in user, or None (an expired account or a bad token shows the page as to nobody)."""
        try:
            return self.current_user
        except ApiError:
            self._current_user = None
            return None

    def show_login(self, status: int = 200, error: str | None = None, hint: str | None = None) -> None:
        next_url = auth.safe_next(self.get_query_argument("next", None), default="")
        try:
            options = auth.login_options(self.cfg)
        except BackendConfigError as exc:
            log.error("%s", exc)
            options = []
            error = error or "The portal's login configuration is invalid; tell its administrators."
        self.viewer()
        self.render_page(
            "login.html",
            status=status,
            options=options,
            next_url=next_url,
            debug_login=auth.debug_login_refusal(self.cfg) is None,
            error=error,
            hint=hint,
        )

    def fail(self, failure: LoginFailure) -> None:
        if self._session is not None:
            self.session.rollback()
        self.show_login(status=failure.status, error=failure.message, hint=failure.hint)

    async def run_flow(self, step: Callable[[auth.PortalStrategy, str], Any], backend: str) -> None:
        """Run a social-core step in a worker thread (it calls the provider), then answer on this thread."""
        try:
            strategy = auth.make_strategy(self, self.session, self.cfg)
            response = await tornado.ioloop.IOLoop.current().run_in_executor(None, step, strategy, backend)
        except LoginFailure as failure:
            self.fail(failure)
            return
        # The step succeeded: keep what it wrote (a new user, a paused pipeline).
        self.session.commit()
        user = strategy.logged_in_user
        if user is not None:
            self.log_in(user)
            # The pending login is over; nothing in social-core's session is needed any more.
            strategy.clear_session()
        strategy.write_session()
        if isinstance(response, auth.Redirect):
            self.redirect(response.url)
        else:
            for name, value in response.headers.items():
                self.set_header(name, value)
            self.finish(response.content)


class LoginPage(AuthPage):
    def get(self) -> None:
        """
        The login page: one button per configured login method, and the debug login form in debug mode.
        ---
        summary: Login page
        tags: [auth]
        security: []
        parameters:
          - in: query
            name: next
            schema: {type: string}
            description: Same-site path to go to after logging in
        responses:
          200:
            description: HTML login page
        """
        self.show_login()


class LoginBegin(AuthPage):
    async def get(self, backend: str) -> None:
        """
        Start logging in with a provider: redirects the browser to the provider's authorization page.
        ---
        summary: Begin login with a provider
        tags: [auth]
        security: []
        parameters:
          - in: path
            name: backend
            required: true
            schema: {type: string}
          - in: query
            name: next
            schema: {type: string}
        responses:
          302:
            description: Redirect to the provider
          404:
            description: No such login method
        """
        await self.run_flow(auth.begin, backend)

    post = get


class LoginComplete(AuthPage):
    async def get(self, backend: str) -> None:
        """
        The provider's callback: checks the state, exchanges the code, creates the user at first login.
        ---
        summary: Complete login with a provider
        tags: [auth]
        security: []
        parameters:
          - in: path
            name: backend
            required: true
            schema: {type: string}
        responses:
          302:
            description: Logged in; redirect to `next` or /
          400:
            description: Wrong or replayed state, a refused code, access denied at the provider
          502:
            description: The provider could not be reached or answered nonsense
        """
        await self.run_flow(auth.complete, backend)

    post = get


class Logout(AuthPage):
    def get(self) -> None:
        """
        Logging out is a POST from the portal's pages; a plain link (or another site) only reaches the login page.
        ---
        summary: Log out (the login page, which offers the logout button)
        tags: [auth]
        responses:
          302:
            description: Redirect to /login
        """
        self.redirect("/login")

    def post(self) -> None:
        """
        Log out: ends the browser session in the database (a copied cookie stops working) and goes to the
        login page. Needs the page's anti-forgery token (form field csrf_token) and the portal's own Origin.
        ---
        summary: Log out
        tags: [auth]
        responses:
          302:
            description: Redirect to /login
          403:
            description: The request did not come from the portal's own page.
        """
        # Reading the user runs the anti-forgery checks: another site cannot log a person out.
        _ = self.current_user
        self.log_out()
        self.clear_cookie(SESSION_COOKIE)
        self.redirect("/login")


class DebugLogin(AuthPage):
    def get(self) -> None:
        """
        Log in as any user, created on first use (development and tests; refused in production mode).
        ---
        summary: Debug login
        tags: [auth]
        security: []
        parameters:
          - in: query
            name: username
            schema: {type: string, default: testuser}
          - in: query
            name: next
            schema: {type: string}
        responses:
          302:
            description: Logged in; redirect to `next` or /
          403:
            description: Debug login disabled (production mode, or server.auth.debug_login off)
        """
        refusal = auth.debug_login_refusal(self.cfg)
        if refusal:
            self.fail(LoginFailure(403, refusal))
            return
        username = self.get_query_argument("username", "") or "testuser"
        try:
            user = auth.debug_login_user(self.session, self.cfg, username.strip())
        except LoginFailure as failure:
            self.fail(failure)
            return
        self.session.commit()
        self.log_in(user)
        self.redirect(auth.safe_next(self.get_query_argument("next", None)))


ROUTES = [
    (r"/login", LoginPage),
    (r"/login/([A-Za-z0-9_.-]+)", LoginBegin),
    (r"/complete/([A-Za-z0-9_.-]+)", LoginComplete),
    (r"/logout", Logout),
    (r"/debug_login", DebugLogin),
]
