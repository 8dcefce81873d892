"""What the broker client's tests share: real alerts and alerts synthesised from them, a portal served from the
patched build that can be restarted, the service as a process, a loopback Fink REST server, and a loopback
proxy that makes the portal answer 500, 429 or late."""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import random
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import fastavro
import psycopg2
import requests
import yaml

from conftest import CODE_ROOT, PYTHON, PatchedPortal, free_port, wait_until

ALERTS_DIR = Path(__file__).resolve().parent / "data" / "fink-alerts"
SERVICE_DIR = CODE_ROOT / "services" / "broker"
JD_UNIX_EPOCH = 2440587.5
GROUP = "Fink alerts"
STREAM = "ZTF (Fink)"


# -- alerts ---------------------------------------------------------------------------------------------------
def read_avro(path: Path) -> tuple[dict, list[dict]]:
    with open(path, "rb") as fh:
        reader = fastavro.reader(fh)
        return reader.writer_schema, list(reader)


def real_alerts() -> list[tuple[dict, dict]]:
    """(schema, record) of every real alert in tests/data/fink-alerts (15 alerts)."""
    out = []
    for path in sorted(ALERTS_DIR.glob("*.avro")):
        schema, records = read_avro(path)
        out.extend((schema, r) for r in records)
    return out


def synth(n: int, tag: str, prv_points: int | None = None, seed: int = 1) -> tuple[dict, list[dict]]:
    """`n` alerts in the real multi-alert file's schema, each a real alert with a new objectId (ZTF<tag><i>),
    new candids, a moved position and, with `prv_points`, a light curve of that many earlier points (real
    entries shifted in time)."""
    schema, base = read_avro(ALERTS_DIR / "avro_multi_alerts.avro")
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a = copy.deepcopy(base[i % len(base)])
        a["objectId"] = f"ZTF{tag}{i:06d}"
        a["candid"] = 3_000_000_000_000_000_000 + rng.randrange(10**15) * 1000 + i % 1000
        c = a["candidate"]
        c["candid"] = a["candid"]
        c["ra"] = rng.uniform(0, 359.99)
        c["dec"] = rng.uniform(-30, 89)
        c["jd"] = c["jd"] + i * 1e-4
        prv = [p for p in (a["prv_candidates"] or [])]
        if prv_points is not None and prv:
            grown = []
            k = 0
            while len(grown) < prv_points:
                p = dict(prv[k % len(prv)])
                p["jd"] = p["jd"] - 40 * (k // len(prv)) - 1e-3 * (k % len(prv))
                if p.get("candid") is not None:
                    p["candid"] = a["candid"] - 1 - k
                grown.append(p)
                k += 1
            prv = grown
        a["prv_candidates"] = prv
        out.append(a)
    return schema, out


def write_avro(path: Path, schema: dict, records: list[dict]) -> Path:
    with open(path, "wb") as fh:
        fastavro.writer(fh, fastavro.parse_schema(schema), records)
    return path


def expected_scores(alert: dict) -> dict:
    """The Fink scores of an alert that its annotation holds: the present, finite ones."""
    import sys

    if str(SERVICE_DIR) not in sys.path:
        sys.path.insert(0, str(SERVICE_DIR))
    from broker_client.mapping import SCORE_FIELDS

    out = {}
    for name in SCORE_FIELDS:
        value = alert.get(name)
        if isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and value == value and abs(value) != float("inf")):
            out[name] = value
    return out


def expected_points(record: dict) -> int:
    """How many photometry points an alert's light curve holds (detections and upper limits, distinct times)."""
    keys = set()
    for e in [record["candidate"], *(record.get("prv_candidates") or [])]:
        if e.get("jd") is None or e.get("fid") not in (1, 2, 3):
            continue
        if (e.get("magpsf") is not None and e.get("sigmapsf")) or e.get("diffmaglim") is not None:
            keys.add((e["fid"], e["jd"]))
    return len(keys)


def fink_message(schema: dict, record: dict) -> tuple[bytes, bytes]:
    """Fink's wire format: key = the Avro schema as JSON, value = the schemaless Avro record."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return json.dumps(schema).encode(), buf.getvalue()


# -- the portal -------------------------------------------------------------------------------------------------
class BrokerPortal(PatchedPortal):
    """The patched portal (see tests/conftest.py) that can be restarted, with database counts."""

    def __init__(self) -> None:
        super().__init__()
        self.db_url = yaml.safe_load((self.root / "config.yaml").read_text())["database"]["url"]
        self.headers = {"Authorization": f"token {self.admin_token}"}

    def start_server(self) -> None:
        self.log = open(self.base / "serve.log", "a")
        self.proc = subprocess.Popen([PYTHON, "-m", "astroportal", "serve", "--config", str(self.config)],
                                     cwd=self.patched, stdout=self.log, stderr=subprocess.STDOUT)

        def answers() -> bool:
            try:
                return requests.get(self.url + "/api/sysinfo", timeout=1).ok
            except requests.ConnectionError:
                return False

        assert wait_until(answers, 60), "the portal did not come back"

    def stop_server(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()

    def api(self, method: str, path: str, body=None, token: str | None = None):
        headers = {"Authorization": f"token {token}"} if token else self.headers
        r = requests.request(method, self.url + path, json=body, headers=headers, timeout=60)
        assert r.ok, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()["data"]

    def query(self, sql: str, *args):
        conn = psycopg2.connect(self.db_url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()
        finally:
            conn.close()

    def counts(self, prefix: str) -> dict:
        """Rows about objects whose id starts with `prefix`."""
        like = prefix + "%"
        q = lambda sql: self.query(sql, like)[0][0]  # noqa: E731
        return {
            "objs": q("SELECT count(*) FROM objs WHERE id LIKE %s"),
            "sources": q("SELECT count(*) FROM sources WHERE obj_id LIKE %s"),
            "candidates": q("SELECT count(*) FROM candidates WHERE obj_id LIKE %s"),
            "photometry": q("SELECT count(*) FROM photometry WHERE obj_id LIKE %s"),
            "classifications": q("SELECT count(*) FROM classifications WHERE obj_id LIKE %s"),
            "thumbnails": q("SELECT count(*) FROM thumbnails WHERE obj_id LIKE %s"),
        }

    def annotations(self, prefix: str) -> dict[str, list[tuple[str, dict]]]:
        """{obj_id: [(origin, data), ...]} of the objects whose id starts with `prefix`."""
        out: dict[str, list] = {}
        for obj_id, origin, data in self.query("SELECT obj_id, origin, data FROM annotations WHERE obj_id LIKE %s "
                                               "ORDER BY obj_id, origin", prefix + "%"):
            out.setdefault(obj_id, []).append((origin, data))
        return out

    def points_by_obj(self, prefix: str) -> dict[str, int]:
        return dict(self.query("SELECT obj_id, count(*) FROM photometry WHERE obj_id LIKE %s GROUP BY obj_id",
                               prefix + "%"))


def declared_acls() -> list[str]:
    """The ACLs the broker's bot is given: services/broker/service.yaml's, as the launcher reads them."""
    return yaml.safe_load((SERVICE_DIR / "service.yaml").read_text(encoding="utf-8"))["acls"]


def service_token(portal: BrokerPortal, name: str = "broker") -> tuple[int, Path]:
    """The broker's own token, written to var/tokens/NAME.token (0600) of the portal's project.

    As the launcher does for `./run.sh run` (which writes the same file through `python -m astroportal
    service_token`): the bot user NAME holding exactly the ACLs of services/broker/service.yaml, made by the admin
    with POST /api/service_tokens. No group yet: admin_setup creates the broker's group with the bot as its admin.
    """
    path = portal.var / "tokens" / f"{name}.token"
    if path.exists():
        uid = int((portal.var / "tokens" / f"{name}.uid").read_text())
        return uid, path
    answer = portal.api("POST", "/api/service_tokens", {"name": name, "acls": declared_acls()})
    assert sorted(answer["acls"]) == sorted(declared_acls()), answer
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(answer["token"] + "\n")
    os.chmod(path, 0o600)
    (portal.var / "tokens" / f"{name}.uid").write_text(str(answer["user_id"]))
    return answer["user_id"], path


def admin_setup(portal: BrokerPortal, bot_id: int) -> int:
    """What an admin does once for the broker: its group (with the bot in it) reading the stream ZTF (Fink)."""
    groups = portal.api("GET", "/api/groups")["all_groups"]
    found = [g["id"] for g in groups if g["name"] == GROUP]
    gid = found[0] if found else portal.api("POST", "/api/groups", {"name": GROUP, "group_admins": [bot_id]})["id"]
    streams = portal.api("GET", "/api/streams", None)
    sid = next((s["id"] for s in streams if s["name"] == STREAM), None)
    if sid is None:
        sid = portal.api("POST", "/api/streams", {"name": STREAM})["id"]
        portal.api("POST", f"/api/groups/{gid}/streams", {"stream_id": sid})
    return gid


def service_config(portal: BrokerPortal, state: Path, **broker) -> Path:
    """A configuration file for the service: the portal's merged one with services.broker overridden and a
    state directory (paths.var) of its own."""
    tree = yaml.safe_load(portal.config.read_text())
    b = tree.setdefault("services", {}).setdefault("broker", {})
    for key, value in broker.items():
        if isinstance(value, dict):
            b.setdefault(key, {}).update(value)
        else:
            b[key] = value
    tree.setdefault("paths", {})["var"] = str(state)
    state.mkdir(parents=True, exist_ok=True)
    path = state / "config.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


class Service:
    """`python -m broker_client ...` as a process (the supervised daemon or a replay)."""

    def __init__(self, config: Path, token_file: Path, url: str, *args: str) -> None:
        self.config, self.token_file, self.url, self.args = config, token_file, url, args
        self.log_path = config.parent / "service.log"
        self.proc: subprocess.Popen | None = None

    def command(self, *args: str) -> list[str]:
        return [PYTHON, "-m", "broker_client", *args, "--config", str(self.config),
                "--token-file", str(self.token_file), "--url", self.url]

    def start(self) -> "Service":
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.command(*self.args), cwd=SERVICE_DIR, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        return self

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), cwd=SERVICE_DIR, capture_output=True, text=True, timeout=timeout)

    def status(self) -> dict:
        res = self.run("status", "--json")
        return json.loads(res.stdout)

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def terminate(self, timeout: float = 120) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.log.close()
        return rc

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# -- a loopback Fink REST server --------------------------------------------------------------------------------
def jd_of(text: str) -> float:
    t = datetime.fromisoformat(text.replace("Z", "")).replace(tzinfo=timezone.utc)
    return t.timestamp() / 86400 + JD_UNIX_EPOCH


class FinkRest:
    """Fink's REST API (/api/v1/latests, /api/v1/objects, /api/v1/cutouts) over alerts given as records, each
    with its Fink class. Rows are flat with i:/d:/v: keys, as Fink answers."""

    def __init__(self) -> None:
        self.alerts: list[tuple[str, dict]] = []
        self.requests: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with outer.lock:
                    outer.requests.append((self.path, body))
                    status, payload, ctype = outer.answer(self.path, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, cls: str, records: list[dict]) -> None:
        with self.lock:
            self.alerts.extend((cls, r) for r in records)

    @staticmethod
    def row(record: dict, entry: dict, cls: str | None = None, tag: str = "valid") -> dict:
        out = {f"i:{k}": v for k, v in entry.items() if not isinstance(v, (bytes, dict, list))}
        out["i:objectId"] = record["objectId"]
        for k in ("cdsxmatch", "rfscore", "snn", "roid", "rf_kn_vs_nonkn"):
            if k in record:
                out[f"d:{k}"] = record[k]
        out["d:tag"] = tag
        if cls:
            out["v:classification"] = cls
        return out

    def answer(self, path: str, body: dict):
        if path == "/api/v1/latests":
            start = jd_of(body["startdate"].replace(" ", "T")) if body.get("startdate") else 0
            rows = [self.row(r, r["candidate"], cls) for cls, r in self.alerts
                    if cls == body.get("class") and r["candidate"]["jd"] >= start - 1e-6]
            rows.sort(key=lambda x: -x["i:jd"])
            return 200, rows[: int(body.get("n", 10))], "application/json"
        if path == "/api/v1/objects":
            rows = []
            for cls, r in self.alerts:
                if r["objectId"] != body.get("objectId"):
                    continue
                rows.append(self.row(r, r["candidate"], cls))
                for p in r.get("prv_candidates") or []:
                    rows.append(self.row(r, p, cls, "valid" if p.get("magpsf") is not None else "upperlim"))
            return 200, rows, "application/json"
        if path == "/api/v1/cutouts":
            key = {"Science": "cutoutScience", "Template": "cutoutTemplate", "Difference": "cutoutDifference"}
            for _, r in self.alerts:
                if r["objectId"] == body.get("objectId") and str(r["candid"]) == str(body.get("candid")):
                    return 200, gzip.decompress(r[key[body["kind"]]]["stampData"]), "application/octet-stream"
            return 404, {"error": "no such alert"}, "application/json"
        return 404, {"error": "unknown route"}, "application/json"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- a loopback proxy in front of the portal that misbehaves on request ---------------------------------------
class FaultProxy:
    """Forwards to the portal, except for requests matching a rule: `rules` is a list of dicts
    {method, path, times, status (int), retry_after (str), delay (seconds)}; each matching request uses up one
    of `times`. `log` records (time, method, path, status answered)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.rules: list[dict] = []
        self.log: list[tuple[float, str, str, int]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                rule = outer.take(self.command, self.path)
                if rule and rule.get("delay"):
                    time.sleep(rule["delay"])
                if rule and rule.get("status"):
                    data = json.dumps({"status": "error", "message": f"injected {rule['status']}"}).encode()
                    self.send_response(rule["status"])
                    if rule.get("retry_after"):
                        self.send_header("Retry-After", rule["retry_after"])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    outer.record(self.command, self.path, rule["status"])
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                try:
                    r = requests.request(self.command, outer.target + self.path, data=body, headers=headers,
                                         timeout=120)
                except requests.RequestException:
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = r.content
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                outer.record(self.command, self.path, r.status_code)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, method: str, path: str) -> dict | None:
        with self.lock:
            for rule in self.rules:
                if rule["times"] > 0 and rule["method"] == method and path.startswith(rule["path"]):
                    rule["times"] -= 1
                    return dict(rule)
        return None

    def record(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.log.append((time.monotonic(), method, path, status))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- Kafka: librdkafka's mock cluster ---------------------------------------------------------------------------
class MockKafka:
    """librdkafka's built-in mock cluster (one broker on loopback), held by a producer in the test process; its
    bootstrap address is read from the producer's log. Other clients on the machine speak Kafka to it."""

    def __init__(self) -> None:
        import logging
        import re

        from confluent_kafka import Producer

        class Capture(logging.Handler):
            def __init__(self) -> None:
                super().__init__()
                self.lines: list[str] = []

            def emit(self, record) -> None:
                self.lines.append(record.getMessage())

        self.capture = Capture()
        logger = logging.getLogger(f"mock-kafka-{id(self)}")
        logger.addHandler(self.capture)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False  # librdkafka's debug lines are for finding the address only
        self.producer = Producer({"test.mock.num.brokers": 1, "logger": logger, "debug": "mock"})
        deadline = time.time() + 10
        self.servers = None
        while self.servers is None and time.time() < deadline:
            self.producer.poll(0.1)
            for line in self.capture.lines:
                m = re.search(r"bootstrap\.servers=(127\.0\.0\.1:\d+)", line)
                if m:
                    self.servers = m.group(1)
                    break
        assert self.servers, "the mock cluster did not say where it listens: " + "\n".join(self.capture.lines[:20])
        logger.setLevel(logging.ERROR)
        self.capture.lines.clear()

    def produce(self, topic: str, messages: list[tuple[bytes | None, bytes | None]]) -> None:
        for key, value in messages:
            self.producer.produce(topic, key=key, value=value)
            self.producer.poll(0)
        assert self.producer.flush(30) == 0

    def close(self) -> None:
        self.producer.flush(5)
        del self.producer
