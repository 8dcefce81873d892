"""Ephemerides for the pages: night and twilight at telescopes, and tonight's airmass of a source."""

from __future__ import annotations

import tornado.ioloop

from ...domain import ephemeris
from ...errors import ApiError
from ..base import APIHandler, auth_required
from ...validate import shown


async def off_loop(fn, *args):
    """Run astropy work in a worker thread: the first computation in a process takes a second or more (tables
    and ephemerides load), and the server must keep answering meanwhile."""
    return await tornado.ioloop.IOLoop.current().run_in_executor(None, fn, *args)


def _telescope_id(raw: str | None, field: str = "telescope_id") -> int:
    if raw is None or raw == "":
        raise ApiError(400, f"missing required query argument `{field}`")
    if not raw.isdigit():
        raise ApiError(400, f"`{field}` must be an integer telescope id, got {shown(raw)}")
    return int(raw)


class TelescopeEphemerisHandler(APIHandler):
    @auth_required
    async def get(self, telescope_id: str | None = None) -> None:
        """
        Night and twilight at telescopes
        ---
        summary: Night and twilight at one or every telescope
        description: |
          Without an id: for every telescope, the sun's altitude now, the twilight band and whether it is
          night (sun below -0.833 deg) or dark (below -18 deg). With an id: the same for that telescope plus
          tonight's night (sunset to sunrise) and dark window (astronomical twilight to astronomical twilight).
        tags: [telescopes, ephemeris]
        parameters:
          - {in: path, name: telescope_id, required: false, schema: {type: integer}}
          - {in: query, name: time, required: false, schema: {type: string, format: date-time},
             description: "UTC time to compute for (default now)"}
        responses:
          200:
            description: The ephemeris (a list without an id).
            data:
              oneOf:
                - type: array
                  items: {type: object}
                - type: object
                  properties:
                    location_known: {type: boolean}
                    sun_altitude: {type: number}
                    twilight: {type: string, enum: [day, civil, nautical, astronomical, night]}
                    is_night: {type: boolean}
                    is_dark: {type: boolean}
                    night: {type: object}
                    dark_window: {type: object}
          400:
            description: Invalid id or time.
          404:
            description: No such telescope.
        """
        when = self.query("time")
        if telescope_id is None:
            self.success(ephemeris.telescopes_night_status(self.session, when))
        else:
            site = ephemeris.telescope_site(self.session, _telescope_id(telescope_id, "id"))
            self.success(await off_loop(ephemeris.compute_telescope_ephemeris, site, when))


class AirmassHandler(APIHandler):
    @auth_required
    async def get(self, obj_id: str) -> None:
        """
        Tonight's airmass of a source from a telescope
        ---
        summary: Airmass curve of a source through tonight, with twilight bands
        description: |
          Altitude and airmass (Pickering 2002) every 5 minutes from an hour before sunset to an hour after
          sunrise at the telescope, the sun's altitude, and the twilight bands (day, civil, nautical,
          astronomical, night) as consecutive intervals. Airmass is null while the source is below the horizon.
        tags: [sources, telescopes, ephemeris]
        parameters:
          - {in: path, name: obj_id, required: true, schema: {type: string}}
          - {in: query, name: telescope_id, required: true, schema: {type: integer}}
          - {in: query, name: time, required: false, schema: {type: string, format: date-time},
             description: "UTC time whose night is wanted (default now)"}
        responses:
          200:
            description: The curve.
            data:
              type: object
              properties:
                times: {type: array, items: {type: string, format: date-time}}
                altitude: {type: array, items: {type: number}}
                airmass: {type: array, items: {type: number, nullable: true}}
                sun_altitude: {type: array, items: {type: number}}
                twilight:
                  type: array
                  items:
                    type: object
                    properties:
                      name: {type: string}
                      start: {type: string, format: date-time}
                      end: {type: string, format: date-time}
                night: {type: object}
          400:
            description: Missing or invalid telescope id, a telescope without a site, or an invalid time.
          404:
            description: No such source (visible to you) or telescope.
        """
        telescope_id = _telescope_id(self.get_query_argument("telescope_id", None))
        target = ephemeris.airmass_target(self.session, self.current_user, obj_id, telescope_id)
        self.success(await off_loop(ephemeris.compute_airmass, target, self.query("time")))


ROUTES = [
    (r"/api/internal/ephemeris/?", TelescopeEphemerisHandler),
    (r"/api/internal/ephemeris/([^/]+)/?", TelescopeEphemerisHandler),
    (r"/api/internal/airmass/([^/]+)/?", AirmassHandler),
]
