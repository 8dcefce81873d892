"""The notifications page and the unsubscribe links of e-mails (which work without logging in)."""

from __future__ import annotations

from ...live import subscriptions
from ...live.unsubscribe import verify
from .common import PageHandler, login_required


class NotificationsPage(PageHandler):
    @login_required
    def get(self) -> None:
        """The member's notifications, newest first (unread ones marked), and a button to mark all read."""
        self.render_page("notifications.html")


class UnsubscribePage(PageHandler):
    """`/unsubscribe/ID/SIGNATURE`: GET asks for confirmation (mail scanners follow links), POST ends it."""

    def _check(self, sub_id: str, sig: str) -> int | None:
        if not sub_id.isdigit() or not verify(self.application.settings["cookie_secret"], int(sub_id), sig):
            self.render_page("unsubscribe.html", status=400, state="invalid", name=None, action=None)
            return None
        return int(sub_id)

    def get(self, sub_id: str, sig: str) -> None:
        sid = self._check(sub_id, sig)
        if sid is None:
            return
        from ...models import Subscription

        sub = self.session.get(Subscription, sid)
        self.render_page("unsubscribe.html", state="confirm" if sub and sub.active else "done",
                         name=sub.name if sub else None, action=self.request.path)

    def post(self, sub_id: str, sig: str) -> None:
        sid = self._check(sub_id, sig)
        if sid is None:
            return
        sub = subscriptions.deactivate(self.session, sid)
        self.render_page("unsubscribe.html", state="done", name=sub.name if sub else None, action=None)


ROUTES = [(r"/notifications/?", NotificationsPage), (r"/unsubscribe/([^/]+)/([^/]+)/?", UnsubscribePage)]
