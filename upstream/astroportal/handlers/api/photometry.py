"""Photometry: /api/photometry (POST, PUT), /api/photometry/ID, /api/sources/ID/photometry."""

from __future__ import annotations

import gzip

import yaml

from ... import __version__
from ...bandpasses import FILTER_FAMILIES
from ...domain import photometry as phot
from ...errors import ApiError
from ...jsonutil import dumps, dumps_list
from ..base import APIHandler, auth_required, rule
from ..offload import offload
from ...validate import shown

BIG_RESPONSE = 256 * 1024  # bytes of JSON above which the light curve is compressed here, quickly


# The body of POST and PUT /api/photometry, described once for the OpenAPI document.
OPENAPI_SCHEMAS = {"PhotometryUpload": yaml.safe_load(
    """
type: object
description: >
  One point or a batch: every field but group_ids and stream_ids may be a single value or a
  list (a column); single values apply to every point and all lists must have the same length.
  Give either the magnitude form (mag, magerr, limiting_mag) or the flux form (flux, fluxerr, zp).
required: [obj_id, mjd, instrument_id, filter, magsys]
properties:
  obj_id: {description: "Object id (string or list)", maxLength: 256}
  mjd: {description: "Modified Julian date (number or list), 10000 to 100000 (years 1886 to 2132)",
        minimum: 10000, maximum: 100000}
  instrument_id: {description: "Instrument id (integer or list)"}
  filter: {description: "sncosmo bandpass name, among the instrument's filters (string or list)"}
  magsys: {description: "Magnitude system; only ab is supported"}
  mag: {description: "AB magnitude, -30 to 40; null for a non-detection", minimum: -30, maximum: 40}
  magerr: {description: "Magnitude error, greater than 0 and at most 10 (required with mag)",
           exclusiveMinimum: 0, maximum: 10}
  limiting_mag: {description: "5-sigma limiting magnitude, -30 to 40 (required when mag is null)",
                 minimum: -30, maximum: 40}
  flux: {description: "Flux at zero point zp (finite, also once taken to zp 23.9); null for a non-detection"}
  fluxerr: {description: "Flux error (greater than 0, finite) at zero point zp", exclusiveMinimum: 0}
  zp: {description: "Zero point of flux and fluxerr, -60 to 60", minimum: -60, maximum: 60}
  origin: {description: "Where the point comes from (part of its identity); default empty; at most 256 characters",
           maxLength: 256}
  alert_id: {description: "Id of the alert the point came with (0 to 2^63-1)", minimum: 0, maximum: 9223372036854775807}
  ra: {description: "Right ascension of the measurement, degrees", minimum: 0, maximum: 360}
  dec: {description: "Declination of the measurement, degrees", minimum: -90, maximum: 90}
  group_ids: {description: "Groups to share the points with (ids, or all); default your own group"}
  stream_ids: {type: array, items: {type: integer}, description: "Accepted for SkyPortal clients; not stored"}
"""
)}


class PhotometryHandler(APIHandler):
    @rule("POST", "/api/photometry")
    async def post(self) -> None:
        """
        Upload photometry
        ---
        summary: Upload photometry
        description: >
          Adds new points. A point that already exists (same object, instrument, filter, mjd and origin)
          refuses the whole batch with a 400 naming it. A batch holds at most 20,000 points.
        tags: [photometry]
        requestBody:
          required: true
          content:
            application/json:
              schema: {$ref: '#/components/schemas/PhotometryUpload'}
        responses:
          200:
            description: 'The ids of the points, in input order: {"ids": [...], "upload_id": "<uuid>"}'
          400:
            description: Invalid input (the message names the field); nothing was written.
          403:
            description: The user lacks "Upload data" or is not a member of a target group.
        """
        data = self.get_json()
        self.success(await offload(phot.add_photometry, self.session, self.current_user, data, release=self.session))

    @rule("PUT", "/api/photometry")
    async def put(self) -> None:
        """
        Upload photometry idempotently
        ---
        summary: Upload photometry idempotently
        description: >
          Adds the new points; existing ones (same object, instrument, filter, mjd and origin) are not
          duplicated: their values are updated when they changed and the groups are added. A point given twice
          in one request must have the same values both times (else 400, nothing written).
          A batch holds at most 20,000 points.
        tags: [photometry]
        requestBody:
          required: true
          content:
            application/json:
              schema: {$ref: '#/components/schemas/PhotometryUpload'}
        responses:
          200:
            description: 'The ids of the points, in input order: {"ids": [...], "upload_id": "<uuid>"}'
          400:
            description: Invalid input (the message names the field); nothing was written.
          403:
            description: The user lacks "Upload data" or is not a member of a target group.
        """
        data = self.get_json()
        self.success(await offload(phot.upsert_photometry, self.session, self.current_user, data, release=self.session))


def _point_id(raw: str) -> int:
    if not raw.isdigit():
        raise ApiError(404, f"photometry point {shown(raw)} not found")
    return int(raw)


class PhotometryPointHandler(APIHandler):
    @auth_required
    def get(self, point_id: str) -> None:
        """
        Get one photometry point
        ---
        summary: Get one photometry point
        tags: [photometry]
        parameters:
          - {in: path, name: point_id, required: true, schema: {type: integer}}
          - in: query
            name: format
            schema: {type: string, enum: [mag, flux], default: mag}
        responses:
          200:
            description: The point (mag form, or flux form with flux, fluxerr, zp).
          404:
            description: No such point, or it is not shared with any of your groups.
        """
        fmt = self.query("format", "mag")
        self.success(phot.get_photometry(self.session, self.current_user, _point_id(point_id), fmt))

    @rule("PATCH", "/api/photometry/{id}")
    def patch(self, point_id: str) -> None:
        """
        Change one photometry point
        ---
        summary: Change one photometry point
        description: >
          The body holds the fields to change, given as in an upload of one point (a new measurement in mag or
          flux form; a flux without zp is taken at zp 23.9). group_ids adds groups. Allowed to the point's
          owner and to users with "Manage sources".
        tags: [photometry]
        parameters:
          - {in: path, name: point_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema: {type: object}
        responses:
          200:
            description: '{"id": point_id}'
          400:
            description: Invalid field (named in the message); nothing changed.
          403:
            description: Not your point, and you lack "Manage sources".
          404:
            description: No such point visible to you.
        """
        self.success(phot.update_photometry(self.session, self.current_user, _point_id(point_id), self.get_json()))

    @rule("DELETE", "/api/photometry/{id}")
    def delete(self, point_id: str) -> None:
        """
        Delete one photometry point
        ---
        summary: Delete one photometry point
        description: Allowed to the point's owner and to users with "Manage sources".
        tags: [photometry]
        parameters:
          - {in: path, name: point_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: Deleted.
          403:
            description: Not your point, and you lack "Manage sources".
          404:
            description: No such point visible to you.
        """
        phot.delete_photometry(self.session, self.current_user, _point_id(point_id))
        self.success()


def _light_curve_body(session, user, obj_id, fmt, page_number, num_per_page, gzip_ok) -> tuple[bytes, bool]:
    """The answer's bytes (gzipped when long and the client takes gzip), built in the offload pool."""
    data = phot.light_curve(session, user, obj_id, fmt, page_number, num_per_page)
    if isinstance(data, dict):  # a page: {"photometry": [...], "totalMatches": ...}
        text = '{"photometry":' + dumps_list(data.pop("photometry")) + "," + dumps(data)[1:]
    else:
        text = dumps_list(data)
    body = f'{{"status":"success","data":{text},"version":{dumps(__version__)}}}'.encode()
    if gzip_ok and len(body) > BIG_RESPONSE:
        # A long light curve is megabytes of JSON: gzip level 1 makes it nearly as small as Tornado's
        # level 6 in a third of the time (Tornado leaves a body that already has a Content-Encoding alone).
        return gzip.compress(body, compresslevel=1), True
    return body, False


class SourcePhotometryHandler(APIHandler):
    @auth_required
    async def get(self, obj_id: str) -> None:
        """
        Get an object's photometry
        ---
        summary: Get an object's photometry
        description: >
          The points shared with your groups (system admins see all), in order of mjd. Without pageNumber and
          numPerPage: the list of points, for a light curve of at most 20,000 points (a longer one answers 400:
          read it in pages). With either: one page, {"photometry": [...], "totalMatches": N, "pageNumber": P,
          "numPerPage": K}.
        tags: [photometry, sources]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
          - in: query
            name: format
            schema: {type: string, enum: [mag, flux], default: mag}
          - in: query
            name: magsys
            schema: {type: string, enum: [ab], default: ab}
          - in: query
            name: pageNumber
            schema: {type: integer, minimum: 1, default: 1}
          - in: query
            name: numPerPage
            schema: {type: integer, minimum: 1, maximum: 20000, default: 10000}
        responses:
          200:
            description: >
              A list of points (or a page of them): id, obj_id, mjd, filter, mag, magerr, limiting_mag (or flux,
              fluxerr, zp), magsys, instrument_id, instrument_name, origin, alert_id, ra, dec, owner_id, groups,
              created_at.
          400:
            description: A bad argument, or more than 20,000 points asked for without paging.
          404:
            description: No such object visible to you.
        """
        fmt = self.query("format", "mag")
        phot.check_format(fmt, self.query("magsys", None))
        page_number = self.query("pageNumber", None, int)
        num_per_page = self.query("numPerPage", None, int)
        accepts = self.request.headers.get("Accept-Encoding", "")
        gzip_ok = bool(self.settings.get("compress_response")) and "gzip" in accepts
        # The query and the serialising of a long light curve run in the offload pool: the IOLoop stays free.
        body, compressed = await offload(
            _light_curve_body, self.session, self.current_user, obj_id, fmt, page_number, num_per_page, gzip_ok,
            release=self.session,
        )
        if compressed:
            self.set_header("Content-Encoding", "gzip")
        self.finish(body)


class FiltersHandler(APIHandler):
    def get(self) -> None:
        """
        List the known photometric filters
        ---
        summary: List the known photometric filters
        description: The sncosmo bandpass names accepted for photometry and instrument filter lists.
        tags: [photometry]
        security: []
        responses:
          200:
            description: '{"filters": [...], "families": {"ZTF": ["ztfg", ...], ...}}'
        """
        self.success(
            {
                "filters": sorted(n for names in FILTER_FAMILIES.values() for n in names),
                "families": {k: list(v) for k, v in FILTER_FAMILIES.items()},
            }
        )


ROUTES = [
    (r"/api/photometry/?", PhotometryHandler),
    (r"/api/photometry/filters/?", FiltersHandler),
    (r"/api/photometry/([^/]+)/?", PhotometryPointHandler),
    (r"/api/sources/([^/]+)/photometry/?", SourcePhotometryHandler),
]
