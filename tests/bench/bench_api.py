#!/usr/bin/env python3
"""Benchmark of the portal's API on this machine, through HTTP, with one app process.

Targets (issue "Upstream portal I"): cone search on 1,000,000 saved sources p50 <= 20 ms and p99 <= 100 ms;
one-point POST /api/photometry median <= 10 ms; batched PUT /api/photometry (500 points a request)
>= 5,000 points/s; GET /api/sources/ID/photometry with 10,000 points <= 150 ms; the app process's peak
resident memory over the whole run <= 300 MB.
Targets (issue "Upstream portal IX"): a light curve of 12,700 points written to a new object reads back at
once (< 5 s, whatever the planner's statistics); with 300,000 points on one object, five clients reading it
whole (in pages) at the same time delay GET /api/sysinfo by at most 1 s; so do 20,000-point uploads.

Usage: .venv/bin/python tests/bench/bench_api.py [--sources 1000000] [--queries 500]
It starts its own PostgreSQL cluster and portal process on loopback, and removes both at the end.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import multiprocessing
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


def bulk_photometry(url: str, objects: int, per_object: int, instrument_id: int, group_id: int) -> None:
    """Load `objects` objects with `per_object` points each (set-up, by COPY), then ANALYZE: statistics that say
    an object has a handful of points."""
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        objs = io.StringIO("".join(f"BENCHLC{i:07d}\t{i % 360}\t0\n" for i in range(objects)))
        cur.copy_from(objs, "objs", columns=("id", "ra", "dec"))
        cur.execute(
            """WITH ins AS (
                   INSERT INTO photometry (obj_id, instrument_id, filter, mjd, flux, fluxerr)
                   SELECT 'BENCHLC' || lpad(CAST(o AS text), 7, '0'), %s, 'ztfg', 59000 + k, 10, 1
                   FROM generate_series(0, %s - 1) AS o CROSS JOIN generate_series(1, %s) AS k
                   RETURNING id)
               INSERT INTO photometry_groups (photometry_id, group_id) SELECT id, %s FROM ins""",
            (instrument_id, objects, per_object, group_id),
        )
        cur.execute("ANALYZE photometry; ANALYZE photometry_groups;")
    conn.close()


def _probe(base: str, done, out) -> None:
    """The prober's own process: GET /api/sysinfo every 100 ms until `done`, then send the latencies (ms)."""
    http = requests.Session()
    latencies = []
    while not done.is_set():
        t = time.perf_counter()
        http.get(base + "/api/sysinfo", timeout=120).raise_for_status()
        latencies.append((time.perf_counter() - t) * 1000)
        time.sleep(0.1)
    out.send(latencies)


def probe_sysinfo(base: str, work) -> list[float]:
    """Run `work()` while GET /api/sysinfo is asked every 100 ms; the probes' latencies in ms.

    The prober is a process of its own: in a thread of this one, it would also wait for this process's readers
    (parsing megabytes of JSON holds the GIL) and report their pauses as the portal's.
    """
    ctx = multiprocessing.get_context("spawn")
    done = ctx.Event()
    receive, send = ctx.Pipe(duplex=False)
    prober = ctx.Process(target=_probe, args=(base, done, send))
    prober.start()
    try:
        work()
    finally:
        done.set()
        latencies = receive.recv()
        prober.join()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--radius", type=float, default=0.1, help="cone radius in degrees")
    parser.add_argument("--big", type=int, default=300_000, help="points on the one big light curve")
    parser.add_argument("--readers", type=int, default=5, help="clients reading the big light curve at once")
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
        npts = len(body["data"])  # the plain list: 10,000 points need no paging
        med = statistics.median(times[2:])
        print(f"GET /api/sources/ID/photometry with {npts:,} points: median {med:.1f} ms")
        results.append((f"GET {npts} points median (ms)", med, "<=", 150, med <= 150 and npts == 10_000))

        # 5. A fresh object: the planner's statistics say every object has a few points; 12,700 are written to a
        # new one and read back at once.
        t0 = time.perf_counter()
        bulk_photometry(db_url, 50_000, 4, inst, group_id)
        print(f"set-up: 200,000 points on 50,000 other objects loaded and analysed in {time.perf_counter() - t0:.1f} s")
        timed("POST", "/api/sources", json={"id": "BENCHFRESH", "ra": 12.0, "dec": 22.0, "group_ids": [group_id]})
        n = 12_700
        payload = {"obj_id": "BENCHFRESH", "instrument_id": inst, "mjd": [60000 + k * 0.001 for k in range(n)],
                   "filter": [filters[k % 3] for k in range(n)], "mag": [18 + (k % 50) * 0.02 for k in range(n)],
                   "magerr": 0.05, "magsys": "ab", "group_ids": [group_id]}
        dt_put, _ = timed("PUT", "/api/photometry", json=payload)
        dt, body = timed("GET", "/api/sources/BENCHFRESH/photometry")
        print(f"fresh object: PUT of {n:,} points {dt_put:.0f} ms, then GET at once {dt:.0f} ms "
              f"({len(body['data']):,} points)")
        results.append(("fresh object, 12,700 points read at once (ms)", dt, "<=", 5000,
                        dt <= 5000 and len(body["data"]) == n))

        # 6. One big light curve: uploads of 20,000 points, then five clients reading it whole at once, while a
        # sixth asks for /api/sysinfo every 100 ms.
        timed("POST", "/api/sources", json={"id": "BENCHBIG", "ra": 13.0, "dec": 23.0, "group_ids": [group_id]})
        idle = probe_sysinfo(base, lambda: time.sleep(2))
        print(f"GET /api/sysinfo, portal idle: median {statistics.median(idle):.1f} ms, max {max(idle):.1f} ms")

        def upload_big() -> None:
            for start in range(0, args.big, 20_000):
                m = min(20_000, args.big - start)
                timed("PUT", "/api/photometry", json={
                    "obj_id": "BENCHBIG", "instrument_id": inst, "mjd": [58000 + (start + k) * 0.01 for k in range(m)],
                    "filter": [filters[k % 3] for k in range(m)], "mag": [18 + (k % 50) * 0.02 for k in range(m)],
                    "magerr": 0.05, "magsys": "ab", "group_ids": [group_id]})

        t = time.perf_counter()
        during = probe_sysinfo(base, upload_big)
        rate = args.big / (time.perf_counter() - t)
        print(f"uploading {args.big:,} points in batches of 20,000: {rate:,.0f} points/s; "
              f"GET /api/sysinfo meanwhile: median {statistics.median(during):.0f} ms, max {max(during):.0f} ms")
        results.append(("sysinfo delay during 20,000-point uploads (ms)", max(during), "<=", 1000, max(during) <= 1000))

        r = http.get(base + "/api/sources/BENCHBIG/photometry", timeout=120)
        print(f"unpaged GET of {args.big:,} points: HTTP {r.status_code} in {r.elapsed.total_seconds() * 1000:.0f} ms "
              f"({r.json().get('message', '')[:90]}...)")

        def read_whole() -> int:
            reader = requests.Session()
            reader.headers["Authorization"] = f"token {token}"
            got, page, total = 0, 1, None
            while total is None or got < total:
                r = reader.get(f"{base}/api/sources/BENCHBIG/photometry",
                               params={"pageNumber": page, "numPerPage": 20_000}, timeout=300)
                r.raise_for_status()
                data = r.json()["data"]
                total, got, page = data["totalMatches"], got + len(data["photometry"]), page + 1
                if not data["photometry"]:
                    break
            return got

        counts: list[int] = []

        def readers() -> None:
            with concurrent.futures.ThreadPoolExecutor(args.readers) as pool:
                counts.extend(pool.map(lambda _: read_whole(), range(args.readers)))

        t = time.perf_counter()
        during = probe_sysinfo(base, readers)
        took = time.perf_counter() - t
        print(f"{args.readers} clients reading {args.big:,} points each (pages of 20,000) at once: "
              f"all done in {took:.1f} s "
              f"({sum(counts):,} points); GET /api/sysinfo meanwhile: median {statistics.median(during):.0f} ms, "
              f"max {max(during):.0f} ms over {len(during)} probes")
        results.append((f"sysinfo delay during {args.readers} reads of {args.big:,} points (ms)", max(during), "<=",
                        1000, max(during) <= 1000 and counts == [args.big] * args.readers))

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
