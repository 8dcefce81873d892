"""The portal's configuration: its own defaults with one deployment file laid over them."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config.defaults.yaml"


class ConfigError(Exception):
    """A configuration file cannot be read or is not valid YAML."""


def deep_merge(base: dict, over: dict) -> dict:
    """Return `base` with `over` laid on it: mappings merge key by key, other values replace."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: Path) -> dict:
    """Read a YAML mapping, naming the file and line when it is malformed."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


class Config(dict):
    """A merged configuration; `cfg.get("server.port")` reads a dotted key."""

    path: Path | None = None

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        node: Any = self
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = dict.__getitem__(node, part)
        return node

    @property
    def var_dir(self) -> Path:
        """The runtime-state directory (created on demand)."""
        var = Path(self.get("paths.var") or "./var")
        if not var.is_absolute() and self.path is not None:
            var = self.path.parent / var
        var = var.resolve()
        var.mkdir(parents=True, exist_ok=True)
        return var

    @property
    def server_url(self) -> str:
        url = self.get("server.url")
        if url:
            return url.rstrip("/")
        return f"http://{self.get('server.host')}:{self.get('server.port')}"


def load(path: str | os.PathLike | None = None) -> Config:
    """Load the portal's defaults and lay the file at `path` (or $ASTROPORTAL_CONFIG) over them."""
    data = read_yaml(DEFAULTS_FILE)
    path = path or os.environ.get("ASTROPORTAL_CONFIG")
    cfg = Config(deep_merge(data, read_yaml(Path(path)) if path else {}))
    cfg.path = Path(path).resolve() if path else None
    return cfg
