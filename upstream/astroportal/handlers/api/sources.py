"""/api/sources and /api/source_groups: objects saved to groups."""

from __future__ import annotations

from ...domain import bulk, sources
from ..base import APIHandler, auth_required, rule


class SourceListHandler(APIHandler):
    @auth_required
    def get(self) -> None:
        """List the sources you can see, with cone search, id and group filters.
        ---
        summary: List sources
        tags: [sources]
        parameters:
          - {in: query, name: ra, description: 'Cone centre, degrees in [0, 360); needs dec and radius.', schema: {type: number}}
          - {in: query, name: dec, description: 'Cone centre, degrees in [-90, 90].', schema: {type: number}}
          - {in: query, name: radius, description: 'Cone radius, degrees in (0, 180] (great circle).', schema: {type: number}}
          - {in: query, name: sourceID, description: Case-insensitive substring of the object id., schema: {type: string}}
          - {in: query, name: group_ids, description: Comma-separated group ids; only sources saved to one of them., schema: {type: string}}
          - {in: query, name: pageNumber, schema: {type: integer, minimum: 1, default: 1}}
          - {in: query, name: numPerPage, schema: {type: integer, minimum: 1, maximum: 500, default: 100}}
          - in: query
            name: sortBy
            description: >
              Sort column; saved_at is the latest save to a group you read; localization_probdensity (with a
              localization; densest first by default).
            schema: {type: string, enum: [id, ra, dec, saved_at, created_at, localization_probdensity], default: saved_at}
          - in: query
            name: sortOrder
            description: Default desc for saved_at and created_at, asc for the others.
            schema: {type: string, enum: [asc, desc]}
          - {in: query, name: includePhotometry, schema: {type: boolean, default: false}}
          - in: query
            name: localizationDateobs
            description: >
              A GCN event's time (ISO 8601, as GET /api/gcn_event lists it): only sources in the credible region
              of its localization, each with `localization_probdensity` (per steradian). A tile is in the p
              credible region iff its cumprob (the probability of all denser tiles) is below p, so the tile that
              crosses p is included.
            schema: {type: string}
          - {in: query, name: localizationName, description: 'The localization (default: the event''s newest).', schema: {type: string}}
          - {in: query, name: localizationCumprob, description: 'p of the credible region, in (0, 1].', schema: {type: number, default: 0.95}}
        responses:
          200:
            description: >
              `{"sources": [...], "totalMatches": N, "pageNumber": p, "numPerPage": n}`; each source has id,
              ra, dec, redshift, origin, alias, created_at, saved_at, saved_by and groups (and
              localization_probdensity with a localization).
          400:
            description: An invalid argument (the message names it), an unknown group, or localizationCumprob outside (0, 1].
          401:
            description: Not logged in.
          403:
            description: A group_ids entry you do not belong to.
          404:
            description: No GCN event at localizationDateobs, or no localization of it named localizationName.
        """
        self.success(
            sources.list_sources(
                self.session,
                self.current_user,
                ra=self.query("ra", None, float),
                dec=self.query("dec", None, float),
                radius=self.query("radius", None, float),
                source_id=self.query("sourceID"),
                group_ids=sources.parse_id_csv(self.query("group_ids"), "group_ids"),
                page_number=self.query("pageNumber", 1, int),
                num_per_page=self.query("numPerPage", sources.DEFAULT_PER_PAGE, int),
                sort_by=self.query("sortBy"),
                sort_order=self.query("sortOrder"),
                include_photometry=self.query("includePhotometry", False, sources.parse_bool),
                localization_dateobs=self.query("localizationDateobs"),
                localization_name=self.query("localizationName"),
                localization_cumprob=self.query("localizationCumprob", None, float),
            )
        )

    @rule("POST", "/api/sources")
    def post(self) -> None:
        """Save an object (created if new) to groups; or a list of them.
        ---
        summary: Save a source to groups, creating the object if new
        tags: [sources]
        description: >
          Saving again to the same groups creates no duplicate. An existing object keeps its position unless
          you hold "Manage sources". A list of such bodies (at most 1000) is saved in one transaction, all or
          nothing (an error names the item's index), and answers a list of the single form's answers, each with
          `created` (whether the object was new).
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [id]
                properties:
                  id: {type: string, description: 'Object id, e.g. ZTF21aaqjmps.'}
                  ra: {type: number, minimum: 0, exclusiveMaximum: 360, description: Required for a new object.}
                  dec: {type: number, minimum: -90, maximum: 90, description: Required for a new object.}
                  group_ids:
                    type: array
                    items: {type: integer}
                    description: Groups to save to; default all your groups.
                  redshift: {type: number, nullable: true, minimum: -0.1, maximum: 20}
                  origin: {type: string, nullable: true, maxLength: 256}
                  alias:
                    oneOf:
                      - {type: string}
                      - {type: array, items: {type: string}}
        responses:
          200:
            description: '`{"id": "ZTF21aaqjmps", "saved_to_groups": [1]}`.'
          400:
            description: A missing or invalid field, or an unknown group.
          403:
            description: Lacks "Upload data", or a group you may not save to.
        """
        body = self.get_json_or_list()
        if isinstance(body, list):
            self.success(bulk.post_sources(self.session, self.current_user, body))
            return
        self.success(sources.post_source(self.session, self.current_user, body))


class SourceHandler(APIHandler):
    @auth_required
    def get(self, obj_id: str) -> None:
        """One source, with its photometry, classifications and comments on request.
        ---
        summary: Get a source
        tags: [sources]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
          - {in: query, name: includePhotometry, schema: {type: boolean, default: false}}
          - {in: query, name: includeComments, schema: {type: boolean, default: false}}
          - {in: query, name: includeClassifications, schema: {type: boolean, default: false}}
        responses:
          200:
            description: >
              The source: id, ra, dec, redshift, origin, alias, created_at, saved_at, saved_by, groups
              ([{id, name, nickname, saved_at, saved_by}]), and photometry / classifications / comments when asked.
          400:
            description: An invalid include flag.
          401:
            description: Not logged in.
          404:
            description: No such source, or not visible to you.
        """
        self.success(
            sources.get_source(
                self.session,
                self.current_user,
                obj_id,
                include_photometry=self.query("includePhotometry", False, sources.parse_bool),
                include_comments=self.query("includeComments", False, sources.parse_bool),
                include_classifications=self.query("includeClassifications", False, sources.parse_bool),
            )
        )

    @rule("PATCH", "/api/sources/{id}")
    def patch(self, obj_id: str) -> None:
        """Change a source's position, redshift, alias or origin.
        ---
        summary: Change a source's fields
        tags: [sources]
        description: Needs "Manage sources", or to have saved the source yourself.
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                properties:
                  ra: {type: number, minimum: 0, exclusiveMaximum: 360}
                  dec: {type: number, minimum: -90, maximum: 90}
                  redshift: {type: number, nullable: true, minimum: -0.1, maximum: 20}
                  origin: {type: string, nullable: true, maxLength: 256}
                  alias: {type: array, items: {type: string}, nullable: true}
        responses:
          200:
            description: '`{"id": ...}`.'
          400:
            description: An invalid or unknown field.
          403:
            description: Neither "Manage sources" nor a saver of this source.
          404:
            description: No such source, or not visible to you.
        """
        self.success(sources.patch_source(self.session, self.current_user, obj_id, self.get_json()))

    @rule("DELETE", "/api/sources/{id}")
    def delete(self, obj_id: str) -> None:
        """Unsave a source from all your groups.
        ---
        summary: Unsave a source from all your groups
        tags: [sources]
        description: The saves are kept as history (inactive, with who unsaved them and when).
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
        responses:
          200:
            description: '`{"id": ..., "unsaved_from_groups": [...]}`.'
          403:
            description: Lacks "Upload data".
          404:
            description: No such source, or not visible to you.
        """
        self.success(sources.delete_source(self.session, self.current_user, obj_id))


class SourceGroupsHandler(APIHandler):
    @rule("POST", "/api/source_groups")
    def post(self) -> None:
        """Save a source to more groups and/or unsave it from some.
        ---
        summary: Save a source to groups or unsave it from groups
        tags: [sources]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [objId]
                properties:
                  objId: {type: string}
                  inviteGroupIds: {type: array, items: {type: integer}}
                  unsaveGroupIds: {type: array, items: {type: integer}}
        responses:
          200:
            description: '`{"id": ..., "saved_to_groups": [...], "unsaved_from_groups": [...]}`.'
          400:
            description: Neither list given, a group in both, or an unknown group.
          403:
            description: A group you are not a member of (or may not save to).
          404:
            description: No such source, or not visible to you.
        """
        self.success(sources.source_groups(self.session, self.current_user, self.get_json()))


ROUTES = [
    (r"/api/sources/?", SourceListHandler),
    (r"/api/sources/([^/]+)/?", SourceHandler),
    (r"/api/source_groups/?", SourceGroupsHandler),
]
