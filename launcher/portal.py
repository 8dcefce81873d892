"""The portal, driven as a process: `python -m astroportal COMMAND --config patched/config.yaml` in patched/."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests

from .config import Config
from .errors import LauncherError
from .supervisor import local_url


def command(cfg: Config, *args: str, config: bool = True) -> list[str]:
    cmd = [str(cfg.project.python), "-m", "astroportal", *args]
    return cmd + ["--config", str(cfg.project.patched_config)] if config else cmd


def run(cfg: Config, *args: str, capture: bool = False, what: str | None = None, config: bool = True,
        cwd: Path | None = None, timeout: float | None = None,
        ok_codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    """Run a portal command from the build; a failure becomes a LauncherError with the portal's message.

    `config=False` runs a command that needs no configuration; `cwd` another code directory than patched/;
    `ok_codes` the exit statuses that are answers rather than failures.
    """
    label = what or "portal " + args[0]
    try:
        res = subprocess.run(command(cfg, *args, config=config), cwd=cwd or cfg.project.patched,
                             stdin=subprocess.DEVNULL, capture_output=capture, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LauncherError(f"{label} did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise LauncherError(f"{label}: cannot run the portal: {exc}") from None
    if res.returncode not in ok_codes:
        detail = (res.stderr or res.stdout or "").strip() if capture else "see the messages above"
        raise LauncherError(f"{label} failed (exit {res.returncode}): {detail}", res.returncode)
    return res


def answers(cfg: Config, timeout: float = 2) -> bool:
    """True when GET /api/sysinfo answers 200."""
    try:
        return requests.get(local_url(cfg) + "/api/sysinfo", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_healthy(cfg: Config, timeout: float, still_starting=None) -> None:
    """Wait for GET /api/sysinfo; `still_starting()` may raise early when the app has given up."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if answers(cfg, timeout=2):
            return
        if still_starting:
            still_starting()
        time.sleep(0.2)
    raise LauncherError(f"the portal did not answer on {local_url(cfg)}/api/sysinfo within {timeout:.0f} s")
