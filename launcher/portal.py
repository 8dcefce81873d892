"""The portal, driven as a process: `python -m astroportal COMMAND --config patched/config.yaml` in patched/."""

from __future__ import annotations

import subprocess
import time

import requests

from .config import Config
from .errors import LauncherError
from .supervisor import local_url


def command(cfg: Config, *args: str) -> list[str]:
    return [str(cfg.project.python), "-m", "astroportal", *args, "--config", str(cfg.project.patched_config)]


def run(cfg: Config, *args: str, capture: bool = False, what: str | None = None) -> subprocess.CompletedProcess:
    """Run a portal command from the build; a failure becomes a LauncherError with the portal's message."""
    res = subprocess.run(command(cfg, *args), cwd=cfg.project.patched, stdin=subprocess.DEVNULL,
                         capture_output=capture, text=True)
    if res.returncode != 0:
        detail = (res.stderr or res.stdout or "").strip() if capture else "see the messages above"
        raise LauncherError(f"{what or 'portal ' + args[0]} failed (exit {res.returncode}): {detail}", res.returncode)
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
