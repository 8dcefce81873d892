#!/usr/bin/env python3
"""The fixed cost of one API request: CPU time of the app process and database round trips per request.

Three calls, each repeated N times on one keep-alive connection from a single client:
  - GET /api/sysinfo                         (no authentication)
  - GET /api/sources/ID                      (token authenticated read)
  - POST /api/sources/ID/comments            (token authenticated write, with its live event)
the last two by the admin and again by a service's bot (not a system admin: the object's groups are checked).
For each it prints the app process's CPU milliseconds per request (user + system, from /proc/PID/stat) and the
statements PostgreSQL received per request (every BEGIN, SELECT, COMMIT, ... is one round trip; counted from the
server's statement log, which is switched on only around each measured series).

Measured on the shared 2-core machine (500 requests a series; CPU figures vary by about 15% between runs):
                                    before (pre-ping, groups queried)   after (socket check, groups preloaded)
  GET /api/sources/ID (token)       7.9 ms CPU, 6.1 round trips          7.4 ms CPU, 5.1 round trips
  POST /api/sources/ID/comments     13.0 ms CPU, 10.2 round trips        10.8 ms CPU, 8.1 round trips
(The comment's last round trip is the live feed reading the new event after its NOTIFY, off the request's path.)
Then (baseline and change run back to back, 2-3 runs each, the middle figure; CPU ms/req, round trips/req):
                                           before         after (prebuilt object/visibility/groups/comment statements)
  GET /api/sources/ID (token)              6.7, 5.0       5.2, 5.0
  POST /api/sources/ID/comments (token)   11.0, 7.8       9.9, 6.8
  GET /api/sources/ID (bot token)          9.0, 6.0       5.2, 5.0
  POST /api/sources/ID/comments (bot)     14.5, 8.9      10.8, 7.0
Most of the comment's remaining cost is the live feed's row (live/feed.py _insert: a multi-row VALUES statement,
which SQLAlchemy never caches, so it is compiled anew on every write, about 4 ms); a prebuilt single-row form
measured 5.8 ms CPU for the whole comment POST.

Usage: .venv/bin/python tests/bench/bench_request_cost.py [--requests 500] [--show] [--profile FILE]
It starts its own PostgreSQL cluster and one portal process on loopback, and removes both at the end.
"""

from __future__ import annotations

import argparse
import os
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

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def set_statement_log(admin_url: str, on: bool) -> None:
    """Switch PostgreSQL's statement log on or off for every session (existing ones pick it up on reload)."""
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"ALTER SYSTEM SET log_statement = '{'all' if on else 'none'}'")
        cur.execute("ALTER SYSTEM SET log_line_prefix = '[%d] '")
        cur.execute("SELECT pg_reload_conf()")
    conn.close()
    time.sleep(0.3)  # the backends apply the reload when they next wait for a command


def count_statements(log_path: Path, start: int, dbname: str) -> tuple[int, int]:
    """Statements logged for `dbname` after byte offset `start` of the server log; and the log's new size."""
    data = log_path.read_bytes()
    tag = f"[{dbname}] LOG:  statement:".encode()
    return data[start:].count(tag), len(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="requests per measured series")
    parser.add_argument("--profile", type=Path, help="run the portal under cProfile and write its statistics here")
    parser.add_argument("--show", action="store_true", help="also print the statements of one request of each kind")
    args = parser.parse_args()

    cluster = PgCluster().start()
    work = Path(tempfile.mkdtemp(prefix="bench-reqcost-"))
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

        log = open(work / "server.log", "w")
        # Under cProfile the statistics are written when the portal stops (SIGTERM drains and returns from serve).
        prof = ["-m", "cProfile", "-o", str(args.profile.resolve())] if args.profile else []
        proc = subprocess.Popen([sys.executable, *prof, "-m", "astroportal", "serve", "--config", str(cfg_path)], cwd=UPSTREAM, stdout=log,
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
        r = http.post(base + "/api/sources", json={"id": "ZTF26reqcost", "ra": 10.0, "dec": 10.0}, timeout=30)
        assert r.status_code == 200, r.text

        # A service's bot (not a system admin): its reads and writes check the object's groups as well.
        r = http.post(base + "/api/service_tokens", json={"name": "benchbot", "acls": ["Comment"]}, timeout=30)
        assert r.status_code == 200, r.text
        bot = requests.Session()
        bot.headers["Authorization"] = f"token {r.json()['data']['token']}"
        anonymous = requests.Session()
        series = [
            ("GET /api/sysinfo (anonymous)", lambda i: anonymous.get(base + "/api/sysinfo", timeout=30)),
            ("GET /api/sources/ID (token)", lambda i: http.get(base + "/api/sources/ZTF26reqcost", timeout=30)),
            ("POST /api/sources/ID/comments (token)",
             lambda i: http.post(base + "/api/sources/ZTF26reqcost/comments", json={"text": f"bench {i}"},
                                 timeout=30)),
            ("GET /api/sources/ID (bot token)", lambda i: bot.get(base + "/api/sources/ZTF26reqcost", timeout=30)),
            ("POST /api/sources/ID/comments (bot token)",
             lambda i: bot.post(base + "/api/sources/ZTF26reqcost/comments", json={"text": f"bot {i}"}, timeout=30)),
        ]
        pg_log = cluster.root / "log"
        print(f"{'request':42s} {'CPU ms/req':>10s} {'round trips/req':>16s} {'wall ms/req':>12s}")
        for name, call in series:
            for i in range(50):  # warm-up: pools filled, statements compiled and cached
                resp = call(i)
                assert resp.status_code == 200, f"{name}: {resp.status_code} {resp.text[:300]}"
            set_statement_log(cluster.url(), True)
            _, offset = count_statements(pg_log, 0, "bench")
            c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            for i in range(args.requests):
                resp = call(i)
                assert resp.status_code == 200, f"{name}: {resp.status_code} {resp.text[:300]}"
            wall = time.perf_counter() - t0
            cpu = cpu_seconds(proc.pid) - c0
            set_statement_log(cluster.url(), False)
            statements, _ = count_statements(pg_log, offset, "bench")
            n = args.requests
            print(f"{name:42s} {cpu / n * 1000:10.2f} {statements / n:16.2f} {wall / n * 1000:12.2f}")
            if args.show:
                set_statement_log(cluster.url(), True)
                _, offset = count_statements(pg_log, 0, "bench")
                call(0)
                set_statement_log(cluster.url(), False)
                for line in pg_log.read_bytes()[offset:].decode("utf-8", "replace").splitlines():
                    if line.startswith("[bench] LOG:  statement:"):
                        print("    ", line.split("statement:", 1)[1].strip()[:200])
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
