"""Reading a service's part of the merged configuration file (the launcher writes patched/config.yaml from every
layer; a service reads that file and nothing else), with errors that name the key and what to put there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    """A setting that cannot work; the message names the key and what to put there."""


def get(tree: dict, dotted: str) -> Any:
    """The value at `dotted` ("services.broker.kafka.servers") in `tree`, None where any part is missing."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def load_tree(path: Path) -> dict:
    """The merged configuration file given by --config, as a dict."""
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file (./run.sh build writes patched/config.yaml)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(tree).__name__}")
    return tree


def number(value: Any, key: str, default: float, low: float) -> float:
    """`value` as a float >= `low` (`default` when unset); ConfigError naming `key` otherwise."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise ConfigError(f"{key}: expected a number >= {low}, got {value!r}")
    return float(value)


def names(value: Any, key: str) -> list[str]:
    """A list of non-empty names (one name alone counts as a list of one); ConfigError naming `key` otherwise."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{key}: expected a list of names, got {value!r}")
    return list(value)


def var_dir(tree: dict, config_path: Path | None) -> Path:
    """The project's var/ (paths.var), relative paths taken from the configuration file's folder."""
    path = Path(str(get(tree, "paths.var") or "var"))
    if not path.is_absolute() and config_path is not None:
        path = config_path.parent / path
    return path


def portal_url(tree: dict) -> str:
    """Where the portal answers on this host (loopback when it listens on every address)."""
    host = str(get(tree, "server.host") or "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{get(tree, 'server.port') or 5000}"
