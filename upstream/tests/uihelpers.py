"""Set-up shared by the page, browser and ephemeris tests (plain functions over the conftest `api`)."""

from __future__ import annotations

import uuid


def own_group(api, token: str) -> int:
    """The id of the token owner's single-user group (data saved there is visible to them alone)."""
    status, body = api.get("/api/groups?includeSingleUserGroups=true", token)
    assert status == 200, body
    mine = [g for g in body["data"]["user_groups"] if g["single_user_group"]]
    if not mine:
        # The group is made on first use: saving anything without groups creates it.
        raise AssertionError("the user has no single-user group yet")
    return mine[0]["id"]


def private_source(api, token: str, obj_id: str, ra: float, dec: float, **extra) -> None:
    """A source saved only to the token owner's own group."""
    status, body = api.post(
        "/api/sources", token, json={"id": obj_id, "ra": ra, "dec": dec, "group_ids": [own_group(api, token)], **extra}
    )
    assert status == 200, body


def instrument(api, admin_token: str, filters=("ztfg", "ztfr", "ztfi"), name: str | None = None) -> int:
    """A fresh telescope (at Palomar) with one imager (named `name`, or uniquely); returns the instrument id."""
    tag = uuid.uuid4().hex[:8]
    status, body = api.post(
        "/api/telescope",
        admin_token,
        json={"name": f"ui-tel-{tag}", "nickname": f"ui{tag}", "lat": 33.3563, "lon": -116.8648, "elevation": 1742.0,
              "diameter": 1.2, "robotic": True, "fixed_location": True},
    )
    assert status == 200, body
    status, body = api.post(
        "/api/instrument",
        admin_token,
        json={"name": name or f"ui-cam-{tag}", "type": "imager", "band": "optical", "telescope_id": body["data"]["id"],
              "filters": list(filters)},
    )
    assert status == 200, body
    return body["data"]["id"]


def photometry(
    api, token: str, obj_id: str, instrument_id: int, detections: int, limits: int, group_id: int, origin: str = ""
) -> None:
    """`detections` points in ztfg/ztfr and `limits` upper limits (mag null, limiting_mag set)."""
    n = detections + limits
    filters = ["ztfg" if i % 2 else "ztfr" for i in range(n)]
    body = {
        "obj_id": obj_id,
        "instrument_id": instrument_id,
        "mjd": [60000.0 + i * 0.5 for i in range(n)],
        "filter": filters,
        "mag": [18.0 + 0.05 * (i % 100) if i < detections else None for i in range(n)],  # 18 to 23: physical
        "magerr": [0.05 if i < detections else None for i in range(n)],
        "limiting_mag": [21.0] * n,
        "magsys": "ab",
        "origin": origin,
        "group_ids": [group_id],
    }
    status, answer = api.post("/api/photometry", token, json=body)
    assert status == 200, answer
    assert len(answer["data"]["ids"]) == n
