"""/api/sources/ID/comments: what people say about an object."""

from __future__ import annotations

from ...domain import annotations
from ...domain.access import get_visible_obj
from ...errors import ApiError
from ..base import APIHandler, auth_required, rule
from ...validate import shown

COMMENT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "obj_id": {"type": "string"},
        "text": {"type": "string", "description": "As posted (not escaped)"},
        "author_id": {"type": "integer", "nullable": True},
        "author_name": {"type": "string"},
        "groups": {"type": "array", "items": {"$ref": "#/components/schemas/GroupRef"}},
        "created_at": {"type": "string", "format": "date-time"},
        "modified": {"type": "string", "format": "date-time"},
    },
}
# Picked up by astroportal.openapi for the document's components.
OPENAPI_SCHEMAS = {"Comment": COMMENT_SCHEMA}


def comment_path_id(raw: str) -> int:
    if not raw.isdigit():
        raise ApiError(404, f"comment {shown(raw)} not found")
    return int(raw)


class ObjCommentsHandler(APIHandler):
    @auth_required
    def get(self, obj_id: str) -> None:
        """
        List an object's comments
        ---
        summary: List the comments on an object that are visible to you
        tags: [comments, sources]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
        responses:
          200:
            description: The comments, oldest first.
            data:
              type: array
              items: {$ref: '#/components/schemas/Comment'}
          404:
            description: No such object is visible to you.
        """
        obj = get_visible_obj(self.session, self.current_user, obj_id)
        self.success(annotations.comments_for_obj(self.session, self.current_user, obj.id))

    @rule("POST", "/api/sources/{id}/comments")
    def post(self, obj_id: str) -> None:
        """
        Comment on an object
        ---
        summary: Post a comment on an object
        tags: [comments, sources]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [text]
                properties:
                  text: {type: string, maxLength: 10000}
                  group_ids:
                    type: array
                    items: {type: integer}
                    description: Groups that may read the comment (by default all of yours)
        responses:
          200:
            description: The new comment's id.
            data:
              type: object
              properties:
                comment_id: {type: integer}
          400:
            description: Empty or too long text, or a bad group (the message says which).
          404:
            description: No such object is visible to you.
        """
        comment_id = annotations.create_comment(self.session, self.current_user, obj_id, self.get_json())
        self.success({"comment_id": comment_id})


class CommentHandler(APIHandler):
    @auth_required
    def get(self, obj_id: str, comment_id: str) -> None:
        """
        Get a comment
        ---
        summary: Get one comment on an object
        tags: [comments]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
          - {in: path, name: comment_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: The comment.
            data: {$ref: '#/components/schemas/Comment'}
          404:
            description: No such comment (or object) is visible to you.
        """
        self.success(
            annotations.get_comment(self.session, self.current_user, obj_id, comment_path_id(comment_id))
        )

    @rule("PUT", "/api/sources/{id}/comments/{id}")
    def put(self, obj_id: str, comment_id: str) -> None:
        """
        Change a comment
        ---
        summary: Change a comment (its author, or a user with "Manage sources")
        tags: [comments]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
          - {in: path, name: comment_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                properties:
                  text: {type: string, maxLength: 10000}
                  group_ids: {type: array, items: {type: integer}}
        responses:
          200:
            description: Changed.
          400:
            description: Empty or too long text, or a bad group.
          403:
            description: You are neither the author nor allowed to manage sources.
          404:
            description: No such comment (or object) is visible to you.
        """
        annotations.update_comment(
            self.session, self.current_user, obj_id, comment_path_id(comment_id), self.get_json()
        )
        self.success()

    @rule("DELETE", "/api/sources/{id}/comments/{id}")
    def delete(self, obj_id: str, comment_id: str) -> None:
        """
        Delete a comment
        ---
        summary: Delete a comment (its author, or a user with "Manage sources")
        tags: [comments]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
          - {in: path, name: comment_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: Deleted.
          403:
            description: You are neither the author nor allowed to manage sources.
          404:
            description: No such comment (or object) is visible to you.
        """
        annotations.delete_comment(self.session, self.current_user, obj_id, comment_path_id(comment_id))
        self.success()


ROUTES = [
    (r"/api/sources/([^/]+)/comments/?", ObjCommentsHandler),
    (r"/api/sources/([^/]+)/comments/([^/]+)", CommentHandler),
]
