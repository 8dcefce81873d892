"""What the alerts refer to, made sure to exist in the portal before the first batch: the broker's groups, the
ZTF instrument, the Fink taxonomy and the candidate filter. The service creates what its permissions allow and
otherwise says which admin step is missing (it then waits: no alert is consumed meanwhile)."""

from __future__ import annotations

from .config import Settings
from .mapping import FINK_CLASSES, Context
from .portal_client import AuthFailed, PortalClient, Rejected

# Palomar's 48-inch Samuel Oschin telescope, which carries the ZTF camera.
P48 = {"nickname": "P48", "lat": 33.3563, "lon": -116.8650, "elevation": 1712.0, "diameter": 1.22,
       "robotic": True, "fixed_location": True}


class SetupMissing(Exception):
    """A prerequisite the service cannot create itself; the message names the admin step."""


def resolve_groups(portal: PortalClient, names: list[str]) -> list[int]:
    groups = portal.request("GET", "/api/groups")
    mine = {g["name"]: g["id"] for g in groups.get("user_groups", [])}
    every = {g["name"]: g["id"] for g in groups.get("all_groups", [])}
    ids = []
    for name in names:
        if name in mine:
            ids.append(mine[name])
        elif name in every:
            raise SetupMissing(f"the broker's user is not a member of group {name!r}: an admin adds it "
                               f"(POST /api/groups/{every[name]}/users) or ./run.sh run --init re-creates its token")
        else:
            try:
                ids.append(portal.request("POST", "/api/groups", {"name": name, "nickname": name[:32]})["id"])
            except Rejected as exc:
                raise SetupMissing(f"group {name!r} does not exist and cannot be created: {exc}") from None
    return ids


def ensure_instrument(portal: PortalClient, s: Settings) -> int:
    found = portal.request("GET", "/api/instrument", params={"name": s.instrument_name})
    if found:
        return found[0]["id"]
    telescopes = portal.request("GET", "/api/telescope", params={"name": s.telescope_name})
    tel_id = telescopes[0]["id"] if telescopes else portal.request(
        "POST", "/api/telescope", {"name": s.telescope_name, **P48})["id"]
    return portal.request("POST", "/api/instrument", {
        "name": s.instrument_name, "type": "imager", "band": "optical", "telescope_id": tel_id,
        "filters": ["ztfg", "ztfr", "ztfi"]})["id"]


def ensure_taxonomy(portal: PortalClient, s: Settings, group_ids: list[int]) -> int:
    for t in portal.request("GET", "/api/taxonomy"):
        if t["name"] == s.taxonomy_name and str(t["version"]) == s.taxonomy_version:
            return t["id"]
    hierarchy = {"class": "Fink", "subclasses": [{"class": c} for c in FINK_CLASSES]}
    return portal.request("POST", "/api/taxonomy", {
        "name": s.taxonomy_name, "version": s.taxonomy_version, "hierarchy": hierarchy,
        "provenance": "Fink science classes (the broker client)", "group_ids": group_ids})["taxonomy_id"]


def ensure_filter(portal: PortalClient, s: Settings, group_ids: list[int]) -> int | None:
    if s.filter_name is None:
        return None
    for f in portal.request("GET", "/api/filters"):
        if f["name"] == s.filter_name and f["group_id"] == group_ids[0]:
            return f["id"]
    streams = portal.request("GET", "/api/streams", params={"name": s.stream_name})
    if not streams:
        raise SetupMissing(
            f"the candidate filter {s.filter_name!r} needs the stream {s.stream_name!r}, which does not exist or "
            f"group {s.group_names[0]!r} cannot read: an admin creates it (POST /api/streams {{\"name\": "
            f"\"{s.stream_name}\"}}) and gives the group access (POST /api/groups/{group_ids[0]}/streams); "
            "or set services.broker.filter_name to null to record no candidates")
    try:
        return portal.request("POST", "/api/filters", {"name": s.filter_name, "stream_id": streams[0]["id"],
                                                       "group_id": group_ids[0]})["id"]
    except Rejected as exc:
        raise SetupMissing(f"cannot create the candidate filter {s.filter_name!r}: {exc}") from None
    except AuthFailed as exc:
        if exc.status != 403:
            raise
        # "Manage groups" counts only in the groups the bot administers: a group it joined, it does not.
        raise SetupMissing(
            f"cannot create the candidate filter {s.filter_name!r} in group {s.group_names[0]!r} ({exc}): an admin "
            f"of the group makes the broker's user one of its admins (PATCH /api/groups/{group_ids[0]}/users/ID "
            "{\"admin\": true}) or creates the filter, or set services.broker.filter_name to null") from None


def prepare(portal: PortalClient, s: Settings) -> Context:
    """Every id the mapping needs; SetupMissing (or a portal error) when the portal is not ready."""
    group_ids = resolve_groups(portal, s.group_names)
    return Context(
        group_ids=group_ids,
        instrument_id=ensure_instrument(portal, s),
        taxonomy_id=ensure_taxonomy(portal, s, group_ids),
        filter_id=ensure_filter(portal, s, group_ids),
        origin=s.origin,
    )
