#!/usr/bin/env python3
"""Benchmark of the portal's API on this machine, through HTTP, with one app process.

Targets (issue "Upstream portal I"): cone search on 1,000,000 saved sources p50 <= 20 ms and p99 <= 100 ms;
one-point POST /api/photometry median <= 10 ms; batched PUT /api/photometry (500 points a request)
>= 5,000 points/s; GET /api/sources/ID/photometry with 10,000 points <= 150 ms; the app process's peak
resident memory over the whole run <= 300 MB.

Usage: .venv/bin/python tests/bench/bench_api.py [--sources 1000000] [--queries 500]
It starts its own PostgreSQL cluster and portal process on loopback, and removes both at the end.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ROOT / "upstream"
sys.path.insert(0, str(UPSTREAM / "tests"))
from pgcluster import PgCluster, free_port  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bulk_sources(url: str, n: int, group_id: int, admin_id: int) -> None:
    """Load n objects saved to one group with COPY (set-up only: the measured calls go through HTTP)."""
    rng = random.Random(42)
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        chunk = 200_000
        for start in range(0, n, chunk):
            objs, srcs = io.StringIO(), io.StringIO()
            for i in range(start, min(n, start + chunk)):
                ra = rng.uniform(0, 360)
                # uniform on the sphere
                dec = __import__("math").degrees(__import__("math").asin(rng.uniform(-1, 1)))
                oid = f"BENCH{i:08d}"
                objs.write(f"{oid}\t{ra}\t{dec}\n")
                srcs.write(f"{oid}\t{group_id}\t{admin_id}\n")
            objs.seek(0)
            srcs.seek(0)
            cur.copy_from(objs, "objs", columns=("id", "ra", "dec"))
            cur.copy_from(srcs, "sources", columns=("obj_id", "group_id", "saved_by_id"))
        cur.execute("ANALYZE objs; ANALYZE sources;")
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--radius", type=float, default=0.1, help="cone radius in degrees")
    args = parser.parse_args()

    cluster = PgCluster().start()
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    proc = None
    try:
        db_url = cluster.create_database("bench")
        port = free_port()
        cfg_path = work / "config.yaml"
        cfg_path.write_text(yaml.safe_dump({
            "database": {"url": db_url},
            "server": {"port": port, "host": "127.0.0.1", "processes": 1},
            "paths": {"var": str(work / "var")},
        }))
        py = [sys.executable, "-m", "astroportal"]
        subprocess.run([*py, "migrate", "--config", str(cfg_path)], cwd=UPSTREAM, check=True, capture_output=True)
        subprocess.run([*py, "bootstrap", "--config", str(cfg_path)], cwd=UPSTREAM, check=True, capture_output=True)
        token = (work / "var" / "admin_token").read_text().strip()

        conn = psycopg2.connect(db_url)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT id FROM users WHERE username = 'admin'")
            admin_id = cur.fetchone()[0]
            cur.execute("SELECT id FROM groups WHERE name = 'Sitewide Group'")
            group_id = cur.fetchone()[0]
        conn.close()
        t0 = time.perf_counter()
        bulk_sources(db_url, args.sources, group_id, admin_id)
        print(f"set-up: {args.sources:,} saved sources loaded in {time.perf_counter() - t0:.1f} s")

        log = open(work / "server.log", "w")
        proc = subprocess.Popen([*py, "serve", "--config", str(cfg_path)], cwd=UPSTREAM, stdout=log,
                                stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()
        http.headers["Authorization"] = f"token {token}"
        for _ in range(300):
            try:
                if http.get(base + "/api/sysinfo", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)

        def timed(method: str, path: str, **kw) -> tuple[float, dict]:
            t = time.perf_counter()
            r = http.request(method, base + path, timeout=120, **kw)
            dt = (time.perf_counter() - t) * 1000
            if r.status_code >= 400:
                raise SystemExit(f"{method} {path} -> {r.status_code}: {r.text[:300]}")
            return dt, r.json()

        results: list[tuple[str, float, str, float, bool]] = []

        # 1. Cone search.
        rng = random.Random(7)
        times, found = [], 0
        for i in range(args.queries + 20):
            ra, dec = rng.uniform(0, 360), rng.uniform(-85, 85)
            dt, body = timed("GET", "/api/sources", params={"ra": ra, "dec": dec, "radius": args.radius})
            if i >= 20:  # warm-up excluded
                times.append(dt)
                found += body["data"]["totalMatches"]
        p50, p99 = percentile(times, 50), percentile(times, 99)
        print(f"cone search r={args.radius} deg over {args.sources:,} sources: {len(times)} queries, "
              f"mean {found / len(times):.1f} matches; p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        results += [("cone search p50 (ms)", p50, "<=", 20, p50 <= 20),
                    ("cone search p99 (ms)", p99, "<=", 100, p99 <= 100)]

        # Photometry set-up: a telescope, an instrument, an object.
        _, body = timed("POST", "/api/telescope", json={"name": "Bench Telescope", "nickname": "BT", "lat": 20.0,
                        "lon": -155.0, "elevation": 4200.0, "diameter": 1.0, "robotic": True, "fixed_location": True})
        _, body = timed("POST", "/api/instrument", json={"name": "BenchCam", "type": "imager", "band": "optical",
                        "telescope_id": body["data"]["id"], "filters": ["ztfg", "ztfr", "ztfi"]})
        inst = body["data"]["id"]
        timed("POST", "/api/sources", json={"id": "BENCHPHOT1", "ra": 10.0, "dec": 20.0, "group_ids": [group_id]})
        timed("POST", "/api/sources", json={"id": "BENCHPHOT2", "ra": 11.0, "dec": 21.0, "group_ids": [group_id]})

        # 2. One-point POST.
        times = []
        for i in range(300):
            dt, _ = timed("POST", "/api/photometry", json={"obj_id": "BENCHPHOT1", "mjd": 59000 + i * 0.01,
                          "instrument_id": inst, "filter": "ztfg", "mag": 19.0, "magerr": 0.05, "limiting_mag": 21.0,
                          "magsys": "ab", "group_ids": [group_id]})
            times.append(dt)
        med = statistics.median(times[20:])
        print(f"one-point POST /api/photometry: median {med:.2f} ms over {len(times) - 20} requests")
        results.append(("one-point POST median (ms)", med, "<=", 10, med <= 10))

        # 3. Batched PUT, 500 points a request, 10,000 points on a second object.
        filters = ["ztfg", "ztfr", "ztfi"]
        t = time.perf_counter()
        total = 0
        for b in range(20):
            n = 500
            mjds = [60000 + (b * n + k) * 0.001 for k in range(n)]
            payload = {"obj_id": "BENCHPHOT2", "instrument_id": inst, "mjd": mjds,
                       "filter": [filters[k % 3] for k in range(n)],
                       "mag": [18 + (k % 50) * 0.02 if k % 10 else None for k in range(n)],
                       "magerr": [0.05 if k % 10 else None for k in range(n)],
                       "limiting_mag": [21.0] * n, "magsys": "ab", "group_ids": [group_id]}
            timed("PUT", "/api/photometry", json=payload)
            total += n
        rate = total / (time.perf_counter() - t)
        print(f"batched PUT /api/photometry: {total:,} points in batches of 500: {rate:,.0f} points/s")
        results.append(("batched PUT (points/s)", rate, ">=", 5000, rate >= 5000))
        # Same batches again: an idempotent upsert must not duplicate.
        t = time.perf_counter()
        dt, _ = timed("PUT", "/api/photometry", json=payload)
        print(f"repeated PUT of an existing batch of 500: {dt:.1f} ms")

        # 4. GET 10,000 points.
        times = []
        for _ in range(20):
            dt, body = timed("GET", "/api/sources/BENCHPHOT2/photometry")
            times.append(dt)
        npts = len(body["data"])
        med = statistics.median(times[2:])
        print(f"GET /api/sources/ID/photometry with {npts:,} points: median {med:.1f} ms")
        results.append((f"GET {npts} points median (ms)", med, "<=", 150, med <= 150 and npts == 10_000))

        rss = peak_rss_mb(proc.pid)
        print(f"app process peak resident memory (VmHWM): {rss:.0f} MB")
        results.append(("app peak RSS (MB)", rss, "<=", 300, rss <= 300))

        print("\nsummary (figure, target):")
        for name, value, op, target, ok in results:
            print(f"  {'ok  ' if ok else 'MISS'} {name}: {value:,.1f} (target {op} {target})")
        return 0 if all(r[-1] for r in results) else 1
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        cluster.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
