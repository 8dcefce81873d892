"""`./run.sh broker status|replay PATH...`: the broker client's state, and Avro files sent through its pipeline.

Both run the service's own module (patched/services/broker, `python -m broker_client`) as a process with the
merged configuration and the service's token, as supervisord runs it: the launcher imports neither the
service nor the portal.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from .config import Config
from .errors import LauncherError

SERVICE = "broker"


HELP = "the broker client: its status, or replay Avro alert files into the portal"
DESCRIPTION = (
    "./run.sh broker status     the source, cursor or offsets per partition, lag, last batch, rate, last\n"
    "                           error and dead-letter count (from var/broker/; exit 3 when it never ran)\n"
    "./run.sh broker replay PATH... [--from-start]\n"
    "                           send Avro files or folders of them through the broker's pipeline into the\n"
    "                           running portal, with progress and a summary; exit 1 if any alert went to\n"
    "                           the dead letters (var/broker/dead-letters.jsonl). Records an earlier\n"
    "                           replay confirmed are skipped unless --from-start.")


def configure_parser(p: argparse.ArgumentParser) -> None:
    """The `broker` command's actions and their arguments (cli.py's registry calls this with its parser)."""
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    actions.required = True
    st = actions.add_parser("status", help="the broker client's state", description="The broker client's state.")
    st.add_argument("--json", action="store_true", help="as JSON")
    rp = actions.add_parser("replay", help="send Avro files or folders through the pipeline",
                            description="Send Avro alert files (or folders of them) into the running portal.")
    rp.add_argument("paths", nargs="+", metavar="PATH", help="Avro files or folders of them")
    rp.add_argument("--from-start", action="store_true", help="send every record again, ignoring the cursor")


def run(cfg: Config, args: argparse.Namespace) -> int:
    from .build import build
    from .supervisor import local_url

    build(cfg)  # the service and the merged configuration as they are now
    service_dir = cfg.project.patched / "services" / SERVICE
    if not (service_dir / "broker_client").is_dir():
        raise LauncherError(f"{service_dir} has no broker client: is services/{SERVICE}/ in the tree?", 2)
    cmd = [str(cfg.project.python), "-m", "broker_client", args.action,
           *[str(Path(p).absolute()) for p in getattr(args, "paths", [])],
           "--config", str(cfg.project.patched_config),
           "--token-file", str(cfg.var.tokens / f"{SERVICE}.token"),
           "--url", local_url(cfg)]
    if getattr(args, "from_start", False):
        cmd.append("--from-start")
    if getattr(args, "json", False):
        cmd.append("--json")
    try:
        return subprocess.run(cmd, cwd=service_dir, env=dict(os.environ)).returncode
    except KeyboardInterrupt:
        return 130
