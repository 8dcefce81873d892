#!/usr/bin/env python3
"""Benchmark of the live feed (issue 13), on this machine, with real processes over loopback.

Targets: one app process holding 1,000 open websockets, fed 300 events/s through the API, delivers each event
with a median latency under 50 ms and a p99 under 250 ms, measured from the write's answer to the event's
arrival on a websocket; matching an alert position against 10,000 region subscriptions takes under 1 ms.

    .venv/bin/python tests/bench/bench_live.py [--sockets 1000] [--rate 300] [--seconds 20] [--writers 1]
                                               [--per-request N] [--inject] [--profile DIR]

Set-up: its own PostgreSQL cluster; one "socket" app process that holds every websocket, and --writers app
processes that take the writes (POST /api/sources/ID/comments, one event each) from a separate load process
pacing them at --rate; the events reach the socket process through PostgreSQL's NOTIFY, as on a deployment
with several processes or hosts (--writers 0 sends the writes to the socket process itself). With --per-request N the writes are lists of N
new sources (POST /api/sources, as an alert broker writes), one event each, still --rate events a second. Of the websockets,
--measured are Tornado websocket clients that time each event; the others are plain sockets, in a process of
their own, that do the websocket handshake and then read and discard what arrives every 100 ms (cheap, so that
the bench's own processes do not become the bottleneck, yet the portal really writes every frame to each).
Everything is stopped and removed at the end.

Besides the latencies, it prints the socket process's CPU per frame written and per event and socket: on a
shared machine the latencies mostly measure the other processes' load, the CPU cost much less so, and it is the
figure to compare between builds. --profile runs the app processes under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ROOT / "upstream"
sys.path.insert(0, str(UPSTREAM / "tests"))
sys.path.insert(0, str(UPSTREAM))
from pgcluster import PgCluster, free_port  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_portal(cfg_path: Path, port: int, log_path: Path, profile: Path | None = None) -> subprocess.Popen:
    log = open(log_path, "w")
    # Under cProfile the statistics are written when the portal stops (SIGTERM drains and returns from serve).
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    proc = subprocess.Popen([sys.executable, *prof, "-m", "astroportal", "serve", "--config", str(cfg_path),
                             "--port", str(port)], cwd=UPSTREAM, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/sysinfo", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit(f"the portal on port {port} did not start: {log_path.read_text()[-2000:]}")


# -- the load: a separate process pacing the writes ------------------------------------------------------------
def inject(db_url: str, rate: float, seconds: float, out) -> None:
    """Write events straight into the feed's table (each its own transaction with its NOTIFY) at `rate`; send
    [(event's ids[0], commit time)]. Measures the feed alone, without the cost of the API writes."""
    import psycopg2

    conn = psycopg2.connect(db_url)
    results = []
    start = time.monotonic() + 0.5
    total = int(rate * seconds)
    with conn.cursor() as cur:
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            key = 10**9 + i
            cur.execute("INSERT INTO live_events (kind, obj_id, ids, group_ids, ra, dec, data) VALUES "
                        "('comment.added', 'ZTF26benchlv', ARRAY[%s]::bigint[], '{1}', 10, 10, "
                        "'{\"summary\": \"comment on ZTF26benchlv: injected\", \"url\": \"/source/ZTF26benchlv\"}') "
                        "RETURNING id", (key,))
            cur.execute("SELECT pg_notify('astroportal_live', %s)", (str(cur.fetchone()[0]),))
            conn.commit()
            results.append((key, time.monotonic()))
    conn.close()
    out.send((results, [], time.monotonic() - start))
    out.close()


def load(urls: list[str], token: str, obj_id: str, rate: float, seconds: float, out, per_request: int = 1) -> None:
    """POST comments at `rate` per second over `seconds`, spread over `urls`; send [(comment id, answer time)].

    With `per_request` > 1, each request is a list of that many new sources (`POST /api/sources`, the list form
    an alert broker writes with), one `source.saved` event each, at `rate` events per second; send [(object id,
    answer time)]."""
    if per_request > 1:
        rate = rate / per_request
    threads = max(4, int(rate // 25))
    results: list[tuple[int, float]] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = time.monotonic() + 0.5
    total = int(rate * seconds)

    def worker(k: int) -> None:
        http = requests.Session()
        http.headers["Authorization"] = f"token {token}"
        for i in range(k, total, threads):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            url = urls[i % len(urls)]
            try:
                if per_request > 1:
                    batch = [{"id": f"ZTF26lv{i:06d}{j:03d}", "ra": (i * 7 + j) % 360, "dec": 10.0}
                             for j in range(per_request)]
                    r = http.post(f"{url}/api/sources", json=batch, timeout=30)
                else:
                    r = http.post(f"{url}/api/sources/{obj_id}/comments", json={"text": f"bench {i}"}, timeout=30)
                t = time.monotonic()
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
                with lock:
                    if per_request > 1:
                        results.extend((item["id"], t) for item in batch)
                    else:
                        results.append((r.json()["data"]["comment_id"], t))
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(str(exc))

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.send((results, errors, time.monotonic() - start))
    out.close()


# -- the websockets ---------------------------------------------------------------------------------------------
def raw_websocket(port: int, token: str) -> socket.socket:
    """A websocket opened by hand: the upgrade request, the 101 answer, then a non-blocking socket."""
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: token {token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("the portal closed a websocket during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"websocket refused: {head[:200]!r}")
    s.setblocking(False)
    return s


async def drain(socks: list[socket.socket], stop: asyncio.Event, stats: dict) -> None:
    while not stop.is_set():
        for s in socks:
            try:
                while True:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        stats["closed"] += 1
                        socks.remove(s)
                        break
                    stats["bytes"] += len(chunk)
            except BlockingIOError:
                pass
        await asyncio.sleep(0.1)


def drain_process(port: int, token: str, n: int, ready, stop, out) -> None:
    """Open `n` websockets by hand and drain them until `stop` is set (a process of its own, so that reading
    ~1,000 streams does not delay the timing clients); send (closed, bytes)."""
    socks = [raw_websocket(port, token) for _ in range(n)]
    ready.set()
    stats = {"closed": 0, "bytes": 0}

    async def run() -> None:
        flag = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.2)
            flag.set()

        await asyncio.gather(drain(socks, flag, stats), watch())

    asyncio.run(run())
    for s in socks:
        s.close()
    out.send((stats["closed"], stats["bytes"]))
    out.close()


async def measure(port: int, token: str, arrivals: dict, stop: asyncio.Event, kind: str = "comment.added") -> None:
    import tornado.httpclient
    import tornado.websocket

    req = tornado.httpclient.HTTPRequest(f"ws://127.0.0.1:{port}/api/live?types={kind}",
                                         headers={"Authorization": f"token {token}"})
    conn = await tornado.websocket.websocket_connect(req)

    async def close_at_stop() -> None:
        await stop.wait()
        conn.close()

    # Read until the connection ends (closed here at the stop): a read abandoned on a timeout (asyncio.wait_for)
    # may lose the frame arriving at that moment on Python 3.11, which would count as an event missing.
    closer = asyncio.ensure_future(close_at_stop())
    while True:
        msg = await conn.read_message()
        if msg is None:
            if not stop.is_set():
                arrivals["__closed__"] = arrivals.get("__closed__", 0) + 1
            break
        t = time.monotonic()
        frame = json.loads(msg)
        if frame["type"] == "events":
            arrivals["__frames__"] = arrivals.get("__frames__", 0) + 1
            for e in frame["events"]:
                arrivals.setdefault(e["ids"][0] if e["ids"] else e["obj_id"], t)
    closer.cancel()


# -- matching 10,000 region subscriptions ------------------------------------------------------------------------
def bench_matching(n_subs: int, n_positions: int) -> tuple[float, float, float, float]:
    """(median µs, p99 µs, mean matches, linear-scan median µs) of matching a position against n_subs cones."""
    from astroportal.live.feed import Cone
    from astroportal.live.matching import Sub, SubscriptionIndex

    rng = random.Random(13)

    def sky():
        return rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-1, 1)))

    subs = []
    for i in range(n_subs):
        ra, dec = sky()
        subs.append(Sub(i, i % 500, "cone", {"ra": ra, "dec": dec, "radius": rng.choice([0.1, 0.5, 1, 2, 5]),
                                             "kinds": ["candidate.passed"]}, ("portal",)))
    t0 = time.perf_counter()
    index = SubscriptionIndex(subs)
    build = time.perf_counter() - t0
    events = []
    for i in range(n_positions):
        ra, dec = sky()
        events.append({"kind": "candidate.passed", "ra": ra, "dec": dec, "obj_id": f"X{i}", "group_ids": [1],
                       "data": {}})
    times, found = [], 0
    for e in events:
        t = time.perf_counter()
        found += len(index.match(e))
        times.append((time.perf_counter() - t) * 1e6)
    cones = [(Cone(s.params["ra"], s.params["dec"], s.params["radius"]), s) for s in subs]
    linear = []
    for e in events[:200]:
        t = time.perf_counter()
        [s for c, s in cones if c.contains(e["ra"], e["dec"])]
        linear.append((time.perf_counter() - t) * 1e6)
    print(f"matching: index of {n_subs:,} cone subscriptions built in {build:.2f} s; {n_positions:,} positions")
    return statistics.median(times), percentile(times, 99), found / n_positions, statistics.median(linear)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--measured", type=int, default=20, help="websockets that time each event")
    parser.add_argument("--rate", type=float, default=300, help="writes (events) per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--writers", type=int, default=1, help="app processes taking the writes (0: the socket process)")
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--per-request", type=int, default=1,
                        help="events per API write: 1 posts comments one at a time; N > 1 posts lists of N new "
                             "sources (POST /api/sources, a broker's list form), one source.saved event each")
    parser.add_argument("--inject", action="store_true",
                        help="write the events with SQL (INSERT + NOTIFY per transaction) instead of through the API: "
                             "the feed's own capacity, when this machine cannot take the API writes at --rate")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="run the app processes under cProfile and write DIR/portal0.prof (the socket process), "
                             "DIR/portal1.prof, ... (read them with python -m pstats)")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    results = []
    med, p99, mean_found, linear = bench_matching(args.subscriptions, 20_000)
    print(f"  per position: median {med:.1f} µs, p99 {p99:.1f} µs, {mean_found:.2f} matches on average "
          f"(a loop over every subscription: median {linear:.0f} µs)")
    results += [("match p99 vs 10k regions (ms)", p99 / 1000, "<", 1.0, p99 / 1000 < 1.0)]

    cluster = PgCluster().start()
    work = Path(tempfile.mkdtemp(prefix="bench-live-"))
    procs: list[subprocess.Popen] = []
    try:
        db_url = cluster.create_database("bench_live")
        cfg_path = work / "config.yaml"
        cfg_path.write_text(yaml.safe_dump({
            "database": {"url": db_url, "pool_size": 10},
            "server": {"port": free_port(), "host": "127.0.0.1", "processes": 1 + args.writers},
            "paths": {"var": str(work / "var")},
        }))
        py = [sys.executable, "-m", "astroportal"]
        subprocess.run([*py, "migrate", "--config", str(cfg_path)], cwd=UPSTREAM, check=True, capture_output=True)
        subprocess.run([*py, "bootstrap", "--config", str(cfg_path)], cwd=UPSTREAM, check=True, capture_output=True)
        token = (work / "var" / "admin_token").read_text().strip()
        ports = [free_port() for _ in range(1 + args.writers)]
        for i, port in enumerate(ports):
            procs.append(start_portal(cfg_path, port, work / f"portal{i}.log",
                                      args.profile / f"portal{i}.prof" if args.profile else None))
        socket_port = ports[0]
        write_urls = [f"http://127.0.0.1:{p}" for p in (ports[1:] or ports[:1])]
        r = requests.post(write_urls[0] + "/api/sources", headers={"Authorization": f"token {token}"},
                          json={"id": "ZTF26benchlv", "ra": 10.0, "dec": 10.0}, timeout=30)
        assert r.status_code == 200, r.text

        n_raw = args.sockets - args.measured
        ready, stop_drain = multiprocessing.Event(), multiprocessing.Event()
        drain_out, drain_in = multiprocessing.Pipe(duplex=False)
        drainer = multiprocessing.Process(target=drain_process,
                                          args=(socket_port, token, n_raw, ready, stop_drain, drain_in))
        drainer.start()
        if not ready.wait(120):
            raise SystemExit("the draining websockets could not all be opened")
        print(f"{args.sockets} websockets open on one app process (pid {procs[0].pid}); "
              + (f"events written with SQL at {args.rate:.0f}/s for {args.seconds:.0f} s (--inject)" if args.inject else
                 f"writes at {args.rate:.0f}/s for {args.seconds:.0f} s through {len(write_urls)} "
                 f"{'other ' if args.writers else ''}app process(es)"))

        async def run() -> tuple[list, list, float, list[dict], dict]:
            stop = asyncio.Event()
            arrivals = [dict() for _ in range(args.measured)]
            kind = "source.saved" if args.per_request > 1 else "comment.added"
            tasks = [asyncio.ensure_future(measure(socket_port, token, a, stop, kind)) for a in arrivals]
            await asyncio.sleep(2)
            cpu0 = [cpu_seconds(p.pid) for p in procs]
            parent, child = multiprocessing.Pipe(duplex=False)
            if args.inject:
                loader = multiprocessing.Process(target=inject, args=(db_url, args.rate, args.seconds, child))
            else:
                loader = multiprocessing.Process(target=load, args=(write_urls, token, "ZTF26benchlv", args.rate,
                                                                     args.seconds, child, args.per_request))
            loader.start()
            while not parent.poll():
                await asyncio.sleep(0.2)
            answers, errors, elapsed = parent.recv()
            loader.join()
            await asyncio.sleep(2)  # the last events' way to the sockets
            cpu.extend(cpu_seconds(p.pid) - c for p, c in zip(procs, cpu0))
            stop.set()
            await asyncio.gather(*tasks)
            stop_drain.set()
            closed, nbytes = drain_out.recv()
            drainer.join()
            return answers, errors, elapsed, arrivals, {"closed": closed, "bytes": nbytes}

        cpu: list[float] = []
        answers, errors, elapsed, arrivals, stats = asyncio.run(run())
        rss = next((int(line.split()[1]) / 1024 for line in Path(f"/proc/{procs[0].pid}/status").read_text().splitlines()
                    if line.startswith("VmHWM:")), float("nan"))
        lat, missing = [], 0
        for a in arrivals:
            for cid, t in answers:
                if cid in a:
                    lat.append((a[cid] - t) * 1000)
                else:
                    missing += 1
        achieved = len(answers) / elapsed if elapsed else 0
        print(f"  writes: {len(answers)} answered in {elapsed:.1f} s ({achieved:.0f}/s), {len(errors)} errors"
              + (f" (first: {errors[0]})" if errors else ""))
        print(f"  deliveries timed: {len(lat)} on {args.measured} websockets, {missing} missing; "
              f"{stats['closed']} of the {n_raw} draining websockets closed, {stats['bytes'] / 1e6:.0f} MB read by them")
        if lat:
            lmed, lp99 = statistics.median(lat), percentile(lat, 99)
            print(f"  latency from the write's {'commit' if args.inject else 'answer'} to the websocket: median {lmed:.1f} ms, p99 {lp99:.1f} ms, "
                  f"max {max(lat):.1f} ms (negative: the event arrived before the answer)")
            # Every websocket gets the same frames (one per batch of events): the timed ones count them.
            frames = statistics.mean(a.get("__frames__", 0) for a in arrivals) * args.sockets
            print(f"  socket process peak memory: {rss:.0f} MB; CPU used: socket process {cpu[0]:.1f} s "
                  f"({cpu[0] / max(len(answers), 1) * 1000:.2f} ms per event for {args.sockets} sockets; "
                  f"~{frames:,.0f} frames written, {cpu[0] / max(frames, 1) * 1e6:.1f} µs per frame, "
                  f"{cpu[0] / max(len(answers) * args.sockets, 1) * 1e6:.2f} µs per event and socket), "
                  f"writer process(es) {sum(cpu[1:]):.1f} s ({sum(cpu[1:]) / max(len(answers), 1) * 1000:.2f} ms per write)")
            print(f"  machine load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            results += [("events/s written", achieved, ">=", args.rate * 0.95, achieved >= args.rate * 0.95),
                        ("delivery median (ms)", lmed, "<", 50, lmed < 50),
                        ("delivery p99 (ms)", lp99, "<", 250, lp99 < 250),
                        ("events missing", missing, "==", 0, missing == 0),
                        # No target: the figure to compare between builds (less noisy than latency on a shared machine).
                        ("socket CPU per frame (µs)", cpu[0] / max(frames, 1) * 1e6, None, None, True),
                        ("socket CPU per event×socket (µs)", cpu[0] / max(len(answers) * args.sockets, 1) * 1e6,
                         None, None, True)]
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        cluster.stop()
        subprocess.run(["rm", "-rf", str(work)])

    print("\nfigure                           measured     target")
    for name, value, op, target, ok in results:
        if op is None:
            print(f"{name:32s} {value:10.3f}   (measure)")
        else:
            print(f"{name:32s} {value:10.3f}   {op} {target:<8g} {'OK' if ok else 'MISSED'}")
    return 0 if all(r[4] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
