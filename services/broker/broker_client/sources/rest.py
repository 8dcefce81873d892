"""Fink's REST API polled: `POST /api/v1/latests` per class with a moving start date, each new alert's light
curve (with upper limits) from `POST /api/v1/objects` and its cutouts from `POST /api/v1/cutouts`.

Rows are flat with prefixed keys: `i:` the survey's fields, `d:` Fink's, `v:` computed ones. Each alert is
rebuilt in the shape of Fink's Avro records so that one mapping serves every source. The cursor keeps, per
class, the latest alert time confirmed and the alert ids seen at that time (the next window starts there).
"""

from __future__ import annotations

import gzip
import logging
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import requests

from ..config import RestSettings
from ..cursor import Cursor
from ..mapping import JD_UNIX_EPOCH, integer, number
from ..pipeline import Item
from . import Batch

log = logging.getLogger("broker")
CUTOUT_KINDS = (("Science", "cutoutScience"), ("Template", "cutoutTemplate"), ("Difference", "cutoutDifference"))


def jd_to_text(jd: float) -> str:
    t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(days=jd - JD_UNIX_EPOCH)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def unprefix(row: dict) -> dict:
    """{'i:ra': 1, 'd:roid': 0, 'v:classification': 'x'} -> {'ra': 1, 'roid': 0, 'classification': 'x'}."""
    return {k.split(":", 1)[1] if ":" in k else k: v for k, v in row.items()}


def to_record(latest: dict, history: list[dict], cutouts: dict[str, bytes]) -> dict:
    """An alert in Fink's Avro shape from a latests row, the object's rows and its cutouts."""
    row = unprefix(latest)
    candid = integer(row.get("candid"))
    candidate = {k: row.get(k) for k in ("jd", "ra", "dec", "magpsf", "sigmapsf", "fid", "diffmaglim", "candid",
                                         "isdiffpos")}
    prv = []
    for h in history:
        h = unprefix(h)
        if integer(h.get("candid")) == candid and candid is not None:
            continue
        jd = number(h.get("jd"))
        if candidate.get("jd") is not None and jd is not None and jd > number(candidate["jd"]):
            continue  # the light curve up to this alert, as an alert's prv_candidates
        upper = h.get("tag") == "upperlim"
        prv.append({"jd": jd, "fid": h.get("fid"), "diffmaglim": h.get("diffmaglim"),
                    "magpsf": None if upper else h.get("magpsf"), "sigmapsf": None if upper else h.get("sigmapsf"),
                    "candid": None if upper else h.get("candid"), "ra": h.get("ra"), "dec": h.get("dec")})
    record = {k: v for k, v in row.items() if k not in candidate}
    record.update(objectId=row.get("objectId"), candid=candid, candidate=candidate, prv_candidates=prv)
    for key, data in cutouts.items():
        record[key] = {"fileName": f"{key}.fits.gz", "stampData": data}
    return record


class RestSource:
    name = "rest"

    def __init__(self, settings: RestSettings, cursor: Cursor, batch_size: int, *, timeout: float = 60.0,
                 startdate: str | None = None, stop: threading.Event | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.s = settings
        self.url = (settings.url or "").rstrip("/")
        self.cursor = cursor
        self.batch_size = batch_size
        self.timeout = timeout
        self.startdate = startdate
        self.stop = stop or threading.Event()
        self.on_error = on_error or (lambda message: None)
        self.http = requests.Session()
        self.last_poll: dict[str, int] = {}

    def _post(self, path: str, body: dict, *, raw: bool = False) -> Any:
        resp = self.http.post(self.url + path, json=body, timeout=self.timeout)
        if resp.status_code != 200:
            raise requests.HTTPError(f"{path}: HTTP {resp.status_code}: {resp.text[:200]}")
        return resp.content if raw else resp.json()

    def _window(self, cls: str) -> dict:
        return self.cursor.data.get(cls) or {"last_jd": None, "seen": []}

    def _new_rows(self, cls: str) -> list[dict]:
        state = self._window(cls)
        if state["last_jd"] is not None:
            start = jd_to_text(state["last_jd"])
        else:
            start = self.startdate or (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
        rows = self._post("/api/v1/latests", {"class": cls, "n": self.s.max_per_poll, "startdate": start,
                                              "output-format": "json"})
        seen = set(state["seen"])
        fresh = []
        for r in rows:
            jd, candid = number(r.get("i:jd")), integer(r.get("i:candid"))
            if jd is None:
                continue
            if state["last_jd"] is not None and (jd < state["last_jd"] or (jd == state["last_jd"] and candid in seen)):
                continue
            fresh.append(r)
        fresh.sort(key=lambda r: (number(r.get("i:jd")), integer(r.get("i:candid")) or 0))
        return fresh

    def _item(self, cls: str, row: dict) -> Item:
        obj_id = row.get("i:objectId")
        where = f"{cls}/{obj_id}/{row.get('i:candid')}"
        try:
            history = self._post("/api/v1/objects", {"objectId": obj_id, "withupperlim": "True",
                                                     "output-format": "json"})
        except (requests.RequestException, ValueError) as exc:
            raise requests.ConnectionError(f"light curve of {obj_id}: {exc}") from None
        cutouts: dict[str, bytes] = {}
        if self.s.with_cutouts:
            for kind, key in CUTOUT_KINDS:
                try:
                    data = self._post("/api/v1/cutouts", {"objectId": obj_id, "candid": row.get("i:candid"),
                                                          "kind": kind, "output-format": "FITS"}, raw=True)
                except requests.RequestException as exc:
                    log.warning("no %s cutout for %s: %s", kind, where, exc)  # only the cutout is lost
                    continue
                if data:
                    cutouts[key] = data if data[:2] == b"\x1f\x8b" else gzip.compress(data)
        return Item(where=where, record=to_record(row, history, cutouts), topic=cls, payload={"row": row})

    def _committer(self, cls: str, rows: list[dict]) -> Callable[[], None]:
        last_jd = max(number(r.get("i:jd")) for r in rows)
        at_last = [integer(r.get("i:candid")) for r in rows if number(r.get("i:jd")) == last_jd]

        def commit() -> None:
            state = self._window(cls)
            seen = state["seen"] if state["last_jd"] == last_jd else []
            self.cursor.data[cls] = {"last_jd": last_jd, "last_date": jd_to_text(last_jd),
                                     "seen": sorted(set(seen) | {c for c in at_last if c is not None})}
            self.cursor.save()

        return commit

    def batches(self) -> Iterator[Batch]:
        while not self.stop.is_set():
            for cls in self.s.classes:
                try:
                    rows = self._new_rows(cls)
                    self.last_poll[cls] = len(rows)
                    for start in range(0, len(rows), self.batch_size):
                        chunk = rows[start:start + self.batch_size]
                        items = [self._item(cls, r) for r in chunk]
                        yield Batch(items, self._committer(cls, chunk))
                        if self.stop.is_set():
                            return
                except (requests.RequestException, ValueError) as exc:
                    message = f"Fink REST API at {self.url}: {exc}"
                    log.warning("%s (next poll in %g s)", message, self.s.poll_seconds)
                    self.on_error(message)
                    break
            self.stop.wait(self.s.poll_seconds)

    def position(self) -> dict[str, Any]:
        return {"windows": {c: {k: v for k, v in self._window(c).items() if k != "seen"} for c in self.s.classes},
                "last_poll_new_alerts": dict(self.last_poll), "url": self.url}

    def close(self) -> None:
        self.http.close()
