"""Checking request payloads field by field, so that every refusal names the field it is about."""

from __future__ import annotations

import difflib
import math
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from sqlalchemy.exc import IntegrityError

from ..errors import ApiError
from ..validate import INT32_MAX, LINK_MAX, NAME_MAX, check_string, shown

MISSING = object()


def _get(data: dict, field: str, required: bool) -> Any:
    if field not in data:
        if required:
            raise ApiError(400, f"missing required field `{field}`")
        return MISSING
    return data[field]


def text(data: dict, field: str, *, required: bool = False, nullable: bool = True, max_len: int = NAME_MAX) -> Any:
    """A non-empty string (stripped) of at most `max_len` characters, None when allowed, or MISSING when absent
    and optional. Names default to NAME_MAX (what an index row and the schema hold); free text passes TEXT_MAX."""
    value = _get(data, field, required)
    if value is MISSING:
        return value
    if value is None:
        if nullable and not required:
            return None
        raise ApiError(400, f"`{field}` must be a non-empty string, not null")
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"`{field}` must be a non-empty string, got {shown(value)}")
    return check_string(value.strip(), field, max_len)


def boolean(data: dict, field: str, *, required: bool = False) -> Any:
    """A JSON boolean (strings such as "true" are refused: they hide typing mistakes), or MISSING."""
    value = _get(data, field, required)
    if value is MISSING:
        return value
    if not isinstance(value, bool):
        raise ApiError(400, f"`{field}` must be true or false, got {shown(value)}")
    return value


def number(
    data: dict,
    field: str,
    *,
    required: bool = False,
    nullable: bool = True,
    low: float | None = None,
    high: float | None = None,
    positive: bool = False,
    unit: str = "",
) -> Any:
    """A finite JSON number within [low, high] (or > 0 when positive), None when allowed, or MISSING."""
    value = _get(data, field, required)
    if value is MISSING:
        return value
    if value is None:
        if nullable:
            return None
        raise ApiError(400, f"`{field}` must be a number, not null")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError(400, f"`{field}` must be a number, got {shown(value)}")
    suffix = f" {unit}" if unit else ""
    if positive and value <= 0:
        raise ApiError(400, f"`{field}` must be greater than 0{suffix}, got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ApiError(400, f"`{field}` must be between {low} and {high}{suffix}, got {value}")
    return float(value)


def as_id(value: Any, field: str) -> int:
    """An integer id: a JSON integer or a string of digits (SkyPortal clients send both)."""
    if isinstance(value, bool):
        raise ApiError(400, f"`{field}` must be an integer id, got {shown(value)}")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value <= INT32_MAX:
        return value
    raise ApiError(400, f"`{field}` must be an integer id (0 to {INT32_MAX}), got {shown(value)}")


def ident(data: dict, field: str, *, required: bool = False) -> Any:
    """An integer id field, or MISSING when absent and optional."""
    value = _get(data, field, required)
    if value is MISSING:
        return value
    if value is None:
        raise ApiError(400, f"`{field}` must be an integer id, not null")
    return as_id(value, field)


def id_list(data: dict, field: str, *, required: bool = False) -> Any:
    """A list of integer ids (duplicates dropped, order kept), or MISSING."""
    value = _get(data, field, required)
    if value is MISSING:
        return value
    if not isinstance(value, list):
        raise ApiError(400, f"`{field}` must be a list of integer ids, got {shown(value)}")
    return list(dict.fromkeys(as_id(v, field) for v in value))


def str_list(data: dict, field: str, *, required: bool = False) -> Any:
    """A list of non-empty strings (duplicates dropped, order kept), or MISSING."""
    value = _get(data, field, required)
    if value is MISSING:
        return value
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ApiError(400, f"`{field}` must be a list of non-empty strings, got {shown(value)}")
    return list(dict.fromkeys(check_string(v.strip(), f"{field}[{i}]") for i, v in enumerate(value)))


def http_link(data: dict, field: str) -> Any:
    """An http(s) URL (a link shown on a page: any other scheme, such as javascript:, could run in it), None,
    or MISSING when absent."""
    value = text(data, field, max_len=LINK_MAX)
    if isinstance(value, str):
        scheme, _, rest = value.partition("://")
        if scheme.lower() not in ("http", "https") or not rest or any(c.isspace() for c in value):
            raise ApiError(400, f"`{field}` must be an http:// or https:// URL, got {shown(value)}")
    return value


def unknown_fields(data: dict, allowed: set[str]) -> None:
    """Refuse fields the call does not know, so that a misspelt field is not silently ignored."""
    extra = sorted(set(data) - allowed, key=str)
    if extra:
        hints = [f"{close[0]!r} for {name!r}" for name in extra
                 if (close := difflib.get_close_matches(str(name), sorted(allowed), n=1))]
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        raise ApiError(400, f"unknown field(s) {extra}{hint}; accepted fields: {sorted(allowed)}")


Checker = Callable[[dict], Any]


def checked_values(data: dict, checkers: dict[str, Checker]) -> dict[str, Any]:
    """Each field's checked value (MISSING ones left out); the first refusal raises its ApiError."""
    values = {name: check(data) for name, check in checkers.items()}
    return {k: v for k, v in values.items() if v is not MISSING}


def field_problems(data: dict, checkers: dict[str, Checker], allowed: set[str]) -> list[tuple[str | None, str]]:
    """Every refusal of `data`, field by field, as (field, message): not only the first, as a request gets.

    For clients that check a whole file before sending it (the data loader's dry run).
    """
    found: list[tuple[str | None, str]] = []
    try:
        unknown_fields(data, allowed)
    except ApiError as exc:
        found.append((None, exc.message))
    for name, check in checkers.items():
        try:
            check(data)
        except ApiError as exc:
            found.append((name, exc.message))
    return found


def path_id(raw: str | None, what: str) -> int:
    """An id taken from the URL path; 404 when it cannot be one (no such object can exist), 405 when the
    route has no id where this method needs one."""
    if raw is None:
        raise ApiError(405, f"this method needs a {what} id in the path")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ApiError(404, f"{what} {shown(raw)} not found") from None
    if not 0 <= value <= INT32_MAX:  # no such row can exist, and PostgreSQL's integer cannot hold it
        raise ApiError(404, f"{what} {shown(raw)} not found")
    return value


@contextmanager
def unique_conflict(session, message: str) -> Iterator[None]:
    """Around writes that end in a commit: a uniqueness conflict that slipped past the checks (two requests
    at once) becomes a 400 with `message` instead of a 500."""
    try:
        yield
    except IntegrityError:
        session.rollback()
        raise ApiError(400, message) from None
