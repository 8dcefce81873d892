"""/api/candidates: objects that passed groups' filters."""

from __future__ import annotations

from ...domain import bulk, candidates
from ...domain.sources import DEFAULT_PER_PAGE, parse_bool, parse_id_csv
from ..base import APIHandler, auth_required, rule


class CandidateListHandler(APIHandler):
    @auth_required
    def get(self) -> None:
        """List candidates, the latest pass first.
        ---
        summary: List candidates
        tags: [candidates]
        parameters:
          - {in: query, name: pageNumber, schema: {type: integer, minimum: 1, default: 1}}
          - {in: query, name: numPerPage, schema: {type: integer, minimum: 1, maximum: 500, default: 100}}
          - {in: query, name: groupIDs, description: Comma-separated group ids whose filters count (default all you read)., schema: {type: string}}
          - {in: query, name: filterIDs, description: Comma-separated filter ids., schema: {type: string}}
          - in: query
            name: savedStatus
            schema:
              type: string
              default: all
              enum: [all, savedToAnySelected, notSavedToAnySelected, savedToAnyAccessible, notSavedToAnyAccessible]
          - {in: query, name: includeRejected, description: Also list candidates you rejected., schema: {type: boolean, default: false}}
          - in: query
            name: localizationDateobs
            description: >
              A GCN event's time (ISO 8601): only candidates in the credible region of its localization, each
              with `localization_probdensity` (per steradian). A tile is in the p credible region iff its cumprob
              (the probability of all denser tiles) is below p: the tile that crosses p is included.
            schema: {type: string}
          - {in: query, name: localizationName, description: 'The localization (default: the event''s newest).', schema: {type: string}}
          - {in: query, name: localizationCumprob, description: 'p of the credible region, in (0, 1].', schema: {type: number, default: 0.95}}
          - {in: query, name: sortBy, description: 'passed_at (latest first) or localization_probdensity (densest first).', schema: {type: string, enum: [passed_at, localization_probdensity], default: passed_at}}
        responses:
          200:
            description: >
              `{"candidates": [...], "totalMatches": N, "pageNumber": p, "numPerPage": n}`; each candidate is
              the object with passed_at (latest pass), filter_ids, passing_alert_id, is_source, saved_groups
              and rejected (and localization_probdensity with a localization).
          400:
            description: An invalid argument, unknown group or unknown filter, or localizationCumprob outside (0, 1].
          401:
            description: Not logged in.
          403:
            description: A groupIDs entry you do not belong to.
          404:
            description: No GCN event at localizationDateobs, or no localization of it named localizationName.
        """
        self.success(
            candidates.list_candidates(
                self.session,
                self.current_user,
                page_number=self.query("pageNumber", 1, int),
                num_per_page=self.query("numPerPage", DEFAULT_PER_PAGE, int),
                group_ids=parse_id_csv(self.query("groupIDs"), "groupIDs"),
                filter_ids=parse_id_csv(self.query("filterIDs"), "filterIDs"),
                saved_status=self.query("savedStatus", "all"),
                include_rejected=self.query("includeRejected", False, parse_bool),
                localization_dateobs=self.query("localizationDateobs"),
                localization_name=self.query("localizationName"),
                localization_cumprob=self.query("localizationCumprob", None, float),
                sort_by=self.query("sortBy"),
            )
        )

    @rule("POST", "/api/candidates")
    def post(self) -> None:
        """Record that an object passed filters (creating the object if new).
        ---
        summary: Post a candidate
        tags: [candidates]
        description: >
          Posting the same object, filter and passed_at again returns the same ids and writes nothing. A list of
          such bodies (at most 1000) is written in one transaction, all or nothing (an error names the item's
          index), and answers a list of the single form's answers.
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [id, filter_ids, passed_at]
                properties:
                  id: {type: string}
                  ra: {type: number, minimum: 0, exclusiveMaximum: 360, description: Required for a new object.}
                  dec: {type: number, minimum: -90, maximum: 90, description: Required for a new object.}
                  filter_ids: {type: array, items: {type: integer}, minItems: 1}
                  passed_at: {type: string, format: date-time, description: ISO 8601; UTC when no offset.}
                  passing_alert_id: {type: integer, nullable: true}
                  redshift: {type: number, nullable: true, minimum: -0.1, maximum: 20}
                  origin: {type: string, nullable: true, maxLength: 256}
                  alias: {type: array, items: {type: string}}
        responses:
          200:
            description: '`{"ids": [...]}`, one candidate id per filter, in order.'
          400:
            description: A missing or invalid field, or an unknown filter.
          403:
            description: Lacks "Upload data", or a filter of a group you are not in.
        """
        body = self.get_json_or_list()
        if isinstance(body, list):
            self.success(bulk.post_candidates(self.session, self.current_user, body))
            return
        self.success(candidates.post_candidate(self.session, self.current_user, body))


class CandidateHandler(APIHandler):
    @auth_required
    def get(self, obj_id: str) -> None:
        """One candidate object.
        ---
        summary: Get a candidate
        tags: [candidates]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
          - {in: query, name: includePhotometry, schema: {type: boolean, default: false}}
          - {in: query, name: includeComments, schema: {type: boolean, default: false}}
          - {in: query, name: includeClassifications, schema: {type: boolean, default: false}}
        responses:
          200:
            description: The candidate (same fields as in the list; photometry, comments, classifications on request).
          401:
            description: Not logged in.
          404:
            description: No such candidate visible to you.
        """
        self.success(
            candidates.get_candidate(
                self.session,
                self.current_user,
                obj_id,
                include_photometry=self.query("includePhotometry", False, parse_bool),
                include_comments=self.query("includeComments", False, parse_bool),
                include_classifications=self.query("includeClassifications", False, parse_bool),
            )
        )


ROUTES = [
    (r"/api/candidates/?", CandidateListHandler),
    (r"/api/candidates/([^/]+)/?", CandidateHandler),
]
