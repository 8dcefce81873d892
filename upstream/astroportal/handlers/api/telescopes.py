"""/api/telescope and /api/instrument: the observing facilities photometry is tied to."""

from __future__ import annotations

from ...domain import telescopes
from ...domain.checks import path_id
from ...errors import ApiError
from ..base import APIHandler, auth_required, rule


class TelescopeHandler(APIHandler):
    @auth_required
    def get(self, telescope_id: str | None = None) -> None:
        """
        ---
        summary: List telescopes, or get one
        tags: [telescopes]
        parameters:
          - in: path
            name: telescope_id
            required: false
            schema: {type: integer}
          - in: query
            name: name
            description: Only the telescope with exactly this name.
            schema: {type: string}
        responses:
          200:
            description: A list of telescopes (all fields and `id`), or one telescope.
          401:
            description: Not logged in.
          404:
            description: No such telescope.
        """
        if telescope_id is not None:
            tid = path_id(telescope_id, "telescope")
            self.success(telescopes.serialize_telescope(telescopes.get_telescope(self.session, tid)))
            return
        self.success(telescopes.list_telescopes(self.session, self.query("name")))

    @rule("POST", "/api/telescope")
    def post(self, telescope_id: str | None = None) -> None:
        """
        ---
        summary: Create a telescope
        tags: [telescopes]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [name, nickname, diameter]
                properties:
                  name: {type: string, maxLength: 256, description: unique}
                  nickname: {type: string, maxLength: 256}
                  lat: {type: number, minimum: -90, maximum: 90, nullable: true}
                  lon: {type: number, minimum: -180, maximum: 180, nullable: true}
                  elevation: {type: number, minimum: -500, maximum: 6000, description: metres, nullable: true}
                  diameter: {type: number, exclusiveMinimum: 0, description: metres}
                  robotic: {type: boolean}
                  fixed_location: {type: boolean, default: true,
                                   description: "true (the default) requires lat and lon"}
                  skycam_link: {type: string, nullable: true, maxLength: 2048, pattern: '^[hH][tT][tT][pP][sS]?://',
                                description: an http(s) URL}
                  weather_link: {type: string, nullable: true, maxLength: 2048, pattern: '^[hH][tT][tT][pP][sS]?://',
                                 description: an http(s) URL}
        responses:
          200:
            description: 'Created: `{"id": N}`.'
          400:
            description: A missing, mistyped or out-of-range field, or a name already in use.
          403:
            description: Lacks "Manage telescopes".
        """
        if telescope_id is not None:
            raise ApiError(405, "create telescopes with POST /api/telescope")
        self.success({"id": telescopes.create_telescope(self.session, self.get_json())})

    @rule("PATCH", "/api/telescope/{id}")
    def patch(self, telescope_id: str | None = None) -> None:
        """
        ---
        summary: Change a telescope's fields
        tags: [telescopes]
        parameters:
          - {in: path, name: telescope_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                description: Any of the fields accepted by POST; the others are left as they are.
        responses:
          200:
            description: Changed.
          400:
            description: A bad or unknown field.
          404:
            description: No such telescope.
        """
        telescopes.update_telescope(self.session, path_id(telescope_id, "telescope"), self.get_json())
        self.success()

    @rule("PUT", "/api/telescope/{id}")
    def put(self, telescope_id: str | None = None) -> None:
        """
        ---
        summary: Change a telescope's fields (same as PATCH)
        tags: [telescopes]
        parameters:
          - {in: path, name: telescope_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema: {type: object}
        responses:
          200:
            description: Changed.
          400:
            description: A bad or unknown field.
          404:
            description: No such telescope.
        """
        self.patch(telescope_id)

    @rule("DELETE", "/api/telescope/{id}")
    def delete(self, telescope_id: str | None = None) -> None:
        """
        ---
        summary: Delete a telescope and its instruments
        tags: [telescopes]
        parameters:
          - {in: path, name: telescope_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: Deleted.
          400:
            description: Photometry was taken with its instruments.
          404:
            description: No such telescope.
        """
        telescopes.delete_telescope(self.session, path_id(telescope_id, "telescope"))
        self.success()


class InstrumentHandler(APIHandler):
    @auth_required
    def get(self, instrument_id: str | None = None) -> None:
        """
        ---
        summary: List instruments, or get one
        tags: [instruments]
        parameters:
          - in: path
            name: instrument_id
            required: false
            schema: {type: integer}
          - in: query
            name: name
            description: Only the instrument with exactly this name.
            schema: {type: string}
        responses:
          200:
            description: A list of instruments, each with `telescope` nested, or one instrument.
          404:
            description: No such instrument.
        """
        if instrument_id is not None:
            iid = path_id(instrument_id, "instrument")
            self.success(telescopes.serialize_instrument(telescopes.get_instrument(self.session, iid)))
            return
        self.success(telescopes.list_instruments(self.session, self.query("name")))

    @rule("POST", "/api/instrument")
    def post(self, instrument_id: str | None = None) -> None:
        """
        ---
        summary: Create an instrument on a telescope
        tags: [instruments]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [name, type, telescope_id]
                properties:
                  name: {type: string, maxLength: 256, description: unique}
                  type: {type: string, enum: [imager, spectrograph, imaging spectrograph]}
                  band: {type: string, maxLength: 256}
                  telescope_id: {type: integer}
                  filters:
                    type: array
                    uniqueItems: true
                    description: >
                      Each filter once. On a change, a filter that photometry of this instrument uses cannot be left out.
                    items: {type: string, description: 'an sncosmo bandpass name such as ztfg'}
                  field_of_view:
                    type: object
                    nullable: true
                    description: >
                      The imager's field of view, sizes in degrees (> 0, <= 180): {"shape": "square", "side_deg": s},
                      {"shape": "rectangle", "width_deg": w, "height_deg": h} or {"shape": "circle", "radius_deg": r}.
                    required: [shape]
                    properties:
                      shape: {type: string, enum: [square, rectangle, circle]}
                      side_deg: {type: number}
                      width_deg: {type: number}
                      height_deg: {type: number}
                      radius_deg: {type: number}
        responses:
          200:
            description: 'Created: `{"id": N}`.'
          400:
            description: A missing or bad field, an unknown telescope or filter, or a name in use.
          403:
            description: Lacks "Manage telescopes".
        """
        if instrument_id is not None:
            raise ApiError(405, "create instruments with POST /api/instrument")
        self.success({"id": telescopes.create_instrument(self.session, self.get_json())})

    @rule("PATCH", "/api/instrument/{id}")
    def patch(self, instrument_id: str | None = None) -> None:
        """
        ---
        summary: Change an instrument's fields
        tags: [instruments]
        parameters:
          - {in: path, name: instrument_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                description: Any of name, type, band, telescope_id, filters, field_of_view.
        responses:
          200:
            description: Changed.
          400:
            description: A bad or unknown field.
          404:
            description: No such instrument.
        """
        telescopes.update_instrument(self.session, path_id(instrument_id, "instrument"), self.get_json())
        self.success()

    @rule("PUT", "/api/instrument/{id}")
    def put(self, instrument_id: str | None = None) -> None:
        """
        ---
        summary: Change an instrument's fields (same as PATCH)
        tags: [instruments]
        parameters:
          - {in: path, name: instrument_id, required: true, schema: {type: integer}}
        requestBody:
          required: true
          content:
            application/json:
              schema: {type: object}
        responses:
          200:
            description: Changed.
          400:
            description: A bad or unknown field.
          404:
            description: No such instrument.
        """
        self.patch(instrument_id)

    @rule("DELETE", "/api/instrument/{id}")
    def delete(self, instrument_id: str | None = None) -> None:
        """
        ---
        summary: Delete an instrument
        tags: [instruments]
        parameters:
          - {in: path, name: instrument_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: Deleted.
          400:
            description: Photometry was taken with it.
          404:
            description: No such instrument.
        """
        telescopes.delete_instrument(self.session, path_id(instrument_id, "instrument"))
        self.success()


ROUTES = [
    (r"/api/telescope/?", TelescopeHandler),
    (r"/api/telescope/([^/]+)/?", TelescopeHandler),
    (r"/api/instrument/?", InstrumentHandler),
    (r"/api/instrument/([^/]+)/?", InstrumentHandler),
]
