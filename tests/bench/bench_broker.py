#!/usr/bin/env python3
"""Benchmark of the broker client: a backfill of real-format alerts into the portal, batched, against the call
pattern of a one-alert-at-a-time client.

Targets (issue "Broker client"): 10,000 alerts, each with its light curve (about 50 earlier points) and its three
cutouts, reach the database at >= 300 alerts/s with one app process; the service's resident memory stays under
200 MB. Also printed: the same alerts sent one per request (sources, candidates, photometry, classification and
three thumbnail calls per alert, as a one-at-a-time client does) and the ratio.

Usage: .venv/bin/python tests/bench/bench_broker.py [--alerts 10000] [--baseline 300] [--batch-size 200] [--durable]
It builds the real tree under a temporary project root, starts its own PostgreSQL cluster and one portal process
on loopback, and removes everything at the end. The alerts are synthesised from the real ones in
tests/data/fink-alerts (new objectIds, candids and positions; light curves grown from real entries).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "services" / "broker"))

from broker_support import (  # noqa: E402
    GROUP,
    SERVICE_DIR,
    BrokerPortal,
    admin_setup,
    expected_points,
    service_config,
    service_token,
    synth,
    write_avro,
)

from conftest import PYTHON  # noqa: E402


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


class PeakRss:
    """Samples a process's resident memory every 0.1 s; `peak` in MB."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.peak = max(self.peak, rss_mb(self.pid), rss_mb(self.pid, "VmHWM"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc; less noisy than wall time on a shared
    machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds(portal: BrokerPortal) -> float:
    """CPU seconds of the cluster's server processes alive now (the app's pooled connections live through a run)."""
    postmaster = int((portal.pg.datadir / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            if int(text.rsplit(")", 1)[1].split()[1]) == postmaster:
                total += cpu_seconds(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def backfill(portal: BrokerPortal, token_file: Path, work: Path, n: int, batch_size: int) -> dict:
    files = work / "alerts"
    files.mkdir()
    expected = 0
    per_file = 1000
    for start in range(0, n, per_file):
        schema, records = synth(min(per_file, n - start), f"B{start // per_file:03d}", prv_points=50, seed=start)
        expected += sum(map(expected_points, records))
        write_avro(files / f"alerts-{start // per_file:03d}.avro", schema, records)
        del records
    size_mb = sum(f.stat().st_size for f in files.iterdir()) / 1e6
    cfg = service_config(portal, work / "state", group_names=[GROUP], batch_size=batch_size)
    cmd = [PYTHON, "-m", "broker_client", "replay", str(files), "--config", str(cfg), "--token-file",
           str(token_file), "--url", portal.url]
    app_cpu0, db_cpu0 = cpu_seconds(portal.proc.pid), database_cpu_seconds(portal)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=SERVICE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss = PeakRss(proc.pid)
    out, err = proc.communicate()
    seconds = time.monotonic() - t0
    app_cpu = cpu_seconds(portal.proc.pid) - app_cpu0
    db_cpu = database_cpu_seconds(portal) - db_cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the replay, once it has been waited for
    service_cpu = (children.ru_utime + children.ru_stime) - (children0.ru_utime + children0.ru_stime)
    rss.done.set()
    if proc.returncode != 0:
        raise SystemExit(f"the replay failed ({proc.returncode}):\n{out}\n{err[-3000:]}")
    counts = portal.counts("ZTFB")
    assert counts["objs"] == n and counts["candidates"] == n and counts["photometry"] == expected, counts
    timings = [line for line in err.splitlines() if "time per call" in line]
    return {"seconds": seconds, "rate": n / seconds, "rss": rss.peak, "points": expected, "mb": size_mb,
            "summary": out.strip(), "app_cpu": app_cpu, "db_cpu": db_cpu, "service_cpu": service_cpu, "timings": timings[-1].split("time per call: ")[-1] if timings else ""}


def one_at_a_time(portal: BrokerPortal, token: str, n: int) -> dict:
    """The same writes, one alert per request, in the order a one-at-a-time client makes them."""
    import requests
    from broker_client import mapping

    schema, records = synth(n, "SGL", prv_points=50, seed=99)
    http = requests.Session()
    http.headers["Authorization"] = f"token {token}"
    setup = {
        "group_ids": [g["id"] for g in portal.api("GET", "/api/groups")["all_groups"] if g["name"] == GROUP],
        "instrument_id": portal.api("GET", "/api/instrument?name=ZTF")[0]["id"],
        "filter_id": next(f["id"] for f in portal.api("GET", "/api/filters") if f["name"] == "Fink"),
        "taxonomy_id": next(t["id"] for t in portal.api("GET", "/api/taxonomy") if t["name"] == "Fink"),
    }
    ctx = mapping.Context(**setup)

    def call(method: str, path: str, body) -> None:
        r = http.request(method, portal.url + path, json=body, timeout=120)
        assert r.ok, f"{method} {path}: {r.status_code} {r.text[:300]}"

    t0 = time.monotonic()
    for record in records:
        w = mapping.map_alert(record, "fink_kn_candidates_ztf", ctx)
        call("POST", "/api/sources", w.source)
        call("POST", "/api/candidates", w.candidate)
        call("PUT", "/api/photometry", mapping.photometry_body(w.points, ctx.group_ids, ctx.origin))
        for c in w.classifications:
            call("POST", "/api/classification", c)
        for t in w.thumbnails:
            call("POST", "/api/thumbnail", t)
    seconds = time.monotonic() - t0
    return {"seconds": seconds, "rate": n / seconds}


def make_durable(portal: BrokerPortal) -> None:
    """Restart the portal's database with PostgreSQL's durable defaults (the test cluster starts without them),
    and the portal after it, so that its pooled connections are new."""
    pg = portal.pg
    opts = f"-c listen_addresses=127.0.0.1 -p {pg.port} -k {pg.root}"
    portal.stop_server()
    pg._run("pg_ctl", "-D", str(pg.datadir), "-o", opts, "-l", str(pg.root / "log"), "-w", "restart")
    portal.start_server()
    settings = dict(portal.query("SELECT name, setting FROM pg_settings WHERE name IN "
                                 "('fsync', 'synchronous_commit', 'full_page_writes')"))
    assert set(settings.values()) == {"on"}, settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=300, help="alerts sent one per request")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--tmp", type=Path, default=None,
                        help="folder for the portal's project (its var/, where the cutouts go), its database and the "
                             "alert files (default: the system's temporary folder). File creation costs differ "
                             "much between file systems: give one like the deployment's.")
    parser.add_argument("--durable", action="store_true",
                        help="run the database as a deployment does (fsync, synchronous commits and full-page writes "
                             "on; the tests' clusters turn them off): every request's commit waits for its WAL to "
                             "reach the disk")
    args = parser.parse_args()
    if args.baseline < 1:
        parser.error("--baseline: give at least 1 alert (the ratio is against it)")
    if args.tmp is not None:
        args.tmp.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(args.tmp.resolve())

    work = Path(tempfile.mkdtemp(prefix="bench-broker-"))
    portal = BrokerPortal()
    try:
        if args.durable:
            make_durable(portal)
        bot_id, token_file = service_token(portal)
        admin_setup(portal, bot_id)
        durability = "fsync, synchronous_commit, full_page_writes on" if args.durable else \
            "the tests' database settings (fsync, synchronous_commit, full_page_writes off; --durable turns them on)"
        print(f"backfill: {args.alerts} alerts (about 50 earlier points and 3 cutouts each), batches of "
              f"{args.batch_size}, one app process; {durability} ...", flush=True)
        b = backfill(portal, token_file, work, args.alerts, args.batch_size)
        print(f"  {b['summary']}")
        print(f"  {b['mb']:.0f} MB of Avro, {b['points']} photometry points")
        print(f"  time per portal call: {b['timings']}")
        print(f"batched:        {b['rate']:8.1f} alerts/s  ({b['seconds']:.1f} s)   target >= 300 alerts/s  "
              f"{'OK' if b['rate'] >= 300 else 'MISSED'}")
        print(f"app CPU:        {b['app_cpu'] / args.alerts * 1000:8.2f} s per 1000 alerts (user + system)")
        print(f"database CPU:   {b['db_cpu'] / args.alerts * 1000:8.2f} s per 1000 alerts (its server processes)")
        print(f"service CPU:    {b['service_cpu'] / args.alerts * 1000:8.2f} s per 1000 alerts (the replay process)")
        total = b["app_cpu"] + b["db_cpu"] + b["service_cpu"]
        cores = os.cpu_count() or 1
        # What the rate is bound by: the one app process can use one core at most; the three processes together
        # can use every core of this machine. The lower bound is what this machine can reach at best.
        print(f"app-bound rate: {args.alerts / b['app_cpu']:8.1f} alerts/s  (one app process on a core of its own: "
              f"1000 / app CPU per 1000 alerts)")
        print(f"machine-bound:  {args.alerts * cores / total:8.1f} alerts/s  (all CPU of the three processes spread "
              f"over this machine's {cores} cores)")
        print(f"service memory: {b['rss']:8.1f} MB peak resident   target < 200 MB  "
              f"{'OK' if b['rss'] < 200 else 'MISSED'}")
        s = one_at_a_time(portal, token_file.read_text().strip(), args.baseline)
        print(f"one per request:{s['rate']:8.1f} alerts/s  ({args.baseline} alerts in {s['seconds']:.1f} s)")
        print(f"ratio:          {b['rate'] / s['rate']:8.1f} x")
        print(f"app process:    {rss_mb(portal.proc.pid, 'VmHWM'):8.1f} MB peak resident")
    finally:
        portal.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
