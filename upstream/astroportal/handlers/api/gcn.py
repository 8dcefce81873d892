"""/api/gcn_event and /api/localization: gravitational-wave and GRB events from GCN notices, their sky maps."""

from __future__ import annotations

from ...errors import ApiError
from ...gw import events
from ...gw.ingest import UnknownEvent, ingest_notice
from ...gw.notices import NoticeError, parse
from ...gw.skymaps import SkymapError
from ...validate import parse_json_body
from ..base import APIHandler, auth_required, rule


def notice_content(body: bytes, content_type: str) -> bytes:
    """The raw notice a POST carries: an XML body, the `xml` string of a JSON object, or the JSON itself."""
    if not body or not body.strip():
        raise ApiError(400, "the request needs a body: an igwn.gwalert JSON notice, {\"xml\": VOEvent}, or VOEvent "
                            "XML sent as application/xml")
    if "xml" in content_type.lower() or body.lstrip()[:1] == b"<":
        return body
    if body.lstrip()[:1] not in (b"{", b"["):
        raise ApiError(400, "the body is neither JSON nor XML; send an igwn.gwalert JSON notice, {\"xml\": VOEvent}, "
                            "or VOEvent XML as application/xml")
    data = parse_json_body(body)  # the portal's JSON checks: syntax, NUL, lone surrogates, nesting depth
    if not isinstance(data, dict):
        raise ApiError(400, "the JSON body must be an object: an igwn.gwalert notice or {\"xml\": VOEvent}")
    if "xml" in data:
        if not isinstance(data["xml"], str) or not data["xml"].strip():
            raise ApiError(400, "`xml` must be the VOEvent's XML text")
        return data["xml"].encode()
    return body


class GcnEventHandler(APIHandler):
    @rule("POST", "/api/gcn_event")
    def post(self, key: str | None = None) -> None:
        """
        ---
        summary: Ingest a GCN notice
        description: >
          An LVK igwn.gwalert JSON alert (with its base64 multi-order sky map), `{"xml": "<VOEvent ...>"}`, or a
          VOEvent sent as application/xml (LVK with its sky map inline is not possible: a VOEvent's sky map URL is
          not downloaded; Fermi GBM / Swift error circles are turned into sky maps). The event is found by alias
          (superevent or trigger id) or time, or created; the same notice twice changes nothing; a retraction tags
          the event RETRACTED; a new sky map adds a localization.
        tags: [gcn]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                oneOf:
                  - {type: object, description: 'an igwn.gwalert notice (superevent_id, alert_type, event, ...)'}
                  - {type: object, required: [xml], properties: {xml: {type: string}}}
            application/xml:
              schema: {type: string}
        responses:
          200:
            description: 'Stored (or already stored: `duplicate` true).'
            content:
              application/json:
                schema:
                  allOf:
                    - {$ref: '#/components/schemas/Success'}
                    - type: object
                      properties:
                        data:
                          type: object
                          properties:
                            gcnevent_id: {type: integer}
                            dateobs: {type: string, format: date-time}
                            duplicate: {type: boolean}
                            localization_ids: {type: array, items: {type: integer}}
          400:
            description: Not a notice (neither JSON nor XML), a malformed notice, or a sky map that cannot be read.
          403:
            description: Lacks "Manage GCNs".
          404:
            description: A retraction of an event the portal does not have.
        """
        if key is not None:
            raise ApiError(405, "post notices to /api/gcn_event")
        raw = notice_content(self.body, self.request.headers.get("Content-Type", ""))
        try:
            notice = parse(raw)
            result = ingest_notice(self.session, notice, self.current_user)
        except (NoticeError, SkymapError) as exc:
            raise ApiError(400, str(exc)) from None
        except UnknownEvent as exc:
            raise ApiError(404, str(exc)) from None
        self.success({"gcnevent_id": result.event_id, "dateobs": result.dateobs, "duplicate": result.duplicate,
                      "created": result.created, "notice_id": result.notice_id,
                      "localization_ids": result.localization_ids, "tags": result.tags})

    @auth_required
    def get(self, key: str | None = None) -> None:
        """
        ---
        summary: List GCN events (newest first), or get one
        tags: [gcn]
        parameters:
          - {in: path, name: key, required: false, description: 'The event''s dateobs (ISO time) or an alias.',
             schema: {type: string}}
          - {in: query, name: startDate, description: 'Events at or after this time (ISO).', schema: {type: string}}
          - {in: query, name: endDate, description: 'Events at or before this time (ISO).', schema: {type: string}}
          - {in: query, name: tagKeep, description: 'Comma-separated tags an event must all have.',
             schema: {type: string}}
          - {in: query, name: tagRemove, description: 'Comma-separated tags an event must have none of.',
             schema: {type: string}}
          - {in: query, name: pageNumber, schema: {type: integer, minimum: 1}}
          - {in: query, name: numPerPage, schema: {type: integer, minimum: 1, maximum: 500}}
        responses:
          200:
            description: >
              `{"events": [...], "totalMatches", "pageNumber", "numPerPage"}`, or one event: dateobs, trigger_id,
              aliases, tags, properties (newest value of each), properties_history, notices (timeline, without
              content) and localizations (id, localization_name, area_50, area_90, distmean, diststd, created_at).
          400:
            description: A bad filter or page.
          404:
            description: No such event.
        """
        if key is not None:
            self.success(events.get_event(self.session, key))
            return
        page = self.query("pageNumber", None, int) or self.query("page", 1, int)
        self.success(events.list_events(
            self.session, start=self.query("startDate"), end=self.query("endDate"), tag_keep=self.query("tagKeep"),
            tag_remove=self.query("tagRemove"), page=page,
            per_page=self.query("numPerPage", events.DEFAULT_PER_PAGE, int)))


class LocalizationHandler(APIHandler):
    @auth_required
    def get(self, key: str, name: str) -> None:
        """
        ---
        summary: Get a localization of an event, with its 50/90% contours
        tags: [gcn]
        parameters:
          - {in: path, name: key, required: true, description: 'The event''s dateobs or an alias.',
             schema: {type: string}}
          - {in: path, name: name, required: true, schema: {type: string}}
        responses:
          200:
            description: >
              The localization: id, localization_name, area_50, area_90 (deg2), distmean, diststd, contour (GeoJSON
              FeatureCollection: the centre, then the 50% and 90% lines).
          404:
            description: No such event or localization.
        """
        self.success(events.get_localization(self.session, key, name))


class LocalizationDownloadHandler(APIHandler):
    @auth_required
    def get(self, key: str, name: str) -> None:
        """
        ---
        summary: Download a localization as a multi-order FITS file
        tags: [gcn]
        parameters:
          - {in: path, name: key, required: true, description: 'The event''s dateobs or an alias.',
             schema: {type: string}}
          - {in: path, name: name, required: true, schema: {type: string}}
        responses:
          200:
            description: A multi-order FITS file (UNIQ, PROBDENSITY and the distance columns).
            content:
              application/fits:
                schema: {type: string, format: binary}
          404:
            description: No such event or localization.
        """
        filename, data = events.localization_fits(self.session, key, name)
        self.set_header("Content-Type", "application/fits")
        self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        self.finish(data)


ROUTES = [
    (r"/api/gcn_event/?", GcnEventHandler),
    (r"/api/gcn_event/([^/]+)/?", GcnEventHandler),
    (r"/api/localization/([^/]+)/name/([^/]+)/download/?", LocalizationDownloadHandler),
    (r"/api/localization/([^/]+)/name/([^/]+)/?", LocalizationHandler),
]
