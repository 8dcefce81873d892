"""The part of an alert's Avro schema the mapping reads, as a reader schema: fastavro then skips every other field
instead of building Python objects for it (a ZTF alert's light curve holds about a hundred fields per point, of
which the mapping reads eight), which makes decoding several times faster and the decoded alert much smaller."""

from __future__ import annotations

import copy
from typing import Any

from .mapping import SCORE_FIELDS

# The fields of a detection or upper limit (`candidate`, each of `prv_candidates`) that mapping.point and
# mapping.map_alert read.
POINT_FIELDS = frozenset({"jd", "fid", "magpsf", "sigmapsf", "diffmaglim", "ra", "dec", "candid"})
CUTOUT_FIELDS = frozenset({"stampData"})
#: Top-level field -> the fields kept of the records inside it (None: the whole field).
ALERT_FIELDS: dict[str, frozenset | None] = {
    "objectId": None, "candid": None, "topic": None, "classification": None,
    "candidate": POINT_FIELDS, "prv_candidates": POINT_FIELDS,
    "cutoutScience": CUTOUT_FIELDS, "cutoutTemplate": CUTOUT_FIELDS, "cutoutDifference": CUTOUT_FIELDS,
    **{name: None for name in SCORE_FIELDS},
}


def _narrow(schema: Any, keep: frozenset) -> Any:
    """`schema` (a field's type) with the records inside it (through unions and arrays) cut to `keep`."""
    if isinstance(schema, list):
        return [_narrow(branch, keep) for branch in schema]
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "record":
            out = dict(schema)
            out["fields"] = [f for f in schema["fields"] if f["name"] in keep]
            return out
        if kind == "array":
            return dict(schema, items=_narrow(schema["items"], keep))
        if isinstance(kind, (dict, list)):
            return dict(schema, type=_narrow(kind, keep))
    return schema  # a primitive, or a named type defined (and narrowed) earlier


def reader_schema(writer: Any) -> Any | None:
    """The reader schema that keeps of `writer` (an alert record's schema, as JSON) what the mapping reads; None
    when `writer` is not a record schema (the alert is then read whole, and the mapping says what is wrong)."""
    if not isinstance(writer, dict) or writer.get("type") != "record" or not isinstance(writer.get("fields"), list):
        return None
    out = copy.deepcopy(writer)
    fields = []
    for f in out["fields"]:
        if f.get("name") not in ALERT_FIELDS:
            continue
        keep = ALERT_FIELDS[f["name"]]
        fields.append(dict(f, type=_narrow(f["type"], keep)) if keep is not None else f)
    out["fields"] = fields
    return out
