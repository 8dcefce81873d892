"""Subscriptions (/api/subscriptions) and in-portal notifications (/api/notifications)."""

from __future__ import annotations

from ...errors import ApiError
from ...live import inbox, subscriptions
from ..base import APIHandler, auth_required, rule


def sub_id_of(raw: str) -> int:
    if not raw.isdigit():
        raise ApiError(404, f"subscription {raw} not found")
    return int(raw)


class SubscriptionsHandler(APIHandler):
    """`/api/subscriptions` (the caller's list; POST creates) and `/api/subscriptions/ID` (GET, PATCH, DELETE)."""

    @auth_required
    def get(self, sub_id: str | None = None) -> None:
        """
        summary: The caller's subscriptions (or one)
        responses:
          200: {description: "a list of {id, name, kind, params, channels, webhook_url, active}"}
        """
        if sub_id is None:
            self.success(subscriptions.list_own(self.session, self.current_user))
        else:
            self.success(subscriptions.serialize(subscriptions.own(self.session, self.current_user, sub_id_of(sub_id))))

    @rule("POST", "/api/subscriptions")
    def post(self, sub_id: str | None = None) -> None:
        """
        summary: Subscribe to events
        description: |
          kind: cone {ra, dec, radius, kinds?}, classification {classification, min_probability},
          source {obj_id, kinds?}, group_candidates {group_id}, event {event_kind, filter}.
          channels: any of portal, email, webhook (with webhook_url, a public http(s) address).
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [kind, params]
                properties:
                  kind: {type: string, enum: [cone, classification, source, group_candidates, event]}
                  params: {type: object}
                  name: {type: string}
                  channels: {type: array, items: {type: string, enum: [portal, email, webhook]}}
                  webhook_url: {type: string}
        responses:
          200: {description: "the subscription"}
          400: {description: "a region out of range, an unknown class or kind, a refused webhook URL, ..."}
        """
        if sub_id is not None:
            raise ApiError(405, "POST to /api/subscriptions to create one; PATCH /api/subscriptions/ID to change one")
        self.success(subscriptions.create(self.session, self.cfg, self.current_user, self.get_json()))

    @rule("PATCH", "/api/subscriptions/{id}")
    def patch(self, sub_id: str | None = None) -> None:
        """
        summary: Change a subscription (name, active, channels, webhook_url, params)
        responses:
          200: {description: "the subscription"}
        """
        if sub_id is None:
            raise ApiError(405, "PATCH /api/subscriptions/ID")
        self.success(subscriptions.update(self.session, self.cfg, self.current_user, sub_id_of(sub_id), self.get_json()))

    @rule("DELETE", "/api/subscriptions/{id}")
    def delete(self, sub_id: str | None = None) -> None:
        """
        summary: Delete a subscription
        responses:
          200: {description: "deleted"}
        """
        if sub_id is None:
            raise ApiError(405, "DELETE /api/subscriptions/ID")
        subscriptions.delete(self.session, self.current_user, sub_id_of(sub_id))
        self.success()


class NotificationsHandler(APIHandler):
    @auth_required
    def get(self) -> None:
        """
        summary: The caller's in-portal notifications, newest first, with the unread count
        parameters:
          - {in: query, name: unread, schema: {type: boolean}}
          - {in: query, name: limit, schema: {type: integer}}
        responses:
          200: {description: "{unread, notifications: [{id, subscription_id, subscription_name, event, created_at, read}]}"}
        """
        limit = self.query("limit", 100, int)
        if not 1 <= limit <= 1000:
            raise ApiError(400, "limit must be between 1 and 1000")
        unread = self.query("unread", "false").lower() in ("1", "true", "yes")
        self.success(inbox.list_notifications(self.session, self.current_user, unread_only=unread, limit=limit))


class NotificationCountHandler(APIHandler):
    @auth_required
    def get(self) -> None:
        """
        summary: The number of unread in-portal notifications (the bell)
        responses:
          200: {description: "{unread}"}
        """
        self.success({"unread": inbox.unread_count(self.session, self.current_user)})


class NotificationsReadHandler(APIHandler):
    @rule("POST", "/api/notifications/read")
    def post(self) -> None:
        """
        summary: Mark notifications read ({"ids": [...]}, or {} for all)
        responses:
          200: {description: "{marked}"}
        """
        data = self.get_json()
        self.success({"marked": inbox.mark_read(self.session, self.current_user, data.get("ids"))})


class SubscriptionHandler(SubscriptionsHandler):
    """One subscription: GET, PATCH and DELETE (other methods: 405), so the rules table has one row each."""

    SUPPORTED_METHODS = ("GET", "HEAD", "OPTIONS", "PATCH", "DELETE")


class SubscriptionListHandler(SubscriptionsHandler):
    """The caller's subscriptions: GET lists them, POST creates one (other methods: 405)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "OPTIONS", "POST")


ROUTES = [
    (r"/api/subscriptions/?", SubscriptionListHandler),
    (r"/api/subscriptions/([^/]+)/?", SubscriptionHandler),
    (r"/api/notifications/?", NotificationsHandler),
    (r"/api/notifications/count/?", NotificationCountHandler),
    (r"/api/notifications/read/?", NotificationsReadHandler),
]
