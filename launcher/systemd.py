"""`./run.sh systemd`: a systemd unit that starts the distribution at boot and stops it cleanly, and a
logrotate file for the one log nothing else rotates (the embedded PostgreSQL's; supervisord rotates its own
and every program's: stdout_logfile_maxbytes / _backups in each supervisor.conf)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from .config import Config
from .errors import info, warn

UNIT = "astroportal.service"


def render_unit(cfg: Config, user: str) -> str:
    root = cfg.project.root
    run = root / "run.sh"
    timeout = int(float(cfg.get("launcher.start_timeout") or 60)) + 240  # a first start builds and migrates
    env = f"Environment=PORTAL_VAR={cfg.var_dir}\n" if os.environ.get("PORTAL_VAR") else ""
    return f"""\
# Written by ./run.sh systemd. Install: cp {UNIT} /etc/systemd/system/ && systemctl daemon-reload &&
# systemctl enable --now {UNIT.removesuffix('.service')}
[Unit]
Description=astroportal distribution (portal, services, embedded database) in {root}
After=network-online.target
Wants=network-online.target

[Service]
# ./run.sh run returns once the portal answers; supervisord and PostgreSQL keep running as daemons.
Type=oneshot
RemainAfterExit=yes
User={user}
WorkingDirectory={root}
Environment=PORTAL_ROOT={root}
{env}ExecStart={run} run
ExecStop={run} stop
ExecReload={run} restart
TimeoutStartSec={timeout}
TimeoutStopSec=120
# supervisord and PostgreSQL outlive ExecStart by design (RemainAfterExit); ExecStop stops them cleanly
# before systemd would signal what is left of the unit's processes.

[Install]
WantedBy=multi-user.target
"""


def render_logrotate(cfg: Config) -> str:
    return f"""\
# Written by ./run.sh systemd: the embedded PostgreSQL's log (supervisord rotates the others).
# Install: cp astroportal.logrotate /etc/logrotate.d/astroportal
{cfg.var.postgres_log} {{
    weekly
    rotate 8
    maxsize 50M
    compress
    delaycompress
    missingok
    notifempty
    copytruncate
}}
"""


def write(cfg: Config, output: str | None, user: str | None) -> int:
    """Write the unit (default var/systemd/astroportal.service) and the logrotate file beside it."""
    user = user or pwd.getpwuid(os.getuid()).pw_name
    target = Path(output) if output else cfg.var.systemd_dir / UNIT
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_unit(cfg, user))
    rotate = target.with_name("astroportal.logrotate")
    rotate.write_text(render_logrotate(cfg))
    info(f"systemd: wrote {target} and {rotate}")
    analyze = shutil.which("systemd-analyze")
    if analyze:
        res = subprocess.run([analyze, "verify", str(target)], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL)
        problems = [l for l in (res.stderr + res.stdout).splitlines() if str(target.name) in l]
        if problems:
            warn("systemd-analyze verify:\n" + "\n".join(problems))
    info(f"systemd: install with: cp {target} /etc/systemd/system/ && systemctl daemon-reload && "
         f"systemctl enable --now {UNIT.removesuffix('.service')}; cp {rotate} /etc/logrotate.d/astroportal")
    print(target)
    return 0
