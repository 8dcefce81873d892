"""/api/groups: groups, their members and the streams they read."""

from __future__ import annotations

from ...domain import groups
from ...domain.checks import path_id
from ...errors import ApiError
from ..base import APIHandler, auth_required, rule


def _flag(raw: str | None) -> bool:
    if raw is None:
        return False
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no", ""):
        return False
    raise ValueError(raw)


class GroupHandler(APIHandler):
    @auth_required
    def get(self, group_id: str | None = None) -> None:
        """
        ---
        summary: List groups, or get one group with its members and streams
        tags: [groups]
        parameters:
          - in: path
            name: group_id
            required: false
            schema: {type: integer}
          - in: query
            name: includeSingleUserGroups
            description: Also list single-user groups (your own; everyone's for system admins).
            schema: {type: boolean}
        responses:
          200:
            description: >
              Without an id: `{"user_groups", "user_accessible_groups", "all_groups"}`. With an id: the group
              with `users` (id, username, admin, can_save), `streams` and `filters`.
          404:
            description: No such group, or a private group you are not in.
        """
        if group_id is not None:
            self.success(groups.group_detail(self.session, self.current_user, path_id(group_id, "group")))
            return
        include = self.query("includeSingleUserGroups", False, _flag)
        self.success(groups.list_groups(self.session, self.current_user, include))

    @rule("POST", "/api/groups")
    def post(self, group_id: str | None = None) -> None:
        """
        ---
        summary: Create a group
        tags: [groups]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [name]
                properties:
                  name: {type: string, description: unique}
                  nickname: {type: string}
                  description: {type: string}
                  private: {type: boolean, description: hidden from non-members}
                  group_admins:
                    type: array
                    items: {type: integer}
                    description: Ids of users who become admins of the group (the creator always does).
        responses:
          200:
            description: 'Created: `{"id": N}`.'
          400:
            description: A missing or bad field, a name in use, or an unknown user id.
          403:
            description: Lacks "Manage groups".
        """
        if group_id is not None:
            raise ApiError(405, "create groups with POST /api/groups")
        self.success({"id": groups.create_group(self.session, self.current_user, self.get_json())})

    @rule("PATCH", "/api/groups/{id}")
    def patch(self, group_id: str | None = None) -> None:
        """
        ---
        summary: Change a group's name, nickname, description or privacy
        tags: [groups]
        parameters:
          - {in: path, name: group_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                properties:
                  name: {type: string}
                  nickname: {type: string}
                  description: {type: string}
                  private: {type: boolean}
        responses:
          200:
            description: Changed.
          400:
            description: A bad field, or renaming the sitewide or a single-user group.
          403:
            description: Neither a system admin nor an admin of the group.
        """
        groups.update_group(self.session, self.current_user, path_id(group_id, "group"), self.get_json())
        self.success()

    @rule("DELETE", "/api/groups/{id}")
    def delete(self, group_id: str | None = None) -> None:
        """
        ---
        summary: Delete a group
        tags: [groups]
        parameters:
          - {in: path, name: group_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: Deleted.
          400:
            description: The sitewide group or a single-user group (they cannot be deleted).
          403:
            description: Neither a system admin nor an admin of the group.
          404:
            description: No such group.
        """
        groups.delete_group(self.session, self.current_user, path_id(group_id, "group"))
        self.success()


class PublicGroupHandler(APIHandler):
    @auth_required
    def get(self) -> None:
        """
        ---
        summary: The sitewide group, which holds public data
        tags: [groups]
        responses:
          200:
            description: The group (`name` is "Sitewide Group").
        """
        self.success(groups.public_group(self.session))


class GroupUserHandler(APIHandler):
    @rule("POST", "/api/groups/{id}/users")
    def post(self, group_id: str | None = None, user_id: str | None = None) -> None:
        """
        ---
        summary: Add a user to a group
        tags: [groups]
        parameters:
          - {in: path, name: group_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [userID]
                properties:
                  userID: {type: integer}
                  admin: {type: boolean, default: false}
                  canSave: {type: boolean, default: true}
        responses:
          200:
            description: '`{"group_id", "user_id", "admin", "can_save"}`.'
          400:
            description: A bad field, an unknown user, or an existing member.
          403:
            description: Neither a system admin nor an admin of the group.
        """
        if user_id is not None:
            raise ApiError(405, "add members with POST /api/groups/ID/users")
        gid = path_id(group_id, "group")
        self.success(groups.add_member(self.session, self.current_user, gid, self.get_json()))

    @rule("PATCH", "/api/groups/{id}/users/{id}")
    def patch(self, group_id: str | None = None, user_id: str | None = None) -> None:
        """
        ---
        summary: Change a member's admin or canSave flags
        tags: [groups]
        parameters:
          - {in: path, name: group_id, required: true, schema: {type: integer}}
          - {in: path, name: user_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                properties:
                  admin: {type: boolean}
                  canSave: {type: boolean}
        responses:
          200:
            description: The membership after the change.
          403:
            description: Neither a system admin nor an admin of the group.
          404:
            description: Not a member.
        """
        gid, uid = path_id(group_id, "group"), path_id(user_id, "user")
        self.success(groups.update_member(self.session, self.current_user, gid, uid, self.get_json()))

    @rule("DELETE", "/api/groups/{id}/users/{id}")
    def delete(self, group_id: str | None = None, user_id: str | None = None) -> None:
        """
        ---
        summary: Remove a user from a group (or leave it yourself)
        tags: [groups]
        parameters:
          - {in: path, name: group_id, required: true, schema: {type: integer}}
          - {in: path, name: user_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: Removed.
          400:
            description: A single-user group's owner cannot leave it.
          403:
            description: Neither a system admin nor an admin of the group.
          404:
            description: Not a member.
        """
        gid, uid = path_id(group_id, "group"), path_id(user_id, "user")
        groups.remove_member(self.session, self.current_user, gid, uid)
        self.success()


class GroupStreamHandler(APIHandler):
    @rule("POST", "/api/groups/{id}/streams")
    def post(self, group_id: str | None = None, stream_id: str | None = None) -> None:
        """
        ---
        summary: Give a group access to a stream
        tags: [groups, streams]
        parameters:
          - {in: path, name: group_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [stream_id]
                properties:
                  stream_id: {type: integer}
        responses:
          200:
            description: '`{"group_id", "stream_id"}`.'
          400:
            description: An unknown stream, or access the group already has.
          403:
            description: Lacks "System admin".
        """
        if stream_id is not None:
            raise ApiError(405, "add streams with POST /api/groups/ID/streams")
        gid = path_id(group_id, "group")
        self.success(groups.add_group_stream(self.session, self.current_user, gid, self.get_json()))

    @rule("DELETE", "/api/groups/{id}/streams/{id}")
    def delete(self, group_id: str | None = None, stream_id: str | None = None) -> None:
        """
        ---
        summary: Take a stream away from a group
        tags: [groups, streams]
        parameters:
          - {in: path, name: group_id, required: true, schema: {type: integer}}
          - {in: path, name: stream_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: Removed.
          400:
            description: The group still has filters on the stream.
          404:
            description: The group has no access to the stream.
        """
        gid, sid = path_id(group_id, "group"), path_id(stream_id, "stream")
        groups.remove_group_stream(self.session, self.current_user, gid, sid)
        self.success()


ROUTES = [
    (r"/api/groups/public/?", PublicGroupHandler),
    (r"/api/groups/?", GroupHandler),
    (r"/api/groups/([^/]+)/users/?", GroupUserHandler),
    (r"/api/groups/([^/]+)/users/([^/]+)/?", GroupUserHandler),
    (r"/api/groups/([^/]+)/streams/?", GroupStreamHandler),
    (r"/api/groups/([^/]+)/streams/([^/]+)/?", GroupStreamHandler),
    (r"/api/groups/([^/]+)/?", GroupHandler),
]
