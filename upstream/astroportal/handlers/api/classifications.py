"""/api/classification and /api/sources/ID/classifications: classes given to objects."""

from __future__ import annotations

from ...domain import annotations, bulk
from ...domain.access import get_visible_obj
from ...errors import ApiError
from ..base import APIHandler, auth_required, rule
from ...validate import shown

CLASSIFICATION_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "obj_id": {"type": "string"},
        "classification": {"type": "string"},
        "probability": {"type": "number", "nullable": True, "minimum": 0, "maximum": 1},
        "taxonomy_id": {"type": "integer"},
        "author_id": {"type": "integer", "nullable": True},
        "author_name": {"type": "string"},
        "groups": {"type": "array", "items": {"$ref": "#/components/schemas/GroupRef"}},
        "created_at": {"type": "string", "format": "date-time"},
        "modified": {"type": "string", "format": "date-time"},
    },
}
# Picked up by astroportal.openapi for the document's components.
OPENAPI_SCHEMAS = {"Classification": CLASSIFICATION_SCHEMA}


def classification_path_id(raw: str) -> int:
    if not raw.isdigit():
        raise ApiError(404, f"classification {shown(raw)} not found")
    return int(raw)


class ClassificationListHandler(APIHandler):
    @rule("POST", "/api/classification")
    def post(self) -> None:
        """
        Classify an object
        ---
        summary: Classify an object with a class from a taxonomy
        tags: [classifications]
        description: >
          A list of such bodies (at most 1000) is written in one transaction, all or nothing (an error names the
          item's index), and answers `{"classification_ids": [...]}`. The list form is idempotent, for
          programs that send the same result again: an item whose object, taxonomy and class you have already
          classified updates that classification's probability instead of adding another.
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [obj_id, classification, taxonomy_id]
                properties:
                  obj_id: {type: string}
                  classification: {type: string, description: A class of the taxonomy's hierarchy}
                  taxonomy_id: {type: integer}
                  probability: {type: number, minimum: 0, maximum: 1, nullable: true}
                  group_ids:
                    type: array
                    items: {type: integer}
                    description: Groups that may see the classification (by default all of yours)
        responses:
          200:
            description: The new classification's id.
            data:
              type: object
              properties:
                classification_id: {type: integer}
          400:
            description: A bad field (the message names it), a class not in the taxonomy, an unknown taxonomy.
          404:
            description: No such object is visible to you.
        """
        body = self.get_json_or_list()
        if isinstance(body, list):
            ids = bulk.classify_many(self.session, self.current_user, body)
            self.success({"classification_ids": ids})
            return
        cid = annotations.create_classification(self.session, self.current_user, body)
        self.success({"classification_id": cid})


class ClassificationHandler(APIHandler):
    @auth_required
    def get(self, classification_id: str) -> None:
        """
        Get a classification
        ---
        summary: Get one classification
        tags: [classifications]
        parameters:
          - {in: path, name: classification_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: The classification.
            data: {$ref: '#/components/schemas/Classification'}
          404:
            description: No such classification is visible to you.
        """
        cid = classification_path_id(classification_id)
        self.success(annotations.get_classification(self.session, self.current_user, cid))

    @rule("PUT", "/api/classification/{id}")
    def put(self, classification_id: str) -> None:
        """
        Change a classification
        ---
        summary: Change a classification (its author, or a user with "Manage sources")
        tags: [classifications]
        parameters:
          - {in: path, name: classification_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                properties:
                  classification: {type: string}
                  taxonomy_id: {type: integer}
                  probability: {type: number, minimum: 0, maximum: 1, nullable: true}
                  group_ids: {type: array, items: {type: integer}}
        responses:
          200:
            description: Changed.
          400:
            description: A bad field (the message names it).
          403:
            description: You are neither the author nor allowed to manage sources.
          404:
            description: No such classification is visible to you.
        """
        cid = classification_path_id(classification_id)
        annotations.update_classification(self.session, self.current_user, cid, self.get_json())
        self.success()

    @rule("DELETE", "/api/classification/{id}")
    def delete(self, classification_id: str) -> None:
        """
        Delete a classification
        ---
        summary: Delete a classification (its author, or a user with "Manage sources")
        tags: [classifications]
        parameters:
          - {in: path, name: classification_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: Deleted.
          403:
            description: You are neither the author nor allowed to manage sources.
          404:
            description: No such classification is visible to you.
        """
        cid = classification_path_id(classification_id)
        annotations.delete_classification(self.session, self.current_user, cid)
        self.success()


class ObjClassificationsHandler(APIHandler):
    @auth_required
    def get(self, obj_id: str) -> None:
        """
        List an object's classifications
        ---
        summary: List the classifications of an object that are visible to you
        tags: [classifications, sources]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
        responses:
          200:
            description: The classifications, oldest first.
            data:
              type: array
              items: {$ref: '#/components/schemas/Classification'}
          404:
            description: No such object is visible to you.
        """
        obj = get_visible_obj(self.session, self.current_user, obj_id)
        self.success(annotations.classifications_for_obj(self.session, self.current_user, obj.id))


ROUTES = [
    (r"/api/classification/?", ClassificationListHandler),
    (r"/api/classification/([^/]+)", ClassificationHandler),
    (r"/api/sources/([^/]+)/classifications/?", ObjClassificationsHandler),
]
