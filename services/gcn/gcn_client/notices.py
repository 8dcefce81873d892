"""What a GCN message is, read just far enough to decide whether to send it: its format (igwn.gwalert JSON or
VOEvent XML), the event it is about, its notice type, whether it is a test or mock event and whether it is
significant. The portal parses the notice itself (sky maps included); the raw bytes are sent unchanged, so the
portal's fingerprint of a repeated notice is the same whichever way it arrived (Kafka or `ingest`).
"""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass

JSON_TYPE = "application/json"
XML_TYPE = "application/xml"

# GraceDB's superevent id prefixes: S production, T test, M mock data challenge (MDC) events.
TEST_PREFIXES = ("M", "T")


class NoticeError(Exception):
    """A message that is not a notice the portal could take: it goes to the dead letters with this reason."""


@dataclass
class Notice:
    kind: str                       # "igwn.gwalert" (JSON) or "voevent" (XML)
    content_type: str               # how it is posted
    body: bytes                     # the raw notice, as received
    event_id: str | None = None     # superevent_id, GraceID or TrigID
    notice_type: str | None = None  # alert_type (PRELIMINARY, ..., RETRACTION) or the VOEvent's type
    role: str | None = None         # the VOEvent's role (observation, test, utility)
    search: str | None = None       # the GW search (AllSky, BBH, ..., MDC)
    significant: bool | None = None
    test_flag: bool = False         # the notice says it is a test (Fermi's Test_Submission)

    def describe(self) -> str:
        """A short line for logs: "igwn.gwalert PRELIMINARY S230518h"."""
        return " ".join(x for x in (self.kind, self.notice_type, self.event_id or "(no event id)") if x)


def _as_bool(value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("true", "1", "yes"):
            return True
        if v in ("false", "0", "no"):
            return False
    return None


def read_notice(value: bytes | None) -> Notice:
    """The message's notice; NoticeError saying why when it is neither a JSON object nor a VOEvent."""
    if not value:
        raise NoticeError("the message is empty")
    head = value.lstrip()[:1]
    if head == b"<":
        return _read_voevent(value)
    if head == b"{":
        return _read_json(value)
    raise NoticeError(f"neither a JSON notice nor a VOEvent (starts with {value[:20]!r})")


def _read_json(value: bytes) -> Notice:
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NoticeError(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise NoticeError("the JSON notice is not an object")
    event = doc.get("event") if isinstance(doc.get("event"), dict) else {}
    event_id = doc.get("superevent_id")
    if not isinstance(event_id, str) or not event_id:
        raise NoticeError("the JSON notice has no superevent_id (only igwn.gwalert notices are understood)")
    alert_type = doc.get("alert_type")
    return Notice(kind="igwn.gwalert", content_type=JSON_TYPE, body=value, event_id=event_id,
                  notice_type=alert_type if isinstance(alert_type, str) else None,
                  search=event.get("search") if isinstance(event.get("search"), str) else None,
                  significant=_as_bool(event.get("significant")))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _read_voevent(value: bytes) -> Notice:
    try:
        root = ET.fromstring(value)
    except ET.ParseError as exc:
        raise NoticeError(f"not well-formed XML: {exc}") from None
    if _local(root.tag) != "VOEvent":
        raise NoticeError(f"an XML document that is not a VOEvent (root element {_local(root.tag)!r})")
    params: dict[str, str] = {}
    what = next((el for el in root if _local(el.tag) == "What"), None)
    if what is not None:
        for el in what.iter():
            if _local(el.tag) == "Param" and el.get("name") is not None:
                params.setdefault(el.get("name"), el.get("value") or "")
    event_id = params.get("GraceID") or params.get("TrigID") or None
    notice_type = params.get("AlertType") or None
    if notice_type is None and root.get("ivorn"):
        # GCN's classic notices name their type in the ivorn, before the trigger's time or number:
        # ivo://nasa.gsfc.gcn/SWIFT#BAT_GRB_Pos_1125809-092, ...Fermi#GBM_Gnd_Pos_2018-01-16T00:36:52.81_5377...
        words = root.get("ivorn").split("#", 1)[-1].split("_")
        notice_type = "_".join(itertools.takewhile(lambda w: w and not w[0].isdigit(), words)) or None
    return Notice(kind="voevent", content_type=XML_TYPE, body=value, event_id=event_id, notice_type=notice_type,
                  role=root.get("role"), search=params.get("Search") or None,
                  significant=_as_bool(params.get("Significant")),
                  test_flag=bool(_as_bool(params.get("Test_Submission"))))


def is_test(n: Notice) -> str | None:
    """Why the notice is about a test or mock event, or None for a real one."""
    if n.role and n.role.lower() in ("test", "utility"):
        return f"a VOEvent of role {n.role!r}"
    if n.test_flag:
        return "a test submission (Test_Submission)"
    if n.search and n.search.upper() == "MDC":
        return f"a mock data challenge event (search MDC{', ' + n.event_id if n.event_id else ''})"
    # Superevent ids (and the GraceID of LVK VOEvents) start with S for real events; GCN's other ids are numbers.
    if n.event_id and n.event_id.startswith(TEST_PREFIXES):
        return f"a {'mock' if n.event_id.startswith('M') else 'test'} event ({n.event_id})"
    return None


def skip_reason(n: Notice, *, skip_test_events: bool, significant_only: bool) -> str | None:
    """Why the service leaves this notice out (a log line says so), or None to send it to the portal.

    A retraction carries no significance, and an update may come without one: only a notice that says it is not
    significant is left out by `significant_only`.
    """
    if skip_test_events:
        why = is_test(n)
        if why:
            return why
    if significant_only and n.significant is False:
        return "not significant (services.gcn.significant_only)"
    return None
