"""Observation plans for an event's localization: which fields each telescope should observe tonight.

Per instrument: its field grid (`fields.py`), each field's contained probability, the fields observable tonight
from its telescope (`visibility.py`), and the top N chosen greedily: each pick is the field adding the most
probability not yet covered by the fields chosen before it, so overlapping fields are never counted twice
and a field whose sky is already covered is not chosen. A network plan does the same over every instrument's
fields at once, so that each piece of sky goes to one telescope only. An error box under 30 arcmin of radius
gets one field centred on its position.

Probabilities are exact sums over the localization's tiles: the cumulative probability along the depth-29
nested index is piecewise linear (each tile has one density), so the probability of any range of indices
is two lookups in the sorted tiles.
"""

from __future__ import annotations

import csv
import heapq
import io
import math
import re
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..config import ConfigError
from ..errors import ApiError
from ..models import Instrument, Localization, LocalizationTile
from ..validate import shown
from . import fields as fieldgrids
from . import visibility as vis
from .events import find_event
from .skymaps import MAX_DEPTH

# Error boxes smaller than this radius get one field centred on their position.
ERROR_BOX_SINGLE_FIELD_DEG = 0.5
# A field adding less probability than this is not worth the telescope's time: it is not planned.
MIN_FIELD_PROBABILITY = 1e-6
DEFAULT_N_FIELDS = 10
MAX_N_FIELDS = 1000
DEFAULT_AIRMASS = 2.0
AIRMASS_RANGE = (1.0, 10.0)
# Solid angle of one depth-29 cell, steradians.
CELL_SR = 4 * math.pi / (12 * 4.0**MAX_DEPTH)
# The name SkyPortal (and `skymaps.from_error_circle`'s callers) give an error circle's localization.
_ERROR_BOX_NAME = re.compile(r"^(-?\d+(?:\.\d+)?)_(-?\d+(?:\.\d+)?)_(\d+(?:\.\d+)?)$")

CSV_COLUMNS = ["telescope", "instrument", "field_id", "ra", "dec", "probability", "cumulative_probability",
               "window_start", "window_end", "best_time", "airmass"]


class PlanError(ValueError):
    """A plan that cannot be made for a reason the caller can fix (said in the message)."""


# -- probability along the nested index ---------------------------------------------------------------------
class SkyProbability:
    """A localization's cumulative probability over the depth-29 nested index, from its tiles."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, probdensity: np.ndarray) -> None:
        order = np.argsort(lo, kind="stable")
        self.lo = np.asarray(lo, dtype=np.int64)[order]
        self.hi = np.asarray(hi, dtype=np.int64)[order]
        self.per_cell = np.asarray(probdensity, dtype=float)[order] * CELL_SR
        prob = (self.hi - self.lo).astype(float) * self.per_cell
        self.before = np.concatenate(([0.0], np.cumsum(prob)))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Probability of the cells below each index x (x is a depth-29 index or range end)."""
        x = np.asarray(x, dtype=np.int64)
        i = np.searchsorted(self.lo, x, side="right") - 1
        safe = np.clip(i, 0, len(self.lo) - 1)
        inside = np.clip(x - self.lo[safe], 0, self.hi[safe] - self.lo[safe]).astype(float)
        return np.where(i >= 0, self.before[safe] + self.per_cell[safe] * inside, 0.0)

    def of_ranges(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Probability of each range [lo, hi)."""
        return self.cdf(hi) - self.cdf(lo)

    def of_fields(self, grid: fieldgrids.Grid) -> np.ndarray:
        """Contained probability of each field of a grid."""
        per_range = np.concatenate(([0.0], np.cumsum(self.of_ranges(grid.lo, grid.hi))))
        return np.clip(per_range[grid.start[1:]] - per_range[grid.start[:-1]], 0.0, None)


class Covered:
    """The union of the fields chosen so far (sorted disjoint depth-29 ranges), and what it holds of a map."""

    def __init__(self, sky: SkyProbability) -> None:
        self.sky = sky
        self.lo = np.zeros(0, dtype=np.int64)
        self.hi = np.zeros(0, dtype=np.int64)
        self.before = np.zeros(1)

    def _below(self, x: np.ndarray) -> np.ndarray:
        """Probability of the covered cells below each index x."""
        j = np.searchsorted(self.lo, x, side="right") - 1
        safe = np.clip(j, 0, max(len(self.lo) - 1, 0))
        if len(self.lo) == 0:
            return np.zeros(np.shape(x))
        part = self.sky.cdf(np.minimum(x, self.hi[safe])) - self.sky.cdf(self.lo[safe])
        return np.where(j >= 0, self.before[safe] + part, 0.0)

    def overlap(self, lo: np.ndarray, hi: np.ndarray) -> float:
        """Probability of the covered part of the disjoint ranges [lo, hi)."""
        if len(self.lo) == 0 or len(lo) == 0:
            return 0.0
        return float(np.sum(self._below(hi) - self._below(lo)))

    def add(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Cover the ranges [lo, hi) too (merged with what is covered)."""
        all_lo = np.concatenate((self.lo, lo))
        all_hi = np.concatenate((self.hi, hi))
        order = np.argsort(all_lo, kind="stable")
        all_lo, all_hi = all_lo[order], all_hi[order]
        reach = np.maximum.accumulate(all_hi)
        new = np.ones(len(all_lo), dtype=bool)
        new[1:] = all_lo[1:] > reach[:-1]
        starts = np.flatnonzero(new)
        self.lo = all_lo[starts]
        self.hi = np.maximum.reduceat(all_hi, starts)
        self.before = np.concatenate(([0.0], np.cumsum(self.sky.of_ranges(self.lo, self.hi))))

    @property
    def probability(self) -> float:
        return float(self.before[-1])


# -- the greedy choice ----------------------------------------------------------------------------------------
@dataclass
class Candidate:
    """A field one instrument can observe tonight."""

    slot: int  # which instrument (index into the plan's instruments)
    index: int  # field index in the instrument's grid
    probability: float  # contained probability on its own
    lo: np.ndarray
    hi: np.ndarray


def greedy(sky: SkyProbability, candidates: list[Candidate], quota: dict[int, int]) -> list[tuple[Candidate, float]]:
    """Choose fields one at a time, each the one adding most probability not yet covered, up to `quota` fields
    per instrument slot; returns (candidate, probability it adds) in the order chosen.

    Lazy evaluation: what a field adds can only shrink as fields are chosen, so a field is re-evaluated only
    when it reaches the top of the queue, and chosen if it still beats the next one's (stale, higher) value."""
    covered = Covered(sky)
    heap = [(-c.probability, c.slot, c.index, k) for k, c in enumerate(candidates) if c.probability >= MIN_FIELD_PROBABILITY]
    heapq.heapify(heap)
    left = dict(quota)
    chosen: list[tuple[Candidate, float]] = []
    while heap and any(n > 0 for n in left.values()):
        _, slot, index, k = heapq.heappop(heap)
        if left.get(slot, 0) <= 0:
            continue
        c = candidates[k]
        gain = c.probability - covered.overlap(c.lo, c.hi)
        if gain < MIN_FIELD_PROBABILITY:
            continue
        if heap and gain < -heap[0][0] - 1e-15:
            heapq.heappush(heap, (-gain, slot, index, k))
            continue
        chosen.append((c, gain))
        covered.add(c.lo, c.hi)
        left[slot] -= 1
    return chosen


# -- what the database holds ----------------------------------------------------------------------------------
def find_plan_localization(session: Session, key: str, name: str | None) -> Localization:
    """The event's localization `name`, or its newest; 404 for an unknown event or name."""
    event = find_event(session, key)
    query = select(Localization).where(Localization.event_id == event.id)
    if name:
        loc = session.scalars(query.where(Localization.localization_name == name)).first()
        if loc is None:
            names = [loc.localization_name for loc in event.localizations]
            raise ApiError(404, f"event {key} has no localization named {shown(name)}; it has: "
                                f"{', '.join(names) or 'none'}")
        return loc
    loc = session.scalars(query.order_by(Localization.created_at.desc(), Localization.id.desc())).first()
    if loc is None:
        raise ApiError(400, f"event {key} has no localization yet: there is nothing to plan on")
    return loc


def sky_probability(session: Session, localization_id: int) -> SkyProbability:
    t = LocalizationTile.__table__.c
    rows = session.execute(select(t.lo, t.hi, t.probdensity).where(t.localization_id == localization_id)
                           .order_by(t.lo)).all()
    lo = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    hi = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    dens = np.fromiter((r[2] for r in rows), dtype=float, count=len(rows))
    return SkyProbability(lo, hi, dens)


def error_box(loc: Localization) -> tuple[float, float, float] | None:
    """(ra, dec, radius deg) of an error-circle localization (named "RA_DEC_RADIUS", as SkyPortal names them)."""
    m = _ERROR_BOX_NAME.match(loc.localization_name or "")
    if not m:
        return None
    ra, dec, radius = (float(x) for x in m.groups())
    return (ra % 360.0, dec, radius) if -90 <= dec <= 90 else None


@dataclass
class Target:
    """An instrument that can be planned: its field of view and its telescope's site."""

    instrument_id: int
    instrument: str
    telescope_id: int
    telescope: str
    fov: dict
    site: vis.Site


def _target(inst: Instrument) -> Target:
    tel = inst.telescope
    if not inst.field_of_view:
        raise PlanError(f"instrument {inst.name} (id {inst.id}) has no field of view: set its `field_of_view` (for "
                        'example {"shape": "square", "side_deg": 1.9}) with PUT /api/instrument/' + str(inst.id))
    if tel.lat is None or tel.lon is None or not tel.fixed_location:
        raise PlanError(f"the telescope {tel.name} of instrument {inst.name} has no fixed site (lat/lon): give it one "
                        f"with PUT /api/telescope/{tel.id} to plan its observations")
    return Target(inst.id, inst.name, tel.id, tel.name, dict(inst.field_of_view),
                  vis.Site(float(tel.lat), float(tel.lon), float(tel.elevation or 0.0)))


def plannable_instruments(session: Session, ids: list[int] | None = None) -> tuple[list[Target], list[dict]]:
    """The instruments `ids` (or every instrument) as Targets; with `ids` an unfit one is a 400, without them
    it is skipped and listed as (instrument, reason)."""
    query = select(Instrument).options(selectinload(Instrument.telescope)).order_by(Instrument.id)
    if ids is not None:
        query = query.where(Instrument.id.in_(ids))
    found = list(session.scalars(query))
    if ids is not None:
        missing = sorted(set(ids) - {i.id for i in found})
        if missing:
            raise ApiError(404, f"no instrument with id {', '.join(map(str, missing))}")
    targets, skipped = [], []
    for inst in found:
        try:
            targets.append(_target(inst))
        except PlanError as exc:
            if ids is not None:
                raise ApiError(400, str(exc)) from None
            if inst.field_of_view:  # instruments without a field of view are simply not part of plans
                skipped.append({"instrument_id": inst.id, "instrument": inst.name, "reason": str(exc)})
    return targets, skipped


# -- plans ----------------------------------------------------------------------------------------------------
@dataclass
class Options:
    n_fields: int = DEFAULT_N_FIELDS
    airmass: float = DEFAULT_AIRMASS
    when: object = None  # a date (that evening), a time, or None (now)


def options(n_fields: int | None = None, airmass: float | None = None, when: str | None = None,
            defaults: Options | None = None) -> Options:
    """Checked plan options; 400 naming the bad one. `defaults` (from `gw.plan.*` in the configuration) fill what
    the request leaves out."""
    defaults = defaults or Options()
    n = defaults.n_fields if n_fields is None else n_fields
    if not 1 <= n <= MAX_N_FIELDS:
        raise ApiError(400, f"`n_fields` must be between 1 and {MAX_N_FIELDS}, got {n}")
    a = defaults.airmass if airmass is None else airmass
    if not AIRMASS_RANGE[0] < a <= AIRMASS_RANGE[1]:
        raise ApiError(400, f"`airmass` must be above {AIRMASS_RANGE[0]:g} and at most {AIRMASS_RANGE[1]:g} "
                            f"(the highest airmass a field may be observed at), got {a:g}")
    if when is not None:
        text = when.strip()
        if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
            from datetime import date

            try:
                date.fromisoformat(text)
            except ValueError:
                raise ApiError(400, f"`date` {shown(when)} is not a date: use YYYY-MM-DD (that evening's "
                                    "night) or an ISO time") from None
        else:
            vis.ephemeris.as_time(text)  # 400 for what is not a time
        when = text
    return Options(n, a, when)


def configured_defaults(cfg) -> Options:
    """The site's planning defaults (`gw.plan.n_fields`, `gw.plan.airmass`); a value out of range is a
    configuration error, said at start-up rather than on the night's first plan."""
    n = cfg.get("gw.plan.n_fields")
    a = cfg.get("gw.plan.airmass")
    n = DEFAULT_N_FIELDS if n is None else int(n)
    a = DEFAULT_AIRMASS if a is None else float(a)
    if not 1 <= n <= MAX_N_FIELDS or not AIRMASS_RANGE[0] < a <= AIRMASS_RANGE[1]:
        raise ConfigError(f"gw.plan: n_fields must be 1-{MAX_N_FIELDS} and airmass in "
                         f"({AIRMASS_RANGE[0]:g}, {AIRMASS_RANGE[1]:g}], got n_fields={n}, airmass={a:g}; "
                         "fix them in config.yaml")
    return Options(n, a)


@dataclass
class _Slot:
    """One instrument within a plan: its grid, tonight, the visibility of its candidate fields."""

    target: Target
    grid: fieldgrids.Grid | None = None
    night: vis.Night | None = None
    visible: vis.Visibility | None = None
    with_prob: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # rows of `visible`
    candidates: list[int] = field(default_factory=list)  # grid indices of the visible fields with probability
    reason: str | None = None
    fields_with_probability: int = 0


def _prepare(session: Session, sky: SkyProbability, slot_no: int, target: Target, box, opts: Options,
             nights: dict) -> tuple[_Slot, list[Candidate]]:
    slot = _Slot(target)
    try:
        if box is not None and box[2] < ERROR_BOX_SINGLE_FIELD_DEG:
            slot.grid = fieldgrids.single_field(target.fov, box[0], box[1])
        else:
            slot.grid = fieldgrids.instrument_grid(session, target.instrument_id, target.fov)
    except fieldgrids.FieldOfViewError as exc:
        slot.reason = str(exc)
        return slot, []
    key = (target.site, str(opts.when))
    if key not in nights:
        nights[key] = vis.tonight(target.site, opts.when)
    slot.night = nights[key]
    prob = sky.of_fields(slot.grid)
    with_prob = np.flatnonzero(prob >= MIN_FIELD_PROBABILITY)
    slot.fields_with_probability = len(with_prob)
    slot.with_prob = with_prob
    if not slot.night.exists:
        slot.reason = slot.night.reason
        return slot, []
    if len(with_prob) == 0:
        slot.reason = "no field of this instrument's grid holds probability of this localization"
        return slot, []
    slot.visible = vis.visibility(target.site, slot.night, slot.grid.ra[with_prob], slot.grid.dec[with_prob],
                                  opts.airmass)
    seen = with_prob[slot.visible.observable]
    slot.candidates = list(seen)
    if len(seen) == 0:
        slot.reason = (f"none of the {len(with_prob)} fields holding probability rises above airmass "
                       f"{opts.airmass:g} during tonight's dark time at {target.telescope}")
        return slot, []
    out = []
    for i in seen:
        lo, hi = slot.grid.ranges(int(i))
        out.append(Candidate(slot_no, int(i), float(prob[i]), lo, hi))
    return slot, out


def _rows(slot: _Slot, picks: list[tuple[Candidate, float]]) -> list[dict]:
    """The chosen fields of one instrument as export rows, in the order chosen, with cumulative probability."""
    row_of = {int(g): k for k, g in enumerate(slot.with_prob)}
    rows, total = [], 0.0
    times = slot.night.times if slot.night is not None else None
    for c, gain in picks:
        k = row_of[c.index]
        v = slot.visible
        total += gain
        rows.append({
            "field_id": c.index + 1 if len(slot.grid.ra) > 1 else 0,
            "ra": round(float(slot.grid.ra[c.index]), 6),
            "dec": round(float(slot.grid.dec[c.index]), 6),
            "probability": gain,
            "cumulative_probability": total,
            "field_probability": c.probability,
            "window_start": vis.ephemeris.iso(times[v.first[k]]),
            "window_end": vis.ephemeris.iso(times[v.last[k]]),
            "best_time": vis.ephemeris.iso(times[v.best[k]]),
            "airmass": round(float(v.airmass[k]), 4),
        })
    return rows


def _plan_dict(slot: _Slot, picks: list[tuple[Candidate, float]]) -> dict:
    t = slot.target
    rows = _rows(slot, picks)
    reason = slot.reason
    if not rows and reason is None:
        reason = "every field this instrument could observe is covered already by fields chosen before"
    night = slot.night
    return {
        "instrument_id": t.instrument_id,
        "instrument": t.instrument,
        "telescope_id": t.telescope_id,
        "telescope": t.telescope,
        "field_of_view": t.fov,
        "night": None if night is None else {
            "start": vis.ephemeris.iso(night.start), "end": vis.ephemeris.iso(night.end), "exists": night.exists},
        "fields_in_grid": 0 if slot.grid is None else len(slot.grid.ra),
        "fields_with_probability": slot.fields_with_probability,
        "visible_fields": len(slot.candidates),
        "probability": rows[-1]["cumulative_probability"] if rows else 0.0,
        "reason": None if rows else reason,
        "fields": rows,
    }


def _header(session: Session, key: str, loc: Localization, box, opts: Options, kind: str) -> dict:
    single = box is not None and box[2] < ERROR_BOX_SINGLE_FIELD_DEG
    return {
        "kind": kind,
        "dateobs": loc.dateobs,
        "localization": {"id": loc.id, "localization_name": loc.localization_name},
        "error_box": None if box is None else {"ra": box[0], "dec": box[1], "radius_deg": box[2]},
        "single_field": single,
        "n_fields": opts.n_fields,
        "airmass": opts.airmass,
        "sun_altitude": vis.SUN_ALTITUDE_LIMIT,
        "date": None if opts.when is None else str(opts.when),
    }


def instrument_plans(session: Session, key: str, instrument_ids: list[int], opts: Options,
                     localization_name: str | None = None) -> dict:
    """A plan for each instrument on its own (each may cover the same sky as another's)."""
    loc = find_plan_localization(session, key, localization_name)
    targets, _ = plannable_instruments(session, instrument_ids)
    sky = sky_probability(session, loc.id)
    box = error_box(loc)
    out = _header(session, key, loc, box, opts, "instrument")
    nights: dict = {}
    plans = []
    for t in targets:
        slot, candidates = _prepare(session, sky, 0, t, box, opts, nights)
        if slot.reason is not None and slot.grid is None:
            raise ApiError(400, f"instrument {t.instrument}: {slot.reason}")
        plans.append(_plan_dict(slot, greedy(sky, candidates, {0: opts.n_fields})))
    out["plans"] = plans
    out["skipped"] = []
    return out


def network_plan(session: Session, key: str, opts: Options, localization_name: str | None = None) -> dict:
    """One plan over every instrument with a field of view and a telescope site: the fields are chosen greedily
    over all instruments together (up to `n_fields` each), so that each piece of sky goes to one telescope."""
    loc = find_plan_localization(session, key, localization_name)
    targets, skipped = plannable_instruments(session, None)
    if not targets:
        raise ApiError(400, "no instrument has both a field of view and a telescope with a fixed site: set "
                            "`field_of_view` on the instruments (PUT /api/instrument/ID) to plan for the network")
    sky = sky_probability(session, loc.id)
    box = error_box(loc)
    out = _header(session, key, loc, box, opts, "network")
    nights: dict = {}
    slots, candidates = [], []
    for n, t in enumerate(targets):
        slot, found = _prepare(session, sky, n, t, box, opts, nights)
        slots.append(slot)
        candidates.extend(found)
    picks = greedy(sky, candidates, {n: opts.n_fields for n in range(len(slots))})
    per_slot: dict[int, list] = {n: [] for n in range(len(slots))}
    for c, gain in picks:
        per_slot[c.slot].append((c, gain))
    out["plans"] = [_plan_dict(slot, per_slot[n]) for n, slot in enumerate(slots)]
    out["skipped"] = skipped
    out["probability"] = float(sum(gain for _, gain in picks))
    return out


def plan_csv(result: dict, telescope_id: int | None = None) -> str:
    """The plan as CSV, one row per field (of one telescope when `telescope_id` is given)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for plan in result["plans"]:
        if telescope_id is not None and plan["telescope_id"] != telescope_id:
            continue
        for row in plan["fields"]:
            writer.writerow([plan["telescope"], plan["instrument"], row["field_id"], f"{row['ra']:.6f}",
                             f"{row['dec']:.6f}", f"{row['probability']:.6g}",
                             f"{row['cumulative_probability']:.6g}", row["window_start"], row["window_end"],
                             row["best_time"], f"{row['airmass']:.3f}"])
    return buf.getvalue()
