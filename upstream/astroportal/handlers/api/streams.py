"""/api/streams and /api/filters: where alerts come from, and each group's selection of them."""

from __future__ import annotations

from ...domain import streams
from ...domain.checks import path_id
from ...errors import ApiError
from ..base import APIHandler, auth_required, rule


class StreamHandler(APIHandler):
    @auth_required
    def get(self, stream_id: str | None = None) -> None:
        """
        ---
        summary: List streams, or get one
        tags: [streams]
        description: Streams read by one of your groups (every stream for system admins).
        parameters:
          - in: path
            name: stream_id
            required: false
            schema: {type: integer}
          - in: query
            name: name
            description: Only the stream with exactly this name.
            schema: {type: string}
        responses:
          200:
            description: A list of streams (`id`, `name`, `altdata`), or one stream.
          404:
            description: No such stream among those you can see.
        """
        if stream_id is not None:
            sid = path_id(stream_id, "stream")
            self.success(streams.serialize_stream(streams.get_stream(self.session, self.current_user, sid)))
            return
        self.success(streams.list_streams(self.session, self.current_user, self.query("name")))

    @rule("POST", "/api/streams")
    def post(self, stream_id: str | None = None) -> None:
        """
        ---
        summary: Create a stream
        tags: [streams]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [name]
                properties:
                  name: {type: string, description: unique}
                  altdata: {type: object, description: access details for the stream's broker}
        responses:
          200:
            description: 'Created: `{"id": N}`.'
          400:
            description: A missing or bad field, or a name in use.
          403:
            description: Lacks "System admin".
        """
        if stream_id is not None:
            raise ApiError(405, "create streams with POST /api/streams")
        self.success({"id": streams.create_stream(self.session, self.get_json())})

    @rule("PATCH", "/api/streams/{id}")
    def patch(self, stream_id: str | None = None) -> None:
        """
        ---
        summary: Rename a stream or change its altdata
        tags: [streams]
        parameters:
          - {in: path, name: stream_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                properties:
                  name: {type: string}
                  altdata: {type: object}
        responses:
          200:
            description: Changed.
          400:
            description: A bad or unknown field, or a name in use.
          404:
            description: No such stream.
        """
        streams.update_stream(self.session, self.current_user, path_id(stream_id, "stream"), self.get_json())
        self.success()

    @rule("DELETE", "/api/streams/{id}")
    def delete(self, stream_id: str | None = None) -> None:
        """
        ---
        summary: Delete a stream
        tags: [streams]
        parameters:
          - {in: path, name: stream_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: Deleted.
          400:
            description: Filters still run on it.
          404:
            description: No such stream.
        """
        streams.delete_stream(self.session, self.current_user, path_id(stream_id, "stream"))
        self.success()


class FilterHandler(APIHandler):
    @auth_required
    def get(self, filter_id: str | None = None) -> None:
        """
        ---
        summary: List your groups' filters, or get one
        tags: [filters]
        parameters:
          - in: path
            name: filter_id
            required: false
            schema: {type: integer}
        responses:
          200:
            description: A list of filters (`id`, `name`, `stream_id`, `group_id`, `stream`), or one filter.
          404:
            description: No such filter in your groups.
        """
        if filter_id is not None:
            fid = path_id(filter_id, "filter")
            self.success(streams.serialize_filter(streams.get_filter(self.session, self.current_user, fid)))
            return
        self.success(streams.list_filters(self.session, self.current_user))

    @rule("POST", "/api/filters")
    def post(self, filter_id: str | None = None) -> None:
        """
        ---
        summary: Create a filter for a group on a stream it reads
        tags: [filters]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [name, stream_id, group_id]
                properties:
                  name: {type: string}
                  stream_id: {type: integer}
                  group_id: {type: integer}
        responses:
          200:
            description: 'Created: `{"id": N}`.'
          400:
            description: A missing or bad field, an unknown group or stream, or a stream the group does not read.
          403:
            description: Lacks "Manage groups", or not a member of the group.
        """
        if filter_id is not None:
            raise ApiError(405, "create filters with POST /api/filters")
        self.success({"id": streams.create_filter(self.session, self.current_user, self.get_json())})

    @rule("PATCH", "/api/filters/{id}")
    def patch(self, filter_id: str | None = None) -> None:
        """
        ---
        summary: Rename a filter or move it to another stream of its group
        tags: [filters]
        parameters:
          - {in: path, name: filter_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                properties:
                  name: {type: string}
                  stream_id: {type: integer}
        responses:
          200:
            description: Changed.
          400:
            description: A bad or unknown field, or a stream the group does not read.
          404:
            description: No such filter in your groups.
        """
        streams.update_filter(self.session, self.current_user, path_id(filter_id, "filter"), self.get_json())
        self.success()

    @rule("DELETE", "/api/filters/{id}")
    def delete(self, filter_id: str | None = None) -> None:
        """
        ---
        summary: Delete a filter
        tags: [filters]
        parameters:
          - {in: path, name: filter_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: Deleted.
          400:
            description: Candidates passed it.
          404:
            description: No such filter in your groups.
        """
        streams.delete_filter(self.session, self.current_user, path_id(filter_id, "filter"))
        self.success()


ROUTES = [
    (r"/api/streams/?", StreamHandler),
    (r"/api/streams/([^/]+)/?", StreamHandler),
    (r"/api/filters/?", FilterHandler),
    (r"/api/filters/([^/]+)/?", FilterHandler),
]
