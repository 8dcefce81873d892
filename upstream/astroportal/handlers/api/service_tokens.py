"""/api/service_tokens: a service's bot user with exactly the ACLs it declares, and a token for it."""

from __future__ import annotations

from ...domain import service_tokens
from ..base import APIHandler, rule


class ServiceTokenHandler(APIHandler):
    @rule("POST", "/api/service_tokens")
    def post(self) -> None:
        """
        ---
        summary: Create or update a service's bot user and give it a new API token
        tags: [tokens, users]
        description: >
          The bot user `name` (created when missing, flagged `is_bot`) holds exactly the ACLs listed, as direct
          grants with no role, and belongs to exactly the groups listed (besides its own and the sitewide group).
          Calling again with a shorter list narrows it. The token is in this answer only; the bot's earlier
          tokens stay valid until revoked.
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [name, acls]
                properties:
                  name: {type: string, description: "the service's name (one word): also the bot's username"}
                  acls: {type: array, items: {type: string}, description: 'ACL names such as "Upload data"'}
                  groups: {type: array, items: {type: string}, description: names of existing groups to join}
        responses:
          200:
            description: '`{"user_id": N, "username": "...", "token": "<shown once>", "acls": [...]}`.'
          400:
            description: A missing or bad field, an unknown ACL or group (named), or a person's account of that name.
          403:
            description: Lacks "System admin".
        """
        self.success(service_tokens.service_token_from_api(self.session, self.get_json()))


ROUTES = [
    (r"/api/service_tokens/?", ServiceTokenHandler),
]
