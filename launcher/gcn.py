"""`./run.sh gcn status|ingest FILE...`: the GCN service's state, and notice files posted by hand.

Both run the service's own module (patched/services/gcn, `python -m gcn_client`) as a process with the merged
configuration and a token: the service's own (var/tokens/gcn.token), or with --as-admin the admin's. The
launcher imports neither the service nor the portal.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from .config import Config
from .errors import LauncherError

SERVICE = "gcn"

HELP = "the GCN service: its status, or notice files (JSON or VOEvent) posted by hand"
DESCRIPTION = (
    "./run.sh gcn status        the Kafka source, committed offsets and lag per partition, the last notice,\n"
    "                           the last error and the dead letters (from var/gcn/; exit 3 when it never ran)\n"
    "./run.sh gcn ingest FILE... [--as-admin]\n"
    "                           post igwn.gwalert JSON or VOEvent XML files to the running portal's\n"
    "                           POST /api/gcn_event with the service's token (--as-admin: the admin's) and\n"
    "                           print what the portal made of each; exit 1 if any was refused. A notice sent\n"
    "                           twice changes nothing.")


def configure_parser(p: argparse.ArgumentParser) -> None:
    """The `gcn` command's actions and their arguments (cli.py's registry calls this with its parser)."""
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    actions.required = True
    st = actions.add_parser("status", help="the GCN service's state", description="The GCN service's state.")
    st.add_argument("--json", action="store_true", help="as JSON")
    ing = actions.add_parser("ingest", help="post notice files through the API",
                             description="Post igwn.gwalert JSON or VOEvent XML files to the running portal.")
    ing.add_argument("files", nargs="+", metavar="FILE", help="notice files (JSON or VOEvent XML)")
    ing.add_argument("--as-admin", action="store_true",
                     help="use the admin's token instead of the service's (before the service has one)")


def run(cfg: Config, args: argparse.Namespace) -> int:
    from .admin import token_path
    from .build import build
    from .supervisor import local_url

    build(cfg)  # the service and the merged configuration as they are now
    service_dir = cfg.project.patched / "services" / SERVICE
    if not (service_dir / "gcn_client").is_dir():
        raise LauncherError(f"{service_dir} has no GCN client: is services/{SERVICE}/ in the tree?", 2)
    token_file = token_path(cfg) if getattr(args, "as_admin", False) else cfg.var.tokens / f"{SERVICE}.token"
    cmd = [str(cfg.project.python), "-m", "gcn_client", args.action,
           *[str(Path(p).absolute()) for p in getattr(args, "files", [])],
           "--config", str(cfg.project.patched_config), "--token-file", str(token_file), "--url", local_url(cfg)]
    if getattr(args, "json", False):
        cmd.append("--json")
    try:
        return subprocess.run(cmd, cwd=service_dir, env=dict(os.environ)).returncode
    except KeyboardInterrupt:
        return 130
