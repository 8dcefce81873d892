"""What the GCN service's tests share: the real sample notices (upstream/tests/data/gcn, SkyPortal's, BSD-3) and
variants of them (a real superevent id instead of the mock one), the service's token, its configuration and
the service as a process. The portal (restartable) and librdkafka's mock cluster come from broker_support."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
import yaml
from broker_support import BrokerPortal
from confluent_kafka import Producer

from conftest import CODE_ROOT, PYTHON, wait_until

DATA = CODE_ROOT / "upstream" / "tests" / "data" / "gcn"
SERVICE_DIR = CODE_ROOT / "services" / "gcn"
PRELIMINARY = DATA / "igwn_gwalert_preliminary.json"
RETRACTION = DATA / "igwn_gwalert_retraction.json"
GW_VOEVENT = DATA / "GW190425_initial.xml"
FERMI = DATA / "GRB180116A_Fermi_GBM_Gnd_Pos.xml"
SWIFT = DATA / "SWIFT_1125809-092.xml"
TOPIC = "igwn.gwalert"


def import_client():
    """The service's package, for the tests of its parsing and filtering (the service runs from its folder)."""
    if str(SERVICE_DIR) not in sys.path:
        sys.path.insert(0, str(SERVICE_DIR))
    import gcn_client  # noqa: F401

    return gcn_client


def gwalert(path: Path = PRELIMINARY, superevent_id: str | None = None, **changes) -> dict:
    """A sample igwn.gwalert as a dict, with its superevent id and top-level or `event` fields changed
    (`event__search="AllSky"` changes event.search)."""
    doc = json.loads(path.read_text())
    if superevent_id is not None:
        doc["superevent_id"] = superevent_id
        if doc.get("urls", {}).get("gracedb"):
            doc["urls"]["gracedb"] = f"https://gracedb.ligo.org/superevents/{superevent_id}/view/"
    for key, value in changes.items():
        if key.startswith("event__"):
            doc["event"][key[len("event__"):]] = value
        else:
            doc[key] = value
    return doc


def real_event(superevent_id: str, path: Path = PRELIMINARY, **changes) -> bytes:
    """The sample alert as a real (non-mock) event: the given S... id and search AllSky (the sample is an MDC
    mock, MS260605l, which the service skips)."""
    if path == PRELIMINARY:
        changes.setdefault("event__search", "AllSky")
    return json.dumps(gwalert(path, superevent_id, **changes)).encode()


class GcnPortal(BrokerPortal):
    """The restartable portal of the broker's tests, waited for patiently when it comes back: on a busy machine
    its first answer may take more than the second broker_support allows for one request."""

    def start_server(self) -> None:
        self.log = open(self.base / "serve.log", "a")
        self.proc = subprocess.Popen([PYTHON, "-m", "astroportal", "serve", "--config", str(self.config)],
                                     cwd=self.patched, stdout=self.log, stderr=subprocess.STDOUT)

        def answers() -> bool:
            try:
                return requests.get(self.url + "/api/sysinfo", timeout=5).ok
            except requests.RequestException:
                return False

        assert wait_until(answers, 90), "the portal did not come back"


def service_token(portal, name: str = "gcn") -> Path:
    """The service's own token as `./run.sh run` makes it (a bot holding exactly service.yaml's ACLs), written to
    var/tokens/NAME.token (0600) of the portal's project."""
    path = portal.var / "tokens" / f"{name}.token"
    if path.exists():
        return path
    acls = yaml.safe_load((SERVICE_DIR / "service.yaml").read_text())["acls"]
    answer = portal.api("POST", "/api/service_tokens", {"name": name, "acls": acls})
    assert sorted(answer["acls"]) == sorted(acls), answer
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(answer["token"] + "\n")
    os.chmod(path, 0o600)
    return path


def service_config(portal, state: Path, **gcn) -> Path:
    """The portal's merged configuration with services.gcn overridden and a state directory (paths.var) of its
    own, as a file."""
    tree = yaml.safe_load(portal.config.read_text())
    g = tree.setdefault("services", {}).setdefault("gcn", {})
    for key, value in gcn.items():
        if isinstance(value, dict):
            g.setdefault(key, {}).update(value)
        else:
            g[key] = value
    tree.setdefault("paths", {})["var"] = str(state)
    state.mkdir(parents=True, exist_ok=True)
    path = state / "config.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


class LargeProducer:
    """A producer into the mock cluster that takes GW alerts (about 1 MB, above librdkafka's default limit)."""

    def __init__(self, servers: str) -> None:
        self.producer = Producer({"bootstrap.servers": servers, "message.max.bytes": 8 * 1024 * 1024})

    def produce(self, topic: str, key: str | bytes | None, value: bytes) -> None:
        self.producer.produce(topic, key=key.encode() if isinstance(key, str) else key, value=value)
        assert self.producer.flush(30) == 0


class GcnService:
    """`python -m gcn_client ...` as a process."""

    def __init__(self, config: Path, token_file: Path, url: str) -> None:
        self.config, self.token_file, self.url = config, token_file, url
        self.log_path = config.parent / "service.log"
        self.proc: subprocess.Popen | None = None

    def command(self, *args: str) -> list[str]:
        return [PYTHON, "-m", "gcn_client", *args, "--config", str(self.config), "--token-file",
                str(self.token_file), "--url", self.url]

    def start(self) -> "GcnService":
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.command("run"), cwd=SERVICE_DIR, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), cwd=SERVICE_DIR, capture_output=True, text=True, timeout=timeout)

    def status(self) -> dict:
        res = self.run("status", "--json")
        return json.loads(res.stdout) if res.stdout.strip() else {}

    def state(self) -> dict:
        return self.status().get("status") or {}

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
