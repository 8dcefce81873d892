"""/api/taxonomy: the class trees that classifications come from."""

from __future__ import annotations

from ...domain import taxonomies
from ...errors import ApiError
from ..base import APIHandler, auth_required, rule
from ...validate import shown

# Picked up by astroportal.openapi for the document's components.
OPENAPI_SCHEMAS = {
    "TaxonomyNode": {
        "type": "object",
        "required": ["class"],
        "properties": {
            "class": {"type": "string"},
            "subclasses": {"type": "array", "items": {"$ref": "#/components/schemas/TaxonomyNode"}},
        },
    },
    "Taxonomy": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "hierarchy": {"$ref": "#/components/schemas/TaxonomyNode"},
            "version": {"type": "string"},
            "provenance": {"type": "string", "nullable": True},
            "isLatest": {"type": "boolean"},
            "groups": {"type": "array", "items": {"$ref": "#/components/schemas/GroupRef"}},
            "created_at": {"type": "string", "format": "date-time"},
            "modified": {"type": "string", "format": "date-time"},
        },
    },
}


def taxonomy_path_id(raw: str) -> int:
    """The id in /api/taxonomy/ID; anything else cannot name a taxonomy (404)."""
    if not raw.isdigit():
        raise ApiError(404, f"taxonomy {shown(raw)} not found")
    return int(raw)


class TaxonomyListHandler(APIHandler):
    @auth_required
    def get(self) -> None:
        """
        List taxonomies
        ---
        summary: List the taxonomies shared with your groups
        tags: [taxonomies]
        responses:
          200:
            description: Every taxonomy shared with one of your groups (every one for system admins).
            data:
              type: array
              items: {$ref: '#/components/schemas/Taxonomy'}
        """
        self.success(taxonomies.list_taxonomies(self.session, self.current_user))

    @rule("POST", "/api/taxonomy")
    def post(self) -> None:
        """
        Post a taxonomy
        ---
        summary: Post a new taxonomy (or a new version of one)
        description: |
          The hierarchy is a tree of nodes `{"class": "...", "subclasses": [...]}`. Posting a version of an
          existing name marks the older versions `isLatest: false` (unless this one is posted with
          `isLatest: false`).
        tags: [taxonomies]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [name, hierarchy, version]
                properties:
                  name: {type: string}
                  hierarchy: {$ref: '#/components/schemas/TaxonomyNode'}
                  version: {type: string}
                  provenance: {type: string, description: Where the taxonomy comes from}
                  group_ids:
                    type: array
                    items: {type: integer}
                    description: Groups that may see and use the taxonomy (by default all of yours)
                  isLatest: {type: boolean, default: true}
        responses:
          200:
            description: The new taxonomy's id.
            data:
              type: object
              properties:
                taxonomy_id: {type: integer}
          400:
            description: A missing field or a malformed hierarchy node (the message names its path).
          409:
            description: A taxonomy with this name and version already exists.
        """
        taxonomy_id = taxonomies.create_taxonomy(self.session, self.current_user, self.get_json())
        self.success({"taxonomy_id": taxonomy_id})


class TaxonomyHandler(APIHandler):
    @auth_required
    def get(self, taxonomy_id: str) -> None:
        """
        Get a taxonomy
        ---
        summary: Get one taxonomy
        tags: [taxonomies]
        parameters:
          - in: path
            name: taxonomy_id
            required: true
            schema: {type: integer}
        responses:
          200:
            description: The taxonomy.
            data: {$ref: '#/components/schemas/Taxonomy'}
          404:
            description: No such taxonomy is shared with you.
        """
        self.success(taxonomies.get_taxonomy(self.session, self.current_user, taxonomy_path_id(taxonomy_id)))

    @rule("DELETE", "/api/taxonomy/{id}")
    def delete(self, taxonomy_id: str) -> None:
        """
        Delete a taxonomy
        ---
        summary: Delete a taxonomy and the classifications made with it
        tags: [taxonomies]
        parameters:
          - in: path
            name: taxonomy_id
            required: true
            schema: {type: integer}
        responses:
          200:
            description: Deleted.
          404:
            description: No such taxonomy is shared with you.
        """
        taxonomies.delete_taxonomy(self.session, self.current_user, taxonomy_path_id(taxonomy_id))
        self.success()


ROUTES = [
    (r"/api/taxonomy/?", TaxonomyListHandler),
    (r"/api/taxonomy/([^/]+)", TaxonomyHandler),
]
