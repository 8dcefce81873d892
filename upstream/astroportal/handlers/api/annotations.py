"""/api/sources/ID/annotations: machine-made facts about an object (one per origin); /api/annotations: a list of
them for many objects at once (alert brokers), written idempotently."""

from __future__ import annotations

from ...domain import annotations, bulk
from ...domain.access import get_visible_obj
from ...errors import ApiError
from ..base import APIHandler, auth_required, rule
from ...validate import shown

ANNOTATION_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "obj_id": {"type": "string"},
        "origin": {"type": "string", "description": "Who made it (a broker, a pipeline); one annotation per origin"},
        "data": {"type": "object", "description": "Flat: key -> finite number, string or boolean",
                 "additionalProperties": {"oneOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}]}},
        "author_id": {"type": "integer", "nullable": True},
        "author_name": {"type": "string"},
        "groups": {"type": "array", "items": {"$ref": "#/components/schemas/GroupRef"}},
        "created_at": {"type": "string", "format": "date-time"},
        "modified": {"type": "string", "format": "date-time"},
    },
}
# Picked up by astroportal.openapi for the document's components.
OPENAPI_SCHEMAS = {"Annotation": ANNOTATION_SCHEMA}


def annotation_path_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 10:
        raise ApiError(404, f"annotation {shown(raw)} not found")
    return int(raw)


class ObjAnnotationsHandler(APIHandler):
    @auth_required
    def get(self, obj_id: str) -> None:
        """
        List an object's annotations
        ---
        summary: List the annotations on an object that are visible to you
        tags: [annotations, sources]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
        responses:
          200:
            description: The annotations, by origin.
            data:
              type: array
              items: {$ref: '#/components/schemas/Annotation'}
          404:
            description: No such object is visible to you.
        """
        obj = get_visible_obj(self.session, self.current_user, obj_id)
        self.success(annotations.annotations_for_obj(self.session, self.current_user, obj.id))

    @rule("POST", "/api/sources/{id}/annotations")
    def post(self, obj_id: str) -> None:
        """
        Annotate an object
        ---
        summary: Post an annotation (one per object and origin)
        tags: [annotations, sources]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [origin, data]
                properties:
                  origin: {type: string}
                  data:
                    type: object
                    description: At most 100 keys; values finite numbers, strings (1000 characters) or booleans
                  group_ids:
                    type: array
                    items: {type: integer}
                    description: Groups that may read the annotation (by default all of yours)
        responses:
          200:
            description: The new annotation's id.
            data:
              type: object
              properties:
                annotation_id: {type: integer}
          400:
            description: A bad origin or data (NaN, nested values...), a bad group, or the object already has an
              annotation from this origin.
          404:
            description: No such object is visible to you.
        """
        annotation_id = annotations.create_annotation(self.session, self.current_user, obj_id, self.get_json())
        self.success({"annotation_id": annotation_id})


class AnnotationHandler(APIHandler):
    @auth_required
    def get(self, obj_id: str, annotation_id: str) -> None:
        """
        Get an annotation
        ---
        summary: Get one annotation on an object
        tags: [annotations]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
          - {in: path, name: annotation_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: The annotation.
            data: {$ref: '#/components/schemas/Annotation'}
          404:
            description: No such annotation (or object) is visible to you.
        """
        self.success(annotations.get_annotation(self.session, self.current_user, obj_id,
                                                annotation_path_id(annotation_id)))

    @rule("PUT", "/api/sources/{id}/annotations/{id}")
    def put(self, obj_id: str, annotation_id: str) -> None:
        """
        Change an annotation
        ---
        summary: Change an annotation (its author, or a user with "Manage sources")
        tags: [annotations]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
          - {in: path, name: annotation_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                properties:
                  origin: {type: string}
                  data: {type: object, description: Replaces the previous data}
                  group_ids: {type: array, items: {type: integer}}
        responses:
          200:
            description: Changed.
          400:
            description: A bad origin, data or group.
          403:
            description: You are neither the author nor allowed to manage sources.
          404:
            description: No such annotation (or object) is visible to you.
        """
        annotations.update_annotation(self.session, self.current_user, obj_id, annotation_path_id(annotation_id),
                                      self.get_json())
        self.success()

    @rule("DELETE", "/api/sources/{id}/annotations/{id}")
    def delete(self, obj_id: str, annotation_id: str) -> None:
        """
        Delete an annotation
        ---
        summary: Delete an annotation (its author, or a user with "Manage sources")
        tags: [annotations]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
          - {in: path, name: annotation_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: Deleted.
          403:
            description: You are neither the author nor allowed to manage sources.
          404:
            description: No such annotation (or object) is visible to you.
        """
        annotations.delete_annotation(self.session, self.current_user, obj_id, annotation_path_id(annotation_id))
        self.success()


class AnnotationsBatchHandler(APIHandler):
    @rule("POST", "/api/annotations")
    def post(self) -> None:
        """
        Annotate many objects
        ---
        summary: Post or update annotations of many objects at once (alert brokers)
        tags: [annotations]
        description: >
          A list of `{obj_id, origin, data, group_ids}`, written in one transaction (all or nothing; an error
          names the item's index). Idempotent per object and origin: your own annotation from that origin gets
          the new data (and groups, when given) instead of a second one, so sending the same alert again
          changes nothing.
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: array
                maxItems: 1000
                items:
                  type: object
                  required: [obj_id, origin, data]
                  properties:
                    obj_id: {type: string}
                    origin: {type: string}
                    data: {type: object}
                    group_ids: {type: array, items: {type: integer}}
        responses:
          200:
            description: '`{"ids": [...]}`, one per item.'
          400:
            description: A missing or invalid field (the message names it and the item's index).
          403:
            description: Lacks "Annotate", or the object's annotation from that origin is someone else's.
          404:
            description: No such object is visible to you.
        """
        body = self.get_json_or_list()
        if not isinstance(body, list):
            raise ApiError(400, "the body must be a list of annotations; to annotate one object, POST "
                                "/api/sources/{obj_id}/annotations")
        self.success({"ids": bulk.annotate_many(self.session, self.current_user, body)})


ROUTES = [
    (r"/api/sources/([^/]+)/annotations/?", ObjAnnotationsHandler),
    (r"/api/sources/([^/]+)/annotations/([^/]+)", AnnotationHandler),
    (r"/api/annotations/?", AnnotationsBatchHandler),
]
