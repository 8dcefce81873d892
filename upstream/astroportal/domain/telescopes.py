"""Telescopes and their instruments: listing, creating, changing and deleting them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ..errors import ApiError
from ..models import INSTRUMENT_TYPES, Instrument, Photometry, Telescope
from . import checks
from ..validate import shown

# The lowest and highest places a telescope plausibly stands (the Dead Sea shore, the highest observatories).
ELEVATION_RANGE = (-500.0, 6000.0)

TELESCOPE_FIELDS = {
    "name",
    "nickname",
    "lat",
    "lon",
    "elevation",
    "diameter",
    "robotic",
    "fixed_location",
    "skycam_link",
    "weather_link",
}
INSTRUMENT_FIELDS = {"name", "type", "band", "telescope_id", "filters", "field_of_view"}


# -- telescopes -----------------------------------------------------------------------------------


def serialize_telescope(t: Telescope) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "nickname": t.nickname,
        "lat": t.lat,
        "lon": t.lon,
        "elevation": t.elevation,
        "diameter": t.diameter,
        "robotic": t.robotic,
        "fixed_location": t.fixed_location,
        "skycam_link": t.skycam_link,
        "weather_link": t.weather_link,
        "created_at": t.created_at,
        "modified": t.modified,
    }


def list_telescopes(session: Session, name: str | None = None) -> list[dict]:
    """Every telescope, or the one named exactly `name`."""
    query = select(Telescope).order_by(Telescope.id)
    if name is not None:
        query = query.where(Telescope.name == name)
    return [serialize_telescope(t) for t in session.scalars(query)]


def get_telescope(session: Session, telescope_id: int) -> Telescope:
    telescope = session.get(Telescope, telescope_id)
    if telescope is None:
        raise ApiError(404, f"telescope {telescope_id} not found")
    return telescope


def _telescope_checks(creating: bool) -> dict[str, checks.Checker]:
    """How each telescope field is checked (all required ones are when creating)."""
    return {
        "name": lambda d: checks.text(d, "name", required=creating, nullable=False),
        "nickname": lambda d: checks.text(d, "nickname", required=creating, nullable=False),
        "lat": lambda d: checks.number(d, "lat", low=-90, high=90, unit="degrees"),
        "lon": lambda d: checks.number(d, "lon", low=-180, high=180, unit="degrees"),
        "elevation": lambda d: checks.number(d, "elevation", low=ELEVATION_RANGE[0], high=ELEVATION_RANGE[1], unit="m"),
        "diameter": lambda d: checks.number(d, "diameter", required=creating, nullable=False, positive=True, unit="m"),
        "robotic": lambda d: checks.boolean(d, "robotic"),
        "fixed_location": lambda d: checks.boolean(d, "fixed_location"),
        "skycam_link": lambda d: checks.http_link(d, "skycam_link"),
        "weather_link": lambda d: checks.http_link(d, "weather_link"),
    }


def _telescope_values(data: dict, *, creating: bool) -> dict[str, Any]:
    """The checked telescope fields present in `data` (all required ones when creating)."""
    return checks.checked_values(data, _telescope_checks(creating))


def telescope_problems(data: dict) -> list[tuple[str | None, str]]:
    """Every reason POST /api/telescope would refuse `data` that needs no database, field by field."""
    return checks.field_problems(data, _telescope_checks(True), TELESCOPE_FIELDS)


def _check_site(values: dict[str, Any], current: Telescope | None = None) -> None:
    """A telescope at a fixed location (the default) needs `lat` and `lon`: night, twilight and airmass are
    computed from them, and a fixed site without them would silently have none."""
    def final(key: str, default: Any = None) -> Any:
        return values[key] if key in values else getattr(current, key, default) if current else default

    if final("fixed_location", True) and (final("lat") is None or final("lon") is None):
        raise ApiError(
            400, "`fixed_location` is true, so `lat` and `lon` are required; give the site's coordinates, "
            "or set `fixed_location` to false (a space or mobile telescope)"
        )


def _check_unique_telescope_name(session: Session, name: str, exclude_id: int | None = None) -> None:
    query = select(Telescope.id).where(Telescope.name == name)
    if exclude_id is not None:
        query = query.where(Telescope.id != exclude_id)
    if session.scalar(query) is not None:
        raise ApiError(400, f"`name`: a telescope named {shown(name)} already exists")


def create_telescope(session: Session, data: dict) -> int:
    """Create a telescope from a checked payload; return its id."""
    checks.unknown_fields(data, TELESCOPE_FIELDS)
    values = _telescope_values(data, creating=True)
    _check_site(values)
    _check_unique_telescope_name(session, values["name"])
    with checks.unique_conflict(session, f"`name`: a telescope named {shown(values['name'])} already exists"):
        telescope = Telescope(**values)
        session.add(telescope)
        session.commit()
    return telescope.id


def update_telescope(session: Session, telescope_id: int, data: dict) -> None:
    """Change the given fields of a telescope."""
    checks.unknown_fields(data, TELESCOPE_FIELDS)
    telescope = get_telescope(session, telescope_id)
    values = _telescope_values(data, creating=False)
    _check_site(values, telescope)
    if "name" in values:
        _check_unique_telescope_name(session, values["name"], exclude_id=telescope_id)
    with checks.unique_conflict(session, f"`name`: a telescope named {shown(values.get('name'))} already exists"):
        for key, value in values.items():
            setattr(telescope, key, value)
        session.commit()


def _photometry_count(session: Session, *conditions) -> int:
    return session.scalar(select(func.count()).select_from(Photometry).where(*conditions)) or 0


def delete_telescope(session: Session, telescope_id: int) -> None:
    """Delete a telescope and its instruments, unless photometry was taken with them (it would go too)."""
    telescope = get_telescope(session, telescope_id)
    ids = [i.id for i in telescope.instruments]
    n = _photometry_count(session, Photometry.instrument_id.in_(ids)) if ids else 0
    if n:
        # No count: the points belong to groups the deleter may not read (access_rules.py: refusals count nothing).
        raise ApiError(
            400, f"telescope {telescope_id} has photometry taken through its instruments; delete that photometry first"
        )
    for instrument in telescope.instruments:
        session.delete(instrument)
    session.delete(telescope)
    session.commit()


# -- instruments ----------------------------------------------------------------------------------


def serialize_instrument(i: Instrument, *, with_telescope: bool = True) -> dict[str, Any]:
    out = {
        "id": i.id,
        "name": i.name,
        "type": i.type,
        "band": i.band,
        "filters": list(i.filters or []),
        "field_of_view": i.field_of_view,
        "telescope_id": i.telescope_id,
        "created_at": i.created_at,
        "modified": i.modified,
    }
    if with_telescope:
        out["telescope"] = serialize_telescope(i.telescope)
    return out


def list_instruments(session: Session, name: str | None = None) -> list[dict]:
    """Every instrument (or the one named exactly `name`), each with its telescope."""
    query = select(Instrument).options(selectinload(Instrument.telescope)).order_by(Instrument.id)
    if name is not None:
        query = query.where(Instrument.name == name)
    return [serialize_instrument(i) for i in session.scalars(query)]


def get_instrument(session: Session, instrument_id: int) -> Instrument:
    instrument = session.get(Instrument, instrument_id)
    if instrument is None:
        raise ApiError(404, f"instrument {instrument_id} not found")
    return instrument


def _instrument_type(data: dict, creating: bool) -> Any:
    value = checks.text(data, "type", required=creating, nullable=False)
    if value is not checks.MISSING and value not in INSTRUMENT_TYPES:
        raise ApiError(400, f"`type` must be one of {', '.join(INSTRUMENT_TYPES)}; got {shown(value)}")
    return value


def _instrument_filters(data: dict) -> Any:
    if "filters" in data and data["filters"] is None:
        return []
    if isinstance(data.get("filters"), list):
        # Refused rather than silently merged: a repeated filter is usually a typo for another one.
        seen = [f.strip() for f in data["filters"] if isinstance(f, str)]
        twice = sorted({f for f in seen if seen.count(f) > 1})
        if twice:
            raise ApiError(400, f"`filters` must not repeat a filter; given more than once: {shown(twice)}")
    value = checks.str_list(data, "filters")
    if value is not checks.MISSING and value:
        # Imported here: the bandpass list lives in its own module, which also serves photometry.
        from ..bandpasses import check_filters

        check_filters(value, field="filters")
    return value


# The sizes each field-of-view shape needs, in degrees.
FOV_SHAPES = {"square": ("side_deg",), "rectangle": ("width_deg", "height_deg"), "circle": ("radius_deg",)}
FOV_MAX_DEG = 180.0


def _field_of_view(data: dict) -> Any:
    """`field_of_view`: null, or a shape with its sizes in degrees (each > 0 and <= 180), nothing else."""
    if "field_of_view" not in data:
        return checks.MISSING
    fov = data["field_of_view"]
    if fov is None:
        return None
    example = 'for example {"shape": "square", "side_deg": 1.9}'
    if not isinstance(fov, dict):
        raise ApiError(400, f"`field_of_view` must be an object with a `shape` and its sizes in degrees ({example}), "
                            f"got {shown(fov)}")
    shape = fov.get("shape")
    if shape not in FOV_SHAPES:
        raise ApiError(400, f"`field_of_view.shape` must be one of {', '.join(FOV_SHAPES)}; got {shown(shape)}")
    sizes = FOV_SHAPES[shape]
    extra = sorted(set(fov) - {"shape", *sizes})
    if extra:
        raise ApiError(400, f"`field_of_view` of shape {shape} takes {', '.join(sizes)}; unknown: {', '.join(extra)}")
    out: dict[str, Any] = {"shape": shape}
    for key in sizes:
        value = fov.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value <= FOV_MAX_DEG):
            raise ApiError(400, f"`field_of_view.{key}` must be a number of degrees > 0 and <= {FOV_MAX_DEG:g} "
                                f"(shape {shape} needs {', '.join(sizes)}); got {shown(value)}")
        out[key] = float(value)
    return out


def _instrument_checks(creating: bool) -> dict[str, checks.Checker]:
    """How each instrument field is checked; whether its telescope exists needs the database (below)."""
    return {
        "name": lambda d: checks.text(d, "name", required=creating, nullable=False),
        "type": lambda d: _instrument_type(d, creating),
        "band": lambda d: checks.text(d, "band"),
        "telescope_id": lambda d: checks.ident(d, "telescope_id", required=creating),
        "filters": _instrument_filters,
        "field_of_view": _field_of_view,
    }


def instrument_problems(data: dict) -> list[tuple[str | None, str]]:
    """Every reason POST /api/instrument would refuse `data` that needs no database, field by field."""
    return checks.field_problems(data, _instrument_checks(True), INSTRUMENT_FIELDS)


def _instrument_values(session: Session, data: dict, *, creating: bool) -> dict[str, Any]:
    values = checks.checked_values(data, _instrument_checks(creating))
    if "telescope_id" in values and session.get(Telescope, values["telescope_id"]) is None:
        raise ApiError(400, f"`telescope_id`: no telescope with id {values['telescope_id']}")
    return values


def _check_unique_instrument_name(session: Session, name: str, exclude_id: int | None = None) -> None:
    query = select(Instrument.id).where(Instrument.name == name)
    if exclude_id is not None:
        query = query.where(Instrument.id != exclude_id)
    if session.scalar(query) is not None:
        raise ApiError(400, f"`name`: an instrument named {shown(name)} already exists")


def create_instrument(session: Session, data: dict) -> int:
    """Create an instrument on an existing telescope; return its id."""
    checks.unknown_fields(data, INSTRUMENT_FIELDS)
    values = _instrument_values(session, data, creating=True)
    _check_unique_instrument_name(session, values["name"])
    with checks.unique_conflict(session, f"`name`: an instrument named {shown(values['name'])} already exists"):
        instrument = Instrument(**values)
        session.add(instrument)
        session.commit()
    return instrument.id


def update_instrument(session: Session, instrument_id: int, data: dict) -> None:
    """Change the given fields of an instrument."""
    checks.unknown_fields(data, INSTRUMENT_FIELDS)
    instrument = get_instrument(session, instrument_id)
    values = _instrument_values(session, data, creating=False)
    if "filters" in values and values["filters"]:
        _check_filters_kept(session, instrument, values["filters"])
    if "name" in values:
        _check_unique_instrument_name(session, values["name"], exclude_id=instrument_id)
    with checks.unique_conflict(session, f"`name`: an instrument named {shown(values.get('name'))} already exists"):
        for key, value in values.items():
            setattr(instrument, key, value)
        session.commit()


def _check_filters_kept(session: Session, instrument: Instrument, new_filters: list[str]) -> None:
    """400 when the new filter list leaves out a filter that photometry of this instrument was taken in:
    those points would name a filter the instrument no longer has. (An empty list means "any filter".)"""
    dropped = sorted(set(instrument.filters or []) - set(new_filters))
    if not dropped:
        return
    rows = session.execute(
        select(Photometry.filter, func.count())
        .where(Photometry.instrument_id == instrument.id, Photometry.filter.in_(dropped))
        .group_by(Photometry.filter)
        .order_by(Photometry.filter)
    ).all()
    if rows:
        used = ", ".join(f"{f} ({n} point(s))" for f, n in rows)
        raise ApiError(
            400, f"`filters`: cannot remove filter(s) still used by photometry of instrument {instrument.id}: "
            f"{used}; delete or move those points first"
        )


def delete_instrument(session: Session, instrument_id: int) -> None:
    """Delete an instrument, unless photometry was taken with it (deleting would silently remove it)."""
    instrument = get_instrument(session, instrument_id)
    n = _photometry_count(session, Photometry.instrument_id == instrument_id)
    if n:
        raise ApiError(400, f"instrument {instrument_id} has photometry taken with it; delete that photometry first")
    session.delete(instrument)
    session.commit()
