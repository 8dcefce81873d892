"""The layered configuration: the one loader every part of the launcher uses.

Layers, lowest first:
  1. upstream/config.defaults.yaml    the portal's own defaults            (layer "upstream")
  2. config.defaults.yaml             the distribution's defaults (tracked) (layer "distribution")
  3. config.yaml                      local, git-ignored: secrets, machine  (layer "local")
  4. PORTAL__SECTION__KEY=value       environment variables, YAML-parsed    (layer "env PORTAL__...")
  5. values the launcher derives: paths.var, and database.url for the embedded database (layer "launcher")

Mappings merge key by key; any other value replaces. The YAML tag `!delete` as a value removes the key
(and everything under it) from what the lower layers set, e.g. `server: {url: !delete}` or
PORTAL__SERVER__URL='!delete'.
"""

from __future__ import annotations

import copy
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from .errors import LauncherError
from .masking import is_secret
from .paths import Project, VarLayout

ENV_PREFIX = "PORTAL__"


class _Delete:
    """The value of a key tagged `!delete`."""

    def __repr__(self) -> str:
        return "!delete"


DELETE = _Delete()


class _Loader(yaml.SafeLoader):
    """Safe YAML plus the `!delete` tag."""


_Loader.add_constructor("!delete", lambda loader, node: DELETE)


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text; a syntax error names `where` and the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{where}:{mark.line + 1}" if mark is not None else where
        problem = getattr(exc, "problem", None) or str(exc)
        raise LauncherError(f"{loc}: invalid YAML: {problem}", 2) from None


def read_file(path: Path) -> dict:
    """Read one YAML layer: a missing file is an empty layer, anything but a mapping is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as exc:
        raise LauncherError(f"{path}: not UTF-8 text ({exc.reason})", 2) from None
    data = parse_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LauncherError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}", 2)
    return data


def env_layer(env: dict, current: dict) -> list[tuple[str, list[str], Any]]:
    """Settings from PORTAL__A__B=value variables: [(variable, key path, value)].

    Each `__`-separated part names a key, matched case-insensitively against the keys already there
    with `-` and `_` alike (so PORTAL__SERVER__AUTH__GOOGLE_OAUTH2__KEY reaches `google-oauth2`).
    A part that names no key where the files define some (PORTAL__SERVER__PROT) is a typo until shown
    otherwise: it is refused with the closest keys. New keys go under a mapping the files leave empty
    (e.g. database.embedded.settings) or into config.yaml.
    """
    out = []
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX):
            continue
        parts = var[len(ENV_PREFIX):].split("__")
        if not all(parts):
            raise LauncherError(f"environment variable {var}: empty key part (use PORTAL__SECTION__KEY)", 2)
        path, node = [], current
        for part in parts:
            want = part.lower().replace("-", "_")
            match = None
            if isinstance(node, dict):
                match = next((k for k in node if str(k).lower().replace("-", "_") == want), None)
                if match is None and node:
                    _refuse_unknown(var, path, part, current)
            key = match if match is not None else part.lower()
            path.append(key)
            node = node.get(key) if isinstance(node, dict) else None
        out.append((var, path, parse_yaml(env[var], f"environment variable {var}")))
    return out


def _env_name(path: list[str]) -> str:
    return ENV_PREFIX + "__".join(str(p).upper().replace("-", "_") for p in path)


def _refuse_unknown(var: str, path: list[str], part: str, current: dict) -> None:
    """Refuse an environment variable naming a key that no layer defines, with the closest keys."""
    keys = [k for k, _ in _leaves(current, "")]
    keys += sorted({".".join(k.split(".")[:i]) for k in keys for i in range(1, k.count(".") + 1)})
    wanted = ".".join([*map(str, path), part.lower()])
    close = difflib.get_close_matches(wanted, keys, n=3, cutoff=0.6)
    hint = ("; did you mean " + ", ".join(f"{_env_name(k.split('.'))} ({k})" for k in close) + "?") if close else ""
    raise LauncherError(f"environment variable {var}: no configuration key {wanted!r}{hint} (`./run.sh config` "
                        "lists the keys; a new key belongs in config.yaml)", 2)


@dataclass
class Layer:
    """One source of settings, with the label `config KEY` shows."""

    name: str
    label: str
    data: dict


@dataclass
class Config:
    """The merged settings and, for each leaf, the layer that set it."""

    data: dict = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    deleted: dict[str, str] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)
    var_dir: Path | None = None
    project: Project | None = None

    @property
    def var(self) -> VarLayout:
        """The runtime directory's layout (paths only: nothing is created)."""
        return VarLayout(self.var_dir)

    def get(self, key: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def has(self, key: str) -> bool:
        sentinel = object()
        return self.get(key, sentinel) is not sentinel

    def origin(self, key: str) -> str | None:
        """The layer that set `key` (for a mapping: the layer of its first leaf)."""
        if key in self.origins:
            return self.origins[key]
        for k, v in self.origins.items():
            if k.startswith(key + "."):
                return v
        return None

    def set(self, key: str, value: Any, label: str) -> None:
        """Set a derived value (the launcher's own layer)."""
        _assign(self.data, key.split("."), value, self.origins, label)

    def leaves(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """(dotted key, value) of every leaf under `prefix` (lists and empty mappings are leaves)."""
        node = self.get(prefix) if prefix else self.data
        if not isinstance(node, dict) or (prefix and not node):
            yield prefix, node
            return
        yield from _leaves(node, prefix)

    def suggest(self, key: str) -> list[str]:
        keys = set(self.origins)
        for k in list(keys):
            parts = k.split(".")
            keys.update(".".join(parts[:i]) for i in range(1, len(parts)))
        return difflib.get_close_matches(key, sorted(keys), n=3)

    def int_value(self, key: str, low: int, high: int, default: int | None = None) -> int:
        """An integer setting within [low, high]; a clear error names the key and the layer otherwise."""
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise LauncherError(
                f"{key}: expected a whole number from {low} to {high}, got {value!r} "
                f"(set by {self.origin(key) or 'no layer'})", 2
            )
        return value


def _leaves(node: dict, prefix: str) -> Iterator[tuple[str, Any]]:
    for k, v in node.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            yield from _leaves(v, key)
        else:
            yield key, v


def _drop_origins(origins: dict[str, str], key: str) -> None:
    for k in [k for k in origins if k == key or k.startswith(key + ".")]:
        del origins[k]


def _record(origins: dict[str, str], key: str, value: Any, label: str) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _record(origins, f"{key}.{k}", v, label)
    else:
        origins[key] = label


def _assign(data: dict, path: list[str], value: Any, origins: dict[str, str], label: str,
            deleted: dict[str, str] | None = None) -> None:
    """Lay one value at `path` (from the top of `data`), merging mappings and honouring `!delete`."""
    node = data
    for i, part in enumerate(path[:-1]):
        child = node.get(part)
        if not isinstance(child, dict):
            if value is DELETE:
                return
            _drop_origins(origins, ".".join(path[: i + 1]))
            child = node[part] = {}
        node = child
    key, dotted = path[-1], ".".join(path)
    if value is DELETE:
        node.pop(key, None)
        _drop_origins(origins, dotted)
        if deleted is not None:
            deleted[dotted] = label
        return
    if isinstance(value, dict):
        if not isinstance(node.get(key), dict):
            _drop_origins(origins, dotted)
            node[key] = {}
            if not value:
                origins[dotted] = label
        for k, v in value.items():
            _assign(data, [*path, str(k)], v, origins, label, deleted)
        return
    _drop_origins(origins, dotted)
    node[key] = copy.deepcopy(value)
    origins[dotted] = label


def _strip_deletes(value: Any) -> Any:
    """A `!delete` inside a list has nothing to remove: refuse it rather than guess."""
    if isinstance(value, list) and any(v is DELETE for v in value):
        raise LauncherError("`!delete` removes a key; it cannot stand as a list item", 2)
    return value


def merge_layers(layers: list[Layer]) -> Config:
    """Merge layers in order into a Config with origins."""
    cfg = Config(layers=layers)
    for layer in layers:
        for k, v in layer.data.items():
            _strip_deletes(v)
            _assign(cfg.data, [str(k)], v, cfg.origins, layer.label, cfg.deleted)
    return cfg


def load(project: Project | None = None, env: dict | None = None, derive: bool = True) -> Config:
    """Load every layer for `project` (default: from the environment) and derive the launcher's values.

    Reads only: nothing is created (no var/, no credentials); the commands that need them make them.
    """
    env = dict(os.environ) if env is None else env
    project = project or Project.from_env(env)
    files = [
        ("upstream", project.upstream_defaults),
        ("distribution", project.distribution_defaults),
        ("local", project.local_config),
    ]
    layers = [Layer(name, f"{name} ({_rel(path, project.root)})", read_file(path)) for name, path in files]
    cfg = merge_layers(layers)
    for var, path, value in env_layer(env, cfg.data):
        layer = Layer("env", f"env {var}", {})
        cfg.layers.append(layer)
        _assign(cfg.data, path, value, cfg.origins, layer.label, cfg.deleted)
    cfg.project = project
    if derive:
        _derive(cfg, project, env)
    return cfg


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _derive(cfg: Config, project: Project, env: dict) -> None:
    """paths.var becomes absolute (PORTAL_VAR wins), so the portal and the launcher agree on it; database.url
    names the embedded cluster when it is the one in use."""
    if env.get("PORTAL_VAR"):
        var, label = Path(env["PORTAL_VAR"]), "env PORTAL_VAR"
    else:
        var, label = Path(str(cfg.get("paths.var") or "var")), "launcher (paths.var made absolute)"
    if not var.is_absolute():
        var = project.root / var
    cfg.var_dir = Path(os.path.normpath(var))
    cfg.set("paths.var", str(cfg.var_dir), label)
    # Imported here: the database module needs the config types defined above.
    from . import database

    database.derive_url(cfg)


def portal_file_data(cfg: Config) -> dict:
    """What the portal reads: the merged settings, with deleted keys the portal has defaults for set to null.

    The portal lays the file over its own defaults, so a key merely left out would come back; null is
    how the removal reaches it.
    """
    data = copy.deepcopy(cfg.data)
    upstream = next((l.data for l in cfg.layers if l.name == "upstream"), {})
    for dotted in cfg.deleted:
        if _lookup(upstream, dotted) is _MISSING or _lookup(data, dotted) is not _MISSING:
            continue
        parts, node = dotted.split("."), data
        for p in parts[:-1]:
            if p not in node:
                node[p] = {}
            node = node[p]
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = None
    return data


_MISSING = object()


def _lookup(data: dict, dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def render_portal_file(cfg: Config) -> bytes:
    """The bytes of patched/config.yaml."""
    header = (
        "# Generated by ./run.sh build from upstream/config.defaults.yaml, config.defaults.yaml,\n"
        "# config.yaml and PORTAL__* environment variables. Do not edit: it is rewritten on every build.\n"
    )
    body = yaml.safe_dump(portal_file_data(cfg), sort_keys=False, default_flow_style=False, allow_unicode=True)
    return (header + body).encode("utf-8")


def tracked_secrets(cfg: Config) -> list[str]:
    """Secret-looking keys with a value in a tracked layer (upstream's or the distribution's defaults)."""
    found = []
    for layer in cfg.layers:
        if layer.name not in ("upstream", "distribution"):
            continue
        for key, value in _leaves(layer.data, ""):
            if is_secret(key) and value not in (None, "", DELETE) and not isinstance(value, (dict, list)):
                found.append(f"{key} in {layer.label}")
    return found


def format_value(value: Any) -> str:
    """A value as one line of YAML flow style."""
    if value is DELETE:
        return "!delete"
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True).strip()
    if text.endswith("\n..."):
        text = text[:-4].strip()
    elif text.endswith("..."):
        text = text[:-3].strip()
    return text
