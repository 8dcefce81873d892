"""The broker client's settings: `services.broker.*` of the merged configuration file (nothing else is read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service_common import settings as common
from service_common.settings import ConfigError  # noqa: F401 - raised to this module's callers

SOURCES = ("kafka", "rest", "files")
PREFIX = "services.broker."


@dataclass
class KafkaSettings:
    servers: str | None = None
    topics: list[str] = field(default_factory=list)
    group_id: str = "astroportal-broker"
    username: str | None = None
    password: str | None = None
    security_protocol: str | None = None
    sasl_mechanism: str = "SCRAM-SHA-512"
    auto_offset_reset: str = "earliest"


@dataclass
class RestSettings:
    url: str | None = None
    classes: list[str] = field(default_factory=list)
    poll_seconds: float = 60.0
    max_per_poll: int = 1000
    with_cutouts: bool = True
    # Where the first window starts (any time Fink accepts, e.g. "2024-05-01 00:00:00"); default one day ago.
    startdate: str | None = None


@dataclass
class Settings:
    source: str = "kafka"
    group_names: list[str] = field(default_factory=list)
    filter_name: str | None = "Fink"
    stream_name: str = "ZTF (Fink)"
    origin: str = "Fink"
    taxonomy_name: str = "Fink"
    taxonomy_version: str = "1"
    instrument_name: str = "ZTF"
    telescope_name: str = "Palomar 48-inch"
    batch_size: int = 200
    batch_seconds: float = 2.0
    batches_in_flight: int = 2
    http_timeout: float = 60.0
    max_attempts: int = 6
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    rest: RestSettings = field(default_factory=RestSettings)
    var_dir: Path = Path("var")
    portal_url: str = "http://127.0.0.1:5000"

    @property
    def state_dir(self) -> Path:
        """Cursors, the status file and the dead letters: var/broker/."""
        return self.var_dir / "broker"


def _str_list(value: Any, key: str) -> list[str]:
    return common.names(value, PREFIX + key)


def _number(value: Any, key: str, default: float, low: float) -> float:
    return common.number(value, PREFIX + key, default, low)


def from_tree(tree: dict, *, config_path: Path | None = None) -> Settings:
    """Settings from the merged configuration (a dict); ConfigError naming the key when one is wrong."""
    b = common.get(tree, "services.broker") or {}
    if not isinstance(b, dict):
        raise ConfigError(f"services.broker: expected a mapping, got {b!r}")
    s = Settings()
    source = b.get("source") or "kafka"
    if source not in SOURCES:
        raise ConfigError(f"services.broker.source: expected one of {', '.join(SOURCES)}, got {source!r}")
    s.source = source
    s.group_names = _str_list(b.get("group_names"), "group_names")
    for key in ("filter_name", "stream_name", "origin", "taxonomy_name", "instrument_name", "telescope_name"):
        if key in b:
            value = b[key]
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"services.broker.{key}: expected a name, got {value!r}")
            if value is None and key != "filter_name":
                raise ConfigError(f"services.broker.{key}: may not be null")
            setattr(s, key, value)
    if "taxonomy_version" in b and b["taxonomy_version"] is not None:
        s.taxonomy_version = str(b["taxonomy_version"])
    s.batch_size = int(_number(b.get("batch_size"), "batch_size", s.batch_size, 1))
    if s.batch_size > 1000:
        raise ConfigError("services.broker.batch_size: at most 1000 (the portal's batch limit)")
    s.batch_seconds = _number(b.get("batch_seconds"), "batch_seconds", s.batch_seconds, 0)
    s.batches_in_flight = int(_number(b.get("batches_in_flight"), "batches_in_flight", s.batches_in_flight, 1))
    if s.batches_in_flight > 4:
        raise ConfigError("services.broker.batches_in_flight: at most 4 (more only queue in the portal)")
    s.http_timeout = _number(b.get("http_timeout"), "http_timeout", s.http_timeout, 1)
    s.max_attempts = int(_number(b.get("max_attempts"), "max_attempts", s.max_attempts, 1))
    s.backoff_seconds = _number(b.get("backoff_seconds"), "backoff_seconds", s.backoff_seconds, 0)
    s.backoff_max_seconds = _number(b.get("backoff_max_seconds"), "backoff_max_seconds", s.backoff_max_seconds, 0)

    k = b.get("kafka") or {}
    s.kafka = KafkaSettings(
        servers=k.get("servers") or None,
        topics=_str_list(k.get("topics"), "kafka.topics"),
        group_id=str(k.get("group_id") or KafkaSettings.group_id),
        username=k.get("username") or None,
        password=k.get("password") or None,
        security_protocol=k.get("security_protocol") or None,
        sasl_mechanism=str(k.get("sasl_mechanism") or KafkaSettings.sasl_mechanism),
        auto_offset_reset=str(k.get("auto_offset_reset") or "earliest"),
    )
    r = b.get("rest") or {}
    s.rest = RestSettings(
        url=(r.get("url") or None),
        classes=_str_list(r.get("classes"), "rest.classes"),
        poll_seconds=_number(r.get("poll_seconds"), "rest.poll_seconds", 60.0, 0.05),
        max_per_poll=int(_number(r.get("max_per_poll"), "rest.max_per_poll", 1000, 1)),
        with_cutouts=bool(r.get("with_cutouts", True)),
        startdate=str(r["startdate"]) if r.get("startdate") else None,
    )
    s.var_dir = common.var_dir(tree, config_path)
    s.portal_url = common.portal_url(tree)
    return s


def load(path: Path) -> Settings:
    """Read the merged configuration file given by --config."""
    return from_tree(common.load_tree(path), config_path=path.resolve())


def check_source(s: Settings) -> None:
    """Refuse a daemon source that lacks what it needs, saying which key to set."""
    if s.source == "kafka":
        if not s.kafka.servers:
            raise ConfigError("services.broker.kafka.servers is not set: give Fink's bootstrap servers "
                              "(host:port[,host:port]) in config.yaml, or set services.broker.source to rest")
        if not s.kafka.topics:
            raise ConfigError("services.broker.kafka.topics is empty: list the Fink topics to follow, "
                              "e.g. [fink_kn_candidates_ztf]")
    elif s.source == "rest":
        if not s.rest.url:
            raise ConfigError("services.broker.rest.url is not set: give Fink's API address, "
                              "e.g. https://api.fink-portal.org")
        if not s.rest.classes:
            raise ConfigError("services.broker.rest.classes is empty: list the Fink classes to poll, "
                              "e.g. [Kilonova candidate]")
    if not s.group_names:
        raise ConfigError("services.broker.group_names is empty: name the portal group(s) alerts are saved to")
