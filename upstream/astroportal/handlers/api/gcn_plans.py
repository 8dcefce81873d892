"""Observation plans of an event: /api/gcn_event/DATEOBS/plan (per instrument) and /network_plan (the network)."""

from __future__ import annotations

import re

from ...errors import ApiError
from ...gw import plan
from ...validate import shown
from ..base import APIHandler, auth_required
from ..offload import offload

def _ids(raw: str | None, name: str) -> list[int]:
    items = [x.strip() for x in (raw or "").split(",") if x.strip()]
    if not items or not all(re.fullmatch(r"\d{1,9}", x) for x in items):
        raise ApiError(400, f"`{name}` must be instrument ids separated by commas, got {shown(raw)}")
    return sorted({int(x) for x in items})


class _PlanHandler(APIHandler):
    def _options(self) -> plan.Options:
        return plan.options(self.query("n_fields", None, int), self.query("airmass", None, float), self.query("date"),
                            defaults=self.settings["plan_defaults"])

    def _answer(self, result: dict, name: str) -> None:
        fmt = (self.query("format") or "json").lower()
        if fmt not in ("json", "csv"):
            raise ApiError(400, f"`format` must be json or csv, got {shown(fmt)}")
        telescope_id = self.query("telescope_id", None, int)
        if telescope_id is not None:
            result["plans"] = [p for p in result["plans"] if p["telescope_id"] == telescope_id]
        if fmt == "json":
            self.success(result)
            return
        stamp = result["dateobs"].strftime("%Y%m%dT%H%M%S")
        suffix = "" if telescope_id is None else f"_telescope{telescope_id}"
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{name}_{stamp}{suffix}.csv"')
        self.finish(plan.plan_csv(result))


class PlanHandler(_PlanHandler):
    @auth_required
    async def get(self, key: str) -> None:
        """
        ---
        summary: Observation plan of each instrument asked for, for an event's localization
        description: >
          For each instrument (on its own): the top `n_fields` fields of its grid observable tonight from its
          telescope (airmass at most `airmass` while the Sun is below -12 deg), chosen greedily so that each adds
          the most probability not already covered by those before it. An error box under 30 arcmin of radius gets
          one field centred on its position. Each field: field_id, ra, dec, probability (what it adds),
          cumulative_probability, window_start, window_end, best_time, airmass (at best_time). An empty plan says
          why in `reason`. Computed on demand.
        tags: [gcn]
        parameters:
          - {in: path, name: key, required: true, description: 'The event''s dateobs (ISO time) or an alias.',
             schema: {type: string}}
          - {in: query, name: n_fields, description: 'Fields per instrument (1-1000, default `gw.plan.n_fields`, 10 unless configured).',
             schema: {type: integer}}
          - {in: query, name: airmass, description: 'Highest airmass a field may be observed at (default `gw.plan.airmass`, 2 unless configured).',
             schema: {type: number}}
          - {in: query, name: date, description: 'YYYY-MM-DD: that evening''s night at each site; an ISO time: the
             night in progress then or the next; default now.', schema: {type: string}}
          - {in: query, name: localization_name, description: 'Default: the newest localization.',
             schema: {type: string}}
          - {in: query, name: telescope_id, description: 'Only this telescope''s fields (export per telescope).',
             schema: {type: integer}}
          - {in: query, name: format, schema: {type: string, enum: [json, csv]}}
          - {in: query, name: instrument_id, description: 'An instrument id.', schema: {type: integer}}
          - {in: query, name: instrument_ids, description: 'Instrument ids separated by commas.',
             schema: {type: string}}
        responses:
          200:
            description: '`{kind, dateobs, localization, error_box, single_field, plans: [{instrument_id, instrument,
              telescope_id, telescope, night, probability, reason, fields: [...]}]}`, or CSV with format=csv.'
          400:
            description: No or bad instrument id, an instrument without a field of view or its telescope without a
              site, a bad option, or an event without localization.
          404:
            description: No such event, localization or instrument.
        """
        raw = self.get_query_argument("instrument_ids", None) or self.get_query_argument("instrument_id", None)
        name = "instrument_ids" if self.get_query_argument("instrument_ids", None) else "instrument_id"
        if not raw:
            raise ApiError(400, "give `instrument_id` (or `instrument_ids`, separated by commas): the instruments to "
                                "plan for; /network_plan plans for every instrument at once")
        ids = _ids(raw, name)
        opts = self._options()
        name_arg = self.query("localization_name")
        result = await offload(plan.instrument_plans, self.session, key, ids, opts, name_arg, release=self.session)
        self._answer(result, "plan")


class NetworkPlanHandler(_PlanHandler):
    @auth_required
    async def get(self, key: str) -> None:
        """
        ---
        summary: Observation plan of the whole network for an event's localization
        description: >
          Every instrument with a field of view on a telescope with a fixed site takes part; fields are chosen
          greedily over all of them at once (up to `n_fields` each), each the one adding the most probability not
          yet covered, so each piece of sky goes to one telescope only. Per instrument the same rows as /plan;
          `skipped` lists instruments with a field of view that cannot take part, and why.
        tags: [gcn]
        parameters:
          - {in: path, name: key, required: true, description: 'The event''s dateobs (ISO time) or an alias.',
             schema: {type: string}}
          - {in: query, name: n_fields, description: 'Fields per instrument (1-1000, default `gw.plan.n_fields`, 10 unless configured).',
             schema: {type: integer}}
          - {in: query, name: airmass, description: 'Highest airmass a field may be observed at (default `gw.plan.airmass`, 2 unless configured).',
             schema: {type: number}}
          - {in: query, name: date, description: 'YYYY-MM-DD: that evening''s night at each site; an ISO time: the
             night in progress then or the next; default now.', schema: {type: string}}
          - {in: query, name: localization_name, description: 'Default: the newest localization.',
             schema: {type: string}}
          - {in: query, name: telescope_id, description: 'Only this telescope''s fields (export per telescope).',
             schema: {type: integer}}
          - {in: query, name: format, schema: {type: string, enum: [json, csv]}}
        responses:
          200:
            description: 'As /plan, with `probability` (the whole plan''s) and `skipped`; CSV with format=csv.'
          400:
            description: A bad option, no instrument able to take part, or an event without localization.
          404:
            description: No such event or localization.
        """
        opts = self._options()
        name_arg = self.query("localization_name")
        result = await offload(plan.network_plan, self.session, key, opts, name_arg, release=self.session)
        self._answer(result, "network_plan")


ROUTES = [
    (r"/api/gcn_event/([^/]+)/plan/?", PlanHandler),
    (r"/api/gcn_event/([^/]+)/network_plan/?", NetworkPlanHandler),
]
