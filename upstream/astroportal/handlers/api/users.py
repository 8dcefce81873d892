"""/api/user, /api/roles, /api/internal/profile and /api/internal/tokens: accounts, roles and API tokens."""

from __future__ import annotations

from ...domain import tokens, users
from ...domain.checks import path_id
from ...errors import ApiError
from ..base import APIHandler, auth_required, rule


class UserHandler(APIHandler):
    @auth_required
    def get(self, user_id: str | None = None) -> None:
        """
        ---
        summary: List users (one page), or get one user
        tags: [users]
        description: >
          The list needs "Manage users". A single user can be read by themselves or by holders of
          "Manage users".
        parameters:
          - in: path
            name: user_id
            required: false
            schema: {type: integer}
          - {in: query, name: pageNumber, schema: {type: integer, default: 1}}
          - {in: query, name: numPerPage, schema: {type: integer, default: 100, maximum: 500}}
          - in: query
            name: username
            description: Only users whose username contains this text.
            schema: {type: string}
        responses:
          200:
            description: >
              `{"users": [...], "totalMatches", "pageNumber", "numPerPage"}`, or one user: `id`, `username`,
              `first_name`, `last_name`, `contact_email`, `roles`, `acls`, `groups`.
          403:
            description: Lacks "Manage users".
          404:
            description: No such user.
        """
        user = self.current_user
        if user_id is not None:
            self.success(users.user_for_viewer(self.session, user, path_id(user_id, "user")))
            return
        if not ({"Manage users", "System admin"} & user.acl_names):
            raise ApiError(403, "this requires the permission(s) Manage users")
        page = self.query("pageNumber", 1, int)
        per_page = self.query("numPerPage", 100, int)
        self.success(users.list_users(self.session, page, per_page, self.query("username")))

    @rule("POST", "/api/user")
    def post(self, user_id: str | None = None) -> None:
        """
        ---
        summary: Create a user (for example a service's bot account)
        tags: [users]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [username]
                properties:
                  username: {type: string, maxLength: 256, description: "unique ignoring case; no spaces"}
                  roles: {type: array, items: {type: string}, description: role names such as "Full user"}
                  first_name: {type: string}
                  last_name: {type: string}
                  contact_email: {type: string}
                  is_bot: {type: boolean}
        responses:
          200:
            description: 'Created: `{"id": N}`. The user also gets a single-user group and sitewide membership.'
          400:
            description: A missing or bad field, a name in use, or an unknown role.
          403:
            description: Lacks "System admin".
        """
        if user_id is not None:
            raise ApiError(405, "create users with POST /api/user")
        self.success({"id": users.create_user_from_api(self.session, self.get_json())})


class UserRoleHandler(APIHandler):
    @rule("POST", "/api/user/{id}/roles")
    def post(self, user_id: str | None = None, role: str | None = None) -> None:
        """
        ---
        summary: Give a user roles
        tags: [users, roles]
        parameters:
          - {in: path, name: user_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [roleIds]
                properties:
                  roleIds: {type: array, items: {type: string}, description: role names}
        responses:
          200:
            description: The roles were added (roles already held are kept).
          400:
            description: A missing or unknown role.
          403:
            description: Lacks "System admin".
          404:
            description: No such user.
        """
        if role is not None:
            raise ApiError(405, "add roles with POST /api/user/ID/roles")
        users.add_roles(self.session, path_id(user_id, "user"), self.get_json())
        self.success()

    @rule("DELETE", "/api/user/{id}/roles/{id}")
    def delete(self, user_id: str | None = None, role: str | None = None) -> None:
        """
        ---
        summary: Take a role away from a user
        tags: [users, roles]
        parameters:
          - {in: path, name: user_id, required: true, schema: {type: integer}}
          - {in: path, name: role, required: true, schema: {type: string}, description: 'the role name, URL-encoded'}
        responses:
          200:
            description: Removed.
          400:
            description: Removing your own System admin permission.
          404:
            description: No such user or role, or the user does not have it.
        """
        uid = path_id(user_id, "user")
        if role is None:
            raise ApiError(405, "remove a role with DELETE /api/user/ID/roles/ROLE")
        users.remove_role(self.session, self.current_user, uid, role)
        self.success()


class RoleHandler(APIHandler):
    @auth_required
    def get(self) -> None:
        """
        ---
        summary: List roles with their ACLs
        tags: [roles]
        responses:
          200:
            description: '`[{"id": "Full user", "acls": [...]}, ...]`.'
        """
        self.success(users.list_roles(self.session))


class ProfileHandler(APIHandler):
    @auth_required
    def get(self) -> None:
        """
        ---
        summary: The current user
        tags: [users]
        responses:
          200:
            description: The user with `roles`, `acls` (also as `permissions`), `groups` and `preferences`.
          401:
            description: Not logged in.
        """
        self.success(users.profile(self.session, self.current_user))


class TokenHandler(APIHandler):
    @auth_required
    def get(self, token_id: str | None = None) -> None:
        """
        ---
        summary: List your API tokens (never their secret)
        tags: [tokens]
        parameters:
          - in: query
            name: user_id
            description: Another user's tokens (system admins only).
            schema: {type: integer}
        responses:
          200:
            description: '`[{"id", "name", "prefix", "user_id", "created_at", "last_used"}, ...]`.'
          403:
            description: Another user's tokens without "System admin".
        """
        if token_id is not None:
            raise ApiError(405, "list tokens with GET /api/internal/tokens")
        owner = self.query("user_id", None, int)
        self.success(tokens.list_tokens(self.session, self.current_user, owner))

    @rule("POST", "/api/internal/tokens")
    def post(self, token_id: str | None = None) -> None:
        """
        ---
        summary: Create an API token
        tags: [tokens]
        description: The token text is in this answer only; keep it. System admins may create one for another user.
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [name]
                properties:
                  name: {type: string}
                  user_id: {type: integer, description: the owner (system admins only; default yourself)}
        responses:
          200:
            description: '`{"token_id": N, "token": "<shown once>", "user_id": N}`.'
          400:
            description: A missing name or an unknown user.
          403:
            description: A token for another user without "System admin".
        """
        if token_id is not None:
            raise ApiError(405, "create tokens with POST /api/internal/tokens")
        self.success(tokens.new_token(self.session, self.current_user, self.get_json()))

    @rule("DELETE", "/api/internal/tokens/{id}")
    def delete(self, token_id: str | None = None) -> None:
        """
        ---
        summary: Revoke an API token
        tags: [tokens]
        parameters:
          - {in: path, name: token_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: Revoked; the token no longer authenticates.
          404:
            description: No such token among yours.
        """
        tokens.revoke_token(self.session, self.current_user, path_id(token_id, "token"))
        self.success()


ROUTES = [
    (r"/api/user/?", UserHandler),
    (r"/api/user/([^/]+)/roles/?", UserRoleHandler),
    (r"/api/user/([^/]+)/roles/([^/]+)/?", UserRoleHandler),
    (r"/api/user/([^/]+)/?", UserHandler),
    (r"/api/roles/?", RoleHandler),
    (r"/api/internal/profile/?", ProfileHandler),
    (r"/api/internal/tokens/?", TokenHandler),
    (r"/api/internal/tokens/([^/]+)/?", TokenHandler),
]
