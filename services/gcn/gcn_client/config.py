"""The GCN service's settings: `services.gcn.*` of the merged configuration file (nothing else is read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service_common import settings as common
from service_common.settings import ConfigError  # noqa: F401 - raised to this module's callers

OFFSET_RESETS = ("earliest", "latest")


@dataclass
class KafkaSettings:
    servers: str | None = None
    topics: list[str] = field(default_factory=lambda: ["igwn.gwalert"])
    group_id: str = "astroportal-gcn"
    # GCN's credentials (https://gcn.nasa.gov/quickstart): OpenID Connect client credentials.
    client_id: str | None = None
    client_secret: str | None = None
    # The GCN domain whose auth server issues tokens for the client credentials (auth.DOMAIN/oauth2/token).
    domain: str = "gcn.nasa.gov"
    # null: SASL_SSL with OIDC when client_id is set; "plaintext" for a broker without authentication.
    security_protocol: str | None = None
    auto_offset_reset: str = "earliest"
    # A real igwn.gwalert with its sky map is about 1 MB; librdkafka's consumer must accept bigger messages.
    max_message_mb: float = 16.0


@dataclass
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    significant_only: bool = False
    skip_test_events: bool = True
    http_timeout: float = 120.0
    max_attempts: int = 6
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    var_dir: Path = Path("var")
    portal_url: str = "http://127.0.0.1:5000"

    @property
    def state_dir(self) -> Path:
        """The status file and the dead letters: var/gcn/."""
        return self.var_dir / "gcn"


def _number(value: Any, key: str, default: float, low: float) -> float:
    return common.number(value, f"services.gcn.{key}", default, low)


def _flag(value: Any, key: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"services.gcn.{key}: expected true or false, got {value!r}")
    return value


def _text(value: Any, key: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ConfigError(f"services.gcn.{key}: expected a text value, got {value!r}")
    return str(value)


def from_tree(tree: dict, *, config_path: Path | None = None) -> Settings:
    """Settings from the merged configuration (a dict); ConfigError naming the key when one is wrong."""
    g = common.get(tree, "services.gcn") or {}
    if not isinstance(g, dict):
        raise ConfigError(f"services.gcn: expected a mapping, got {g!r}")
    s = Settings()
    s.significant_only = _flag(g.get("significant_only"), "significant_only", False)
    s.skip_test_events = _flag(g.get("skip_test_events"), "skip_test_events", True)
    s.http_timeout = _number(g.get("http_timeout"), "http_timeout", s.http_timeout, 1)
    s.max_attempts = int(_number(g.get("max_attempts"), "max_attempts", s.max_attempts, 1))
    s.backoff_seconds = _number(g.get("backoff_seconds"), "backoff_seconds", s.backoff_seconds, 0)
    s.backoff_max_seconds = _number(g.get("backoff_max_seconds"), "backoff_max_seconds", s.backoff_max_seconds, 0)

    k = g.get("kafka") or {}
    if not isinstance(k, dict):
        raise ConfigError(f"services.gcn.kafka: expected a mapping, got {k!r}")
    topics = k.get("topics")
    if topics is None:
        topics = list(KafkaSettings().topics)
    if isinstance(topics, str):
        topics = [topics]
    if not isinstance(topics, list) or not all(isinstance(t, str) and t.strip() for t in topics):
        raise ConfigError(f"services.gcn.kafka.topics: expected a list of topic names, got {topics!r}")
    reset = str(k.get("auto_offset_reset") or "earliest")
    if reset not in OFFSET_RESETS:
        raise ConfigError(f"services.gcn.kafka.auto_offset_reset: expected earliest or latest, got {reset!r}")
    s.kafka = KafkaSettings(
        servers=_text(k.get("servers"), "kafka.servers"),
        topics=list(topics),
        group_id=_text(k.get("group_id"), "kafka.group_id") or KafkaSettings.group_id,
        client_id=_text(k.get("client_id"), "kafka.client_id"),
        client_secret=_text(k.get("client_secret"), "kafka.client_secret"),
        domain=_text(k.get("domain"), "kafka.domain") or KafkaSettings.domain,
        security_protocol=_text(k.get("security_protocol"), "kafka.security_protocol"),
        auto_offset_reset=reset,
        max_message_mb=_number(k.get("max_message_mb"), "kafka.max_message_mb", KafkaSettings.max_message_mb, 1),
    )
    s.var_dir = common.var_dir(tree, config_path)
    s.portal_url = common.portal_url(tree)
    return s


def load(path: Path) -> Settings:
    """Read the merged configuration file given by --config."""
    return from_tree(common.load_tree(path), config_path=path.resolve())


def check_kafka(s: Settings) -> None:
    """Refuse to start the Kafka consumer without what it needs, saying which key to set.

    This is what keeps the service off by default: until GCN's servers and credentials are configured the daemon
    stays idle (no crash loop under supervisord) and its status names the missing setting.
    """
    k = s.kafka
    if not k.servers:
        raise ConfigError("services.gcn.kafka.servers is not set: give GCN's Kafka bootstrap servers "
                          "(kafka.gcn.nasa.gov for GCN's production stream) in config.yaml")
    if not k.topics:
        raise ConfigError("services.gcn.kafka.topics is empty: list the GCN topics to follow, e.g. [igwn.gwalert]")
    plaintext = (k.security_protocol or "").lower() == "plaintext"
    if not plaintext and not k.client_id:
        raise ConfigError("services.gcn.kafka.client_id is not set: create client credentials at "
                          "https://gcn.nasa.gov/quickstart and put client_id and client_secret under "
                          "services.gcn.kafka in config.yaml (or PORTAL__SERVICES__GCN__KAFKA__CLIENT_SECRET)")
    if k.client_id and not k.client_secret:
        raise ConfigError("services.gcn.kafka.client_secret is not set: GCN's client credentials need both the "
                          "client_id and its secret (config.yaml or PORTAL__SERVICES__GCN__KAFKA__CLIENT_SECRET)")
