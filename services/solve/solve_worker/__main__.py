"""solve_worker: claim plate-solving jobs from the portal and run solve-field on them.

On the portal's machine supervisord starts services.solve.workers of these (services/solve/supervisor.conf).
On another machine, with astrometry.net and its index files installed:

    python -m solve_worker --url https://portal.example.org --token-file solve.token

where solve.token holds an API token of a user (or bot) with the 'Run solve jobs' ACL.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

from .client import PortalClient
from .worker import Worker, install_signal_handlers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="solve_worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the portal's URL, e.g. http://127.0.0.1:5000")
    parser.add_argument("--token-file", required=True, type=Path,
                        help="file holding the worker's API token (ACL 'Run solve jobs'), never the admin's")
    parser.add_argument("--scratch-dir", type=Path, default=Path("solve-scratch"),
                        help="where each job gets its own directory, removed afterwards (default: ./solve-scratch)")
    parser.add_argument("--name", default=None, help="this worker's name in the job history (default: host-pid)")
    parser.add_argument("--poll-seconds", type=float, default=0.25, help="wait between claims when idle")
    parser.add_argument("--max-jobs", type=int, default=None, help="stop after this many jobs (tests)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s solve_worker %(levelname)s %(message)s")
    try:
        token = args.token_file.read_text().strip()
    except OSError as exc:
        print(f"solve_worker: cannot read the token file {args.token_file}: {exc.strerror}", file=sys.stderr)
        return 2
    if not token:
        print(f"solve_worker: the token file {args.token_file} is empty", file=sys.stderr)
        return 2
    name = args.name or f"{socket.gethostname()}-{os.getpid()}"
    worker = Worker(PortalClient(args.url, token), name, args.scratch_dir.resolve(), args.poll_seconds)
    install_signal_handlers(worker)
    logging.getLogger("solve_worker").info("worker %s polling %s", name, args.url)
    worker.run_forever(args.max_jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
