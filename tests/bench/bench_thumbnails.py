#!/usr/bin/env python3
"""Benchmark of the thumbnail upload path: the app's CPU for `POST /api/thumbnail` with list bodies as the broker
client sends them (300 cutouts a request, each a real alert's gzipped FITS stamp, base64 in JSON).

Prints the app process's CPU seconds (user + system, from /proc) per 1000 cutouts, the request body's size and
the time per request. CPU seconds rather than wall time: the figure stays comparable on a machine shared with
other work. The first request is a warm-up (imports, statement caches) and is not counted.

Usage: .venv/bin/python tests/bench/bench_thumbnails.py [--requests 40] [--per-request 300] [--profile FILE]
It builds the real tree under a temporary project root, starts its own PostgreSQL cluster and one portal process
on loopback, and removes everything at the end. With --profile, py-spy (on PATH, or PYSPY=/path/to/py-spy)
samples the app while the counted requests run and writes a raw profile to FILE.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import requests  # noqa: E402
from broker_support import BrokerPortal, admin_setup, real_alerts, service_token  # noqa: E402

CUTOUTS = (("cutoutScience", "new"), ("cutoutTemplate", "ref"), ("cutoutDifference", "sub"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stamps() -> dict[str, list[str]]:
    """The real alerts' cutouts, base64-encoded as the broker client sends them, by thumbnail type."""
    out: dict[str, list[str]] = {t: [] for _, t in CUTOUTS}
    for _, record in real_alerts():
        for key, ttype in CUTOUTS:
            cutout = record.get(key)
            if isinstance(cutout, dict) and cutout.get("stampData"):
                out[ttype].append(base64.b64encode(bytes(cutout["stampData"])).decode("ascii"))
    return out


def bodies(http: requests.Session, url: str, group_id: int, count: int, per_request: int) -> list[bytes]:
    """`count` JSON list bodies of `per_request` cutouts (three per object), their objects saved beforehand."""
    data = stamps()
    out = []
    for k in range(count):
        obj_ids = [f"ZTFBT{k:04d}{i:05d}" for i in range(-(-per_request // 3))]
        r = http.post(url + "/api/sources", json=[{"id": o, "ra": 10 + i * 1e-3, "dec": 5.0, "group_ids": [group_id]}
                                                  for i, o in enumerate(obj_ids)], timeout=120)
        r.raise_for_status()
        items = [{"obj_id": o, "ttype": t, "origin": "fink", "data": data[t][(i + k) % len(data[t])]}
                 for i, o in enumerate(obj_ids) for _, t in CUTOUTS][:per_request]
        out.append(json.dumps(items).encode())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40, help="requests counted (after one warm-up)")
    parser.add_argument("--per-request", type=int, default=300, help="cutouts in each request's list")
    parser.add_argument("--profile", type=Path, default=None, help="write a py-spy raw profile of the app here")
    args = parser.parse_args()

    portal = BrokerPortal()
    profiler = None
    try:
        bot_id, token_file = service_token(portal)
        group_id = admin_setup(portal, bot_id)
        http = requests.Session()
        http.headers.update({"Authorization": f"token {token_file.read_text().strip()}",
                             "Content-Type": "application/json"})
        warm_up, *counted = bodies(http, portal.url, group_id, args.requests + 1, args.per_request)

        def post(body: bytes) -> None:
            r = http.post(portal.url + "/api/thumbnail", data=body, timeout=300)
            assert r.ok and len(r.json()["data"]["ids"]) == args.per_request, f"{r.status_code} {r.text[:300]}"

        post(warm_up)
        pid = portal.proc.pid
        if args.profile is not None:
            pyspy = os.environ.get("PYSPY") or shutil.which("py-spy") or "py-spy"
            profiler = subprocess.Popen([pyspy, "record", "-p", str(pid), "-f", "raw", "-r", "200", "--gil",
                                         "-o", str(args.profile)], stdout=subprocess.DEVNULL)
            time.sleep(1.5)  # py-spy attached before the first counted request
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        for body in counted:
            post(body)
        seconds, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
        cutouts = args.requests * args.per_request
        print(f"{args.requests} requests of {args.per_request} cutouts ({len(counted[0]) / 1e6:.1f} MB of JSON each), "
              f"one app process")
        print(f"app CPU:     {cpu / cutouts * 1000:8.3f} s per 1000 cutouts (user + system)")
        print(f"per request: {cpu / args.requests * 1000:8.1f} ms of app CPU, {seconds / args.requests * 1000:.1f} ms "
              f"wall")
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            profiler.wait(60)
        portal.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
