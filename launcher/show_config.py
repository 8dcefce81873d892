"""`./run.sh config [KEY]`: the effective configuration, each value with the layer that set it."""

from __future__ import annotations

from .config import Config, format_value
from .errors import LauncherError
from .masking import mask


def show(cfg: Config, key: str | None, show_secrets: bool = False) -> int:
    if key and not cfg.has(key):
        if key in cfg.deleted:
            print(f"{key}: (removed by {cfg.deleted[key]})")
            return 0
        hint = cfg.suggest(key)
        raise LauncherError(f"config: no key {key!r}" + (f"; did you mean {', '.join(hint)}?" if hint else ""), 1)
    for k, v in cfg.leaves(key or ""):
        shown = v if show_secrets else mask(k, v)
        print(f"{k}: {format_value(shown)}  # {cfg.origin(k)}")
    if not key:
        for k, label in sorted(cfg.deleted.items()):
            if not cfg.has(k):
                print(f"# {k}: removed by {label}")
    return 0
